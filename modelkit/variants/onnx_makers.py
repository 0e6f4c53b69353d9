"""ONNX variants: ``onnxruntime.quantization`` for BLQ (dynamic int8) and FIQ (static
QDQ int8, per channel, calibrated), ``onnxconverter-common`` for F16 (input and output
types kept), and magnitude pruning of the weight initializers (PRN; PRQ = PRN, then
the BLQ quantization)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from modelkit.variants.prune import prune_array, pruning_options
from modelkit.variants.record import Recipe
from modelkit.variants.samples import SampleSet
from modelkit.variants.tflite_makers import PRUNE_TOOL, tool_version

log = logging.getLogger(__name__)

ORT_TOOL = "onnxruntime"
F16_TOOL = "onnxconverter-common"

# Which inputs of each multiplying op are weights (when they are initializers).
_WEIGHT_INPUTS = {"Conv": (1,), "ConvTranspose": (1,), "Gemm": (0, 1), "MatMul": (0, 1)}
_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)

WO8_REASON = (
    "onnxruntime.quantization has no int8 weight-only mode for Conv/Gemm "
    "(its MatMulNBits covers MatMul only); use blq or fiq"
)


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over a sample set."""

    def __init__(self, samples: SampleSet) -> None:
        self._samples = samples.samples
        self._iter: Iterator[dict[str, Any]] = iter(self._samples)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._samples)


def _load(data: bytes) -> onnx.ModelProto:
    return onnx.load_from_string(data)


def to_f16(data: bytes) -> tuple[bytes, Recipe]:
    """fp16 weights and compute, float32 input and output (``keep_io_types``)."""
    from onnxconverter_common import float16

    options = {"keep_io_types": True, "converter": "float16.convert_float_to_float16"}
    model = float16.convert_float_to_float16(_load(data), keep_io_types=True)
    return model.SerializeToString(), Recipe(F16_TOOL, tool_version(F16_TOOL), options)


def _pre_process(model_path: Path, out_path: Path) -> bool:
    """``quant_pre_process`` (ONNX shape inference + graph optimization, as ORT's docs
    recommend before quantizing); False (and the model as it was) when it fails.

    Symbolic shape inference is skipped: it needs sympy and mainly helps transformers.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(model_path), str(out_path), skip_symbolic_shape=True)
    except Exception as exc:  # the tool's own failure: quantize the model as it is
        log.info("quant_pre_process failed (%s); quantizing without it", exc)
        out_path.write_bytes(model_path.read_bytes())
        return False
    return True


def quantize_dynamic(data: bytes) -> tuple[bytes, Recipe]:
    """BLQ: int8 weights, activations quantized at run time (ConvInteger/MatMulInteger)."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_dynamic

    with tempfile.TemporaryDirectory(prefix="edgeprof-variants-") as tmp:
        src, pre, out = Path(tmp, "src.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "out.onnx")
        src.write_bytes(data)
        pre_processed = _pre_process(src, pre)
        ort_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, per_channel=False)
        result = out.read_bytes()
    options = {
        "function": "quantize_dynamic",
        "weight_type": "QInt8",
        "per_channel": False,
        "pre_process": pre_processed,
        "skip_symbolic_shape": True,
    }
    return result, Recipe(ORT_TOOL, tool_version(ORT_TOOL), options)


def quantize_static(data: bytes, calibration: SampleSet) -> tuple[bytes, Recipe]:
    """FIQ: QDQ int8 weights (per channel) and activations, MinMax-calibrated."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_static

    with tempfile.TemporaryDirectory(prefix="edgeprof-variants-") as tmp:
        src, pre, out = Path(tmp, "src.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "out.onnx")
        src.write_bytes(data)
        pre_processed = _pre_process(src, pre)
        ort_static(
            str(pre),
            str(out),
            _Reader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        result = out.read_bytes()
    options = {
        "function": "quantize_static",
        "quant_format": "QDQ",
        "per_channel": True,
        "activation_type": "QInt8",
        "weight_type": "QInt8",
        "calibrate_method": "MinMax",
        "calibration": calibration.origin,
        "calibration_samples": len(calibration),
        "pre_process": pre_processed,
        "skip_symbolic_shape": True,
    }
    recipe = Recipe(ORT_TOOL, tool_version(ORT_TOOL), options, calibration.sha256)
    return result, recipe


def weight_initializers(model: onnx.ModelProto) -> list[str]:
    """Names of the float initializers that are weights of Conv/ConvTranspose/Gemm/MatMul
    in the main graph, each once, in graph order."""
    inits = {init.name: init for init in model.graph.initializer}
    names: list[str] = []
    for node in model.graph.node:
        for slot in _WEIGHT_INPUTS.get(node.op_type, ()):
            if slot < len(node.input) and node.input[slot] in inits:
                name = node.input[slot]
                if inits[name].data_type in _FLOAT_TYPES and name not in names:
                    names.append(name)
    return names


def prune(data: bytes, sparsity: float) -> tuple[bytes, Recipe]:
    """Magnitude-prune the weight initializers to ``sparsity`` (ValueError: none)."""
    model = _load(data)
    targets = weight_initializers(model)
    if not targets:
        raise ValueError(
            "no float initializers feeding Conv/ConvTranspose/Gemm/MatMul to prune "
            "(weights in Constant nodes or already quantized? prune the float source)"
        )
    by_name = {init.name: init for init in model.graph.initializer}
    zeros = elements = 0
    for name in targets:
        init = by_name[name]
        values = numpy_helper.to_array(init)
        pruned, count = prune_array(values, sparsity)
        init.CopyFrom(numpy_helper.from_array(np.asarray(pruned, dtype=values.dtype), name))
        zeros += count
        elements += values.size
    recipe = Recipe(
        PRUNE_TOOL,
        tool_version("edgeprof"),
        pruning_options(sparsity, len(targets), zeros, elements),
    )
    return model.SerializeToString(), recipe
