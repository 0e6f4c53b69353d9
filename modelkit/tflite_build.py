"""TFLite fixtures written through the flatbuffer schema that ``ai_edge_litert``
ships (object API + ``flatbuffers.Builder``, file identifier ``TFL3``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from modelkit.cnn import (
    CLASSIFIER_CLASSES,
    CUSTOM_OP_NAME,
    DEFAULT_PRUNE_FRACTION,
    Array,
    CnnSpec,
    check_variant,
    cnn_weights,
    quantize_per_channel,
)

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
        sparsity: Any = None,
    ) -> int:
        t = tfl.TensorT()
        t.name = name
        t.shape = list(shape)
        if signature is not None:
            t.shapeSignature = list(signature)
        t.type = _TFL_DTYPES[dtype]
        t.sparsity = sparsity
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
        model.description = "edgeprof.modelkit"
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
    check_variant(variant)
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
        q, scales = quantize_per_channel(kernel, axis)
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
# Sparse weights (TFLite's sparse tensor format, densified at run time)
# ---------------------------------------------------------------------------


def _index_vector(values: Sequence[int]) -> Any:
    vec = tfl.Int32VectorT()
    vec.values = [int(v) for v in values]
    return vec


def sparse_encode(dense: Array, block: int = 1) -> tuple[Array, Any]:
    """A 2-D weight matrix in TFLite's sparse format: ``(stored values, SparsityParametersT)``.

    Rows DENSE, columns SPARSE_CSR (segments + indices of the non-zero columns). With
    ``block`` > 1 the columns go in 1×``block`` blocks: traversal order [0, 1, 2], block
    map [1], dim metadata DENSE(rows), SPARSE_CSR(column blocks), DENSE(block); every
    block with a non-zero value is stored whole (its zeros included).
    """
    rows, cols = dense.shape
    if cols % block:
        raise ValueError(f"{cols} columns do not split into blocks of {block}")
    blocks = dense.reshape(rows, cols // block, block)
    segments, indices, values = [0], [], []
    for r in range(rows):
        for c in range(cols // block):
            if np.any(blocks[r, c] != 0):
                indices.append(c)
                values.append(blocks[r, c])
        segments.append(len(indices))
    row_dim = tfl.DimensionMetadataT()
    row_dim.format = tfl.DimensionType.DENSE
    row_dim.denseSize = rows
    col_dim = tfl.DimensionMetadataT()
    col_dim.format = tfl.DimensionType.SPARSE_CSR
    col_dim.arraySegmentsType = tfl.SparseIndexVector.Int32Vector
    col_dim.arraySegments = _index_vector(segments)
    col_dim.arrayIndicesType = tfl.SparseIndexVector.Int32Vector
    col_dim.arrayIndices = _index_vector(indices)
    params = tfl.SparsityParametersT()
    params.dimMetadata = [row_dim, col_dim]
    params.traversalOrder = [0, 1]
    if block > 1:
        block_dim = tfl.DimensionMetadataT()
        block_dim.format = tfl.DimensionType.DENSE
        block_dim.denseSize = block
        params.dimMetadata.append(block_dim)
        params.traversalOrder = [0, 1, 2]
        params.blockMap = [1]
    stored = np.concatenate(values).astype(dense.dtype) if values else dense[:0, 0]
    return np.ascontiguousarray(stored.reshape(-1)), params


def sparse_fc_weights() -> tuple[Array, Array]:
    """The two weight matrices of :func:`build_tflite_sparse`, dense: ``w_block`` [8, 8]
    (6 of its 16 1×4 blocks non-zero, 2 zeros inside them) and ``w_csr`` [4, 8]
    (10 non-zero values)."""
    rng = np.random.default_rng(7)
    w_block = np.zeros((8, 8), dtype=np.float32)
    for r, c in ((0, 0), (1, 1), (2, 0), (4, 1), (5, 0), (7, 1)):
        w_block[r, 4 * c : 4 * c + 4] = rng.uniform(0.1, 1.0, size=4)
    w_block[0, 1] = w_block[4, 6] = 0.0  # stored zeros inside non-zero blocks
    w_csr = np.zeros((4, 8), dtype=np.float32)
    for r, c in ((0, 0), (0, 3), (0, 7), (1, 2), (1, 5), (2, 0), (2, 1), (2, 6), (3, 4), (3, 7)):
        w_csr[r, c] = rng.uniform(0.1, 1.0)
    return w_block, w_csr


SPARSE_PARAMS = 8 * 8 + 8 + 4 * 8 + 4
"""Parameters of :func:`build_tflite_sparse` at their dense shapes (weights + biases)."""
SPARSE_ZEROS = (8 * 8 - 6 * 4 + 2) + (4 * 8 - 10)
"""Its zero weights: blocks not stored, zeros inside stored blocks, CSR values not stored."""
SPARSE_MACS = 8 * 8 + 4 * 8


def build_tflite_sparse() -> bytes:
    """x [1,8] float32 → FULLY_CONNECTED 8 (1×4 block-sparse weights) + ReLU →
    FULLY_CONNECTED 4 (CSR-sparse weights) → y [1,4]; both weight tensors are stored in
    TFLite's sparse format and turned dense by DENSIFY ops, as the converter emits
    for sparse models. Hand-counted: :data:`SPARSE_PARAMS`, :data:`SPARSE_ZEROS`,
    :data:`SPARSE_MACS`."""
    w_block, w_csr = sparse_fc_weights()
    g = _TfliteGraph()
    x = g.tensor("x", [1, 8], "float32")

    def sparse_weight(name: str, dense: Array, block: int) -> int:
        stored, params = sparse_encode(dense, block)
        packed = g.tensor(name + "_sparse", dense.shape, "float32", stored, sparsity=params)
        out = g.tensor(name, dense.shape, "float32")
        g.op(tfl.BuiltinOperator.DENSIFY, [packed], [out])
        return out

    w1 = sparse_weight("fc1_w", w_block, 4)
    b1 = g.tensor("fc1_b", [8], "float32", np.full(8, 0.1, dtype=np.float32))
    h = g.tensor("hidden", [1, 8], "float32")
    kind, relu = _fc_options()
    relu.fusedActivationFunction = tfl.ActivationFunctionType.RELU
    g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [x, w1, b1], [h], kind, relu)
    w2 = sparse_weight("fc2_w", w_csr, 1)
    b2 = g.tensor("fc2_b", [4], "float32", np.full(4, -0.2, dtype=np.float32))
    y = g.tensor("y", [1, 4], "float32")
    g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [h, w2, b2], [y], *_fc_options())
    return g.serialize([x], [y])
