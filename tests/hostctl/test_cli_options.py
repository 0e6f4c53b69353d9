"""Options that contradict each other or the model are refused with one line, before
anything runs or leaves the host; doubtful ones warn in a sentence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hostctl.cli import app
from modelkit import fixtures
from profiler.models import demo_model

FAST = ["--runs", "5", "--warmup", "1", "--warmup-seconds", "0", "--min-seconds", "0"]
NO_BROKER = ["--broker", "mqtt://127.0.0.1:9"]  # nothing listens: a push that connects fails


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("command", ["profile", "push"])
def test_max_seconds_below_min_seconds_is_one_line(command: str) -> None:
    target = ["--device", "pi"] if command == "push" else []
    out = CliRunner().invoke(
        app,
        [*NO_BROKER, command, str(demo_model("tflite")), *target, "--min-seconds", "10",
         "--max-seconds", "2"],
    )  # fmt: skip
    assert out.exit_code == 1
    (line,) = _lines(out.stderr)
    assert (
        line.startswith("error: ") and "--max-seconds (2)" in line and "--min-seconds (10)" in line
    )


@pytest.mark.parametrize("command", ["profile", "push"])
def test_provider_on_a_tflite_model_is_refused(command: str) -> None:
    target = ["--device", "pi"] if command == "push" else []
    out = CliRunner().invoke(
        app,
        [
            *NO_BROKER,
            command,
            str(demo_model("tflite")),
            *target,
            "--provider",
            "CUDAExecutionProvider",
        ],
    )
    assert out.exit_code == 1
    (line,) = _lines(out.stderr)
    assert "--provider applies to ONNX Runtime" in line and "demo_cnn.tflite" in line


def test_too_many_threads_warn_in_a_sentence() -> None:
    threads = str((os.cpu_count() or 1) + 3)
    out = CliRunner().invoke(
        app, ["profile", str(demo_model("onnx")), *FAST, "--threads", threads, "--no-store"]
    )
    assert out.exit_code == 0, out.stderr
    warning = next(line for line in _lines(out.stderr) if "--threads" in line)
    assert warning.startswith("warning: --threads") and "cores of this machine" in warning


def test_a_push_of_a_model_with_dynamic_dims_and_no_shape_sends_nothing(tmp_path: Path) -> None:
    model = tmp_path / "dynamic.onnx"
    model.write_bytes(fixtures.build_onnx_cnn(dynamic_batch=True))
    out = CliRunner().invoke(app, [*NO_BROKER, "push", str(model), "--device", "pi"])
    assert out.exit_code == 1
    (line,) = _lines(out.stderr)
    # refused on the host: the unreachable broker was never tried
    assert "dynamic" in line and "--shape" in line and "nothing was sent" in line
    assert "broker" not in line


def test_a_warning_reads_as_a_sentence_on_stderr(tmp_path: Path) -> None:
    code = (
        "import logging; from hostctl.logsetup import configure_logging\n"
        "configure_logging(False)\n"
        "logging.getLogger('hostctl.fleet').warning('skipping %s: it is offline', 'pi[9]')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "warning: skipping pi[9]: it is offline"


def test_ctrl_c_during_profile_is_one_line_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hostctl", "--db", str(db), "profile", str(demo_model("onnx")),
         "--runs", "100000", "--min-seconds", "30", "--max-seconds", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(4)  # well into the measurement
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert _lines(err) == ["interrupted (Ctrl-C): nothing was measured or stored"]
    listed = CliRunner().invoke(app, ["--db", str(db), "results", "--no-collect", "--json"])
    assert json.loads(listed.stdout) == []
