"""Small .tflite and .onnx models built in code, for tests, benchmarks and the demo.

Nothing is downloaded: ONNX models are made with ``onnx.helper``, TFLite models are
written through the flatbuffer schema that ``ai_edge_litert`` ships (object API +
``flatbuffers.Builder``, file identifier ``TFL3``). Every model here runs on
``ai_edge_litert.interpreter.Interpreter`` / ``onnxruntime`` CPU, except the
custom-op fixtures, which exist to fail.

This module imports numpy, onnx and flatbuffers at import time: it is a fixture
factory for tests and the ``python -m profiler.testmodels --out DIR`` command, never
imported on a measuring path.

The main fixture is a small CNN (:class:`CnnSpec`), identical in both formats (the
same weights, NHWC for TFLite, NCHW for ONNX)::

    input → Conv 3x3 (c1) + ReLU → depthwise 3x3 + ReLU → Conv 1x1 (c2) + ReLU
          → global average pool → fully connected (classes) → softmax

in four variants (:data:`VARIANTS`): ``fp32``; ``fp16`` (fp16 weights + DEQUANTIZE
ops in TFLite, as the converter emits; fp16 initializers + Cast in ONNX);
``int8`` (TFLite full-integer with int8 input/output; ONNX QDQ); ``pruned`` (fp32
with an exact fraction of zero kernel elements).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import numpy.typing as npt
import onnx
from ai_edge_litert import schema_py_generated as tfl
from onnx import TensorProto, helper, numpy_helper

Array = npt.NDArray[Any]

VARIANTS = ("fp32", "fp16", "int8", "pruned")
"""Compression variants of the CNN fixture."""

DEFAULT_PRUNE_FRACTION = 0.5
"""Fraction of each kernel's elements set to exactly zero in the ``pruned`` variant."""

ONNX_OPSET = 17
# IR 8 / opset 17 load on onnxruntime >= 1.14, i.e. on the devices we target too.
ONNX_IR_VERSION = 8

CUSTOM_OP_NAME = "EdgeprofTestOp"
"""custom_code of the TFLite custom op and op_type of the unknown-domain ONNX node."""
CUSTOM_DOMAIN = "com.edgeprof.test"


# ---------------------------------------------------------------------------
# The CNN's architecture and its hand-computed cost
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CnnSpec:
    """Sizes of the CNN fixture; :meth:`params` and :meth:`macs` are computed by hand."""

    hw: int = 16
    """Input height = width."""
    in_ch: int = 3
    """Input channels."""
    c1: int = 8
    """Channels of the 3x3 conv (and of the depthwise conv)."""
    c2: int = 16
    """Channels of the 1x1 conv."""
    classes: int = 10
    """Outputs of the fully connected layer."""

    def kernel_sizes(self) -> dict[str, int]:
        """Element count of each kernel (weights, not biases)."""
        return {
            "conv1": self.c1 * self.in_ch * 9,
            "dw": self.c1 * 9,
            "conv2": self.c2 * self.c1,
            "fc": self.classes * self.c2,
        }

    def bias_sizes(self) -> dict[str, int]:
        """Element count of each bias."""
        return {"conv1": self.c1, "dw": self.c1, "conv2": self.c2, "fc": self.classes}

    def params(self) -> int:
        """Weights + biases (what analysis reports as ``params`` for every variant)."""
        return sum(self.kernel_sizes().values()) + sum(self.bias_sizes().values())

    def macs(self, batch: int = 1) -> int:
        """Multiply-accumulates of the conv and fully connected layers (SAME padding)."""
        pixels = self.hw * self.hw
        per_sample = (
            pixels * self.c1 * self.in_ch * 9  # conv 3x3
            + pixels * self.c1 * 9  # depthwise 3x3
            + pixels * self.c2 * self.c1  # conv 1x1
            + self.c2 * self.classes  # fully connected
        )
        return batch * per_sample

    def pruned_zeros(self, fraction: float = DEFAULT_PRUNE_FRACTION) -> int:
        """Exactly-zero elements of the ``pruned`` variant (kernels only; biases stay)."""
        return sum(math.floor(n * fraction) for n in self.kernel_sizes().values())

    def pruned_sparsity(self, fraction: float = DEFAULT_PRUNE_FRACTION) -> float:
        """Zero elements / all parameter elements of the ``pruned`` variant."""
        return self.pruned_zeros(fraction) / self.params()


