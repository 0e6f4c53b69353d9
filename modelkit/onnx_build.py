"""ONNX fixtures made with ``onnx.helper``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from modelkit.cnn import (
    CLASSIFIER_CLASSES,
    CUSTOM_DOMAIN,
    CUSTOM_OP_NAME,
    DEFAULT_PRUNE_FRACTION,
    ONNX_IR_VERSION,
    ONNX_OPSET,
    Array,
    CnnSpec,
    check_variant,
    cnn_weights,
    quantize_per_channel,
)

# ---------------------------------------------------------------------------
# ONNX builders
# ---------------------------------------------------------------------------


def model_bytes(
    graph: onnx.GraphProto,
    extra_opsets: Sequence[tuple[str, int]] = (),
    *,
    opset: int = ONNX_OPSET,
    ir_version: int = ONNX_IR_VERSION,
) -> bytes:
    """The serialized model of ``graph`` (default-domain ``opset``, ``extra_opsets``)."""
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(domain, version) for domain, version in extra_opsets]
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="edgeprof.modelkit", producer_version="1"
    )
    model.ir_version = ir_version
    return bytes(model.SerializeToString())


def _constants_to_nodes(graph: onnx.GraphProto) -> None:
    """Move every initializer into a ``Constant`` node (how Paddle exports weights)."""
    nodes = [
        helper.make_node("Constant", [], [init.name], name=f"const_{init.name}", value=init)
        for init in graph.initializer
    ]
    del graph.initializer[:]
    old = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + old)


def build_onnx_cnn(
    spec: CnnSpec | None = None,
    variant: str = "fp32",
    *,
    seed: int = 0,
    prune_fraction: float = DEFAULT_PRUNE_FRACTION,
    dynamic_batch: bool = False,
    constants_as_nodes: bool = False,
) -> bytes:
    """The CNN fixture as an .onnx file's bytes (input ``input`` NCHW, output ``probs``).

    ``dynamic_batch`` names the batch dimension ``N``; ``constants_as_nodes`` keeps the
    weights in ``Constant`` nodes instead of initializers.
    """
    spec = spec or CnnSpec()
    check_variant(variant)
    w = cnn_weights(spec, seed=seed, prune_fraction=prune_fraction if variant == "pruned" else 0.0)
    batch: int | str = "N" if dynamic_batch else 1
    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    names = {
        "w1": "conv1.weight",
        "b1": "conv1.bias",
        "wd": "dw.weight",
        "bd": "dw.bias",
        "w2": "conv2.weight",
        "b2": "conv2.bias",
        "wf": "fc.weight",
        "bf": "fc.bias",
    }
    x_name = "input"
    if variant == "int8":
        nodes, inits, param = _onnx_qdq_params(w, names)
    else:
        param = {}
        for key, arr in w.items():
            if variant == "fp16":
                inits.append(numpy_helper.from_array(arr.astype(np.float16), names[key] + "_fp16"))
                nodes.append(
                    helper.make_node(
                        "Cast", [names[key] + "_fp16"], [names[key]], to=TensorProto.FLOAT
                    )
                )
            else:
                inits.append(numpy_helper.from_array(arr, names[key]))
            param[key] = names[key]

    def qdq(name: str, scale: float, zp: int) -> str:
        """Fake-quantize an activation in the int8 variant (QDQ format)."""
        if variant != "int8":
            return name
        inits.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), name + "_scale"))
        inits.append(numpy_helper.from_array(np.array(zp, dtype=np.int8), name + "_zp"))
        nodes.append(
            helper.make_node("QuantizeLinear", [name, name + "_scale", name + "_zp"], [name + "_q"])
        )
        nodes.append(
            helper.make_node(
                "DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"], [name + "_dq"]
            )
        )
        return name + "_dq"

    h = qdq(x_name, 1.0 / 128, 0)
    nodes.append(
        helper.make_node(
            "Conv",
            [h, param["w1"], param["b1"]],
            ["conv1"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            name="conv1",
        )
    )
    nodes.append(helper.make_node("Relu", ["conv1"], ["relu1"]))
    h = qdq("relu1", 0.05, -128)
    nodes.append(
        helper.make_node(
            "Conv",
            [h, param["wd"], param["bd"]],
            ["dw"],
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            group=spec.c1,
            name="dw",
        )
    )
    nodes.append(helper.make_node("Relu", ["dw"], ["relu2"]))
    h = qdq("relu2", 0.05, -128)
    nodes.append(
        helper.make_node(
            "Conv", [h, param["w2"], param["b2"]], ["conv2"], kernel_shape=[1, 1], name="conv2"
        )
    )
    nodes.append(helper.make_node("Relu", ["conv2"], ["relu3"]))
    h = qdq("relu3", 0.05, -128)
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["pool"]))
    h = qdq("pool", 0.05, -128)
    nodes.append(helper.make_node("Flatten", [h], ["flat"], axis=1))
    nodes.append(
        helper.make_node(
            "Gemm", ["flat", param["wf"], param["bf"]], ["logits"], transB=1, name="fc"
        )
    )
    h = qdq("logits", 0.1, 0)
    nodes.append(helper.make_node("Softmax", [h], ["probs"], axis=-1))
    graph = helper.make_graph(
        nodes,
        "edgeprof_cnn",
        [
            helper.make_tensor_value_info(
                x_name, TensorProto.FLOAT, [batch, spec.in_ch, spec.hw, spec.hw]
            )
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, spec.classes])],
        initializer=inits,
    )
    if constants_as_nodes:
        _constants_to_nodes(graph)
    return model_bytes(graph)


def _onnx_qdq_params(
    w: dict[str, Array], names: dict[str, str]
) -> tuple[list[onnx.NodeProto], list[TensorProto], dict[str, str]]:
    """int8 weights / int32 biases behind DequantizeLinear (ONNX Runtime's QDQ format)."""
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    param: dict[str, str] = {}
    input_scales = {"w1": 1.0 / 128, "wd": 0.05, "w2": 0.05, "wf": 0.05}
    for wkey, bkey in (("w1", "b1"), ("wd", "bd"), ("w2", "b2"), ("wf", "bf")):
        q, scales = quantize_per_channel(w[wkey], 0)
        bias_scales = np.array(scales, dtype=np.float32) * np.float32(input_scales[wkey])
        qb = np.round(w[bkey] / bias_scales).astype(np.int32)
        for key, qarr, sc, zp in (
            (wkey, q, np.array(scales, dtype=np.float32), np.zeros(len(scales), dtype=np.int8)),
            (bkey, qb, bias_scales, np.zeros(len(scales), dtype=np.int32)),
        ):
            name = names[key]
            inits += [
                numpy_helper.from_array(qarr, name + "_quantized"),
                numpy_helper.from_array(sc, name + "_scale"),
                numpy_helper.from_array(zp, name + "_zero_point"),
            ]
            nodes.append(
                helper.make_node(
                    "DequantizeLinear",
                    [name + "_quantized", name + "_scale", name + "_zero_point"],
                    [name],
                    axis=0,
                )
            )
            param[key] = name
    return nodes, inits, param


def build_onnx_custom_op() -> bytes:
    """input [1,4] → ``com.edgeprof.test:EdgeprofTestOp`` → output: no runtime knows it."""
    graph = helper.make_graph(
        [helper.make_node(CUSTOM_OP_NAME, ["input"], ["output"], domain=CUSTOM_DOMAIN)],
        "edgeprof_custom",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
    )
    return model_bytes(graph, [(CUSTOM_DOMAIN, 1)])


def build_onnx_tiny() -> bytes:
    """input [1,4] float32 + constant [4] → output: microseconds per inference."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["input", "bias"], ["output"])],
        "edgeprof_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
        initializer=[
            numpy_helper.from_array(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32), "bias")
        ],
    )
    return model_bytes(graph)


def build_onnx_matmul_chain(
    layers: int, width: int = 128, *, batch: int = 1, seed: int = 0
) -> bytes:
    """input [batch, width] float32 through ``layers`` x (MatMul width x width, Tanh):
    the work, and so the latency, grows in proportion to ``layers``; the regression
    gate's model pairs. With ``batch`` 1 each weight is read once per inference (the
    chain is bound by memory once its weights outgrow the caches); a larger batch
    reuses every weight ``batch`` times, so the chain is bound by arithmetic and a
    candidate with 15 % more layers is about 15 % slower."""
    if layers < 1:
        raise ValueError("layers must be at least 1")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    rng = np.random.default_rng(seed)
    nodes = []
    inits = []
    x = "input"
    for i in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        out = "output" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [out]))
        x = out
    graph = helper.make_graph(
        nodes,
        f"edgeprof_chain_{layers}x{width}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, width])],
        initializer=inits,
    )
    return model_bytes(graph)


DTYPE_INPUTS: dict[str, int] = {
    "x_float32": TensorProto.FLOAT,
    "x_float16": TensorProto.FLOAT16,
    "x_int8": TensorProto.INT8,
    "x_uint8": TensorProto.UINT8,
    "x_int32": TensorProto.INT32,
    "x_int64": TensorProto.INT64,
    "x_bool": TensorProto.BOOL,
}
"""Input names of :func:`build_onnx_dtypes` and their ONNX element types."""


def build_onnx_dtypes() -> bytes:
    """One [1,4] input per dtype (float32, float16, int8, uint8, int32, int64, bool), each
    passed through ``Identity`` to an output ``y_<dtype>``."""
    nodes, inputs, outputs = [], [], []
    for name, elem in DTYPE_INPUTS.items():
        out = "y_" + name[2:]
        nodes.append(helper.make_node("Identity", [name], [out]))
        inputs.append(helper.make_tensor_value_info(name, elem, [1, 4]))
        outputs.append(helper.make_tensor_value_info(out, elem, [1, 4]))
    return model_bytes(helper.make_graph(nodes, "edgeprof_dtypes", inputs, outputs))


def build_onnx_classifier() -> bytes:
    """``logits = x @ I`` for x of shape [1, 10]: top-1 = argmax of the input."""
    n = CLASSIFIER_CLASSES
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc_w"], ["logits"])],
        "edgeprof_classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, n])],
        initializer=[numpy_helper.from_array(np.eye(n, dtype=np.float32), "fc_w")],
    )
    return model_bytes(graph)


def build_onnx_if_subgraph() -> bytes:
    """An ``If`` whose branches hold the weights: a 4x4 initializer in ``then`` and a
    4x4 ``Constant`` node in ``else`` (32 parameters, none in the main graph)."""
    rng = np.random.default_rng(1)
    w_then = rng.uniform(0.1, 1.0, size=(4, 4)).astype(np.float32)
    w_else = rng.uniform(0.1, 1.0, size=(4, 4)).astype(np.float32)
    out = [helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, [1, 4])]
    then_graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w_then"], ["branch_out"])],
        "then_branch",
        [],
        out,
        initializer=[numpy_helper.from_array(w_then, "w_then")],
    )
    else_graph = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["w_else"], value=numpy_helper.from_array(w_else, "w_else")
            ),
            helper.make_node("MatMul", ["input", "w_else"], ["branch_out"]),
        ],
        "else_branch",
        [],
        out,
    )
    nodes = [
        helper.make_node(
            "Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True), "cond")
        ),
        helper.make_node(
            "If", ["cond"], ["output"], then_branch=then_graph, else_branch=else_graph
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "edgeprof_if",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
    )
    return model_bytes(graph)


QLINEAR_PARAMS = 4 * 3 * 3 * 3 + 4 + 144 * 10
"""Parameters of :func:`build_onnx_qlinear`: QLinearConv weights + int32 bias, QLinearMatMul weights."""
QLINEAR_MACS = 6 * 6 * 4 * 27 + 144 * 10
"""MACs of :func:`build_onnx_qlinear`."""


def build_onnx_qlinear() -> bytes:
    """uint8 [1,3,8,8] → QLinearConv 3x3 (4 ch, valid) → Reshape [1,144] → QLinearMatMul (10)."""
    rng = np.random.default_rng(2)

    def scalar(name: str, value: float | int, dtype: Any) -> TensorProto:
        return numpy_helper.from_array(np.array(value, dtype=dtype), name)

    inits = [
        scalar("x_scale", 0.02, np.float32),
        scalar("x_zp", 128, np.uint8),
        numpy_helper.from_array(rng.integers(1, 100, size=(4, 3, 3, 3)).astype(np.int8), "conv_w"),
        scalar("w_scale", 0.01, np.float32),
        scalar("w_zp", 0, np.int8),
        scalar("y_scale", 0.05, np.float32),
        scalar("y_zp", 128, np.uint8),
        numpy_helper.from_array(rng.integers(1, 100, size=(4,)).astype(np.int32), "conv_b"),
        numpy_helper.from_array(np.array([1, 144], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(rng.integers(1, 100, size=(144, 10)).astype(np.int8), "fc_w"),
        scalar("o_scale", 0.1, np.float32),
        scalar("o_zp", 128, np.uint8),
    ]
    nodes = [
        helper.make_node(
            "QLinearConv",
            ["x", "x_scale", "x_zp", "conv_w", "w_scale", "w_zp", "y_scale", "y_zp", "conv_b"],
            ["conv"],
            kernel_shape=[3, 3],
        ),
        helper.make_node("Reshape", ["conv", "flat_shape"], ["flat"]),
        helper.make_node(
            "QLinearMatMul",
            ["flat", "y_scale", "y_zp", "fc_w", "w_scale", "w_zp", "o_scale", "o_zp"],
            ["y"],
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "edgeprof_qlinear",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 10])],
        initializer=inits,
    )
    return model_bytes(graph)
