"""--per-op: ONNX Runtime's profiling trace turned into a table, from a real pass on a
real model, kept apart from the timed loop; LiteRT says it has none."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler.per_op import LITERT_NOTE, parse_ort_trace
from profiler.runner import profile
from profiler.settings import ProfileSettings

QUICK = ProfileSettings(runs=20, warmup=2, warmup_seconds=0, min_seconds=0.2, threads=1)


def _node(name: str, op: str, ts: float, dur: float) -> dict[str, object]:
    return {
        "cat": "Node",
        "name": f"{name}_kernel_time",
        "ts": ts,
        "dur": dur,
        "args": {"op_name": op, "provider": "CPUExecutionProvider"},
    }


def test_parse_trace_drops_the_warm_up_run_and_shares_add_up() -> None:
    events: list[dict[str, object]] = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 1000},
        _node("conv1", "Conv", 10, 900),  # warm-up run: left out
        {"cat": "Session", "name": "model_run", "ts": 2000, "dur": 120},
        _node("conv1", "Conv", 2010, 60),
        _node("relu1", "Relu", 2070, 20),
        {"cat": "Node", "name": "conv1_fence_before", "ts": 2005, "dur": 1},  # not a kernel
        {"cat": "Session", "name": "model_run", "ts": 3000, "dur": 100},
        _node("conv1", "Conv", 3010, 60),
        _node("relu1", "Relu", 3070, 20),
    ]
    rows, info = parse_ort_trace(events)
    assert [r["op_type"] for r in rows] == ["Conv", "Relu"]
    assert rows[0]["share"] == pytest.approx(0.75) and rows[1]["share"] == pytest.approx(0.25)
    assert rows[0]["ms_per_run"] == pytest.approx(0.060) and rows[0]["calls_per_run"] == 1
    assert info["runs"] == 2 and info["kernel_ms_per_run"] == pytest.approx(0.080)
    assert info["run_ms_per_run"] == pytest.approx(0.110)
    assert info["top_nodes"][0]["name"] == "conv1"


@pytest.mark.slow
def test_onnx_per_op_pass(model_files: dict[str, Path]) -> None:
    result = profile(
        model_files["cnn_fp32.onnx"],
        ProfileSettings.from_dict({**QUICK.to_dict(), "per_op": True}),
        analyze=False,
    )
    assert result["status"] == "ok", result["error"]
    rows = result["per_op"]
    assert isinstance(rows, list) and rows
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert "Conv" in {r["op_type"] for r in rows}
    assert all(r["providers"] == ["CPUExecutionProvider"] for r in rows)
    info = result["per_op_info"]
    assert isinstance(info, dict)
    assert info["source"] == "onnxruntime enable_profiling" and info["runs"] >= 20
    assert info["top_nodes"] and info["top_nodes"][0]["provider"] == "CPUExecutionProvider"
    # The timed steady state is its own pass, untouched by the profiler's.
    assert result["phases"]["steady"]["runs"] >= 20  # type: ignore[index]
    assert result["latency_ms"]["n"] >= 20  # type: ignore[index]


@pytest.mark.slow
def test_litert_says_it_has_no_per_op_timings(model_files: dict[str, Path]) -> None:
    result = profile(
        model_files["cnn_fp32.tflite"],
        ProfileSettings.from_dict({**QUICK.to_dict(), "per_op": True}),
        analyze=False,
    )
    assert result["status"] == "ok", result["error"]
    assert result["per_op"] is None
    assert result["per_op_info"] == {
        "source": None,
        "runs": 0,
        "top_nodes": [],
        "note": LITERT_NOTE,
    }
    assert "exposes no per-op timings" in LITERT_NOTE


@pytest.mark.slow
def test_without_per_op_there_is_no_pass(model_files: dict[str, Path]) -> None:
    result = profile(model_files["cnn_fp32.onnx"], QUICK, analyze=False)
    assert result["per_op"] is None and result["per_op_info"] is None
    assert "profiling_ops" not in str(result["phases"])
