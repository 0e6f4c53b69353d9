"""Backends on real runtimes (LiteRT or tflite-runtime, ONNX Runtime) with generated
models, in-process.

The TFLite tests run on every TFLite runtime installed here: LiteRT in the main
environment, tflite-runtime 2.14 under NumPy < 2 in the second one scripts/test builds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from modelkit.cnn import CUSTOM_OP_NAME
from profiler.backends import create_backend, detect_format
from profiler.backends.base import default_threads
from profiler.backends.tflite import tflite_runtime_numpy_problem
from profiler.errors import (
    BAD_INPUT,
    BAD_MODEL,
    CUSTOM_OP,
    NOT_FOUND,
    RUNTIME_MISSING,
    UNSUPPORTED_FORMAT,
    ProfilerError,
)
from profiler.settings import ProfileSettings

TFLITE_MODULES = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime"}
TFLITE_HERE = [r for r, module in TFLITE_MODULES.items() if importlib.util.find_spec(module)]
"""The TFLite runtimes (``--runtime`` names) installed in this environment."""
TFLITE_ABSENT = [r for r in TFLITE_MODULES if r not in TFLITE_HERE]
DISTRIBUTION = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime"}


def test_this_environment_has_a_tflite_runtime() -> None:
    assert TFLITE_HERE, "neither ai-edge-litert nor tflite-runtime is installed"


@pytest.fixture(scope="module")
def models(model_files: dict[str, Path]) -> dict[str, Path]:
    names = ("tiny.tflite", "tiny.onnx", "custom_op.tflite", "custom_op.onnx")
    return {name: model_files[name] for name in names}


def _run_once(path: Path, settings: ProfileSettings) -> tuple[list[np.ndarray], dict[str, object]]:
    backend = create_backend(detect_format(path), settings)
    backend.load(str(path))
    specs = backend.input_specs()
    assert [s.name for s in specs] == ["input"]
    backend.prepare({"input": [1, 4]})
    backend.bind({"input": np.ones((1, 4), dtype=np.float32)})
    backend.invoke()
    return backend.outputs(), backend.runtime_info()


@pytest.mark.parametrize("runtime", TFLITE_HERE)
def test_tflite_runs_with_xnnpack(models: dict[str, Path], runtime: str) -> None:
    outputs, info = _run_once(models["tiny.tflite"], ProfileSettings(runtime=runtime))
    np.testing.assert_allclose(outputs[0], [[2.0, 3.0, 4.0, 5.0]])
    assert info == {
        "name": runtime.replace("-", "_"),
        "version": importlib.metadata.version(DISTRIBUTION[runtime]),
        "delegate_or_provider": "xnnpack",
        "threads": default_threads(),
    }


def test_auto_picks_the_maintained_tflite_runtime_first(models: dict[str, Path]) -> None:
    _, info = _run_once(models["tiny.tflite"], ProfileSettings())
    assert info["name"] == TFLITE_HERE[0].replace("-", "_")


@pytest.mark.parametrize("runtime", TFLITE_HERE)
def test_tflite_without_xnnpack_and_with_threads(models: dict[str, Path], runtime: str) -> None:
    settings = ProfileSettings(runtime=runtime, xnnpack=False, threads=2)
    outputs, info = _run_once(models["tiny.tflite"], settings)
    np.testing.assert_allclose(outputs[0], [[2.0, 3.0, 4.0, 5.0]])
    assert info["delegate_or_provider"] == "none"
    assert info["threads"] == 2


def test_onnx_runs_on_cpu_provider(models: dict[str, Path]) -> None:
    outputs, info = _run_once(models["tiny.onnx"], ProfileSettings())
    np.testing.assert_allclose(outputs[0], [[2.0, 3.0, 4.0, 5.0]])
    assert info["name"] == "onnxruntime"
    assert info["version"] == importlib.metadata.version("onnxruntime")
    assert info["delegate_or_provider"] == "CPUExecutionProvider"
    assert info["threads"] == default_threads()
    _, info = _run_once(models["tiny.onnx"], ProfileSettings(threads=1))
    assert info["threads"] == 1


def test_unknown_provider_lists_available_ones() -> None:
    with pytest.raises(ProfilerError) as err:
        create_backend("onnx", ProfileSettings(provider="NoSuchExecutionProvider"))
    assert err.value.code == BAD_INPUT
    assert "NoSuchExecutionProvider" in err.value.message
    assert "CPUExecutionProvider" in err.value.message


@pytest.mark.parametrize(
    ("fmt", "runtime"),
    [("tflite", "onnxruntime"), ("onnx", "litert"), ("onnx", "tensorflow"), ("tflite", "tvm")],
)
def test_runtime_that_cannot_run_the_format_is_refused(fmt: str, runtime: str) -> None:
    with pytest.raises(ProfilerError) as err:
        create_backend(fmt, ProfileSettings(runtime=runtime))
    assert err.value.code == BAD_INPUT
    assert runtime in err.value.message


@pytest.mark.parametrize("name", ["custom_op.tflite", "custom_op.onnx"])
def test_custom_op_error_names_the_op(models: dict[str, Path], name: str) -> None:
    path = models[name]
    with pytest.raises(ProfilerError) as err:
        backend = create_backend(detect_format(path), ProfileSettings())
        backend.load(str(path))
        backend.prepare({})
    assert err.value.code == CUSTOM_OP
    assert CUSTOM_OP_NAME in err.value.message


@pytest.mark.parametrize("runtime", TFLITE_ABSENT)
def test_a_missing_tflite_runtime_says_what_to_install(runtime: str) -> None:
    with pytest.raises(ProfilerError) as err:
        create_backend("tflite", ProfileSettings(runtime=runtime))
    assert err.value.code == RUNTIME_MISSING
    assert f"pip install {DISTRIBUTION[runtime]}" in err.value.message


def test_tflite_runtime_214_under_numpy2_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    # Unit test of the version rule alone: pretend tflite-runtime 2.14 is installed.
    import profiler.backends.tflite as tflite

    monkeypatch.setattr(
        tflite, "package_version", lambda *names: "2.14.0" if "tflite-runtime" in names else None
    )
    monkeypatch.setattr(tflite, "_numpy_major", lambda: 2)
    problem = tflite_runtime_numpy_problem()
    assert problem is not None
    assert "tflite-runtime 2.14.0 needs NumPy < 2" in problem
    assert "ai-edge-litert" in problem and "numpy<2" in problem
    with pytest.raises(ProfilerError) as err:
        create_backend("tflite", ProfileSettings(runtime="tflite-runtime"))
    assert err.value.code == RUNTIME_MISSING
    assert "numpy<2" in err.value.message


def test_detect_format(tmp_path: Path, models: dict[str, Path]) -> None:
    assert detect_format(models["tiny.tflite"]) == "tflite"
    assert detect_format(models["tiny.onnx"]) == "onnx"
    # the content decides, whatever the extension
    (tmp_path / "model.bin").write_bytes(models["tiny.tflite"].read_bytes())
    assert detect_format(tmp_path / "model.bin") == "tflite"
    (tmp_path / "model.txt").write_bytes(models["tiny.onnx"].read_bytes())
    assert detect_format(tmp_path / "model.txt") == "onnx"
    cases: list[tuple[str, bytes, str, str]] = [
        ("notes.txt", b"hello", UNSUPPORTED_FORMAT, "neither a .tflite nor an .onnx"),
        ("fake.tflite", b"\x00" * 64, BAD_MODEL, "TFL3"),
        ("swapped.onnx", models["tiny.tflite"].read_bytes(), UNSUPPORTED_FORMAT, "swapped.tflite"),
        ("swapped.tflite", models["tiny.onnx"].read_bytes(), UNSUPPORTED_FORMAT, "swapped.onnx"),
        ("cut.onnx", models["tiny.onnx"].read_bytes()[:-7], BAD_MODEL, "parsed as an ONNX"),
        ("empty.onnx", b"", BAD_MODEL, "empty"),
    ]
    for name, data, code, words in cases:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ProfilerError) as err:
            detect_format(tmp_path / name)
        assert err.value.code == code, name
        assert words in err.value.message, name
    with pytest.raises(ProfilerError) as err:
        detect_format(tmp_path / "absent.onnx")
    assert err.value.code == NOT_FOUND
    with pytest.raises(ProfilerError) as err:
        detect_format(tmp_path)
    assert err.value.code == NOT_FOUND


def test_both_runtimes_default_to_the_same_thread_count(models: dict[str, Path]) -> None:
    _, tflite = _run_once(models["tiny.tflite"], ProfileSettings())
    _, onnx = _run_once(models["tiny.onnx"], ProfileSettings())
    assert tflite["threads"] == onnx["threads"] == default_threads()