DEMO_SPEC = CnnSpec(hw=64, in_ch=3, c1=32, c2=64, classes=10)
"""The CNN shipped for `hostctl demo`: ~13 M MACs, a fraction of a millisecond
per inference, ~17 KB as fp32 and ~10 KB as int8 — small enough to ship, big
enough for fp32-vs-int8 differences to show."""

SLOW_SPEC = CnnSpec(hw=96, in_ch=3, c1=64, c2=128, classes=10)
"""A CNN of ~100 M MACs: a few milliseconds per inference on a laptop core."""


def cnn_weights(spec: CnnSpec, *, seed: int = 0, prune_fraction: float = 0.0) -> dict[str, Array]:
    """Float32 weights in ONNX layouts (OIHW; FC as [out, in]).

    Every value has magnitude in [0.05, 0.5], so no weight is zero unless pruned and
    int8 quantization never rounds one to zero. With ``prune_fraction`` > 0, exactly
    ``floor(n * fraction)`` elements of each kernel are set to zero.
    """
    rng = np.random.default_rng(seed)
    shapes = {
        "w1": (spec.c1, spec.in_ch, 3, 3),
        "b1": (spec.c1,),
        "wd": (spec.c1, 1, 3, 3),
        "bd": (spec.c1,),
        "w2": (spec.c2, spec.c1, 1, 1),
        "b2": (spec.c2,),
        "wf": (spec.classes, spec.c2),
        "bf": (spec.classes,),
    }
    weights: dict[str, Array] = {}
    for name, shape in shapes.items():
        magnitude = rng.uniform(0.05, 0.5, size=shape)
        sign = rng.choice(np.array([-1.0, 1.0]), size=shape)
        weights[name] = (magnitude * sign).astype(np.float32)
    if prune_fraction > 0:
        for name in ("w1", "wd", "w2", "wf"):
            flat = weights[name].reshape(-1)
            count = math.floor(flat.size * prune_fraction)
            flat[rng.permutation(flat.size)[:count]] = 0.0
    return weights


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")


# ---------------------------------------------------------------------------
# TFLite writer
# ---------------------------------------------------------------------------

_TFL_DTYPES: dict[str, int] = {
    "float32": tfl.TensorType.FLOAT32,
    "float16": tfl.TensorType.FLOAT16,
    "int32": tfl.TensorType.INT32,
    "uint8": tfl.TensorType.UINT8,
    "int64": tfl.TensorType.INT64,
    "bool": tfl.TensorType.BOOL,
    "int16": tfl.TensorType.INT16,
    "int8": tfl.TensorType.INT8,
}


class _AlignedBufferT(tfl.BufferT):  # type: ignore[misc]
    """A buffer whose data starts 16-byte aligned, as the TFLite converter writes them
    (kernels read int32/float weights in place)."""

    def Pack(self, builder: Any) -> int:
        data_offset = None
        if self.data is not None and len(self.data):
            raw = bytes(self.data)
            builder.StartVector(1, len(raw), 16)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data_offset = builder.EndVector()
        tfl.BufferStart(builder)
        if data_offset is not None:
            tfl.BufferAddData(builder, data_offset)
        return int(tfl.BufferEnd(builder))


@dataclass
class _Quant:
    scale: list[float]
    zero_point: list[int]
    axis: int = 0


