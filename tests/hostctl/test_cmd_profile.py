"""`hostctl profile` end to end: real models, real worker processes, real runtimes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from hostctl import render
from hostctl.cli import app
from profiler.models import demo_model

# Tiny settings: behaviour, not speed, is under test here.
FAST = ["--runs", "5", "--warmup", "1", "--warmup-seconds", "0", "--min-seconds", "0"]

DESIGN_KEYS = {
    "schema",
    "status",
    "job_id",
    "label",
    "created_at",
    "device",
    "model",
    "runtime",
    "settings",
    "latency_ms",
    "init_ms",
    "first_inference_ms",
    "memory_mb",
    "accuracy",
    "env",
    "flags",
    "error",
}


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["profile", *args])


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_json_output_is_exactly_the_result_document() -> None:
    result = _invoke(str(demo_model("onnx")), *FAST, "--label", "ci-run", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)  # nothing else on stdout
    assert set(doc) >= DESIGN_KEYS
    assert doc["schema"] == "edgeprof.result/1"
    assert doc["status"] == "ok" and doc["error"] is None
    assert doc["label"] == "ci-run"
    assert doc["model"]["name"] == "demo_cnn.onnx" and doc["model"]["format"] == "onnx"
    assert doc["runtime"]["name"] == "onnxruntime"
    assert doc["settings"]["runs"] == 5
    latency = doc["latency_ms"]
    assert latency["n"] >= 5
    assert 0 < latency["min"] <= latency["mean"] <= latency["max"]
    assert latency["p50"] is None  # 5 samples cannot locate the median at 95%
    assert "few_runs" in doc["flags"]
    assert doc["memory_mb"]["peak_rss"] > 0
    assert {
        "temp_c_start",
        "temp_c_end",
        "throttled",
        "cpu_freq_mhz",
        "governor",
        "load_avg",
    } <= set(doc["env"])


def test_people_get_a_detail_view(tmp_path: Path) -> None:
    result = _invoke(str(demo_model("tflite")), *FAST, "--runs", "30", "--threads", "1")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "demo_cnn.tflite (tflite)" in out
    assert "Latency (steady state)" in out and "Memory (MiB)" in out and "Environment" in out
    assert "1 thr" in out
    p99_line = next(line for line in out.splitlines() if line.strip().startswith("│ p99"))
    assert "—" in p99_line  # withheld below 299 samples
    p50_line = next(line for line in out.splitlines() if line.strip().startswith("│ p50"))
    assert "[" in p50_line  # 30 samples: p50 with its CI


def test_dynamic_shape_needs_shape_option(tmp_path: Path) -> None:
    from modelkit.fixtures import build_onnx_cnn

    model = tmp_path / "dyn.onnx"
    model.write_bytes(build_onnx_cnn(dynamic_batch=True))
    missing = _invoke(str(model), *FAST)
    assert missing.exit_code == 1
    assert "--shape" in _one_error_line(missing.stderr)
    given = _invoke(str(model), *FAST, "--shape", "input=2,3,16,16", "--json")
    assert given.exit_code == 0, given.stderr
    assert json.loads(given.stdout)["settings"]["shapes"] == {"input": [2, 3, 16, 16]}


def test_accuracy_with_eval_data(tmp_path: Path) -> None:
    from modelkit.fixtures import build_onnx_classifier, make_labelled_dataset

    model = tmp_path / "clf.onnx"
    model.write_bytes(build_onnx_classifier())
    expected = make_labelled_dataset(tmp_path / "eval.npz", n=40)
    result = _invoke(str(model), *FAST, "--eval", str(tmp_path / "eval.npz"), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] == {"top1": pytest.approx(expected), "n": 40}


def test_missing_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path / "nope.tflite"), *FAST)
    assert result.exit_code == 1
    assert "nope.tflite" in _one_error_line(result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["garbage.onnx", "garbage.tflite"])
def test_garbage_model_is_one_line_and_exit_1(tmp_path: Path, name: str) -> None:
    model = tmp_path / name
    model.write_bytes(b"this is not a model at all" * 10)
    result = _invoke(str(model), *FAST)
    assert result.exit_code == 1
    assert name in _one_error_line(result.stderr)
    assert result.stdout == ""


def test_error_with_json_prints_the_error_document(tmp_path: Path) -> None:
    model = tmp_path / "garbage.onnx"
    model.write_bytes(b"\x00\x01garbage")
    result = _invoke(str(model), *FAST, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "error"
    assert doc["error"]["code"] == "bad_model" and doc["error"]["message"]
    assert set(doc) >= DESIGN_KEYS


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--shape", "input=1,x,3"], "--shape"),
        (["--shape", "justaname"], "--shape"),
        (["--max-seconds", "0"], "--max-seconds"),
        (["--timeout", "-1"], "--timeout"),
    ],
)
def test_invalid_options_are_one_line(args: list[str], mentions: str) -> None:
    result = _invoke(str(demo_model("onnx")), *FAST, *args)
    assert result.exit_code == 1
    assert mentions in _one_error_line(result.stderr)


def test_out_of_range_option_is_a_usage_error() -> None:
    result = _invoke(str(demo_model("onnx")), "--runs", "0")
    assert result.exit_code == 2
    assert "--runs" in result.stderr


def test_importing_the_cli_loads_no_runtime_or_numpy() -> None:
    code = (
        "import sys, hostctl.cli, hostctl.cmd_profile, hostctl.render, profiler.stats; "
        "heavy = [m for m in ('numpy', 'onnxruntime', 'onnx', 'ai_edge_litert', 'tensorflow') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------ rendering


def _render(renderable: Any) -> str:
    console = Console(record=True, width=200, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    text = console.export_text()
    console.file.close()
    return text


def test_format_ms_keeps_three_significant_digits() -> None:
    assert render.format_ms(0.0123456) == "0.0123"
    assert render.format_ms(0.5) == "0.500"
    assert render.format_ms(1.23456) == "1.23"
    assert render.format_ms(12.3456) == "12.3"
    assert render.format_ms(1234.5) == "1234"
    assert render.format_ms(None) == "—"
    assert render.format_ci([1.2345, 1.3456]) == "[1.23–1.35]"
    assert render.format_ci(None) == ""


def test_table_renders_ok_error_and_null_results() -> None:
    ok: dict[str, Any] = {
        "status": "ok",
        "device": {"id": "pi-1"},
        "model": {"name": "m.tflite", "format": "tflite"},
        "runtime": {
            "name": "litert",
            "version": "2.3.0",
            "delegate_or_provider": "xnnpack",
            "threads": 4,
        },
        "latency_ms": {
            "p50": 12.345,
            "ci95_p50": [12.0, 12.6],
            "p90": 13.0,
            "ci95_p90": None,
            "p99": None,
        },
        "memory_mb": {"peak_rss": 56.56},
        "accuracy": {"top1": 0.9123, "n": 100},
        "flags": ["unstable", "throttled"],
    }
    error: dict[str, Any] = {
        "status": "error",
        "device": {"id": "pi-2"},
        "model": None,
        "runtime": None,
        "latency_ms": None,
        "memory_mb": None,
        "accuracy": None,
        "flags": [],
        "error": {"code": "custom_op", "message": "op Foo is not supported " * 10},
    }
    text = _render(render.results_table([ok, error, {}], title="results"))
    assert "12.3 ms" in text and "[12.0–12.6]" in text
    assert "56.6" in text and "91.2%" in text
    assert "litert 2.3.0" in text and "xnnpack 4 thr" in text
    assert "unstable, throttled" in text
    assert "custom_op: op Foo" in text and "…" in text
    assert "pi-2" in text


def test_table_fits_an_80_column_terminal_and_hides_empty_accuracy() -> None:
    from rich.console import Console

    result: dict[str, Any] = {
        "status": "ok",
        "device": {"id": "raspberrypi-5"},
        "model": {"name": "mobilenet_v2_int8.tflite", "format": "tflite"},
        "runtime": {
            "name": "onnxruntime",
            "version": "1.32.0",
            "delegate_or_provider": "CPUExecutionProvider",
            "threads": 4,
        },
        "latency_ms": {
            "p50": 0.00634,
            "ci95_p50": [0.00633, 0.00636],
            "p90": 12.5,
            "ci95_p90": [12.4, 12.7],
        },
        "memory_mb": {"peak_rss": 48.7},
        "accuracy": None,
        "flags": ["unstable"],
    }
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render.results_table([result]))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "6.34 µs" in text and "[6.33–6.36]" in text and "12.5 ms" in text
    assert "CPU 4 thr" in text
    assert "top-1" not in text and "ok" in text


def test_detail_renders_an_error_result() -> None:
    doc = {
        "status": "error",
        "model": {"name": "bad.onnx", "format": "onnx"},
        "error": {"code": "bad_model", "message": "bad.onnx is not a valid ONNX model"},
        "env": {"temp_c_start": None, "temp_c_end": None, "throttled": None},
    }
    text = _render(render.result_detail(doc))
    assert "bad_model: bad.onnx is not a valid ONNX model" in text
    assert "Environment" in text


def test_latencies_read_in_the_unit_that_fits() -> None:
    assert render.format_latency(0.00639) == "6.39 µs"
    assert render.format_latency(1.2345) == "1.23 ms"
    assert render.format_latency(12_000.0) == "12.0 s"
    assert render.format_latency(None) == "—"
    assert render.format_latency_ci(0.00639, [0.00638, 0.00641]).plain == "6.39 µs [6.38–6.41]"


def test_local_profiles_are_stored_and_listed_by_results(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    runner = CliRunner()
    out = runner.invoke(
        app,
        ["--db", str(db), "profile", str(demo_model("tflite")), *FAST, "--label", "mine", "--json"],
    )
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["job_id"].startswith("local-")
    listed = runner.invoke(app, ["--db", str(db), "results", "--no-collect", "--json"])
    assert listed.exit_code == 0, listed.stderr
    assert [r["job_id"] for r in json.loads(listed.stdout)] == [doc["job_id"]]
    skipped = runner.invoke(
        app, ["--db", str(db), "profile", str(demo_model("tflite")), *FAST, "--no-store", "--json"]
    )
    assert skipped.exit_code == 0
    again = runner.invoke(app, ["--db", str(db), "results", "--no-collect", "--json"])
    assert len(json.loads(again.stdout)) == 1


def test_table_with_accuracy_still_fits_80_columns_and_keeps_flags_readable() -> None:
    from rich.console import Console

    result: dict[str, Any] = {
        "status": "ok",
        "device": {"id": "raspberrypi-5"},
        "model": {"name": "classifier_int8.tflite", "size_bytes": 816},
        "runtime": {
            "name": "litert",
            "version": "2.3.0",
            "delegate_or_provider": "xnnpack",
            "threads": 1,
        },
        "latency_ms": {"p50": 0.00634, "ci95_p50": [0.00633, 0.00636], "p90": 0.0125},
        "memory_mb": {"peak_rss": 48.7},
        "accuracy": {"top1": 0.8, "n": 50},
        "flags": ["unstable", "drift"],
    }
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render.results_table([result]))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "80.0%" in text and "unstable" in text and "p90 12.5 µs" in text and "816 B" in text


def test_a_mistyped_path_is_not_stored(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    runner = CliRunner()
    out = runner.invoke(app, ["--db", str(db), "profile", str(tmp_path / "nope.onnx"), *FAST])
    assert out.exit_code == 1
    listed = runner.invoke(app, ["--db", str(db), "results", "--no-collect", "--json"])
    assert json.loads(listed.stdout) == []
