"""The fleet commands through typer's CliRunner: keys, results formats, errors a user meets."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hostctl.cli import app
from hostctl.store import ResultStore
from profiler.models import demo_model
from tests.support.broker import free_port

runner = CliRunner()


def _doc(job_id: str, device: str, p50: float) -> dict[str, Any]:
    return {
        "schema": "edgeprof.result/1",
        "status": "ok",
        "job_id": job_id,
        "label": "base",
        "created_at": f"2026-01-01T00:00:0{job_id[-1]}Z",
        "device": {"id": device},
        "model": {
            "name": "net.tflite",
            "sha256": "ab" * 32,
            "format": "tflite",
            "size_bytes": 9760,
            "params": 3978,
            "macs": 13107840,
            "sparsity": 0.0,
        },
        "runtime": {"name": "litert", "version": "2.3", "delegate_or_provider": "xnnpack"},
        "latency_ms": {"n": 100, "p50": p50, "p90": p50 * 1.2, "ci95_p50": [p50 - 0.1, p50 + 0.1]},
        "accuracy": {"top1": 0.8125, "n": 320},
        "flags": ["unstable"],
    }


def _offline_broker() -> list[str]:
    # A port nobody listens on: commands must fail (or skip) with one clear line.
    return ["--broker", f"mqtt://127.0.0.1:{free_port()}"]


def test_keys_init_prints_paths_key_id_and_agent_flag(tmp_path: Path) -> None:
    result = runner.invoke(app, ["keys", "init", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"--trust {tmp_path / 'host.pub'}" in result.output
    assert (tmp_path / "host.key").exists()
    again = runner.invoke(app, ["keys", "init", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert "Traceback" not in again.output


def test_results_formats(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        store.add(_doc("j1", "pi-1", 1.5))
        store.add(_doc("j2", "pi-2", 2.5))
    base = ["--db", str(db), "results", "--no-collect"]

    as_json = runner.invoke(app, [*base, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert [d["job_id"] for d in json.loads(as_json.stdout)] == ["j1", "j2"]

    filtered = runner.invoke(app, [*base, "--format", "json", "--device", "pi-2"])
    assert [d["device"]["id"] for d in json.loads(filtered.stdout)] == ["pi-2"]

    as_csv = runner.invoke(app, [*base, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["device"], r["p50_ms"], r["flags"]) for r in rows] == [
        ("pi-1", "1.5", "unstable"),
        ("pi-2", "2.5", "unstable"),
    ]

    assert rows[0]["size_bytes"] == "9760" and rows[0]["macs"] == "13107840"
    assert rows[0]["p50_ci_lo"] == "1.4" and rows[0]["top1"] == "0.8125"

    # markdown is the study table: accuracy / size / latency, ready to paste
    markdown = runner.invoke(app, [*base, "--format", "markdown", "--limit", "1"])
    lines = markdown.stdout.strip().splitlines()
    assert lines[0].startswith("| model | label | device |") and len(lines) == 3
    assert (
        "| net.tflite | base | pi-2 | litert 2.3 xnnpack |  | 9.5 KiB | 3,978 | 13.1 M |"
        in lines[2]
    )
    assert "| 81.25% | 2.50 [2.40–2.60] | 3.00 |" in lines[2] and "ok (unstable)" in lines[2]

    table = runner.invoke(app, [*base], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "pi-1" in table.stdout and "net.tflite" in table.stdout


def test_results_without_a_broker_still_show_stored_results(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        store.add(_doc("j1", "pi-1", 1.5))
    result = runner.invoke(app, [*_offline_broker(), "--db", str(db), "results", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 1


def test_devices_with_an_unreachable_broker_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, [*_offline_broker(), "devices"])
    assert result.exit_code == 1
    assert "cannot connect to the broker" in result.output
    assert "Traceback" not in result.output


def test_push_without_target_or_with_missing_model_fails_clearly(tmp_path: Path) -> None:
    runner.invoke(app, ["keys", "init", "--dir", str(tmp_path)])
    model = demo_model("tflite")
    common = [
        *_offline_broker(),
        "--key",
        str(tmp_path / "host.key"),
        "--db",
        str(tmp_path / "r.sqlite"),
    ]

    missing = runner.invoke(app, [*common, "push", str(tmp_path / "nope.tflite"), "--all"])
    assert missing.exit_code == 1 and "no such file" in missing.output

    bad_shape = runner.invoke(app, [*common, "push", str(model), "--all", "--shape", "x"])
    assert bad_shape.exit_code == 1 and "NAME=" in bad_shape.output

    bad_range = runner.invoke(app, [*common, "push", str(model), "--all", "--input-range", "a=2,1"])
    assert bad_range.exit_code == 1 and "LO is above HI" in bad_range.output
    both = runner.invoke(
        app, [*common, "push", str(model), "--all", "--inputs", str(model), "--input-value", "a=1"]
    )
    assert both.exit_code == 1 and "--inputs supplies every input" in both.output

    with_eval = runner.invoke(app, [*common, "push", str(model), "--all", "--eval", str(model)])
    assert with_eval.exit_code == 1 and "--eval" in with_eval.output


def test_push_with_a_missing_key_names_keys_init(tmp_path: Path) -> None:
    model = demo_model("tflite")
    result = runner.invoke(
        app, ["--key", str(tmp_path / "absent.key"), "push", str(model), "--all"]
    )
    assert result.exit_code == 1
    assert "hostctl keys init" in result.output
