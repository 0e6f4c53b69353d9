"""`hostctl inspect MODEL`: the human view, --json, --shape and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hostctl.cli import app
from modelkit import fixtures
from profiler.analysis import analyze
from profiler.models import demo_model


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inspect") / "dynamic.onnx"
    path.write_bytes(fixtures.build_onnx_cnn(dynamic_batch=True))
    return path


def _inspect(*args: str) -> Any:
    return CliRunner().invoke(app, ["inspect", *args])


def test_human_output_summarizes_the_model() -> None:
    result = _inspect(str(demo_model("tflite")))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    spec = fixtures.DEMO_SPEC  # 64x64x3: 3,978 params, 13.11 M MACs, by hand
    for text in (
        "demo_cnn.tflite",
        "tflite",
        f"{spec.params():,}",
        "13.11 M",
        "float32 100%",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "1x64x64x3",
        "0.0% of weights",
    ):
        assert text in out, text


def test_json_is_exactly_the_analysis() -> None:
    path = demo_model("onnx")
    result = _inspect(str(path), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == analyze(path)  # nothing else on stdout


def test_shape_option_completes_macs(dynamic_onnx: Path) -> None:
    result = _inspect(str(dynamic_onnx), "--shape", "input=2,3,16,16", "--json")
    assert result.exit_code == 0, result.stderr
    model = json.loads(result.stdout)["model"]
    assert model["macs"] == 2 * fixtures.CnnSpec().macs()
    without = _inspect(str(dynamic_onnx))
    assert without.exit_code == 0
    # nothing could be counted: "unknown" and how to fix it, never "0" or "≥ 0"
    assert "MACs           unknown" in without.stdout and "--shape" in without.stdout
    assert "≥ 0" not in without.stdout


def test_inspect_takes_the_shape_profile_takes_on_negative_dims(tmp_path: Path) -> None:
    """Paddle's dim_value -1 is a dynamic dim for inspect as for profile: the same
    --shape is accepted by both, and the MACs behind its Reshape chain are counted."""
    path = tmp_path / "paddle_like.onnx"
    path.write_bytes(fixtures.build_onnx_shape_chain())
    result = _inspect(str(path), "--shape", "x=2,5,16", "--json")
    assert result.exit_code == 0, result.stderr
    model = json.loads(result.stdout)["model"]
    assert model["macs"] == 10 * fixtures.SHAPE_CHAIN_MACS_PER_ROW and model["macs_complete"]
    human = _inspect(str(path), "--shape", "x=2,5,16")
    assert "7,680" in human.stdout and "incomplete" not in human.stdout
    fast = ["--runs", "3", "--warmup", "0", "--warmup-seconds", "0", "--min-seconds", "0"]
    profiled = CliRunner().invoke(
        app, ["profile", str(path), "--shape", "x=2,5,16", *fast, "--json", "--no-store"]
    )
    assert profiled.exit_code == 0, profiled.stderr
    doc = json.loads(profiled.stdout)
    assert doc["settings"]["input_shapes"] == {"x": [2, 5, 16]}
    assert doc["model"]["macs"] == model["macs"]


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_bad_file_is_one_red_line(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00\x01garbage" * 300)
    result = _inspect(str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    line = _one_error_line(result.stderr)
    assert line.startswith("error: weights.bin is neither a .tflite nor an .onnx model")


def test_bad_file_with_json_prints_an_error_document(tmp_path: Path) -> None:
    result = _inspect(str(tmp_path / "missing.onnx"), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["error"]["code"] == "not_found"
    assert "missing.onnx" in doc["error"]["message"]


@pytest.mark.parametrize("shape", ["input", "input=a,b", "image=1,3,16,16"])
def test_bad_shape_option(dynamic_onnx: Path, shape: str) -> None:
    result = _inspect(str(dynamic_onnx), "--shape", shape)
    assert result.exit_code == 1
    assert "--shape" in _one_error_line(result.stderr)
    as_json = _inspect(str(dynamic_onnx), "--shape", shape, "--json")
    assert json.loads(as_json.stdout)["error"]["code"] == "bad_input"


def test_brackets_in_a_model_name_and_its_notes_print_exactly(tmp_path: Path) -> None:
    path = tmp_path / "bad[v2].onnx"
    path.write_bytes(fixtures.build_onnx_cnn(dynamic_batch=True))
    shown = _inspect(str(path))
    assert shown.exit_code == 0 and "bad[v2].onnx" in shown.stdout
    missing = _inspect(str(tmp_path / "gone[v3].onnx"))
    assert "gone[v3].onnx" in _one_error_line(missing.stderr)
