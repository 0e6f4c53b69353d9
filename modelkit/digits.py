"""The demo's real model: a small CNN for scikit-learn's 8×8 handwritten digits.

Architecture (NHWC, the same weights in both formats)::

    input [1,8,8,1] (pixel / 16, in [0, 1])
      → Conv 3x3 SAME (16) + ReLU → MaxPool 2x2 → Conv 3x3 SAME (32) + ReLU → MaxPool 2x2
      → flatten (NHWC order, 128) → fully connected (10) → softmax → probs [1,10]

The ONNX graph takes the same NHWC input (a Transpose to NCHW first, and back before
the flatten, as tf2onnx emits), so one ``.npz`` of samples serves both files.

:func:`forward` is the NumPy reference (training uses it); :func:`build_tflite` writes
the flatbuffer through ``ai_edge_litert``'s schema and :func:`build_onnx` uses
``onnx.helper``. The trained weights and files live in :mod:`modelkit.demo_digits`,
made by ``python -m modelkit.train_digits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as tfl
from onnx import TensorProto, helper, numpy_helper

from modelkit.cnn import ONNX_IR_VERSION, ONNX_OPSET, Array
from modelkit.tflite_build import _conv_options, _fc_options, _softmax_options, _TfliteGraph

HW = 8
C1 = 16
C2 = 32
CLASSES = 10
FLAT = (HW // 4) * (HW // 4) * C2

WEIGHT_SHAPES: dict[str, tuple[int, ...]] = {
    "w1": (3, 3, 1, C1),  # HWIO
    "b1": (C1,),
    "w2": (3, 3, C1, C2),
    "b2": (C2,),
    "wf": (FLAT, CLASSES),  # [in, out]
    "bf": (CLASSES,),
}


def check_weights(weights: Mapping[str, Array]) -> dict[str, Array]:
    """The weights as float32, ValueError when one is missing or has the wrong shape."""
    out: dict[str, Array] = {}
    for name, shape in WEIGHT_SHAPES.items():
        if name not in weights or tuple(weights[name].shape) != shape:
            got = None if name not in weights else list(weights[name].shape)
            raise ValueError(f"digits weight {name} must have shape {list(shape)}, got {got}")
        out[name] = np.asarray(weights[name], dtype=np.float32)
    return out


# ---------------------------------------------------------------------------
# NumPy reference (forward + the pieces training differentiates)
# ---------------------------------------------------------------------------


def patches(x: Array) -> Array:
    """3x3 SAME patches of NHWC ``x``: (N*H*W, 9*C), ordered (kh, kw, c)."""
    n, h, w, c = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    # cols: (N, H, W, C, 3, 3) → (N, H, W, 3, 3, C)
    return np.ascontiguousarray(cols.transpose(0, 1, 2, 4, 5, 3)).reshape(n * h * w, 9 * c)


def conv(x: Array, w: Array, b: Array) -> Array:
    """3x3 SAME convolution of NHWC ``x`` with HWIO ``w``."""
    n, h, wd, _ = x.shape
    out = patches(x) @ w.reshape(-1, w.shape[-1]) + b
    return np.asarray(out.reshape(n, h, wd, w.shape[-1]))


def maxpool(x: Array) -> Array:
    """2x2 max pooling, stride 2, of NHWC ``x``."""
    n, h, w, c = x.shape
    return np.asarray(x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4)))


def logits(weights: Mapping[str, Array], x: Array) -> Array:
    """Pre-softmax scores (N, 10) of NHWC samples ``x``."""
    h1 = maxpool(np.maximum(conv(x, weights["w1"], weights["b1"]), 0))
    h2 = maxpool(np.maximum(conv(h1, weights["w2"], weights["b2"]), 0))
    return np.asarray(h2.reshape(len(x), -1) @ weights["wf"] + weights["bf"])


def forward(weights: Mapping[str, Array], x: Array) -> Array:
    """Softmax probabilities (N, 10) of NHWC samples ``x`` (float32)."""
    z = logits(weights, x.astype(np.float32))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------


def _pool_options() -> tuple[int, object]:
    p = tfl.Pool2DOptionsT()
    p.padding = tfl.Padding.VALID
    p.strideW = p.strideH = 2
    p.filterWidth = p.filterHeight = 2
    p.fusedActivationFunction = tfl.ActivationFunctionType.NONE
    return tfl.BuiltinOptions.Pool2DOptions, p


def build_tflite(weights: Mapping[str, Array]) -> bytes:
    """The CNN as a .tflite file's bytes (input ``input`` [1,8,8,1], output ``probs``)."""
    w = check_weights(weights)
    g = _TfliteGraph()
    x = g.tensor("input", [1, HW, HW, 1], "float32")
    k1 = g.tensor("conv1/kernel", [C1, 3, 3, 1], "float32", w["w1"].transpose(3, 0, 1, 2).copy())
    b1 = g.tensor("conv1/bias", [C1], "float32", w["b1"])
    h1 = g.tensor("conv1", [1, HW, HW, C1], "float32")
    g.op(tfl.BuiltinOperator.CONV_2D, [x, k1, b1], [h1], *_conv_options())
    p1 = g.tensor("pool1", [1, HW // 2, HW // 2, C1], "float32")
    g.op(tfl.BuiltinOperator.MAX_POOL_2D, [h1], [p1], *_pool_options())
    k2 = g.tensor("conv2/kernel", [C2, 3, 3, C1], "float32", w["w2"].transpose(3, 0, 1, 2).copy())
    b2 = g.tensor("conv2/bias", [C2], "float32", w["b2"])
    h2 = g.tensor("conv2", [1, HW // 2, HW // 2, C2], "float32")
    g.op(tfl.BuiltinOperator.CONV_2D, [p1, k2, b2], [h2], *_conv_options())
    p2 = g.tensor("pool2", [1, HW // 4, HW // 4, C2], "float32")
    g.op(tfl.BuiltinOperator.MAX_POOL_2D, [h2], [p2], *_pool_options())
    shape = g.tensor("flatten/shape", [2], "int32", np.array([1, FLAT], dtype=np.int32))
    flat = g.tensor("flatten", [1, FLAT], "float32")
    reshape = tfl.ReshapeOptionsT()
    reshape.newShape = [1, FLAT]
    g.op(
        tfl.BuiltinOperator.RESHAPE, [p2, shape], [flat], tfl.BuiltinOptions.ReshapeOptions, reshape
    )
    kf = g.tensor("fc/kernel", [CLASSES, FLAT], "float32", w["wf"].T.copy())
    bf = g.tensor("fc/bias", [CLASSES], "float32", w["bf"])
    z = g.tensor("logits", [1, CLASSES], "float32")
    g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [flat, kf, bf], [z], *_fc_options())
    y = g.tensor("probs", [1, CLASSES], "float32")
    g.op(tfl.BuiltinOperator.SOFTMAX, [z], [y], *_softmax_options())
    return g.serialize([x], [y])


def build_onnx(weights: Mapping[str, Array]) -> bytes:
    """The CNN as an .onnx file's bytes (NHWC input ``input`` [1,8,8,1], output ``probs``)."""
    w = check_weights(weights)
    inits = [
        numpy_helper.from_array(w["w1"].transpose(3, 2, 0, 1).copy(), "conv1.weight"),
        numpy_helper.from_array(w["b1"], "conv1.bias"),
        numpy_helper.from_array(w["w2"].transpose(3, 2, 0, 1).copy(), "conv2.weight"),
        numpy_helper.from_array(w["b2"], "conv2.bias"),
        numpy_helper.from_array(w["wf"].T.copy(), "fc.weight"),
        numpy_helper.from_array(w["bf"], "fc.bias"),
    ]
    conv_attrs: dict[str, Any] = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    pool_attrs: dict[str, Any] = {"kernel_shape": [2, 2], "strides": [2, 2]}
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node(
            "Conv", ["nchw", "conv1.weight", "conv1.bias"], ["c1"], name="conv1", **conv_attrs
        ),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", **pool_attrs),
        helper.make_node(
            "Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], name="conv2", **conv_attrs
        ),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", **pool_attrs),
        helper.make_node("Transpose", ["p2"], ["nhwc"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Flatten", ["nhwc"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, HW, HW, 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, CLASSES])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="edgeprof.modelkit",
        producer_version="1",
    )
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