class _TfliteGraph:
    """Collects tensors, buffers and operators of one subgraph, then serializes."""

    def __init__(self) -> None:
        self.buffers: list[Any] = [_AlignedBufferT()]  # buffer 0: the empty sentinel
        self.tensors: list[Any] = []
        self.operators: list[Any] = []
        self.opcodes: list[Any] = []
        self._opcode_index: dict[tuple[int, str | None, int], int] = {}

    def tensor(
        self,
        name: str,
        shape: Sequence[int],
        dtype: str,
        data: Array | None = None,
        quant: _Quant | None = None,
        signature: Sequence[int] | None = None,
    ) -> int:
        t = tfl.TensorT()
        t.name = name
        t.shape = list(shape)
        if signature is not None:
            t.shapeSignature = list(signature)
        t.type = _TFL_DTYPES[dtype]
        if data is not None:
            buf = _AlignedBufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if quant is not None:
            q = tfl.QuantizationParametersT()
            q.scale = [float(s) for s in quant.scale]
            q.zeroPoint = [int(z) for z in quant.zero_point]
            q.quantizedDimension = quant.axis
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(
        self,
        code: int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options_type: int = 0,
        options: Any = None,
        *,
        version: int = 1,
        custom_code: str | None = None,
    ) -> None:
        key = (code, custom_code, version)
        if key not in self._opcode_index:
            oc = tfl.OperatorCodeT()
            oc.builtinCode = code
            # Readers take max(deprecated, builtin); codes >= 127 use the placeholder.
            oc.deprecatedBuiltinCode = min(
                code, tfl.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
            )
            oc.customCode = custom_code
            oc.version = version
            self.opcodes.append(oc)
            self._opcode_index[key] = len(self.opcodes) - 1
        o = tfl.OperatorT()
        o.opcodeIndex = self._opcode_index[key]
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        if custom_code is not None:
            o.customOptions = []
        self.operators.append(o)

    def serialize(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        sg = tfl.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = list(inputs)
        sg.outputs = list(outputs)
        sg.operators = self.operators
        sg.name = "main"
        model = tfl.ModelT()
        model.version = 3
        model.description = "edgeprof.testmodels"
        model.operatorCodes = self.opcodes
        model.subgraphs = [sg]
        model.buffers = self.buffers
        builder = flatbuffers.Builder(4096)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _conv_options(depth_multiplier: int | None = None, relu: bool = True) -> tuple[int, Any]:
    act = tfl.ActivationFunctionType.RELU if relu else tfl.ActivationFunctionType.NONE
    if depth_multiplier is None:
        c = tfl.Conv2DOptionsT()
        kind = tfl.BuiltinOptions.Conv2DOptions
    else:
        c = tfl.DepthwiseConv2DOptionsT()
        c.depthMultiplier = depth_multiplier
        kind = tfl.BuiltinOptions.DepthwiseConv2DOptions
    c.padding = tfl.Padding.SAME
    c.strideW = c.strideH = 1
    c.dilationWFactor = c.dilationHFactor = 1
    c.fusedActivationFunction = act
    return kind, c


def _fc_options() -> tuple[int, Any]:
    return tfl.BuiltinOptions.FullyConnectedOptions, tfl.FullyConnectedOptionsT()


def _softmax_options() -> tuple[int, Any]:
    s = tfl.SoftmaxOptionsT()
    s.beta = 1.0
    return tfl.BuiltinOptions.SoftmaxOptions, s


def _mean_options() -> tuple[int, Any]:
    r = tfl.ReducerOptionsT()
    r.keepDims = False
    return tfl.BuiltinOptions.ReducerOptions, r


def _tflite_layouts(w: dict[str, Array]) -> dict[str, Array]:
    """ONNX layouts → TFLite layouts (conv OHWI, depthwise 1HWC, FC [out, in])."""
    return {
        "w1": w["w1"].transpose(0, 2, 3, 1).copy(),
        "b1": w["b1"],
        "wd": w["wd"].transpose(1, 2, 3, 0).copy(),
        "bd": w["bd"],
        "w2": w["w2"].transpose(0, 2, 3, 1).copy(),
        "b2": w["b2"],
        "wf": w["wf"],
        "bf": w["bf"],
    }


def _quantize_per_channel(w: Array, axis: int) -> tuple[Array, list[float]]:
    """Symmetric int8 quantization per output channel (zero point 0, as TFLite requires)."""
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    scales = np.abs(moved).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, [float(s) for s in scales]


def build_tflite_cnn(
    spec: CnnSpec | None = None,
    variant: str = "fp32",
    *,
    seed: int = 0,
    prune_fraction: float = DEFAULT_PRUNE_FRACTION,
    dynamic_batch: bool = False,
) -> bytes:
    """The CNN fixture as a .tflite file's bytes (input ``input`` NHWC, output ``probs``).

    ``dynamic_batch`` marks the batch dimension dynamic (shape_signature -1).
    """
    spec = spec or CnnSpec()
    _check_variant(variant)
    w = _tflite_layouts(
        cnn_weights(spec, seed=seed, prune_fraction=prune_fraction if variant == "pruned" else 0.0)
    )
    if variant == "int8":
        return _tflite_cnn_int8(spec, w, dynamic_batch)
    g = _TfliteGraph()
    hw = spec.hw

    def sig(shape: list[int]) -> list[int] | None:
        return [-1, *shape[1:]] if dynamic_batch else None

    def weight(name: str, arr: Array) -> int:
        if variant != "fp16":
            return g.tensor(name, arr.shape, "float32", arr)
        half = g.tensor(name + "_fp16", arr.shape, "float16", arr.astype(np.float16))
        full = g.tensor(name, arr.shape, "float32")
        g.op(tfl.BuiltinOperator.DEQUANTIZE, [half], [full], version=3)
        return full

    def act(name: str, shape: list[int]) -> int:
        return g.tensor(name, shape, "float32", signature=sig(shape))

    x = act("input", [1, hw, hw, spec.in_ch])
    params = {k: weight(k, v) for k, v in w.items()}
    h1 = act("conv1", [1, hw, hw, spec.c1])
    g.op(tfl.BuiltinOperator.CONV_2D, [x, params["w1"], params["b1"]], [h1], *_conv_options())
    h2 = act("dw", [1, hw, hw, spec.c1])
    g.op(
        tfl.BuiltinOperator.DEPTHWISE_CONV_2D,
        [h1, params["wd"], params["bd"]],
        [h2],
        *_conv_options(depth_multiplier=1),
    )
    h3 = act("conv2", [1, hw, hw, spec.c2])
    g.op(tfl.BuiltinOperator.CONV_2D, [h2, params["w2"], params["b2"]], [h3], *_conv_options())
    axes = g.tensor("mean_axes", [2], "int32", np.array([1, 2], dtype=np.int32))
    h4 = act("pool", [1, spec.c2])
    g.op(tfl.BuiltinOperator.MEAN, [h3, axes], [h4], *_mean_options())
    h5 = act("logits", [1, spec.classes])
    g.op(
        tfl.BuiltinOperator.FULLY_CONNECTED, [h4, params["wf"], params["bf"]], [h5], *_fc_options()
    )
    y = act("probs", [1, spec.classes])
    g.op(tfl.BuiltinOperator.SOFTMAX, [h5], [y], *_softmax_options())
    return g.serialize([x], [y])


def _tflite_cnn_int8(spec: CnnSpec, w: dict[str, Array], dynamic_batch: bool) -> bytes:
    """Full-integer CNN: int8 activations/weights, int32 biases, int8 input and output."""
    g = _TfliteGraph()
    hw = spec.hw
    s_in, s_act, s_logit = 1.0 / 128, 0.05, 0.1

    def sig(shape: list[int]) -> list[int] | None:
        return [-1, *shape[1:]] if dynamic_batch else None

    def act(name: str, shape: list[int], scale: float, zp: int) -> int:
        return g.tensor(name, shape, "int8", quant=_Quant([scale], [zp]), signature=sig(shape))

    def conv_params(
        name: str, kernel: Array, bias: Array, axis: int, s_x: float
    ) -> tuple[int, int]:
        q, scales = _quantize_per_channel(kernel, axis)
        kt = g.tensor(name + "_w", q.shape, "int8", q, _Quant(scales, [0] * len(scales), axis))
        bias_scales = [s_x * s for s in scales]
        qb = np.round(bias / np.array(bias_scales)).astype(np.int32)
        bt = g.tensor(name + "_b", qb.shape, "int32", qb, _Quant(bias_scales, [0] * len(scales)))
        return kt, bt

    x = act("input", [1, hw, hw, spec.in_ch], s_in, 0)
    w1, b1 = conv_params("conv1", w["w1"], w["b1"], 0, s_in)
    h1 = act("conv1", [1, hw, hw, spec.c1], s_act, -128)
    g.op(tfl.BuiltinOperator.CONV_2D, [x, w1, b1], [h1], *_conv_options(), version=3)
    wd, bd = conv_params("dw", w["wd"], w["bd"], 3, s_act)
    h2 = act("dw", [1, hw, hw, spec.c1], s_act, -128)
    g.op(
        tfl.BuiltinOperator.DEPTHWISE_CONV_2D,
        [h1, wd, bd],
        [h2],
        *_conv_options(depth_multiplier=1),
        version=3,
    )
    w2, b2 = conv_params("conv2", w["w2"], w["b2"], 0, s_act)
    h3 = act("conv2", [1, hw, hw, spec.c2], s_act, -128)
    g.op(tfl.BuiltinOperator.CONV_2D, [h2, w2, b2], [h3], *_conv_options(), version=3)
    axes = g.tensor("mean_axes", [2], "int32", np.array([1, 2], dtype=np.int32))
    h4 = act("pool", [1, spec.c2], s_act, -128)
    g.op(tfl.BuiltinOperator.MEAN, [h3, axes], [h4], *_mean_options(), version=2)
    # Fully connected: per-tensor weight scale (what every TFLite version supports).
    wf_scale = float(np.abs(w["wf"]).max() / 127.0)
    qf = np.clip(np.round(w["wf"] / wf_scale), -127, 127).astype(np.int8)
    wf = g.tensor("fc_w", qf.shape, "int8", qf, _Quant([wf_scale], [0]))
    qbf = np.round(w["bf"] / (s_act * wf_scale)).astype(np.int32)
    bf = g.tensor("fc_b", qbf.shape, "int32", qbf, _Quant([s_act * wf_scale], [0]))
    h5 = act("logits", [1, spec.classes], s_logit, 0)
    g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [h4, wf, bf], [h5], *_fc_options(), version=4)
    y = act("probs", [1, spec.classes], 1.0 / 256, -128)
    g.op(tfl.BuiltinOperator.SOFTMAX, [h5], [y], *_softmax_options(), version=2)
    return g.serialize([x], [y])


