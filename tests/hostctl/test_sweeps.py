"""Sweeps: --threads 1,2,4 and several --shape values, one result per setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hostctl.cli import app
from hostctl.options import build_sweep, parse_threads_list, shape_sweep
from profiler.models import demo_model

FAST = ["--runs", "5", "--warmup", "1", "--warmup-seconds", "0", "--min-seconds", "0"]


def test_threads_lists_parse_or_fail_in_one_line() -> None:
    assert parse_threads_list(None) == [None]
    assert parse_threads_list("4") == [4]
    assert parse_threads_list("1, 2,4,2") == [1, 2, 4]
    for bad in ("1,x", "0", "-1", "1,,2", ""):
        with pytest.raises(ValueError, match="--threads"):
            parse_threads_list(bad)


def test_shapes_of_one_input_are_alternatives_of_several_inputs_go_together() -> None:
    assert shape_sweep(None) == [[]]
    assert shape_sweep(["x=1,3", "y=2"]) == [["x=1,3", "y=2"]]
    assert shape_sweep(["x=1,3", "x=4,3", "y=2"]) == [["x=1,3", "y=2"], ["x=4,3", "y=2"]]


def test_a_sweep_is_the_cross_product_of_threads_and_shapes() -> None:
    sweep = build_sweep(threads="1,2", shapes=["x=1,3", "x=8,3"], runs=5)
    assert [(s.threads, s.shapes["x"][0], s.runs) for s in sweep] == [
        (1, 1, 5),
        (1, 8, 5),
        (2, 1, 5),
        (2, 8, 5),
    ]


def test_a_local_threads_sweep_gives_one_stored_result_per_setting(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    runner = CliRunner()
    out = runner.invoke(
        app,
        ["--db", str(db), "profile", str(demo_model("onnx")), *FAST, "--threads", "1,2", "--json"],
    )
    assert out.exit_code == 0, out.stderr
    docs = json.loads(out.stdout)
    assert [d["runtime"]["threads"] for d in docs] == [1, 2]
    label = docs[0]["label"]
    assert label.startswith("sweep-") and {d["label"] for d in docs} == {label}
    listed = runner.invoke(
        app, ["--db", str(db), "results", "--no-collect", "--label", label, "--json"]
    )
    assert len(json.loads(listed.stdout)) == 2
    table = runner.invoke(
        app, ["--db", str(db), "profile", str(demo_model("onnx")), *FAST, "--threads", "1,2"],
        env={"COLUMNS": "100"},
    )  # fmt: skip
    assert table.exit_code == 0 and "1 thr" in table.stdout and "2 thr" in table.stdout


def test_several_shapes_of_one_input_give_one_result_per_shape_side_by_side(
    tmp_path: Path,
) -> None:
    from modelkit.onnx_build import build_onnx_cnn

    model = tmp_path / "dyn.onnx"
    model.write_bytes(build_onnx_cnn(dynamic_batch=True))
    db = tmp_path / "results.sqlite"
    shapes = ["--shape", "input=1,3,16,16", "--shape", "input=4,3,16,16"]
    runner = CliRunner()
    out = runner.invoke(app, ["--db", str(db), "profile", str(model), *FAST, *shapes, "--json"])
    assert out.exit_code == 0, out.stderr
    docs = json.loads(out.stdout)
    assert [d["status"] for d in docs] == ["ok", "ok"]
    used = [d["settings"]["input_shapes"]["input"] for d in docs]
    assert used == [[1, 3, 16, 16], [4, 3, 16, 16]]
    assert len({d["label"] for d in docs}) == 1
    # Each setting ran in its own worker: the batch of 4 took more work per inference.
    assert docs[1]["model"]["macs"] == 4 * docs[0]["model"]["macs"]
    table = runner.invoke(
        app, ["--db", str(db), "profile", str(model), *FAST, *shapes], env={"COLUMNS": "120"}
    )
    assert table.exit_code == 0, table.stderr
    assert "1×3×16×16" in table.stdout and "4×3×16×16" in table.stdout


def test_a_bad_sweep_list_is_one_line() -> None:
    out = CliRunner().invoke(app, ["profile", str(demo_model("onnx")), "--threads", "1,x"])
    assert out.exit_code == 1
    (line,) = [x for x in out.stderr.splitlines() if x.strip()]
    assert line.startswith("error: --threads 1,x")
