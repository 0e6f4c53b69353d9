"""hostctl.render: tables and panels people read (rich), from result documents."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from hostctl import render
from protocol.result import RESULT_SCHEMA


def _render(renderable: Any, width: int = 200) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _ok(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "status": "ok",
        "device": {"id": "pi-1"},
        "model": {"name": "m.tflite", "format": "tflite", "size_bytes": 816},
        "runtime": {
            "name": "litert",
            "version": "2.3.0",
            "delegate_or_provider": "xnnpack",
            "threads": 4,
        },
        "settings": {"input_shapes": {"x": [1, 3, 48, 320]}},
        "latency_ms": {"p50": 12.345, "ci95_p50": [12.0, 12.6], "p90": 13.0, "p99": None},
        "memory_mb": {"peak_rss": 56.56},
        "accuracy": {"top1": 0.9123, "n": 100},
        "flags": ["unstable", "throttled"],
        "error": None,
    }
    doc.update(changes)
    return doc


def test_table_renders_ok_error_and_unreadable_results() -> None:
    error = {
        "schema": RESULT_SCHEMA,
        "status": "error",
        "device": {"id": "pi-2"},
        "model": None,
        "flags": [],
        "error": {"code": "custom_op", "message": "op Foo is not supported " * 10},
    }
    text = _render(render.results_table([_ok(), error, {}], title="results"))
    assert "12.3 ms" in text and "[12.0–12.6]" in text
    assert "56.6" in text and "91.2%" in text
    assert "litert 2.3.0" in text and "xnnpack 4 thr" in text
    assert "unstable, throttled" in text
    assert "custom_op: op Foo" in text and "…" in text
    assert "pi-2" in text and "unreadable: " in text


def test_the_input_shape_a_result_ran_with_is_shown() -> None:
    assert "x 1×3×48×320" in _render(render.results_table([_ok()]))
    assert "x 1×3×48×320" in _render(render.result_detail(_ok()))


@pytest.mark.parametrize("width", [80, 120])
def test_no_model_name_is_broken_mid_word(width: int) -> None:
    name = "mobilenet_v3_large_minimalistic_1.0_224_int8_per_channel.tflite"
    text = _render(render.results_table([_ok(model={"name": name})]), width)
    assert max(len(line) for line in text.splitlines()) <= width
    pieces = name.replace(".", "_").split("_")
    # every piece of the name appears whole on some line
    for piece in pieces:
        assert any(piece in line for line in text.splitlines()), piece


def test_a_name_piece_longer_than_the_column_is_shortened_in_the_middle() -> None:
    first = render.wrap_name("a" * 40 + ".onnx", 24).splitlines()[0]
    assert len(first) == 24 and first.startswith("a" * 12 + "…") and first.endswith("a.")


def test_brackets_in_paths_dims_and_messages_are_never_lost() -> None:
    doc = _ok(
        device={"id": "pi[1]"},
        model={"name": "bad[v2].onnx"},
        status="error",
        error={
            "code": "bad_input",
            "message": "input x has dims [batch?, 3] [bold]not markup[/bold]",
        },
        flags=[],
    )
    table = _render(render.results_table([doc]))
    assert "bad[v2].onnx" in table and "pi[1]" in table
    detail = _render(render.result_detail(doc))
    assert "bad[v2].onnx" in detail
    assert "[batch?, 3] [bold]not markup[/bold]" in detail


def test_flags_get_a_legend_saying_what_to_do() -> None:
    text = _render(render.results_table([_ok(flags=["unstable", "high_cov", "capped"])]))
    assert "unstable:" in text and "high_cov:" in text and "capped:" in text
    assert "--max-seconds" in text
    assert "legend" not in _render(render.results_table([_ok(flags=[])])).lower()
    assert "unstable:" not in _render(render.results_table([_ok(flags=[])]))


def test_table_fits_an_80_column_terminal_and_hides_empty_accuracy() -> None:
    doc = _ok(
        device={"id": "raspberrypi-5"},
        model={"name": "mobilenet_v2_int8.tflite"},
        runtime={
            "name": "onnxruntime",
            "version": "1.32.0",
            "delegate_or_provider": "CPUExecutionProvider",
            "threads": 4,
        },
        latency_ms={"p50": 0.00634, "ci95_p50": [0.00633, 0.00636], "p90": 12.5},
        accuracy=None,
        flags=["unstable"],
    )
    text = _render(render.results_table([doc]), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "6.34 µs" in text and "[6.33–6.36]" in text and "12.5 ms" in text
    assert "CPU 4 thr" in text
    assert "top-1" not in text and "ok" in text


def test_detail_renders_an_error_result() -> None:
    doc = {
        "schema": RESULT_SCHEMA,
        "status": "error",
        "model": {"name": "bad.onnx", "format": "onnx"},
        "error": {"code": "bad_model", "message": "bad.onnx is not a valid ONNX model"},
        "env": {"temp_c_start": None, "temp_c_end": None, "throttled": None},
    }
    text = _render(render.result_detail(doc))
    assert "bad_model: bad.onnx is not a valid ONNX model" in text
    assert "Environment" in text
