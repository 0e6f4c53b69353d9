"""Run a .tflite or .onnx model on a set of samples, to check a variant against its source.

Deliberately small (``modelkit`` is never on a measuring path and may not import the
profiler's backends): load from bytes, describe the inputs, run one sample at a time,
dequantize quantized outputs. Quantized (int8/uint8) inputs are quantized with the
input's own scale and zero point, as ``profiler.accuracy`` does.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class InputSpec:
    """One model input: name, shape (dynamic dims as -1), NumPy dtype, quantization."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


class ModelRunner:
    """A loaded model: :attr:`inputs` and :meth:`run` on one sample (batch of 1)."""

    def __init__(self, data: bytes, fmt: str, *, threads: int = 1) -> None:
        self.format = fmt
        if fmt == "tflite":
            from ai_edge_litert.interpreter import Interpreter

            with warnings.catch_warnings():
                # The runtime warns about its own defaults on some builds; not ours.
                warnings.simplefilter("ignore")
                self._tfl = Interpreter(model_content=bytes(data), num_threads=threads)
            self._tfl.allocate_tensors()
            self.inputs = [_tflite_spec(d) for d in self._tfl.get_input_details()]
            self._shapes: dict[str, tuple[int, ...]] = {}
        elif fmt == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._ort = ort.InferenceSession(
                bytes(data), options, providers=["CPUExecutionProvider"]
            )
            self.inputs = [_onnx_spec(i) for i in self._ort.get_inputs()]
        else:
            raise ValueError(f"unknown model format {fmt!r}")

    def run(self, sample: Mapping[str, Array]) -> Array:
        """The first output (float32, dequantized) for one sample: {input name: array}."""
        feeds = {spec.name: _to_input(sample[spec.name], spec) for spec in self.inputs}
        if self.format == "onnx":
            return np.asarray(self._ort.run(None, feeds)[0]).astype(np.float32)
        return self._run_tflite(feeds)

    def _run_tflite(self, feeds: Mapping[str, Array]) -> Array:
        details = {d["name"]: d for d in self._tfl.get_input_details()}
        resized = False
        for name, value in feeds.items():
            if (
                self._shapes.get(name) != value.shape
                and tuple(details[name]["shape"]) != value.shape
            ):
                self._tfl.resize_tensor_input(details[name]["index"], list(value.shape))
                resized = True
            self._shapes[name] = value.shape
        if resized:
            self._tfl.allocate_tensors()
        for name, value in feeds.items():
            self._tfl.set_tensor(details[name]["index"], value)
        self._tfl.invoke()
        out = self._tfl.get_output_details()[0]
        values = np.asarray(self._tfl.get_tensor(out["index"])).astype(np.float32)
        scale, zero_point = out.get("quantization", (0.0, 0))
        if out["dtype"] in (np.int8, np.uint8, np.int16) and scale:
            values = (values - zero_point) * scale
        return values


def run_all(runner: ModelRunner, samples: Sequence[Mapping[str, Array]]) -> Array:
    """Outputs of every sample, stacked: shape (n, elements of the first output)."""
    return np.stack([runner.run(s).reshape(-1) for s in samples])


def _tflite_spec(detail: Mapping[str, Any]) -> InputSpec:
    signature = detail.get("shape_signature")
    shape = tuple(int(d) for d in (signature if signature is not None else detail["shape"]))
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = np.dtype(detail["dtype"]).name
    quantized = dtype in ("int8", "uint8", "int16") and bool(scale)
    return InputSpec(
        name=str(detail["name"]),
        shape=shape,
        dtype=dtype,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
    )


_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def _onnx_spec(arg: Any) -> InputSpec:
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return InputSpec(name=str(arg.name), shape=shape, dtype=_ORT_DTYPES.get(arg.type, "float32"))


def _to_input(value: Array, spec: InputSpec) -> Array:
    """``value`` in the dtype the model wants (quantizing floats for a quantized input)."""
    if spec.scale is not None and spec.zero_point is not None and value.dtype.kind == "f":
        info = np.iinfo(spec.dtype)
        q = np.round(value / spec.scale + spec.zero_point)
        return np.ascontiguousarray(np.clip(q, info.min, info.max).astype(spec.dtype))
    return np.ascontiguousarray(value.astype(spec.dtype, copy=False))
