"""`hostctl report` and `hostctl study` as a user types them: filters that select a
source with its variants, each output format, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hostctl.cli import app
from hostctl.store import ResultStore
from tests.hostctl.test_report import SOURCE, _doc

runner = CliRunner()


def _store(tmp_path: Path) -> Path:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        for i, doc in enumerate(
            [_doc("fp32"), _doc("blq", p50=0.5), _doc("prn", options={"sparsity": 0.5})]
        ):
            doc["label"] = "s1"
            doc["created_at"] = f"2026-01-01T00:00:0{i}Z"
            store.add(doc)
        other = _doc(None, sha="b1" * 32)
        other["model"]["name"] = "other.onnx"
        store.add(other)
    return db


def test_report_selects_a_source_model_with_its_variants(tmp_path: Path) -> None:
    db = _store(tmp_path)
    # The source's name, its file name, a variant's own name, a SHA-256 prefix.
    for model in ("cnn", "cnn.tflite", "cnn.blq.tflite", SOURCE[:8]):
        done = runner.invoke(app, ["--db", str(db), "report", "--model", model, "--json"])
        assert done.exit_code == 0, (model, done.output)
        rows = json.loads(done.stdout)
        assert [r["variant"] for r in rows] == ["fp32", "blq", "prn50"], model
        assert {r["source_sha256"] for r in rows} == {SOURCE}
    done = runner.invoke(app, ["--db", str(db), "report", "--model", "other", "--json"])
    assert [r["model"] for r in json.loads(done.stdout)] == ["other.onnx"]


def test_report_formats(tmp_path: Path) -> None:
    db = _store(tmp_path)
    base = ["--db", str(db), "report", "--label", "s1"]
    markdown = runner.invoke(app, [*base, "--format", "markdown"])
    assert markdown.exit_code == 0 and markdown.stdout.startswith("### cnn.tflite (source")
    latex = runner.invoke(app, [*base, "-f", "latex"])
    assert latex.exit_code == 0 and "\\begin{tabular}" in latex.stdout
    table = runner.invoke(app, base, env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "prn50" in table.stdout and "baseline" in table.stdout


def test_the_terminal_table_keeps_whole_numbers_on_a_narrow_terminal(tmp_path: Path) -> None:
    db = _store(tmp_path)
    base = ["--db", str(db), "report", "--label", "s1"]
    wide = runner.invoke(app, base, env={"COLUMNS": "200"})
    narrow = runner.invoke(app, base, env={"COLUMNS": "80"})
    assert wide.exit_code == 0 and narrow.exit_code == 0
    assert "too narrow" not in wide.stdout and "conn. removed" in wide.stdout
    # At 80 columns the columns that do not fit are named, the others stay whole:
    # no number is folded over two lines.
    assert all(len(line) <= 80 for line in narrow.stdout.splitlines())
    lines = narrow.stdout.splitlines()
    header = next(line for line in lines if "variant" in line).split()
    assert header[:5] == ["variant", "top-1", "Δ", "top-1", "size"] and "gzip" not in header
    assert "90.00%" in narrow.stdout and "too narrow for: " in narrow.stdout
    assert "on pi-a" in narrow.stdout  # one device: named in the title, not a column


def test_report_writes_the_html_file_and_says_where(tmp_path: Path) -> None:
    db = _store(tmp_path)
    page = tmp_path / "out" / "r.html"
    done = runner.invoke(app, ["--db", str(db), "report", "--label", "s1", "--html", str(page)])
    assert done.exit_code == 0, done.output
    assert done.stdout == ""  # with --html alone nothing is printed on stdout
    assert f"report written to {page} (3 results, 1 source models)" in done.stderr
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_report_of_nothing_is_one_line(tmp_path: Path) -> None:
    done = runner.invoke(app, ["--db", str(tmp_path / "r.sqlite"), "report", "--label", "no"])
    assert done.exit_code == 1
    assert done.stderr.strip().splitlines() == [
        "error: no stored results match: see `hostctl results`"
    ]


def test_study_refuses_bad_input_before_making_anything(tmp_path: Path) -> None:
    model = tmp_path / "notes.tflite"
    model.write_text("not a model")
    done = runner.invoke(app, ["--db", str(tmp_path / "r.sqlite"), "study", str(model)])
    assert done.exit_code == 1 and "error:" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    from modelkit import demo_digits

    wrong = tmp_path / "val.csv"
    wrong.write_text("x,y\n")
    out = tmp_path / "variants"
    args = ["study", str(demo_digits.model_path("tflite")), "--eval", str(wrong)]
    done = runner.invoke(app, ["--db", str(tmp_path / "r.sqlite"), *args, "--out", str(out)])
    assert done.exit_code == 1 and "--eval" in done.stderr and ".npz" in done.stderr
    assert not out.exists()  # nothing was made
    done = runner.invoke(
        app,
        [
            "--db",
            str(tmp_path / "r.sqlite"),
            "study",
            str(demo_digits.model_path("tflite")),
            "--only",
            "fp32,nope",
        ],
    )
    assert done.exit_code == 1 and "unknown variant kind nope" in done.stderr
    done = runner.invoke(
        app,
        [
            "--db",
            str(tmp_path / "r.sqlite"),
            "study",
            str(demo_digits.model_path("tflite")),
            "--shape",
            "input=1,8,8,1",
            "--shape",
            "input=2,8,8,1",
        ],
    )
    assert done.exit_code == 1 and "one --shape per input" in done.stderr