def build_tflite_custom_op() -> bytes:
    """input [1,4] float32 → CUSTOM ``EdgeprofTestOp`` → output: no runtime resolves it."""
    g = _TfliteGraph()
    x = g.tensor("input", [1, 4], "float32")
    y = g.tensor("output", [1, 4], "float32")
    g.op(tfl.BuiltinOperator.CUSTOM, [x], [y], custom_code=CUSTOM_OP_NAME)
    return g.serialize([x], [y])


def build_tflite_tiny() -> bytes:
    """input [1,4] float32 + constant [4] → output: microseconds per inference."""
    g = _TfliteGraph()
    x = g.tensor("input", [1, 4], "float32")
    c = g.tensor("bias", [4], "float32", np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))
    y = g.tensor("output", [1, 4], "float32")
    g.op(tfl.BuiltinOperator.ADD, [x, c], [y], tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT())
    return g.serialize([x], [y])


CLASSIFIER_CLASSES = 10
"""Inputs = outputs of the deterministic classifier."""
_CLASSIFIER_SCALE = 1.0 / 127  # int8 input/output scale of the classifier (zero point 0)


def build_tflite_classifier(variant: str = "fp32") -> bytes:
    """A fully connected layer with identity weights: top-1 = argmax of the input.

    ``variant`` "fp32", or "int8" (int8 input and output, scale 1/127, zero point 0:
    quantize x as ``round(x * 127)``).
    """
    n = CLASSIFIER_CLASSES
    g = _TfliteGraph()
    if variant == "fp32":
        x = g.tensor("x", [1, n], "float32")
        wt = g.tensor("fc_w", [n, n], "float32", np.eye(n, dtype=np.float32))
        bt = g.tensor("fc_b", [n], "float32", np.zeros(n, dtype=np.float32))
        y = g.tensor("logits", [1, n], "float32")
        g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [x, wt, bt], [y], *_fc_options())
    elif variant == "int8":
        s = _CLASSIFIER_SCALE
        x = g.tensor("x", [1, n], "int8", quant=_Quant([s], [0]))
        wt = g.tensor("fc_w", [n, n], "int8", (np.eye(n) * 127).astype(np.int8), _Quant([s], [0]))
        bt = g.tensor("fc_b", [n], "int32", np.zeros(n, dtype=np.int32), _Quant([s * s], [0]))
        y = g.tensor("logits", [1, n], "int8", quant=_Quant([s], [0]))
        g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [x, wt, bt], [y], *_fc_options(), version=4)
    else:
        raise ValueError(f"classifier variant must be 'fp32' or 'int8', not {variant!r}")
    return g.serialize([x], [y])


