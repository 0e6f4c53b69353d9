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
A TFLite tensor stored in the **sparse format** (``sparsity`` parameters: traversal
order, block map, DENSE / SPARSE_CSR dim metadata; fed to DENSIFY) counts at its
dense shape, and every element its buffer does not store is a zero.

**MACs** (multiply-accumulates; ``flops = 2 * macs``) are counted for Conv (grouped and
depthwise too), ConvTranspose, Gemm, MatMul, QLinearConv, QLinearMatMul, ConvInteger
and MatMulInteger (ONNX) and CONV_2D, DEPTHWISE_CONV_2D, CONV_3D, FULLY_CONNECTED,
BATCH_MATMUL and TRANSPOSE_CONV (TFLite; stored tensor shapes). ONNX shapes come from
:func:`profiler.onnx_shapes.infer_concrete_shapes`: ``shapes`` substituted for the
inputs' shapes, onnx's shape inference with data propagation, and the Shape→Gather→
Concat→Reshape arithmetic folded, so MatMuls behind computed reshapes are counted.
ONNX control flow is counted too: an ``If`` by its costlier branch (a note says so),
a ``Loop`` body × its trip count M when M is a constant, a ``Scan`` body × the
sequence length of its scan input; with no static trip count, one iteration, and the
count is not complete. Element-wise ops, pooling and normalization are not counted.
A node whose shapes are unknown is skipped, ``model.macs_complete`` is false and
``model.notes`` says so (asking for ``--shape`` only for dynamic inputs not given),
as it does for custom ops (TFLite CUSTOM, ONNX ops of a non-standard domain),
``com.microsoft`` contrib ops that multiply (FusedConv, QGemm, Attention, …) and
MACs in TFLite subgraphs other than the main one, whose cost edgeprof does not know.
**Where ``macs_complete`` is false, ``macs`` is what was counted — a lower bound**,
never presented as the whole cost (reports mark it, e.g. "≥ 1.2 M"); when that count
is nothing at all, ``macs`` and ``flops`` are null (unknown, the notes say why),
never 0. The result document's ``model`` section carries ``macs_complete`` next to
``macs`` (null when the model was not analysed).

Dynamic dims — named, unknown, or negative (Paddle exports ``dim_value: -1``) — are
read one way everywhere (:class:`profiler.backends.base.TensorSpec`), and ``shapes``
is checked by the same :func:`profiler.inputs.check_shapes` as ``profile`` uses.

