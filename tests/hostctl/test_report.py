"""hostctl.report: results grouped under their source, each variant set against the
fp32 on the same device (top-1 change, connections removed, time saved, with CIs),
and the markdown / csv / latex tables."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import pytest

from hostctl import report
from protocol.result import RESULT_SCHEMA, encode_correct, encode_samples

SOURCE = "a0" * 32
RNG_SEED = 7


def _samples(p50_ms: float, n: int = 400) -> dict[str, Any]:
    rng = random.Random(RNG_SEED + round(p50_ms * 1000))
    return encode_samples([round(p50_ms * 1e6 * (1 + rng.uniform(-0.02, 0.02))) for _ in range(n)])


def _doc(
    kind: str | None,
    device: str = "pi-a",
    *,
    p50: float = 1.0,
    top1: float | None = 0.9,
    params: int = 1000,
    sparsity: float = 0.0,
    created: str = "2026-01-01T00:00:00Z",
    status: str = "ok",
    sha: str | None = None,
    options: dict[str, Any] | None = None,
    calibration_sha256: str | None = "ca" * 32,
) -> dict[str, Any]:
    name = f"cnn.{kind}.tflite" if kind else "cnn.tflite"
    sha = sha or (SOURCE if kind in (None, "fp32") else f"{abs(hash(kind)) % 10**16:064d}")
    n = 200
    correct = [i < round(top1 * n) for i in range(n)] if top1 is not None else None
    doc: dict[str, Any] = {
        "schema": RESULT_SCHEMA,
        "status": status,
        "job_id": f"{kind}-{device}-{created}",
        "created_at": created,
        "device": {"id": device},
        "model": {
            "name": name,
            "sha256": sha,
            "size_bytes": 4000,
            "gzip_bytes": 3000,
            "params": params,
            "macs": 50_000,
            "sparsity": sparsity,
        },
        "runtime": {"name": "litert", "version": "2.3.0"},
        "flags": [],
    }
    if kind is not None:
        doc["model"]["variant"] = {
            "kind": kind,
            "recipe": {
                "tool": "t",
                "options": options or {},
                "calibration_sha256": calibration_sha256,
            },
            "source_sha256": SOURCE,
        }
    if status == "ok":
        doc["latency_ms"] = {"p50": p50, "ci95_p50": [p50 * 0.99, p50 * 1.01], "p90": p50 * 1.2}
        doc["samples"] = _samples(p50)
        doc["memory_mb"] = {"peak_rss": 50.0}
        if top1 is not None and correct is not None:
            doc["accuracy"] = {
                "top1": top1,
                "n": n,
                "data_sha256": "da" * 32,
                "correct": encode_correct(correct),
            }
    else:
        doc["error"] = {"code": "crashed", "message": "the runtime died"}
        doc["runtime"] = {}
    return doc


def _study() -> list[dict[str, Any]]:
    docs = []
    for device, slow in (("pi-a", 1.0), ("pi-b", 3.0)):
        docs += [
            _doc("fp32", device, p50=2.0 * slow, top1=0.90),
            _doc("blq", device, p50=1.0 * slow, top1=0.89),
            _doc(
                "prn", device, p50=1.5 * slow, top1=0.80, sparsity=0.75, options={"sparsity": 0.75}
            ),
        ]
    return docs


def _row(groups: list[report.Group], variant: str, device: str) -> report.Row:
    (row,) = [r for g in groups for r in g.rows if r.variant == variant and r.device == device]
    return row


def test_variants_are_grouped_under_their_source_and_compared_on_their_device() -> None:
    groups = report.study(_study())
    (group,) = groups
    assert group.source == SOURCE and group.name == "cnn.tflite"
    assert [(r.variant, r.device) for r in group.rows] == [
        ("fp32", "pi-a"),
        ("fp32", "pi-b"),
        ("blq", "pi-a"),
        ("blq", "pi-b"),
        ("prn75", "pi-a"),
        ("prn75", "pi-b"),
    ]
    fp32 = _row(groups, "fp32", "pi-a")
    assert (
        fp32.is_baseline and fp32.time_ratio is None and report.cells(fp32)["saved"] == "baseline"
    )
    # Each variant against the fp32 of its own device: pi-b is 3x slower throughout.
    for device in ("pi-a", "pi-b"):
        blq = _row(groups, "blq", device)
        assert blq.time_ratio is not None and blq.time_ratio.estimate == pytest.approx(
            0.5, rel=0.03
        )
        assert blq.time_ratio.ci95 is not None  # block medians of the stored samples
        lo, hi = blq.time_ratio.ci95
        assert lo <= blq.time_ratio.estimate <= hi
        saved = blq.time_saved
        assert saved is not None and saved.estimate == pytest.approx(0.5, rel=0.05)


def test_the_pruning_papers_ratio_connections_removed_against_time_saved() -> None:
    groups = report.study(_study())
    prn = _row(groups, "prn75", "pi-a")
    assert prn.nonzeros == 250 and prn.connections_removed == pytest.approx(0.75)
    cells = report.cells(prn)
    assert cells["removed"] == "75.0%"
    assert cells["saved"].startswith("+25.")  # 1.5 ms against 2.0 ms
    assert cells["speed"].startswith("1.33× faster")


def test_top1_change_is_paired_on_the_same_data_with_its_interval() -> None:
    groups = report.study(_study())
    prn = _row(groups, "prn75", "pi-b")
    change = prn.top1_change
    assert change is not None and change.estimate == pytest.approx(-0.10)
    assert change.ci95 is not None and change.ci95[0] < -0.10 < change.ci95[1] < 0
    assert report.cells(prn)["top1_change"].startswith("−10.0 pt [−")


def test_an_error_result_is_a_row_that_says_so() -> None:
    docs = [_doc("fp32"), _doc("fiq", status="error")]
    (group,) = report.study(docs)
    fiq = next(r for r in group.rows if r.variant == "fiq")
    assert fiq.flags[0] == "error: crashed" and fiq.time_ratio is None
    assert report.cells(fiq)["p50"] == "—"


def test_the_newest_result_of_a_cell_is_shown_and_every_run_compared() -> None:
    docs = [
        _doc("fp32", created="2026-01-01T00:00:00Z"),
        _doc("blq", p50=0.8, created="2026-01-01T00:00:01Z"),
        _doc("blq", p50=0.6, created="2026-01-02T00:00:00Z"),
    ]
    (group,) = report.study(docs)
    blq = next(r for r in group.rows if r.variant == "blq")
    assert len(blq.runs) == 2 and blq.result.latency is not None
    assert blq.result.latency.p50 == 0.6


def test_a_plain_result_of_the_source_file_is_its_fp32_and_others_are_their_own_source() -> None:
    docs = [_doc(None), _doc("blq", p50=0.5), _doc(None, sha="b1" * 32)]
    groups = report.study(docs)
    assert [g.source for g in groups] == [SOURCE, "b1" * 32]
    first = groups[0]
    assert [r.variant for r in first.rows] == ["fp32", "blq"] and first.rows[0].is_baseline
    assert first.rows[1].time_ratio is not None
    assert [r.variant for r in groups[1].rows] == ["cnn.tflite"]  # nothing to compare with


def test_fiq_calibrated_on_random_data_is_flagged() -> None:
    docs = [_doc("fp32"), _doc("fiq", options={"calibration": "random"}, calibration_sha256=None)]
    (group,) = report.study(docs)
    assert "random_calibration" in group.rows[1].flags


def test_markdown_has_one_table_per_source_in_one_latency_unit() -> None:
    docs = [_doc("fp32", p50=0.004), _doc("blq", p50=0.002)]  # µs-scale latencies
    text = report.to_markdown(report.study(docs))
    assert text.startswith("### cnn.tflite (source a0a0a0a0a0a0)")
    assert "p50 µs [95% CI]" in text and "| 4.00 [3.96–4.04] |" in text
    assert "| baseline |" in text


def test_csv_has_raw_numbers_for_every_cell() -> None:
    rows = list(csv.DictReader(io.StringIO(report.to_csv(report.study(_study())))))
    assert len(rows) == 6 and set(report.CSV_COLUMNS) == set(rows[0])
    prn = next(r for r in rows if r["variant"] == "prn75" and r["device"] == "pi-a")
    assert float(prn["connections_removed"]) == pytest.approx(0.75)
    assert float(prn["time_ratio"]) == pytest.approx(0.75, rel=0.03)
    assert prn["source_sha256"] == SOURCE and prn["nonzeros"] == "250"


def test_latex_escapes_what_latex_would_read_as_markup() -> None:
    assert report.latex_escape("a_b 50% & $x# {µs} −1 ×2") == (
        r"a\_b 50\% \& \$x\# \{$\mu$s\} --1 $\times$2"
    )
    text = report.to_latex(report.study(_study()))
    assert text.count("\\begin{tabular}") == 1 and "\\toprule" in text
    assert "prn75 & pi-a" in text and "75.0\\%" in text


def test_with_variants_adds_the_variants_of_a_selected_source() -> None:
    docs = [*_study(), _doc(None, sha="b1" * 32)]
    source_only = [
        d for d in docs if d["model"]["sha256"] == SOURCE and d["device"]["id"] == "pi-a"
    ]
    chosen = report.with_variants(source_only, docs)
    assert sorted({d["model"]["name"] for d in chosen}) == [
        "cnn.blq.tflite",
        "cnn.fp32.tflite",
        "cnn.prn.tflite",
    ]
    assert len(chosen) == 6  # both devices' variants, the unrelated model left out


def test_kind_order_is_the_variant_makers_order() -> None:
    from modelkit.variants import KINDS

    assert report.KIND_ORDER == KINDS


def test_energy_is_a_column_only_where_a_board_measured_it() -> None:
    plain = report.to_markdown(report.study(_study()))
    assert "mJ/inference" not in plain
    docs = _study()
    docs[1]["energy"] = {"mj_per_inference": 0.42, "ci95": [0.40, 0.44], "rail": "VDD_IN"}
    groups = report.study(docs)
    text = report.to_markdown(groups)
    assert "mJ/inference [95% CI]" in text and "| 0.420 [0.400–0.440] |" in text
    rows = report.rows_json(groups)
    assert [r["mj_per_inference"] for r in rows if r["mj_per_inference"]] == [0.42]


def test_two_runtimes_on_one_device_are_two_sides_each_against_its_own_fp32() -> None:
    # The same fp32 and int8 files on one Pi, under LiteRT and under tflite-runtime 2.14
    # (which takes 3x as long for the fp32 and runs the int8 one without XNNPACK).
    docs = []
    for runtime, fp32_ms, blq_ms in (("litert", 2.0, 1.0), ("tflite_runtime", 6.0, 12.0)):
        for kind, p50 in (("fp32", fp32_ms), ("blq", blq_ms)):
            doc = _doc(kind, "pi-a", p50=p50, created=f"2026-01-01T00:00:0{len(docs)}Z")
            doc["runtime"] = {
                "name": runtime,
                "version": "2.3.0" if runtime == "litert" else "2.14.0",
            }
            docs.append(doc)
    (group,) = report.study(docs)
    sides = {(r.variant, r.runtime): r for r in group.rows}
    assert sorted(sides) == [
        ("blq", "litert 2.3.0"),
        ("blq", "tflite-runtime 2.14.0"),
        ("fp32", "litert 2.3.0"),
        ("fp32", "tflite-runtime 2.14.0"),
    ]
    assert sides["fp32", "tflite-runtime 2.14.0"].is_baseline  # not merged with LiteRT's
    faster = sides["blq", "litert 2.3.0"].time_ratio
    slower = sides["blq", "tflite-runtime 2.14.0"].time_ratio
    assert faster is not None and faster.estimate == pytest.approx(0.5, rel=0.03)
    assert slower is not None and slower.estimate == pytest.approx(2.0, rel=0.03)
    text = report.to_markdown([group])
    assert "| tflite-runtime 2.14.0 |" in text and "| litert 2.3.0 |" in text
