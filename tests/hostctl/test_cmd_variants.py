"""`hostctl variants MODEL --out DIR`: the table, --json, the loud random-calibration
warning, one-line errors, and a real run in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hostctl.cli import app
from modelkit import demo_digits


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["variants", *args], env={"COLUMNS": "160"})


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("INFO:")]
    assert len(lines) == 1, text
    return lines[0]


def test_table_lists_made_variants_and_why_others_were_not(tmp_path: Path) -> None:
    model = demo_digits.model_path("onnx")
    result = _invoke(
        str(model),
        "--out",
        str(tmp_path),
        "--calibration",
        str(demo_digits.calibration_path()),
        "--eval",
        str(demo_digits.eval_path()),
        "--only",
        "fp32,fiq,wo8,prn",
        "--sparsity",
        "0.5",
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("fp32", "fiq", "prn50", "wo8", "not made", "digits_cnn.fiq.onnx", "identical"):
        assert text in out, text
    assert "top-1" in out and "98.6%" in out  # the held-out top-1 of fp32 and FIQ
    assert "not made: wo8: onnxruntime.quantization has no int8 weight-only mode" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"digits_cnn.{n}{ext}"
        for n in ("fp32", "fiq", "prn50")
        for ext in (".onnx", ".recipe.json")
    )


def test_json_prints_only_the_outcomes(tmp_path: Path) -> None:
    result = _invoke(
        str(demo_digits.model_path("tflite")),
        "--out",
        str(tmp_path),
        "--only",
        "blq,fiq,prq",
        "--sparsity",
        "0.5,0.75",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [d["name"] for d in doc] == ["blq", "fiq", "prq50", "prq75"]
    blq, fiq, prq50, _ = doc
    assert fiq["made"] is False and "--calibration" in fiq["reason"]
    assert blq["variant"]["kind"] == "blq"
    assert blq["variant"]["recipe"]["tool"] == "ai-edge-quantizer"
    assert Path(blq["recipe_file"]).is_file()
    assert prq50["target_sparsity"] == 0.5
    assert json.loads(Path(prq50["recipe_file"]).read_text())["variant"] == prq50["variant"]


def test_random_calibration_is_flagged_loudly(tmp_path: Path) -> None:
    result = _invoke(
        str(demo_digits.model_path("tflite")),
        "--out",
        str(tmp_path),
        "--only",
        "fiq",
        "--calibration",
        "random",
    )
    assert result.exit_code == 0, result.stderr
    assert "fiq was calibrated on RANDOM data" in result.stderr
    assert "flagged" in result.stdout


def test_bad_input_is_one_red_line_and_exit_1(tmp_path: Path) -> None:
    model = str(demo_digits.model_path("tflite"))
    cases = [
        ([model, "--out", str(tmp_path), "--only", "fiq,int4"], "unknown variant kind int4"),
        ([model, "--out", str(tmp_path), "--sparsity", "0,5"], "--sparsity"),
        ([str(tmp_path / "none.onnx"), "--out", str(tmp_path)], "no such model file"),
        (
            [model, "--out", str(tmp_path), "--calibration", str(tmp_path / "x.npz")],
            "no such file",
        ),
    ]
    for args, mentions in cases:
        result = _invoke(*args)
        assert result.exit_code == 1, args
        line = _one_line(result.stderr)
        assert line.startswith("error:") and mentions in line, line
        assert result.stdout == ""


def test_nothing_compressed_made_exits_1(tmp_path: Path, model_files: dict[str, Path]) -> None:
    result = _invoke(str(model_files["cnn_int8.tflite"]), "--out", str(tmp_path), "--only", "blq")
    assert result.exit_code == 1
    assert "no float weights" in result.stderr


def test_a_real_run_in_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "160"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hostctl",
            "variants",
            str(demo_digits.model_path("onnx")),
            "--out",
            str(tmp_path),
            "--calibration",
            str(demo_digits.calibration_path()),
            "--only",
            "f16,blq,fiq",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [(d["name"], d["made"]) for d in doc] == [("f16", True), ("blq", True), ("fiq", True)]
    assert all(d["check"]["agreement"] >= 0.95 for d in doc)
    assert all((tmp_path / d["file"]).is_file() for d in doc)


def test_importing_the_command_loads_no_modelkit_or_numpy() -> None:
    code = (
        "import sys, hostctl.cli, hostctl.cmd_variants; "
        "heavy = [m for m in ('numpy', 'modelkit', 'onnx', 'ai_edge_litert', 'ai_edge_quantizer') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