# ---------------------------------------------------------------------------
# ONNX builders
# ---------------------------------------------------------------------------


def _onnx_model(graph: onnx.GraphProto, extra_opsets: Sequence[tuple[str, int]] = ()) -> bytes:
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    opsets += [helper.make_opsetid(domain, version) for domain, version in extra_opsets]
    model = helper.make_model(
        graph, opset_imports=opsets, producer_name="edgeprof.testmodels", producer_version="1"
    )
    model.ir_version = ONNX_IR_VERSION
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
    _check_variant(variant)
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
    return _onnx_model(graph)


def _onnx_qdq_params(
    w: dict[str, Array], names: dict[str, str]
) -> tuple[list[onnx.NodeProto], list[TensorProto], dict[str, str]]:
    """int8 weights / int32 biases behind DequantizeLinear (ONNX Runtime's QDQ format)."""
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    param: dict[str, str] = {}
    input_scales = {"w1": 1.0 / 128, "wd": 0.05, "w2": 0.05, "wf": 0.05}
    for wkey, bkey in (("w1", "b1"), ("wd", "bd"), ("w2", "b2"), ("wf", "bf")):
        q, scales = _quantize_per_channel(w[wkey], 0)
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
    return _onnx_model(graph, [(CUSTOM_DOMAIN, 1)])


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
    return _onnx_model(graph)


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
    return _onnx_model(helper.make_graph(nodes, "edgeprof_dtypes", inputs, outputs))


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
    return _onnx_model(graph)


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
    return _onnx_model(graph)


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
    return _onnx_model(graph)


