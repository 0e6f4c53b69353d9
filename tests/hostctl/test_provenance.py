"""What the host vouches for about a model (its variant record, its gzip size): read
from the record beside the file, attached only to results of the very file sent,
and never taken from a device."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from hostctl.provenance import gzip_size, model_facts, read_variant, record_path, vouch, vouch_local

SOURCE = "ab" * 32


def _variant_file(tmp_path: Path, data: bytes = b"TFL3 pretend model" * 20) -> Path:
    path = tmp_path / "m.blq.tflite"
    path.write_bytes(data)
    record = {
        "schema": "edgeprof.variant/1",
        "variant": {
            "kind": "blq",
            "recipe": {"tool": "ai-edge-quantizer", "version": "0.10.0", "options": {}},
            "source_sha256": SOURCE,
        },
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    record_path(path).write_text(json.dumps(record))
    return path


def _doc(sha: str | None, **model: Any) -> dict[str, Any]:
    return {
        "schema": "edgeprof.result/1",
        "status": "ok",
        "job_id": "j1",
        "model": {"name": "m.blq.tflite", "sha256": sha, **model},
    }


def test_the_record_beside_a_variant_is_its_variant(tmp_path: Path) -> None:
    path = _variant_file(tmp_path)
    assert record_path(path).name == "m.blq.recipe.json"
    facts = model_facts(path)
    assert facts["variant"]["kind"] == "blq" and facts["variant"]["source_sha256"] == SOURCE
    assert facts["gzip_bytes"] == len(gzip.compress(path.read_bytes(), 6, mtime=0))


def test_a_stale_or_foreign_record_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _variant_file(tmp_path)
    path.write_bytes(b"made again since")  # the record describes the old bytes
    assert model_facts(path)["variant"] is None
    assert "describes another file" in caplog.text
    record_path(path).write_text("{not json")
    assert read_variant(path, "00" * 32) is None
    record_path(path).write_text(json.dumps({"schema": "something/else", "variant": {}}))
    assert read_variant(path, "00" * 32) is None
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(b"x")
    assert model_facts(plain)["variant"] is None  # no record at all: nothing said


def test_vouch_attaches_the_facts_only_to_the_file_that_was_sent() -> None:
    facts = {"variant": {"kind": "fiq", "recipe": {}, "source_sha256": SOURCE}, "gzip_bytes": 7}
    sent = "cd" * 32
    doc = vouch(_doc(sent), facts, sent)
    assert doc["model"]["variant"]["kind"] == "fiq" and doc["model"]["gzip_bytes"] == 7
    other = vouch(_doc("ef" * 32), facts, sent)  # the device ran something else
    assert "variant" not in other["model"] and "gzip_bytes" not in other["model"]


def test_a_device_cannot_make_its_result_a_variant() -> None:
    forged = {"kind": "fiq", "recipe": {"tool": "me"}, "source_sha256": SOURCE}
    sent = "cd" * 32
    # No facts journaled for the job (a plain model), or no journal entry at all.
    for facts, sha in (({"variant": None, "gzip_bytes": 3}, sent), (None, None)):
        doc = vouch(_doc(sent, variant=forged, gzip_bytes=1), facts, sha)
        assert "variant" not in doc["model"]
    # The host's own facts replace the device's claim.
    mine = {"kind": "blq", "recipe": {}, "source_sha256": "00" * 32}
    doc = vouch(_doc(sent, variant=forged), {"variant": mine}, sent)
    assert doc["model"]["variant"] == mine


def test_a_document_whose_model_is_not_an_object_is_left_as_it_came() -> None:
    doc = {"schema": "edgeprof.result/1", "model": "not an object"}
    assert vouch(doc, {"gzip_bytes": 1}, "ab") == doc


def test_vouch_local_reads_the_file_it_measured(tmp_path: Path) -> None:
    path = _variant_file(tmp_path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    doc = vouch_local(_doc(sha), path)
    assert doc["model"]["variant"]["kind"] == "blq"
    assert doc["model"]["gzip_bytes"] == gzip_size(path.read_bytes())
    assert "variant" not in vouch_local(_doc(sha), tmp_path / "gone.tflite")["model"]
