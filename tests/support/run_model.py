"""Run one sample through a .tflite or .onnx file straight in its runtime (LiteRT /
ONNX Runtime), quantizing an int8 input and dequantizing an int8 output: an
independent path to check what ``modelkit.variants`` wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def run_once(path: Path, x: Array) -> tuple[Array, str, str]:
    """The first output for batch ``x``, and the input and output types the runtime
    reports (NumPy dtype names for TFLite, ``tensor(...)`` for ONNX)."""
    if path.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path))
        it.allocate_tensors()
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        value = x
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        it.set_tensor(inp["index"], value)
        it.invoke()
        y = it.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y - zero) * scale
        return y, np.dtype(inp["dtype"]).name, np.dtype(out["dtype"]).name
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    return np.asarray(y), session.get_inputs()[0].type, session.get_outputs()[0].type


def outputs(path: Path, x: Array) -> Array:
    """The first output of every sample of ``x`` (one at a time), stacked."""
    return np.stack([run_once(path, sample[None])[0][0] for sample in x])