# ---------------------------------------------------------------------------
# Labelled data and writing to disk
# ---------------------------------------------------------------------------


def make_labelled_dataset(
    path: str | Path,
    *,
    n: int = 50,
    wrong_fraction: float = 0.2,
    seed: int = 0,
    int8: bool = False,
) -> float:
    """Write a labelled ``.npz`` (``x`` of shape (n, 10), ``y`` int64 (n,)) for the
    classifiers and return the exact top-1 accuracy they score on it.

    Row i's largest value (0.9) is at class ``t_i``; every other value lies in
    [-0.9, 0.7], so even int8 quantization keeps the argmax. ``floor(n *
    wrong_fraction)`` labels are deliberately wrong. ``int8`` stores x already
    quantized for the int8 classifier (``round(x * 127)``, int8).
    """
    rng = np.random.default_rng(seed)
    classes = CLASSIFIER_CLASSES
    truth = rng.integers(0, classes, size=n)
    x = rng.uniform(-0.9, 0.7, size=(n, classes)).astype(np.float32)
    x[np.arange(n), truth] = 0.9
    y = truth.astype(np.int64)
    wrong = math.floor(n * wrong_fraction)
    for i in rng.permutation(n)[:wrong]:
        y[i] = (truth[i] + 1 + rng.integers(0, classes - 1)) % classes
    data = np.clip(np.round(x * 127), -128, 127).astype(np.int8) if int8 else x
    with open(path, "wb") as fh:
        np.savez(fh, x=data, y=y)
    return (n - wrong) / n


