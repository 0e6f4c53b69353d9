"""Static analysis of a .tflite or .onnx model, without running it.

:func:`analyze` returns the document ``hostctl inspect --json`` prints::

    {"model": {name, format, size_bytes, sha256, params, macs, flops, sparsity,
               weight_dtypes, notes, custom_ops, <format extras>},
     "inputs": [{name, dtype, shape, dims}], "outputs": [...], "ops": {op: count}}

What counts as a **parameter**: every element of a constant tensor the file stores —
ONNX initializers, sparse initializers and ``Constant`` nodes, in the main graph and in
``If``/``Loop``/``Scan`` subgraphs (recursively); TFLite buffers of constant tensors in
every subgraph (a buffer shared by several tensors counts once) — in whatever dtype it
is stored (fp16 and int8 weights, int32 biases of quantized ops all count), *except*:

- int64, bool and string constants (in practice shapes, indices and flags);
- constants used only as a shape, axis, index or quantization parameter: the shape of
  a Reshape, the axes of a reduction, the paddings of a Pad, the scale and zero point
  of a QuantizeLinear/DequantizeLinear/QLinear* op, the output shape of a TFLite
  TRANSPOSE_CONV, … (see ``_ONNX_INDEX_INPUTS`` / ``_TFLITE_INDEX_INPUTS``).

TFLite quantization parameters live in tensor metadata, not in buffers, so they never
count. **Sparsity** is the fraction of parameter elements whose stored value is exactly
zero (for quantized weights: a stored 0, which is the real zero for symmetric int8
weights); elements whose bytes are not in the file (ONNX external data) are left out.

**MACs** (multiply-accumulates; ``flops = 2 * macs``) are counted for Conv (grouped and
depthwise too), ConvTranspose, Gemm, MatMul, QLinearConv, QLinearMatMul, ConvInteger
and MatMulInteger (ONNX; shapes from ``onnx.shape_inference`` after substituting
``shapes`` for the declared input shapes) and CONV_2D, DEPTHWISE_CONV_2D, CONV_3D,
FULLY_CONNECTED, BATCH_MATMUL and TRANSPOSE_CONV (TFLite; stored tensor shapes).
Element-wise ops, pooling and normalization are not counted. A node whose shapes are
unknown is skipped, ``model.macs_complete`` is false and ``model.notes`` says so, as it does for MACs inside ONNX
control-flow subgraphs (not counted: how often a branch or loop body runs is not
known statically) and for custom ops (TFLite CUSTOM, ONNX ops of a non-standard
domain) and ``com.microsoft`` contrib ops that multiply (FusedConv, QGemm, Attention,
…), whose cost edgeprof does not know: the note names them. **Where
``macs_complete`` is false, ``macs`` is what was counted — a lower bound**, never
presented as the whole cost: the result document's ``model`` section carries
``macs_complete`` next to ``macs`` (null when the model was not analysed), and
reports should mark such a figure (e.g. "≥ 1.2 M").

numpy, onnx and the TFLite schema are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profiler.backends import ONNX_EXTENSIONS as ONNX_EXTENSIONS
from profiler.backends import TFLITE_EXTENSIONS as TFLITE_EXTENSIONS
from profiler.errors import (
    BAD_INPUT,
    BAD_MODEL,
    NOT_FOUND,
    RUNTIME_MISSING,
    ProfilerError,
)

log = logging.getLogger(__name__)

# Inputs (by position) that carry a shape, axis, index or quantization parameter
# rather than learned weights; constants used only there are not parameters.
_ONNX_INDEX_INPUTS: dict[str, frozenset[int]] = {
    name: frozenset(positions)
    for names, positions in (
        (
            (
                "Reshape",
                "Expand",
                "Tile",
                "Squeeze",
                "Unsqueeze",
                "TopK",
                "Split",
                "CumSum",
                "Gather",
                "GatherElements",
                "GatherND",
                "ReduceMean",
                "ReduceSum",
                "ReduceMax",
                "ReduceMin",
                "ReduceProd",
                "ReduceL1",
                "ReduceL2",
                "ReduceLogSum",
                "ReduceLogSumExp",
                "ReduceSumSquare",
                "Upsample",
                "ArgMax",
                "ArgMin",
            ),
            (1,),
        ),
        (("Slice",), (1, 2, 3, 4)),
        (("Pad",), (1, 3)),
        (("Resize",), (1, 2, 3)),
        (("ScatterND", "ScatterElements"), (1,)),
        (("ConstantOfShape",), (0,)),
        (("Range",), (0, 1, 2)),
        (("OneHot",), (1, 2)),
        (("Clip",), (1, 2)),
        (("QuantizeLinear", "DequantizeLinear"), (1, 2)),
        (("QLinearConv", "QLinearMatMul"), (1, 2, 4, 5, 6, 7)),
        (("ConvInteger", "MatMulInteger"), (2, 3)),
        (("If",), (0,)),
        (("Loop",), (0, 1)),
    )
    for name in names
}

_TFLITE_INDEX_INPUTS: dict[str, frozenset[int]] = {
    name: frozenset(positions)
    for names, positions in (
        (
            (
                "RESHAPE",
                "MEAN",
                "SUM",
                "REDUCE_MAX",
                "REDUCE_MIN",
                "REDUCE_PROD",
                "REDUCE_ANY",
                "REDUCE_ALL",
                "PAD",
                "PADV2",
                "MIRROR_PAD",
                "TRANSPOSE",
                "GATHER",
                "GATHER_ND",
                "EXPAND_DIMS",
                "RESIZE_BILINEAR",
                "RESIZE_NEAREST_NEIGHBOR",
                "TILE",
                "BROADCAST_TO",
                "ARG_MAX",
                "ARG_MIN",
                "ONE_HOT",
                "CUMSUM",
                "REVERSE_V2",
                "TOPK_V2",
                "SQUEEZE",
            ),
            (1,),
        ),
        (("STRIDED_SLICE",), (1, 2, 3)),
        (("SLICE", "SPLIT_V", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"), (1, 2)),
        (("TRANSPOSE_CONV", "SPLIT", "FILL"), (0,)),
        (("SCATTER_ND",), (0, 2)),
        (("RANGE",), (0, 1, 2)),
    )
    for name in names
}

_NEVER_PARAMS = frozenset({"int64", "bool", "string"})
_ONNX_MAC_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "Gemm",
        "MatMul",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
    }
)
_ONNX_STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


@dataclass
class _Weight:
    """One stored constant: dtype, element count, zero elements (None: not readable)."""

    dtype: str
    elements: int
    zeros: int | None


# ---------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------


def analyze(
    path: str | os.PathLike[str], shapes: dict[str, list[int]] | None = None
) -> dict[str, Any]:
    """Analyze the model at ``path`` without running it (see the module docstring).

    ``shapes`` gives concrete shapes for inputs with dynamic dimensions (by input
    name), used to count MACs. Raises ProfilerError: NOT_FOUND, UNSUPPORTED_FORMAT,
    BAD_MODEL (truncated or corrupt), BAD_INPUT (``shapes`` names no input or has the
    wrong rank), RUNTIME_MISSING (no TFLite schema to read .tflite files).
    """
    p = Path(path)
    data = _read(p)
    fmt = detect_format(p, data)
    header: dict[str, Any] = {
        "name": p.name,
        "format": fmt,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if fmt == "tflite":
        result = _analyze_tflite(p, data, shapes or {})
    else:
        result = _analyze_onnx(p, data, shapes or {})
    result["model"] = {**header, **result["model"]}
    return result


def detect_format(path: str | os.PathLike[str], data: bytes | None = None) -> str:
    """ "tflite" or "onnx", from the magic bytes (TFLite: ``TFL3`` at offset 4; ONNX:
    parses as a ModelProto) checked against the extension.

    Raises ProfilerError NOT_FOUND, UNSUPPORTED_FORMAT or BAD_MODEL with a message
    that names what the file holds and what to do.
    """
    from profiler.backends import format_from_content

    p = Path(path)
    if data is None:
        data = _read(p)
    tflite = len(data) >= 8 and data[4:8] == b"TFL3"
    # The same decision and messages as the runner's profiler.backends.detect_format.
    return format_from_content(p, tflite=tflite, onnx=not tflite and _parse_onnx(data) is not None)


def _read(p: Path) -> bytes:
    if not p.exists():
        raise ProfilerError(NOT_FOUND, f"{p}: no such file; check the model path")
    if not p.is_file():
        raise ProfilerError(
            NOT_FOUND, f"{p} is not a file; give the path of a .tflite or .onnx model"
        )
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ProfilerError(NOT_FOUND, f"{p}: cannot read the model ({exc.strerror})") from None


def _parse_onnx(data: bytes) -> Any:
    """The ModelProto in ``data``, or None when the bytes are not a plausible ONNX model
    (protobuf decodes many random byte strings, so a graph and an IR version are required)."""
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:  # protobuf's DecodeError, or a RuntimeError from its C++/upb backend
        return None
    if model.ir_version < 1 or not model.HasField("graph"):
        return None
    graph = model.graph
    if not (len(graph.node) or len(graph.input) or len(graph.initializer)):
        return None
    return model


def _check_shape_names(shapes: dict[str, list[int]], inputs: list[dict[str, Any]]) -> None:
    by_name = {i["name"]: i for i in inputs}
    for name, dims in shapes.items():
        if name not in by_name:
            raise ProfilerError(
                BAD_INPUT,
                f"--shape {name}=...: the model has no input {name!r}; its inputs are "
                f"{', '.join(by_name) or '(none)'}",
            )
        declared = by_name[name]["shape"]
        if declared is not None and len(declared) != len(dims):
            raise ProfilerError(
                BAD_INPUT,
                f"--shape {name}={','.join(map(str, dims))}: input {name!r} has rank "
                f"{len(declared)} (dims {','.join(by_name[name]['dims'])})",
            )
        if declared is not None:
            for want, got in zip(declared, dims, strict=True):
                if want is not None and want != got:
                    raise ProfilerError(
                        BAD_INPUT,
                        f"--shape {name}={','.join(map(str, dims))} does not match the fixed "
                        f"dims of input {name!r}: {','.join(by_name[name]['dims'])}",
                    )


def _sparsity(weights: Iterable[_Weight]) -> float:
    known = [w for w in weights if w.zeros is not None]
    total = sum(w.elements for w in known)
    zeros = sum(w.zeros or 0 for w in known)
    return zeros / total if total else 0.0


def _summary(weights: list[_Weight]) -> dict[str, Any]:
    dtypes: Counter[str] = Counter()
    for w in weights:
        dtypes[w.dtype] += w.elements
    return {
        "params": sum(w.elements for w in weights),
        "sparsity": _sparsity(weights),
        "weight_dtypes": dict(sorted(dtypes.items())),
    }


def _count_zeros(raw: Any, dtype: str, elements: int) -> int | None:
    """Zero elements in ``raw`` (a uint8 numpy array or bytes of the stored values)."""
    import numpy as np

    buf = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else raw
    if dtype in ("int4", "uint4"):
        nibbles = np.empty(buf.size * 2, dtype=np.uint8)
        nibbles[0::2] = buf & 0x0F
        nibbles[1::2] = buf >> 4
        return int(elements - np.count_nonzero(nibbles[:elements]))
    if dtype in ("bfloat16",):
        bits = buf.view(np.uint16) if buf.size % 2 == 0 else None
        return None if bits is None else int(bits.size - np.count_nonzero(bits & 0x7FFF))
    if dtype.startswith("float8"):
        return int(buf.size - np.count_nonzero(buf & 0x7F))
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        return None
    if buf.size % np_dtype.itemsize:
        return None
    values = buf.view(np_dtype)
    # -0.0 counts as zero (count_nonzero treats it so); NaN does not.
    return int(values.size - np.count_nonzero(values))


# ---------------------------------------------------------------------------
# TFLite
# ---------------------------------------------------------------------------


def _tflite_schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated
        except ImportError:
            raise ProfilerError(
                RUNTIME_MISSING,
                "reading .tflite files needs the TFLite schema: pip install ai-edge-litert",
            ) from None
    return schema_py_generated


def _unknown_cost_note(ops: Iterable[str]) -> str:
    names = sorted(ops)
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"MACs not counted for op(s) of unknown cost: {listed}; macs is a lower bound"


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _analyze_tflite(p: Path, data: bytes, shapes: dict[str, list[int]]) -> dict[str, Any]:
    schema = _tflite_schema()
    try:
        return _TfliteReader(schema, data).read(shapes)
    except ProfilerError:
        raise
    except (IndexError, struct.error, ValueError, TypeError, UnicodeDecodeError):
        log.debug("reading %s failed", p, exc_info=True)
        raise ProfilerError(
            BAD_MODEL,
            f"{p.name} is a truncated or corrupt TFLite model (a table or buffer lies "
            "beyond the end of the data); re-export or re-copy it",
        ) from None


class _TfliteReader:
    """Walks a TFLite flatbuffer in place (numpy views, no copies of weights)."""

    def __init__(self, schema: Any, data: bytes) -> None:
        self.schema = schema
        self.data = data
        self.model = schema.Model.GetRootAs(data, 0)
        self.op_names = _enum_names(schema.BuiltinOperator)
        self.dtype_names = {k: v.lower() for k, v in _enum_names(schema.TensorType).items()}
        self.notes: list[str] = []
        self.macs_complete = True

    def read(self, shapes: dict[str, list[int]]) -> dict[str, Any]:
        m = self.model
        opcodes = [self._opcode_name(m.OperatorCodes(i)) for i in range(m.OperatorCodesLength())]
        custom = sorted({name for name, is_custom in opcodes if is_custom})
        ops: Counter[str] = Counter()
        weights: dict[int, _Weight] = {}
        macs = 0
        for sg_index in range(m.SubgraphsLength()):
            sg = m.Subgraphs(sg_index)
            consumers = self._consumers(sg, opcodes)
            for op_index in range(sg.OperatorsLength()):
                op = sg.Operators(op_index)
                name = opcodes[op.OpcodeIndex()][0]
                ops[name] += 1
                if sg_index == 0:
                    macs += self._op_macs(sg, op, name)
                elif name in _TFLITE_MAC_OPS:
                    self._note(
                        "MACs inside TFLite subgraphs other than the main one are not counted"
                    )
                    self.macs_complete = False
            self._collect_weights(sg, consumers, weights)
        main = m.Subgraphs(0)
        inputs = [self._io(main, main.Inputs(i)) for i in range(main.InputsLength())]
        outputs = [self._io(main, main.Outputs(i)) for i in range(main.OutputsLength())]
        _check_shape_names(shapes, inputs)
        if shapes:
            self._note(
                "--shape does not change TFLite MACs: they use the shapes stored in the model"
            )
        if custom:
            self._note(_unknown_cost_note(custom))
            self.macs_complete = False
        if any(d is None for i in inputs for d in (i["shape"] or [])):
            self._note("MACs assume the stored size (usually 1) for dynamic TFLite dimensions")
        description = m.Description()
        model_info = {
            "macs": macs,
            "flops": 2 * macs,
            "macs_complete": self.macs_complete,
            **_summary(list(weights.values())),
            "schema_version": m.Version(),
            "producer": description.decode("utf-8", "replace") if description else None,
            "subgraphs": m.SubgraphsLength(),
            "custom_ops": custom,
            "notes": self.notes,
        }
        return {
            "model": model_info,
            "inputs": inputs,
            "outputs": outputs,
            "ops": dict(ops.most_common()),
        }

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _opcode_name(self, oc: Any) -> tuple[str, bool]:
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        name = self.op_names.get(code, f"BUILTIN_{code}")
        if name == "CUSTOM":
            custom = oc.CustomCode()
            return (custom.decode("utf-8", "replace") if custom else "CUSTOM"), True
        return name, False

    def _consumers(
        self, sg: Any, opcodes: list[tuple[str, bool]]
    ) -> dict[int, list[tuple[str, int]]]:
        consumers: dict[int, list[tuple[str, int]]] = {}
        for op_index in range(sg.OperatorsLength()):
            op = sg.Operators(op_index)
            name = opcodes[op.OpcodeIndex()][0]
            for pos in range(op.InputsLength()):
                consumers.setdefault(op.Inputs(pos), []).append((name, pos))
        return consumers

    def _collect_weights(
        self, sg: Any, consumers: dict[int, list[tuple[str, int]]], weights: dict[int, _Weight]
    ) -> None:
        m = self.model
        for t_index in range(sg.TensorsLength()):
            tensor = sg.Tensors(t_index)
            b_index = tensor.Buffer()
            if b_index == 0 or b_index in weights or tensor.IsVariable():
                continue
            raw = self._buffer_bytes(m.Buffers(b_index))
            if raw is None:
                continue
            dtype = self.dtype_names.get(tensor.Type(), f"type{tensor.Type()}")
            uses = consumers.get(t_index, [])
            if dtype in _NEVER_PARAMS or (
                uses and all(pos in _TFLITE_INDEX_INPUTS.get(name, ()) for name, pos in uses)
            ):
                continue
            shape = [tensor.Shape(i) for i in range(tensor.ShapeLength())]
            elements = math.prod(shape)
            weights[b_index] = _Weight(dtype, elements, _count_zeros(raw, dtype, elements))

    def _buffer_bytes(self, buf: Any) -> Any:
        """The buffer's bytes as a numpy view, or None for a tensor without data."""
        import numpy as np

        offset, size = buf.Offset(), buf.Size()
        if offset > 1:  # data stored after the flatbuffer (models > 2 GB)
            if offset + size > len(self.data):
                raise ValueError(f"buffer at {offset}+{size} lies beyond the end of the file")
            return np.frombuffer(self.data, dtype=np.uint8, count=size, offset=offset)
        if buf.DataLength() == 0:
            return None
        return buf.DataAsNumpy()

    def _shape(self, sg: Any, index: int) -> list[int] | None:
        if index < 0:
            return None
        t = sg.Tensors(index)
        shape = [t.Shape(i) for i in range(t.ShapeLength())]
        return shape if all(d > 0 for d in shape) else None

    def _op_macs(self, sg: Any, op: Any, name: str) -> int:
        if name not in _TFLITE_MAC_OPS:
            return 0
        ins = [self._shape(sg, op.Inputs(i)) for i in range(op.InputsLength())]
        out = self._shape(sg, op.Outputs(0)) if op.OutputsLength() else None
        try:
            if name == "TRANSPOSE_CONV":  # inputs: output_shape, weights [O,kh,kw,I], input
                w, x = ins[1], ins[2]
                assert w is not None and x is not None
                return math.prod(x) * w[0] * w[1] * w[2]
            assert out is not None
            if name in ("CONV_2D", "FULLY_CONNECTED"):  # weights [O, kh, kw, I] / [O, K]
                assert ins[1] is not None
                return math.prod(out) * math.prod(ins[1][1:])
            if name == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, C*mult]
                assert ins[1] is not None
                return math.prod(out) * ins[1][1] * ins[1][2]
            if name == "CONV_3D":  # weights [kd, kh, kw, I, O]
                assert ins[1] is not None
                return math.prod(out) * math.prod(ins[1][:4])
            # BATCH_MATMUL: K is the last lhs dim, or the one before when adj_x.
            lhs = ins[0]
            assert lhs is not None
            k = lhs[-2] if self._adj_x(op) else lhs[-1]
            return math.prod(out) * k
        except (AssertionError, IndexError):
            self._note(f"MACs of some {name} ops not counted: unknown or dynamic tensor shapes")
            self.macs_complete = False
            return 0

    def _adj_x(self, op: Any) -> bool:
        table = op.BuiltinOptions()
        if table is None:
            return False
        opts = self.schema.BatchMatMulOptions()
        opts.Init(table.Bytes, table.Pos)
        return bool(opts.AdjX())

    def _io(self, sg: Any, index: int) -> dict[str, Any]:
        t = sg.Tensors(index)
        shape: list[int | None] = [t.Shape(i) for i in range(t.ShapeLength())]
        if t.ShapeSignatureLength():
            signature = [t.ShapeSignature(i) for i in range(t.ShapeSignatureLength())]
            shape = [None if s < 0 else d for s, d in zip(signature, shape, strict=False)]
        entry: dict[str, Any] = {
            "name": (t.Name() or b"").decode("utf-8", "replace"),
            "dtype": self.dtype_names.get(t.Type(), f"type{t.Type()}"),
            "shape": shape,
            "dims": ["?" if d is None else str(d) for d in shape],
        }
        q = t.Quantization()
        if q is not None and q.ScaleLength() == 1:
            entry["quantization"] = {
                "scale": float(q.Scale(0)),
                "zero_point": int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0,
            }
        return entry


