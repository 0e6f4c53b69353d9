"""Which runtimes this machine has, whether a job can run on a device, and results
naming what ran. Runs in both environments of scripts/test: LiteRT + ONNX Runtime
under NumPy 2, and tflite-runtime 2.14 + ONNX Runtime under NumPy < 2."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from profiler.runner import profile
from profiler.runtimes import describe_runtimes, job_refusal, probe_runtimes
from profiler.settings import ProfileSettings

QUICK = ProfileSettings(runs=5, warmup=1, warmup_seconds=0, min_seconds=0, max_seconds=5)

HERE = {
    backend: dist
    for backend, module, dist in (
        ("litert", "ai_edge_litert", "ai-edge-litert"),
        ("tflite_runtime", "tflite_runtime", "tflite-runtime"),
        ("onnxruntime", "onnxruntime", "onnxruntime"),
    )
    if importlib.util.find_spec(module) is not None
}
"""Backend name -> distribution of every runtime installed in this environment."""
TFLITE_HERE = [b for b in HERE if b != "onnxruntime"]


def test_the_probe_reports_every_runtime_installed_here_with_its_version() -> None:
    found = probe_runtimes()
    assert set(found) == set(HERE), found
    for backend, dist in HERE.items():
        assert found[backend] == {
            "version": importlib.metadata.version(dist),
            **({"providers": found[backend]["providers"]} if backend == "onnxruntime" else {}),
        }
    assert "CPUExecutionProvider" in found["onnxruntime"]["providers"]


@pytest.mark.parametrize("backend", TFLITE_HERE)
def test_a_result_names_the_runtime_and_version_that_ran(
    model_files: dict[str, Path], backend: str
) -> None:
    settings = ProfileSettings(**{**QUICK.to_dict(), "runtime": backend.replace("_", "-")})
    doc = profile(model_files["cnn_fp32.tflite"], settings)
    assert doc["status"] == "ok", doc["error"]
    assert doc["runtime"]["name"] == backend
    assert doc["runtime"]["version"] == importlib.metadata.version(HERE[backend])
    assert doc["settings"]["runtime"] == backend.replace("_", "-")
    # The analysis reads the file with whichever TFLite schema is installed here
    # (LiteRT's, or the tflite package beside tflite-runtime): same figures.
    assert doc["model"]["params"] == 618
    assert doc["model"]["macs_complete"] is True


# Hides every TFLite schema from the worker (not the runtimes): the measurement
# must stand, and the result say in one line why params/MACs are missing.
_NO_SCHEMA_WORKER = (
    "import runpy, sys\n"
    "for name in ('ai_edge_litert.schema_py_generated', 'tflite', 'tensorflow'):\n"
    "    sys.modules[name] = None\n"
    "runpy.run_module('profiler.worker', run_name='__main__')\n"
)


def test_without_a_tflite_schema_the_result_says_why_analysis_is_missing(
    model_files: dict[str, Path],
) -> None:
    doc = profile(
        model_files["cnn_fp32.tflite"], QUICK, worker_cmd=[sys.executable, "-c", _NO_SCHEMA_WORKER]
    )
    assert doc["status"] == "ok", doc["error"]
    assert doc["latency_ms"]["n"] >= 5 and doc["latency_ms"]["mean"] > 0
    assert doc["model"]["params"] is None and doc["model"]["macs"] is None
    reason = doc["model"]["analysis_error"]
    assert "\n" not in reason
    assert "TFLite flatbuffer schema" in reason and "pip install" in reason


CLASSIC = {"tflite_runtime": {"version": "2.14.0"}, "onnxruntime": {"version": "1.32.0"}}
MODERN: dict[str, Any] = {
    "litert": {"version": "2.3.0"},
    "onnxruntime": {
        "version": "1.32.0",
        "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    },
}


def test_a_device_with_the_runtime_accepts_the_job() -> None:
    assert job_refusal(CLASSIC, "tflite", "tflite-runtime") is None
    assert job_refusal(CLASSIC, "tflite", "auto") is None
    assert job_refusal(MODERN, "tflite", "litert") is None
    assert job_refusal(MODERN, "onnx", "auto", "CUDAExecutionProvider") is None


def test_a_device_without_the_runtime_names_what_it_has() -> None:
    code, reason = job_refusal(MODERN, "tflite", "tflite-runtime") or ("", "")
    assert code == "runtime_missing"
    assert reason == (
        "runtime tflite-runtime is not installed; this device has litert 2.3.0, "
        "onnxruntime 1.32.0 (CUDA, CPU)"
    )
    code, reason = job_refusal(CLASSIC, "tflite", "litert") or ("", "")
    assert code == "runtime_missing"
    assert "litert is not installed" in reason and "tflite-runtime 2.14.0" in reason


def test_a_device_with_no_runtime_for_the_format_says_what_to_install() -> None:
    onnx_only = {"onnxruntime": {"version": "1.32.0"}}
    code, reason = job_refusal(onnx_only, "tflite", "auto") or ("", "")
    assert code == "runtime_missing"
    assert "no runtime for .tflite models" in reason and "install ai-edge-litert" in reason
    code, reason = job_refusal({}, "onnx", "auto") or ("", "")
    assert code == "runtime_missing" and "install onnxruntime" in reason


def test_an_installed_runtime_that_cannot_load_is_refused_with_its_error() -> None:
    broken = {
        "tflite_runtime": {"version": "2.14.0", "error": "tflite-runtime 2.14.0 needs NumPy < 2"}
    }
    code, reason = job_refusal(broken, "tflite", "tflite-runtime") or ("", "")
    assert code == "runtime_missing"
    assert "installed but cannot load: tflite-runtime 2.14.0 needs NumPy < 2" in reason
    code, _ = job_refusal(broken, "tflite", "auto") or ("", "")
    assert code == "runtime_missing"


def test_a_missing_provider_and_a_mismatched_or_unknown_runtime_are_refused() -> None:
    code, reason = job_refusal(
        CLASSIC | MODERN, "onnx", "onnxruntime", "TensorrtExecutionProvider"
    ) or ("", "")
    assert code == "provider_missing" and "TensorrtExecutionProvider" in reason
    code, reason = job_refusal(MODERN, "onnx", "litert") or ("", "")
    assert code == "bad_manifest" and "cannot run .onnx models" in reason
    for hostile in ("tvm", ["litert"], None):
        code, reason = job_refusal(MODERN, "tflite", hostile) or ("", "")
        assert code == "bad_manifest" and "unknown runtime" in reason


def test_an_unknown_runtime_set_refuses_nothing() -> None:
    # The probe failed: the worker tries, and its result says what happened.
    assert job_refusal({"error": "probe timed out"}, "tflite", "tflite-runtime") is None


def test_describe_runtimes_for_people() -> None:
    assert describe_runtimes(CLASSIC) == "tflite-runtime 2.14.0, onnxruntime 1.32.0"
    broken = {"tflite_runtime": {"version": "2.14.0", "error": "x"}, **MODERN}
    assert describe_runtimes(broken) == "litert 2.3.0, onnxruntime 1.32.0 (CUDA, CPU)"
    assert describe_runtimes(broken, unusable=True).startswith(
        "tflite-runtime 2.14.0 (cannot load), "
    )
    assert describe_runtimes({"error": "timed out"}, unusable=True) == "probe failed: timed out"
    assert describe_runtimes({"litert": "2.3", "x": None}) == "no runtime"