def _write(out_dir: Path, name: str, data: bytes) -> Path:
    path = out_dir / name
    path.write_bytes(data)
    return path


def write_demo(out_dir: str | Path) -> list[Path]:
    """Write the demo CNN (:data:`DEMO_SPEC`) into ``out_dir``: ``demo_cnn.tflite``
    and ``demo_cnn.onnx`` (fp32) and ``demo_cnn_int8.tflite`` (full-integer)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        _write(out, "demo_cnn.tflite", build_tflite_cnn(DEMO_SPEC)),
        _write(out, "demo_cnn_int8.tflite", build_tflite_cnn(DEMO_SPEC, variant="int8")),
        _write(out, "demo_cnn.onnx", build_onnx_cnn(DEMO_SPEC)),
    ]


def write_all(out_dir: str | Path) -> dict[str, Path]:
    """Write every fixture into ``out_dir``; returns {fixture name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    for variant in VARIANTS:
        files[f"cnn_{variant}.tflite"] = build_tflite_cnn(variant=variant)
        files[f"cnn_{variant}.onnx"] = build_onnx_cnn(variant=variant)
    files.update(
        {
            "cnn_dynamic.onnx": build_onnx_cnn(dynamic_batch=True),
            "cnn_constants.onnx": build_onnx_cnn(constants_as_nodes=True),
            "slow.tflite": build_tflite_cnn(SLOW_SPEC),
            "slow.onnx": build_onnx_cnn(SLOW_SPEC),
            "tiny.tflite": build_tflite_tiny(),
            "tiny.onnx": build_onnx_tiny(),
            "custom_op.tflite": build_tflite_custom_op(),
            "custom_op.onnx": build_onnx_custom_op(),
            "dtypes.onnx": build_onnx_dtypes(),
            "classifier_fp32.tflite": build_tflite_classifier("fp32"),
            "classifier_int8.tflite": build_tflite_classifier("int8"),
            "classifier.onnx": build_onnx_classifier(),
            "if_subgraph.onnx": build_onnx_if_subgraph(),
            "qlinear.onnx": build_onnx_qlinear(),
        }
    )
    paths = {
        Path(name).stem + Path(name).suffix: _write(out, name, data) for name, data in files.items()
    }
    make_labelled_dataset(out / "labelled.npz")
    make_labelled_dataset(out / "labelled_int8.npz", int8=True)
    paths["labelled.npz"] = out / "labelled.npz"
    paths["labelled_int8.npz"] = out / "labelled_int8.npz"
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m profiler.testmodels --out DIR [--all]``."""
    parser = argparse.ArgumentParser(
        prog="python -m profiler.testmodels",
        description="Write edgeprof's generated test models (demo CNN; --all: every fixture).",
    )
    parser.add_argument("--out", required=True, help="directory to write into")
    parser.add_argument("--all", action="store_true", help="write every fixture, not just the demo")
    args = parser.parse_args(argv)
    written = list(write_all(args.out).values()) if args.all else write_demo(args.out)
    for path in written:
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