_TFLITE_MAC_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "CONV_3D",
        "FULLY_CONNECTED",
        "BATCH_MATMUL",
        "TRANSPOSE_CONV",
    }
)


# ---------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------


def _onnx_dtype(elem_type: int) -> str:
    import onnx

    name = str(onnx.TensorProto.DataType.Name(elem_type)).lower()
    return {"float": "float32", "double": "float64", "undefined": "unknown"}.get(name, name)


def _walk_graphs(graph: Any, depth: int = 0) -> Iterator[tuple[Any, int]]:
    """The graph and every If/Loop/Scan subgraph under it, with nesting depth."""
    import onnx

    yield graph, depth
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _walk_graphs(attr.g, depth + 1)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _walk_graphs(sub, depth + 1)


def _tensor_weight(tensor: Any) -> _Weight:
    """dtype, element count and zeros of an ONNX TensorProto (no copy of raw data
    beyond protobuf's own bytes object)."""
    import numpy as np
    import onnx

    dtype = _onnx_dtype(tensor.data_type)
    elements = math.prod(tensor.dims)
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return _Weight(dtype, elements, None)
    if tensor.raw_data:
        return _Weight(dtype, elements, _count_zeros(tensor.raw_data, dtype, elements))
    t = onnx.TensorProto
    if tensor.data_type in (t.FLOAT, t.COMPLEX64):
        values: Any = np.asarray(tensor.float_data, dtype=np.float32)
    elif tensor.data_type in (t.DOUBLE, t.COMPLEX128):
        values = np.asarray(tensor.double_data, dtype=np.float64)
    elif tensor.data_type in (t.FLOAT16, t.BFLOAT16):
        values = np.asarray(tensor.int32_data, dtype=np.int64) & 0x7FFF  # sign bit: -0 is 0
    elif tensor.data_type == t.INT64:
        values = np.asarray(tensor.int64_data, dtype=np.int64)
    elif tensor.data_type in (t.UINT32, t.UINT64):
        values = np.asarray(tensor.uint64_data, dtype=np.uint64)
    elif dtype in ("int4", "uint4") or dtype.startswith("float8"):
        packed = np.asarray(tensor.int32_data, dtype=np.int64).astype(np.uint8)
        return _Weight(dtype, elements, _count_zeros(packed, dtype, elements))
    elif tensor.data_type == t.STRING:
        return _Weight(dtype, elements, None)
    else:
        values = np.asarray(tensor.int32_data, dtype=np.int64)
    return _Weight(dtype, elements, int(values.size - np.count_nonzero(values)))


