"""`hostctl profile` end to end: real models, real worker processes, real runtimes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

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


def test_a_control_input_is_set_with_input_value(tmp_path: Path) -> None:
    from modelkit.fixtures import SAMPLE_RATE, build_onnx_sample_rate

    model = tmp_path / "vad.onnx"
    model.write_bytes(build_onnx_sample_rate())
    random = _invoke(str(model), *FAST)
    assert random.exit_code == 1
    line = _one_error_line(random.stderr)
    assert "sr (int64 in [0, 9])" in line and "--input-value NAME=V" in line
    given = _invoke(str(model), *FAST, "--input-value", f"sr={SAMPLE_RATE}", "--json")
    assert given.exit_code == 0, given.stderr
    settings = json.loads(given.stdout)["settings"]
    assert settings["input_values"] == {"sr": SAMPLE_RATE}
    assert settings["input_shapes"] == {"audio": [1, 160], "sr": []}
    ranged = _invoke(str(model), *FAST, "--input-range", "sr=16000,16100", "--json")
    assert ranged.exit_code == 0, ranged.stderr
    for bad, words in (
        ("rate=16000", "the model has no input 'rate'; its inputs are audio, sr"),
        ("sr=0.5", "0.5 is not a value of input sr's dtype int64"),
    ):
        refused = _invoke(str(model), *FAST, "--input-value", bad)
        assert refused.exit_code == 1
        assert words in _one_error_line(refused.stderr)


def test_accuracy_with_eval_data(tmp_path: Path) -> None:
    from modelkit.fixtures import build_onnx_classifier, make_labelled_dataset

    model = tmp_path / "clf.onnx"
    model.write_bytes(build_onnx_classifier())
    expected = make_labelled_dataset(tmp_path / "eval.npz", n=40)
    result = _invoke(str(model), *FAST, "--eval", str(tmp_path / "eval.npz"), "--json")
    assert result.exit_code == 0, result.stderr
    accuracy = json.loads(result.stdout)["accuracy"]
    assert (accuracy["top1"], accuracy["n"]) == (pytest.approx(expected), 40)
    assert accuracy["correct"]["n"] == 40  # per-sample correctness travels in the result


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
        (["--input-value", "sr"], "--input-value 'sr': expected NAME=V"),
        (["--input-value", "sr=fast"], "V must be a finite number"),
        (["--input-range", "sr=9,1"], "--input-range 'sr=9,1': LO is above HI"),
        (["--input-range", "sr=1"], "expected NAME=LO,HI"),
        (["--input-value", "sr=1", "--input-range", "sr=1,2"], "keep one"),
        (["--inputs", "x.npz", "--input-value", "sr=1"], "--inputs supplies every input"),
        (["--sustained", "ten minutes"], "--sustained"),
        (["--sustained", "0s"], "--sustained"),
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


def test_a_mistyped_path_is_not_stored(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    runner = CliRunner()
    out = runner.invoke(app, ["--db", str(db), "profile", str(tmp_path / "nope.onnx"), *FAST])
    assert out.exit_code == 1
    listed = runner.invoke(app, ["--db", str(db), "results", "--no-collect", "--json"])
    assert json.loads(listed.stdout) == []


@pytest.mark.parametrize(
    "command", [[], ["profile"], ["push"], ["results"], ["demo"], ["keys", "init"], ["inspect"]]
)
def test_help_shows_flags_without_a_value_placeholder(command: list[str]) -> None:
    out = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert out.exit_code == 0 and "--help" in out.stdout
    assert "<bool>" not in out.stdout


def test_sustained_per_op_and_cool_down_options_reach_the_result() -> None:
    result = _invoke(
        str(demo_model("onnx")), *FAST, "--sustained", "2s", "--per-op", "--cool-down", "--json"
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["settings"]["sustained_s"] == 2.0 and doc["settings"]["cool_down"] is True
    assert len(doc["timeline"]) == 2 and doc["sustained"]["blocks"] == 2
    assert doc["per_op"] and doc["per_op_info"]["runs"] >= 20
    assert set(doc) >= {"energy", "timeline", "per_op"}


def test_people_see_the_timeline_and_the_per_op_note() -> None:
    result = _invoke(str(demo_model("tflite")), *FAST, "--sustained", "1s", "--per-op")
    assert result.exit_code == 0, result.stderr
    assert "sustained 1 s in 1 block ·" in result.stdout
    assert "exposes no per-op timings" in result.stdout
