"""hostctl.tables: csv rows and the markdown study table."""

from __future__ import annotations

import csv
import io
from typing import Any

from hostctl import tables
from protocol.result import RESULT_SCHEMA


def _doc(name: str, status: str = "ok", **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "status": status,
        "job_id": f"job-{name}",
        "device": {"id": "pi5"},
        "model": {
            "name": name,
            "size_bytes": 17_510,
            "params": 3978,
            "macs": 13_110_000,
            "sparsity": 0.0,
        },
        "runtime": {"name": "litert", "version": "2.3.0", "delegate_or_provider": "xnnpack"},
        "settings": {"input_shapes": {"x": [1, 64, 64, 3]}},
        "latency_ms": {"p50": 0.307, "ci95_p50": [0.306, 0.308], "p90": 0.358},
        "memory_mb": {"peak_rss": 51.5},
        "accuracy": {"top1": 0.9712, "n": 360},
        "flags": [],
        "error": None if status == "ok" else {"code": "crashed", "message": "boom"},
    }
    doc.update(changes)
    return doc


def test_markdown_is_the_study_table_without_error_rows_unless_asked() -> None:
    docs = [_doc("a.tflite"), _doc("b.tflite", "error")]
    text = tables.to_markdown(docs)
    assert "| a.tflite |" in text and "b.tflite" not in text
    assert "0.307 [0.306–0.308]" in text and "97.12%" in text and "13.1 M" in text
    assert "x 1×64×64×3" in text and "17.1 KiB" in text and "3,978" in text
    assert "b.tflite" in tables.to_markdown(docs, include_errors=True)


def test_incomplete_or_unknown_macs_are_marked() -> None:
    lower = _doc("a.onnx", model={"name": "a.onnx", "macs": 2_000_000, "macs_complete": False})
    unknown = _doc("b.onnx", model={"name": "b.onnx", "macs": None, "macs_complete": False})
    text = tables.to_markdown([lower, unknown])
    assert "| ≥ 2.00 M |" in text and "| unknown |" in text and "| 0 M |" not in text


def test_csv_carries_every_figure_and_the_input_shapes() -> None:
    rows = list(csv.DictReader(io.StringIO(tables.to_csv([_doc("a.tflite")]))))
    assert rows[0]["input_shapes"] == "x=1x64x64x3"
    assert rows[0]["p50_ci_lo"] == "0.306" and rows[0]["top1"] == "0.9712"
    assert set(rows[0]) == set(tables.FLAT_COLUMNS)


def test_a_pipe_in_a_name_does_not_break_the_markdown_table() -> None:
    text = tables.to_markdown([_doc("a|b.tflite")])
    assert "a\\|b.tflite" in text
