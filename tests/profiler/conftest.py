"""Fixtures: the generated test models, written once per session into a tmp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler import testmodels


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every fixture of :func:`profiler.testmodels.write_all`, by file name
    (e.g. ``cnn_int8.tflite``, ``dtypes.onnx``, ``labelled.npz``)."""
    return testmodels.write_all(tmp_path_factory.mktemp("testmodels"))


@pytest.fixture(scope="session")
def tflite_cnn(model_files: dict[str, Path]) -> Path:
    """The fp32 CNN as .tflite."""
    return model_files["cnn_fp32.tflite"]


@pytest.fixture(scope="session")
def onnx_cnn(model_files: dict[str, Path]) -> Path:
    """The fp32 CNN as .onnx."""
    return model_files["cnn_fp32.onnx"]