numpy, onnx and the TFLite schema are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profiler.backends import ONNX_EXTENSIONS as ONNX_EXTENSIONS
from profiler.backends import TFLITE_EXTENSIONS as TFLITE_EXTENSIONS
from profiler.backends.base import TensorSpec, is_static_dim
from profiler.errors import (
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


def _io_entry(spec: TensorSpec, **extra: Any) -> dict[str, Any]:
    """``{name, dtype, shape, dims}`` of an input/output: a dynamic dim is null in
    ``shape`` and its name (or "?") in ``dims``."""
    return {
        "name": spec.name,
        "dtype": spec.dtype,
        "shape": [d if is_static_dim(d) else None for d in spec.shape],
        "dims": [
            str(d) if is_static_dim(d) else (d if isinstance(d, str) else "?") for d in spec.shape
        ],
        **extra,
    }


def _check_shapes(shapes: dict[str, list[int]], inputs: list[TensorSpec | str]) -> None:
    """``shapes`` against the declared inputs (a name alone: an input of unknown rank):
    the same validation as ``profile`` (:func:`profiler.inputs.check_shapes`)."""
    from profiler.inputs import check_shapes

    specs = [i for i in inputs if isinstance(i, TensorSpec)]
    check_shapes(specs, shapes, any_rank=[i for i in inputs if isinstance(i, str)])


def _macs_figures(macs: int, complete: bool, notes: list[str]) -> dict[str, Any]:
    """``macs``, ``flops`` and ``macs_complete``: a count that is incomplete and found
    nothing is unknown (null, the notes say why), never a 0 that reads as "free"."""
    if not complete and macs == 0:
        if not notes:
            notes.append("MACs unknown")
        return {"macs": None, "flops": None, "macs_complete": False}
    return {"macs": macs, "flops": 2 * macs, "macs_complete": complete}


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


TFLITE_SCHEMA_MISSING = (
    "reading .tflite files needs the TFLite flatbuffer schema, which ships with "
    "ai-edge-litert, the tflite package or tensorflow: pip install ai-edge-litert "
    "(or pip install tflite beside tflite-runtime)"
)


def _tflite_schema() -> Any:
    """The generated TFLite schema classes (Model, BuiltinOperator, TensorType, ...).

    LiteRT ships them as one module; the ``tflite`` package (generated from the same
    schema.fbs, one module per table) is the way to read models where only the
    classic tflite-runtime is installed, which ships no schema; TensorFlow last.
    """
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        pass
    else:
        return schema_py_generated
    try:
        import tflite as schema_package
    except ImportError:
        pass
    else:
        return schema_package
    try:
        from tensorflow.lite.python import schema_py_generated as tf_schema
    except ImportError:
        raise ProfilerError(RUNTIME_MISSING, TFLITE_SCHEMA_MISSING) from None
    return tf_schema


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
        self.sparse_tensors = 0
        """Weight tensors stored in TFLite's sparse format (SparsityParameters)."""

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
        input_specs = [self._spec(main, main.Inputs(i)) for i in range(main.InputsLength())]
        _check_shapes(shapes, list(input_specs))
        inputs = [self._io(main, main.Inputs(i)) for i in range(main.InputsLength())]
        outputs = [self._io(main, main.Outputs(i)) for i in range(main.OutputsLength())]
        if self.sparse_tensors:
            self._note(
                f"{self.sparse_tensors} weight tensor(s) stored sparse (TFLite sparsity, "
                "fed to DENSIFY): counted at their dense shape, the values not stored "
                "as zeros"
            )
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
            **_macs_figures(macs, self.macs_complete, self.notes),
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
            if tensor.Sparsity() is not None:
                weights[b_index] = self._sparse_weight(raw, dtype, elements)
            else:
                weights[b_index] = _Weight(dtype, elements, _count_zeros(raw, dtype, elements))

    def _sparse_weight(self, raw: Any, dtype: str, elements: int) -> _Weight:
        """A tensor in TFLite's sparse format (traversal order, block map, DENSE /
        SPARSE_CSR dim metadata; DENSIFY turns it dense at run time): its shape is the
        dense one, the buffer holds only the stored values (the non-zero ones, or
        whole blocks). Every dense element is a parameter; the ones not stored are
        zeros, and so are stored values that are exactly zero."""
        import numpy as np

        self.sparse_tensors += 1
        try:
            itemsize = np.dtype(dtype).itemsize
        except TypeError:
            return _Weight(dtype, elements, None)
        stored = len(raw) // itemsize
        if stored > elements:
            raise ValueError(f"a sparse tensor stores {stored} values for {elements} elements")
        stored_zeros = _count_zeros(raw, dtype, stored)
        return _Weight(
            dtype, elements, None if stored_zeros is None else elements - stored + stored_zeros
        )

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

    def _spec(self, sg: Any, index: int) -> TensorSpec:
        """The tensor as the runtime declares it: a shape-signature dim of -1 is dynamic."""
        t = sg.Tensors(index)
        shape: list[int] = [t.Shape(i) for i in range(t.ShapeLength())]
        if t.ShapeSignatureLength():
            shape = [t.ShapeSignature(i) for i in range(t.ShapeSignatureLength())]
        return TensorSpec(
            name=(t.Name() or b"").decode("utf-8", "replace"),
            shape=tuple(shape),
            dtype=self.dtype_names.get(t.Type(), f"type{t.Type()}"),
        )

    def _io(self, sg: Any, index: int) -> dict[str, Any]:
        entry = _io_entry(self._spec(sg, index))
        q = sg.Tensors(index).Quantization()
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
    declared = [v for v in graph.input if v.name not in init_names]
    input_specs = [_onnx_spec(v) for v in declared]
    _check_shapes(shapes, input_specs)
    inputs = [_onnx_io(v) for v in declared]
    outputs = [_onnx_io(v) for v in graph.output]

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

    macs, complete = _onnx_macs(model, shapes, input_specs, notes)
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
        complete = False
    opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    producer = f"{model.producer_name} {model.producer_version}".strip()
    model_info = {
        **_macs_figures(macs, complete, notes),
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


def _onnx_spec(value: Any) -> TensorSpec | str:
    """A graph input/output as a TensorSpec (dims read as the runtime reads them: a
    negative ``dim_value`` is dynamic), or its name alone when its rank is unknown."""
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type" or not value.type.tensor_type.HasField("shape"):
        return str(value.name)
    tt = value.type.tensor_type
    shape = [int(d.dim_value) if d.HasField("dim_value") else d.dim_param for d in tt.shape.dim]
    return TensorSpec(name=value.name, shape=tuple(shape), dtype=_onnx_dtype(tt.elem_type))


def _onnx_io(value: Any) -> dict[str, Any]:
    spec = _onnx_spec(value)
    if isinstance(spec, TensorSpec):
        return _io_entry(spec)
    kind = value.type.WhichOneof("value")
    dtype = _onnx_dtype(value.type.tensor_type.elem_type) if kind == "tensor_type" else kind
    return {"name": value.name, "dtype": dtype or "unknown", "shape": None, "dims": []}


_ONNX_LOOP_MAX_TRIPS = 2**31
"""A Loop trip count at least this large is the exporters' "no limit" (INT64_MAX with a
condition), not a count."""


class _OnnxCost:
    """MACs of an ONNX graph and its If/Loop/Scan subgraphs, from inferred shapes.

    ``If``: each branch is counted, the costlier one reported (a note says so).
    ``Loop``: body × M when M is a constant; ``Scan``: body × the sequence length
    from the scan input's shape; otherwise the body once, and the count is not
    complete. Nodes whose shapes are unknown are skipped and named.
    """

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.skipped: list[str] = []
        self.per_iteration: list[str] = []
        """Loop/Scan bodies counted once: their trip count is not static."""
        self.branches: list[str] = []
        """If nodes whose costlier branch was counted."""
        self.repeated: list[str] = []
        """Loop/Scan bodies counted per iteration × a static trip count."""
        self.unsupported: set[str] = set()
        """Other ops whose subgraphs hold MACs (not counted)."""

    def graph(
        self,
        g: Any,
        outer_shapes: Mapping[str, list[int | None]],
        outer_values: Mapping[str, Any],
    ) -> int:
        from collections import ChainMap

        from profiler.onnx_shapes import constant_values, shapes_of

        shapes = ChainMap(shapes_of(g), dict(outer_shapes))
        values = ChainMap(constant_values(g), dict(outer_values))

        def shape(name: str) -> list[int] | None:
            dims = shapes.get(name)
            if dims is None or any(d is None or d <= 0 for d in dims):
                return None
            return [int(d) for d in dims if d is not None]

        total = 0
        for node in g.node:
            if node.domain not in ("", "ai.onnx"):
                continue
            if node.op_type in _ONNX_MAC_OPS:
                macs = _onnx_node_macs(node, shape)
                if macs is None:
                    self.skipped.append(f"{node.op_type} {_node_name(node)}")
                else:
                    total += macs
            elif node.op_type in ("If", "Loop", "Scan"):
                total += self._control(node, shapes, values, shape)
            elif any(_graph_attrs(node)) and _has_mac_ops(node):
                self.unsupported.add(node.op_type)
        return total

    def _control(
        self,
        node: Any,
        shapes: Mapping[str, list[int | None]],
        values: Mapping[str, Any],
        shape: Callable[[str], list[int] | None],
    ) -> int:
        bodies = {attr.name: attr.g for attr in _graph_attrs(node)}
        name = f"{node.op_type} {_node_name(node)}"
        if node.op_type == "If":
            then = self.graph(bodies["then_branch"], shapes, values)
            other = self.graph(bodies["else_branch"], shapes, values)
            self.branches.append(f"{name}: then {then:,}, else {other:,}")
            return max(then, other)
        body = self.graph(bodies["body"], shapes, values)
        trips = self._loop_trips(node, values) if node.op_type == "Loop" else None
        if node.op_type == "Scan":
            trips = self._scan_length(node, shape)
        if trips is None:
            self.per_iteration.append(f"{name} ({body:,} MACs)")
            return body
        self.repeated.append(f"{name}: {body:,} × {trips}")
        return body * trips

    @staticmethod
    def _loop_trips(node: Any, values: Mapping[str, Any]) -> int | None:
        m = node.input[0] if node.input else ""
        value = values.get(m) if m else None
        if value is None or value.size != 1:
            return None
        trips = int(value.reshape(-1)[0])
        return trips if 0 <= trips < _ONNX_LOOP_MAX_TRIPS else None

    def _scan_length(self, node: Any, shape: Callable[[str], list[int] | None]) -> int | None:
        attrs = {a.name: a for a in node.attribute}
        n_scan = int(attrs["num_scan_inputs"].i) if "num_scan_inputs" in attrs else 0
        if n_scan < 1 or len(node.input) < n_scan:
            return None
        first = node.input[len(node.input) - n_scan]
        dims = shape(first) if first else None
        if dims is None:
            return None
        if self.opset < 9:  # Scan-8: [batch, sequence, ...], the body runs for both
            return dims[0] * dims[1] if len(dims) > 1 else None
        axes = list(attrs["scan_input_axes"].ints) if "scan_input_axes" in attrs else [0]
        axis = axes[0] if axes else 0
        axis = axis + len(dims) if axis < 0 else axis
        return dims[axis] if 0 <= axis < len(dims) else None

    def notes(self, dynamic_inputs: list[str]) -> list[str]:
        """What the count means where it is not plainly the sum of every node."""
        notes = []
        shape_hint = (
            "; give --shape for the dynamic input(s) " + ", ".join(dynamic_inputs)
            if dynamic_inputs
            else "; their shapes depend on input values, which static analysis cannot know"
        )
        if self.skipped:
            notes.append(
                f"MACs of {len(self.skipped)} node(s) not counted, shapes unknown: "
                f"{_listed(self.skipped)}{shape_hint}"
            )
        if self.branches:
            notes.append(
                f"MACs of {_plural(len(self.branches), 'If node')} count the costlier branch "
                f"({_listed(self.branches)})"
            )
        if self.repeated:
            loops = any(r.startswith("Loop") for r in self.repeated)
            notes.append(
                "MACs of Loop/Scan bodies are per iteration × the static trip count "
                f"({_listed(self.repeated)})"
                + ("; a Loop whose condition stops it earlier costs less" if loops else "")
            )
        if self.per_iteration:
            scans = any(p.startswith("Scan") for p in self.per_iteration)
            notes.append(
                f"MACs count one iteration of {_listed(self.per_iteration)}: its trip count "
                "is not static" + (shape_hint if scans and dynamic_inputs else "")
            )
        if self.unsupported:
            notes.append(
                f"MACs inside the subgraphs of {', '.join(sorted(self.unsupported))} "
                "are not counted"
            )
        return notes

    @property
    def complete(self) -> bool:
        return not (self.skipped or self.per_iteration or self.unsupported)


def _graph_attrs(node: Any) -> Iterator[Any]:
    import onnx

    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr


def _has_mac_ops(node: Any) -> bool:
    return any(
        n.op_type in _ONNX_MAC_OPS
        for attr in _graph_attrs(node)
        for g, _ in _walk_graphs(attr.g)
        for n in g.node
    )


def _node_name(node: Any) -> str:
    return repr(node.name or (node.output[0] if node.output else node.op_type))


def _listed(items: list[str], limit: int = 3) -> str:
    more = len(items) - limit
    return ", ".join(items[:limit]) + (f" and {more} more" if more > 0 else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("s" if n != 1 else "")


def _onnx_macs(
    model: Any, shapes: dict[str, list[int]], inputs: list[TensorSpec | str], notes: list[str]
) -> tuple[int, bool]:
    """``(MACs, complete)`` of the model's matmul/conv nodes, subgraphs included, from
    shapes inferred with ``shapes`` substituted (see profiler.onnx_shapes). Consumes
    ``model`` (its weights are taken out for shape inference)."""
    from profiler.onnx_shapes import infer_concrete_shapes

    inferred, problem = infer_concrete_shapes(model, shapes)
    if problem is not None:
        notes.append(f"shape inference failed ({problem}); MACs use declared shapes only")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    cost = _OnnxCost(int(opset))
    total = cost.graph(inferred.graph, {}, {})
    dynamic = [
        i.name
        for i in inputs
        if isinstance(i, TensorSpec) and i.is_dynamic and i.name not in shapes
    ]
    dynamic += [i for i in inputs if isinstance(i, str) and i not in shapes]
    notes.extend(cost.notes(dynamic))
    return total, cost.complete


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
