"""The demo's trained digits CNN: the committed files are what the weights build, they
classify the held-out digits in both runtimes, and FIQ keeps their top-1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelkit import demo_digits, digits
from modelkit.variants import make_variants
from tests.support.run_model import outputs

Array = np.ndarray[Any, Any]


def _weights() -> dict[str, Array]:
    with np.load(demo_digits.weights_path()) as data:
        return {k: data[k] for k in data.files}


def _held_out() -> tuple[Array, Array]:
    with np.load(demo_digits.eval_path()) as data:
        return data["x"], data["y"]


def test_the_committed_models_are_what_the_weights_build() -> None:
    weights = _weights()
    assert digits.build_tflite(weights) == demo_digits.model_path("tflite").read_bytes()
    assert digits.build_onnx(weights) == demo_digits.model_path("onnx").read_bytes()


def test_the_data_files_have_the_documented_shapes() -> None:
    x, y = _held_out()
    assert x.shape == (360, 8, 8, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    with np.load(demo_digits.calibration_path()) as data:
        assert data["x"].shape == (128, 8, 8, 1) and data["x"].dtype == np.float32


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_the_trained_cnn_classifies_held_out_digits(fmt: str) -> None:
    x, y = _held_out()
    probs = outputs(demo_digits.model_path(fmt), x)
    top1 = float(np.mean(np.argmax(probs, axis=1) == y))
    assert top1 >= 0.95, top1
    # The runtime computes what the NumPy reference (the training code's forward) does.
    reference = digits.forward(_weights(), x)
    assert np.array_equal(np.argmax(probs, axis=1), np.argmax(reference, axis=1))
    assert np.max(np.abs(probs - reference)) < 1e-4


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_fiq_keeps_top1_within_two_points_of_fp32(fmt: str, tmp_path: Path) -> None:
    x, y = _held_out()
    (fiq,) = make_variants(
        demo_digits.model_path(fmt),
        tmp_path,
        calibration=demo_digits.calibration_path(),
        kinds=["fiq"],
        eval_data=demo_digits.eval_path(),
    )
    assert fiq.made and fiq.path is not None, fiq.reason
    top1_fp32 = float(np.mean(np.argmax(outputs(demo_digits.model_path(fmt), x), axis=1) == y))
    top1_fiq = float(np.mean(np.argmax(outputs(fiq.path, x), axis=1) == y))
    assert abs(top1_fiq - top1_fp32) <= 0.02, (top1_fp32, top1_fiq)
    # The variant's own check saw the same on the held-out set.
    assert fiq.check is not None and fiq.check.n == 360
    assert fiq.check.top1 == pytest.approx(top1_fiq)
    assert fiq.check.top1_source == pytest.approx(top1_fp32)
    assert fiq.flags == []


def test_the_check_catches_a_variant_pruned_too_far(tmp_path: Path) -> None:
    outcomes = make_variants(
        demo_digits.model_path("tflite"),
        tmp_path,
        kinds=["prn"],
        sparsities=[0.5, 0.95],
        eval_data=demo_digits.eval_path(),
    )
    mild, severe = outcomes
    assert mild.check is not None and severe.check is not None
    assert severe.check.agreement is not None and severe.check.agreement < 0.5
    assert "low_agreement" in severe.flags and "low_snr" in severe.flags
    assert severe.recipe_path is not None
    assert "low_agreement" in severe.recipe_path.read_text()
    assert mild.check.agreement is not None and mild.check.agreement > severe.check.agreement