def _sparse_weight(sparse: Any) -> _Weight:
    values = _tensor_weight(sparse.values)
    elements = math.prod(sparse.dims)
    stored_zeros = values.zeros if values.zeros is not None else 0
    return _Weight(values.dtype, elements, elements - values.elements + stored_zeros)


def _constant_node_weight(node: Any) -> _Weight | None:
    import onnx

    for attr in node.attribute:
        if attr.name == "value":
            return _tensor_weight(attr.t)
        if attr.name == "sparse_value":
            return _sparse_weight(attr.sparse_tensor)
        if attr.name == "value_float":
            return _Weight("float32", 1, int(attr.f == 0))
        if attr.name == "value_floats":
            return _Weight("float32", len(attr.floats), sum(1 for f in attr.floats if f == 0))
        if attr.name in ("value_int", "value_ints"):
            count = 1 if attr.type == onnx.AttributeProto.INT else len(attr.ints)
            return _Weight("int64", count, None)
        if attr.name in ("value_string", "value_strings"):
            return _Weight(
                "string", 1 if attr.type == onnx.AttributeProto.STRING else len(attr.strings), None
            )
    return None


def _analyze_onnx(p: Path, data: bytes, shapes: dict[str, list[int]]) -> dict[str, Any]:
    model = _parse_onnx(data)
    if model is None:  # detect_format let it through, so this is a bug-proof guard
        raise ProfilerError(BAD_MODEL, f"{p.name} could not be parsed as an ONNX model")
    notes: list[str] = []
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    inputs = [_onnx_io(v) for v in graph.input if v.name not in init_names]
    outputs = [_onnx_io(v) for v in graph.output]
    _check_shape_names(shapes, inputs)

    consumers: dict[str, list[tuple[str, int]]] = {}
    ops: Counter[str] = Counter()
    custom: set[str] = set()
    for g, _depth in _walk_graphs(graph):
        for node in g.node:
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"
            ops[op] += 1
            if node.domain not in _ONNX_STANDARD_DOMAINS:
                custom.add(op)
            for pos, name in enumerate(node.input):
                if name:
                    consumers.setdefault(name, []).append((node.op_type, pos))

    weights: list[_Weight] = []
    for g, _depth in _walk_graphs(graph):
        candidates: list[tuple[str, _Weight | None]] = [
            (t.name, _tensor_weight(t)) for t in g.initializer
        ]
        candidates += [(s.values.name, _sparse_weight(s)) for s in g.sparse_initializer]
        candidates += [
            (n.output[0], _constant_node_weight(n))
            for n in g.node
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output
        ]
        for name, weight in candidates:
            if weight is None or weight.dtype in _NEVER_PARAMS:
                continue
            uses = consumers.get(name, [])
            if uses and all(pos in _ONNX_INDEX_INPUTS.get(op, ()) for op, pos in uses):
                continue
            weights.append(weight)
    if any(w.zeros is None for w in weights):
        notes.append("sparsity leaves out weights stored as external data")

    notes_before = len(notes)
    macs = _onnx_macs(model, shapes, notes)
    # Ops edgeprof has no cost formula for: a custom domain, or a com.microsoft
    # contrib op that multiplies (FusedConv, QGemm, Attention, ...).
    uncounted = sorted(
        custom
        | {
            op
            for op in ops
            if op.startswith("com.microsoft:")
            and any(word in op for word in ("Conv", "MatMul", "Gemm", "Attention"))
        }
    )
    if uncounted:
        notes.append(_unknown_cost_note(uncounted))
    macs_complete = len(notes) == notes_before
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    producer = f"{model.producer_name} {model.producer_version}".strip()
    model_info = {
        "macs": macs,
        "flops": 2 * macs,
        "macs_complete": macs_complete,
        **_summary(weights),
        "opset": opsets.get("ai.onnx"),
        "opsets": opsets,
        "ir_version": model.ir_version,
        "producer": producer or None,
        "custom_ops": sorted(custom),
        "notes": notes,
    }
    return {
        "model": model_info,
        "inputs": inputs,
        "outputs": outputs,
        "ops": dict(ops.most_common()),
    }


