"""The demo's real model and data: a small CNN trained on scikit-learn's 8×8 digits.

Made by ``python -m modelkit.train_digits --out modelkit/demo_digits`` (seed 0,
40 epochs of Adam in NumPy; the architecture is :mod:`modelkit.digits`):

- ``digits_cnn.tflite``, ``digits_cnn.onnx``: the same trained weights in both formats,
  NHWC input ``input`` [1,8,8,1] (pixel / 16), output ``probs`` [1,10];
- ``digits_cnn.weights.npz``: those weights (``modelkit.digits`` rebuilds both files);
- ``digits_eval.npz``: the 360 held-out images, ``x`` (360,8,8,1) float32 and ``y``;
  top-1 0.986 (355 / 360) in LiteRT and ONNX Runtime alike;
- ``digits_calibration.npz``: ``x`` of 128 training images, for FIQ calibration.

This module uses the standard library only: the paths resolve without numpy.
"""

from __future__ import annotations

import importlib.resources
import pathlib

MODEL_FILES = {"tflite": "digits_cnn.tflite", "onnx": "digits_cnn.onnx"}
WEIGHTS_FILE = "digits_cnn.weights.npz"
EVAL_FILE = "digits_eval.npz"
CALIBRATION_FILE = "digits_calibration.npz"


def _path(name: str) -> pathlib.Path:
    path = pathlib.Path(str(importlib.resources.files(__name__).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(
            f"{name} is missing from {path.parent}; reinstall edgeprof or run "
            "`python -m modelkit.train_digits --out` on that directory"
        )
    return path


def model_path(fmt: str = "tflite") -> pathlib.Path:
    """The trained CNN in ``fmt`` ("tflite" or "onnx")."""
    if fmt not in MODEL_FILES:
        raise ValueError(f"no digits model in {fmt!r}: choose tflite or onnx")
    return _path(MODEL_FILES[fmt])


def eval_path() -> pathlib.Path:
    """The held-out labelled set (``x``, ``y``)."""
    return _path(EVAL_FILE)


def calibration_path() -> pathlib.Path:
    """The calibration inputs (``x``)."""
    return _path(CALIBRATION_FILE)


def weights_path() -> pathlib.Path:
    """The trained weights (``modelkit.digits.WEIGHT_SHAPES``)."""
    return _path(WEIGHTS_FILE)
