"""TFLite variants: ai-edge-quantizer for F16, BLQ, WO8 and FIQ (no TensorFlow), and
magnitude pruning of the weight buffers written through the flatbuffer schema that
``ai_edge_litert`` ships (PRN; PRQ = PRN, then the BLQ recipe)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from modelkit.tflite_build import _AlignedBufferT
from modelkit.variants.prune import prune_array, pruning_options
from modelkit.variants.record import Recipe
from modelkit.variants.runtime import Array
from modelkit.variants.samples import SampleSet

log = logging.getLogger(__name__)

TOOL = "ai-edge-quantizer"
PRUNE_TOOL = "edgeprof.modelkit"
SIGNATURE_KEY = "serving_default"
CALIBRATION_THREADS = 2

# Which input of each multiplying op is its weight tensor.
_WEIGHT_INPUT = {
    tfl.BuiltinOperator.CONV_2D: 1,
    tfl.BuiltinOperator.DEPTHWISE_CONV_2D: 1,
    tfl.BuiltinOperator.CONV_3D: 1,
    tfl.BuiltinOperator.FULLY_CONNECTED: 1,
    tfl.BuiltinOperator.TRANSPOSE_CONV: 1,
    tfl.BuiltinOperator.BATCH_MATMUL: 1,
}
_FLOAT_TYPES = {tfl.TensorType.FLOAT32: np.float32, tfl.TensorType.FLOAT16: np.float16}

# ai-edge-quantizer recipes, by kind. F16 is its float-casting algorithm: fp16
# weights, explicitly dequantized to float32 before each op (as TF's converter does).
_F16_RECIPE: list[dict[str, Any]] = [
    {
        "regex": ".*",
        "operation": "*",
        "algorithm_key": "float_casting",
        "op_config": {
            "weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
            "compute_precision": "FLOAT",
            "explicit_dequantize": True,
        },
    }
]
RECIPE_NAMES = {
    "f16": "float_casting fp16 weights",
    "blq": "dynamic_wi8_afp32",
    "wo8": "weight_only_wi8_afp32",
    "fiq": "static_wi8_ai8",
    "prq": "dynamic_wi8_afp32",
}


def tool_version(tool: str = TOOL) -> str:
    """Installed version of a distribution ("unknown" when its metadata is missing)."""
    try:
        return importlib.metadata.version(tool)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _recipe(kind: str) -> Any:
    from ai_edge_quantizer import recipe

    if kind == "f16":
        return _F16_RECIPE
    if kind in ("blq", "prq"):
        return recipe.dynamic_wi8_afp32()
    if kind == "wo8":
        return recipe.weight_only_wi8_afp32()
    if kind == "fiq":
        return recipe.static_wi8_ai8()
    raise ValueError(f"no ai-edge-quantizer recipe for {kind!r}")


def quantize(data: bytes, kind: str, calibration: SampleSet | None = None) -> tuple[bytes, Recipe]:
    """``kind`` ("f16", "blq", "wo8", "fiq" or "prq"'s quantization) of a float model.

    FIQ needs ``calibration``; the model gets a ``serving_default`` signature first
    when it has none, since the quantizer calibrates through signatures.
    """
    from ai_edge_quantizer import quantizer

    options: dict[str, Any] = {"recipe": RECIPE_NAMES[kind], "granularity": "channelwise"}
    if kind == "f16":
        options["granularity"] = "tensor"
    if kind != "fiq":
        qt = quantizer.Quantizer(bytearray(data), _recipe(kind))
        result = qt.quantize(enable_progress_report=False, enable_progress_bar=False)
        return _output(result), Recipe(tool=TOOL, version=tool_version(), options=options)
    if calibration is None:
        raise ValueError("FIQ needs calibration samples")
    signed, signature = with_signature(data)
    options.update(calibration=calibration.origin, calibration_samples=len(calibration), io="int8")
    if signature.added:
        options["added_signature"] = signature.key
    qt = quantizer.Quantizer(bytearray(signed), _recipe(kind))
    feeds = [
        {signature.inputs[tensor]: value for tensor, value in sample.items()}
        for sample in calibration.samples
    ]
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        # Calibration keeps every intermediate tensor on purpose, and the runtime warns
        # about it; its progress bar (tqdm, on stderr) has no switch. Neither is ours
        # to show: errors still propagate as exceptions.
        warnings.simplefilter("ignore")
        ranges = qt.calibrate({signature.key: feeds}, num_threads=CALIBRATION_THREADS)
        result = qt.quantize(ranges, enable_progress_report=False, enable_progress_bar=False)
    recipe = Recipe(
        tool=TOOL,
        version=tool_version(),
        options=options,
        calibration_sha256=calibration.sha256,
    )
    return _output(result), recipe


def _output(result: Any) -> bytes:
    if result.quantized_model is None:
        raise ValueError("ai-edge-quantizer returned no model")
    return bytes(result.quantized_model)


def _name(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_model(data: bytes) -> Any:
    """The model as the schema's object API (``ModelT``); ValueError when it keeps
    buffers outside the flatbuffer (> 2 GB models), which this writer cannot repack."""
    model = tfl.ModelT.InitFromPackedBuf(bytearray(data), 0)
    if any(getattr(b, "offset", 0) for b in model.buffers or []):
        raise ValueError("the model stores its weights outside the flatbuffer (> 2 GB layout)")
    return model


def write_model(model: Any) -> bytes:
    """Serialize a ``ModelT`` with every buffer 16-byte aligned, as the converter does."""
    buffers = []
    for buf in model.buffers or []:
        aligned = _AlignedBufferT()
        aligned.data = buf.data
        buffers.append(aligned)
    model.buffers = buffers
    builder = flatbuffers.Builder(
        max(1024, sum(len(b.data) for b in buffers if b.data is not None))
    )
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@dataclass(frozen=True)
class Signature:
    """The signature a calibration runs through."""

    key: str
    inputs: dict[str, str]
    """{input tensor name: the signature's name for it}."""
    added: bool
    """True when this module added it (the model had none)."""


def with_signature(data: bytes) -> tuple[bytes, Signature]:
    """The model (with a signature) and its first signature.

    A model without signatures (hand-built ones) gets ``serving_default`` over its
    main subgraph's inputs and outputs.
    """
    model = read_model(data)
    subgraph = model.subgraphs[0]
    if model.signatureDefs:
        sig = model.signatureDefs[0]
        sg = model.subgraphs[sig.subgraphIndex]
        names = {_name(sg.tensors[m.tensorIndex].name): _name(m.name) for m in sig.inputs or []}
        return data, Signature(key=_name(sig.signatureKey), inputs=names, added=False)

    def tensor_map(index: int) -> Any:
        entry = tfl.TensorMapT()
        entry.name = _name(subgraph.tensors[index].name)
        entry.tensorIndex = index
        return entry

    sig = tfl.SignatureDefT()
    sig.signatureKey = SIGNATURE_KEY
    sig.subgraphIndex = 0
    sig.inputs = [tensor_map(i) for i in subgraph.inputs]
    sig.outputs = [tensor_map(i) for i in subgraph.outputs]
    model.signatureDefs = [sig]
    names = {
        _name(subgraph.tensors[i].name): _name(subgraph.tensors[i].name) for i in subgraph.inputs
    }
    return write_model(model), Signature(key=SIGNATURE_KEY, inputs=names, added=True)


def weight_buffers(model: Any) -> list[tuple[int, Any]]:
    """``(buffer index, numpy dtype)`` of every float weight of a multiplying op,
    following a DEQUANTIZE from an fp16 buffer; each buffer once."""
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    found: dict[int, Any] = {}
    for subgraph in model.subgraphs:
        producers = {out: op for op in subgraph.operators or [] for out in op.outputs}
        for op in subgraph.operators or []:
            slot = _WEIGHT_INPUT.get(codes[op.opcodeIndex])
            if slot is None or slot >= len(op.inputs) or op.inputs[slot] < 0:
                continue
            index = op.inputs[slot]
            producer = producers.get(index)
            if (
                producer is not None
                and codes[producer.opcodeIndex] == tfl.BuiltinOperator.DEQUANTIZE
            ):
                index = producer.inputs[0]
            tensor = subgraph.tensors[index]
            buf = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
            dtype = _FLOAT_TYPES.get(tensor.type)
            if dtype is None or buf is None or buf.data is None or not len(buf.data):
                continue
            found.setdefault(tensor.buffer, dtype)
    return sorted(found.items())


def prune(data: bytes, sparsity: float) -> tuple[bytes, Recipe]:
    """Magnitude-prune every float weight buffer of ``data`` to ``sparsity``.

    ValueError when the model has no float weights of a multiplying op (an int8
    model: prune its float source instead).
    """
    model = read_model(data)
    targets = weight_buffers(model)
    if not targets:
        raise ValueError(
            "no float32/float16 weights of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, … to "
            "prune (is the model already quantized? prune its float source)"
        )
    zeros = elements = 0
    for index, dtype in targets:
        buf = model.buffers[index]
        values: Array = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype=dtype)
        pruned, count = prune_array(values, sparsity)
        buf.data = np.frombuffer(pruned.tobytes(), dtype=np.uint8)
        zeros += count
        elements += values.size
    recipe = Recipe(
        tool=PRUNE_TOOL,
        version=tool_version("edgeprof"),
        options=pruning_options(sparsity, len(targets), zeros, elements),
    )
    return write_model(model), recipe


def supported_kinds() -> Sequence[str]:
    """Kinds this module makes for a .tflite source."""
    return ("f16", "blq", "wo8", "fiq", "prn", "prq")