def _onnx_io(value: Any) -> dict[str, Any]:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return {"name": value.name, "dtype": kind or "unknown", "shape": None, "dims": []}
    tt = value.type.tensor_type
    entry: dict[str, Any] = {"name": value.name, "dtype": _onnx_dtype(tt.elem_type)}
    if not tt.HasField("shape"):
        entry.update(shape=None, dims=[])
        return entry
    shape: list[int | None] = []
    dims: list[str] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
            dims.append(str(d.dim_value))
        else:
            shape.append(None)
            dims.append(d.dim_param or "?")
    entry.update(shape=shape, dims=dims)
    return entry


def _onnx_macs(model: Any, shapes: dict[str, list[int]], notes: list[str]) -> int:
    """MACs of the main graph's matmul/conv nodes, from inferred shapes."""
    import onnx

    graph = model.graph
    for value in graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for d, size in zip(dims, shapes[value.name], strict=True):
                d.Clear()
                d.dim_value = size
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        log.debug("shape inference failed: %s", exc)
        notes.append(f"shape inference failed ({str(exc)[:100]}); MACs use declared shapes only")
        inferred = model
    known: dict[str, list[int | None]] = {}
    g = inferred.graph
    for value in [*g.input, *g.value_info, *g.output]:
        io = _onnx_io(value)
        if io["shape"] is not None:
            known[value.name] = io["shape"]
    for t in g.initializer:
        known[t.name] = list(t.dims)
    for node in g.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    known[node.output[0]] = list(attr.t.dims)

    def shape(name: str) -> list[int] | None:
        dims = known.get(name)
        if dims is None or any(d is None or d <= 0 for d in dims):
            return None
        return [int(d) for d in dims if d is not None]

    total, skipped = 0, []
    for node in g.node:
        if node.op_type not in _ONNX_MAC_OPS or node.domain not in ("", "ai.onnx"):
            continue
        macs = _onnx_node_macs(node, shape)
        if macs is None:
            skipped.append(f"{node.op_type} {node.name or node.output[0]!r}")
        else:
            total += macs
    if skipped:
        hint = ", ".join(skipped[:3]) + (
            f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        )
        notes.append(
            f"MACs of {len(skipped)} node(s) not counted, shapes unknown: {hint}; "
            "give --shape NAME=D1,D2,... for dynamic inputs"
        )
    if any(
        n.op_type in _ONNX_MAC_OPS for sub, depth in _walk_graphs(graph) if depth for n in sub.node
    ):
        notes.append("MACs inside If/Loop/Scan subgraphs are not counted")
    return total


def _onnx_node_macs(node: Any, shape: Callable[[str], list[int] | None]) -> int | None:
    """MACs of one node, or None when a needed shape is unknown."""
    op = node.op_type
    ins = list(node.input)
    y = shape(node.output[0]) if node.output else None
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        w = shape(ins[3] if op == "QLinearConv" else ins[1])
        return None if y is None or w is None else math.prod(y) * math.prod(w[1:])
    if op == "ConvTranspose":  # W [C, M/group, k...]: every input pixel scatters to M/g*k
        x, w = shape(ins[0]), shape(ins[1])
        return None if x is None or w is None else math.prod(x) * math.prod(w[1:])
    a = shape(ins[0])
    if y is None or a is None:
        return None
    if op == "Gemm":
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        k = a[0] if trans_a else a[-1]
        return math.prod(y) * k
    # MatMul, MatMulInteger, QLinearMatMul: K is A's last dimension.
    return math.prod(y) * a[-1]
