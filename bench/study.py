"""Study, first part: the time to make every variant of a ~5 MB model, against one
fp32 inference pass over the calibration set measured in the same run.

``python -m bench.study [--formats tflite,onnx] [--samples 32] [--json]``

The model is built in code (``modelkit.cnn``: conv 3x3 → depthwise → conv 1x1 →
pool → fully connected, 256 / 1024 channels, 1000 classes, ~1.29 M parameters,
~5.2 MB as fp32) in each format; the calibration file holds ``--samples`` seeded
inputs. Per format, in this order:

1. reference A: one fp32 inference pass over the calibration samples in the
   runtime (load included), i.e. what a single calibration/check sweep costs;
2. reference B: load the model and save it again (schema object API for TFLite,
   ``onnx.load``/``SerializeToString`` for ONNX);
3. ``modelkit.variants.make_variants`` of every kind (PRN/PRQ at 0.5 and 0.75),
   checks against the source included, with the time of each variant.

The figure is (3) / (1): how many calibration passes making all variants costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    command_line,
    emit,
    machine_info,
    machine_line,
    progress,
    usage_line,
)

SPARSITIES = (0.5, 0.75)


def _build(fmt: str, out: Path) -> Path:
    from modelkit.cnn import CnnSpec
    from modelkit.onnx_build import build_onnx_cnn
    from modelkit.tflite_build import build_tflite_cnn

    spec = CnnSpec(hw=16, in_ch=3, c1=256, c2=1024, classes=1000)
    path = out / f"study_cnn.{fmt}"
    path.write_bytes(build_tflite_cnn(spec) if fmt == "tflite" else build_onnx_cnn(spec))
    return path


def _calibration(fmt: str, out: Path, samples: int) -> Path:
    import numpy as np

    shape = (samples, 16, 16, 3) if fmt == "tflite" else (samples, 3, 16, 16)
    path = out / f"calibration_{fmt}.npz"
    with open(path, "wb") as fh:
        np.savez(fh, x=np.random.default_rng(0).random(shape, dtype=np.float32))
    return path


def _inference_pass(model: Path, calibration: Path) -> float:
    from modelkit.variants.runtime import ModelRunner, run_all
    from modelkit.variants.samples import load_samples

    t0 = time.perf_counter()
    runner = ModelRunner(model.read_bytes(), model.suffix.lstrip("."))
    run_all(runner, load_samples(calibration, runner.inputs).samples)
    return time.perf_counter() - t0


def _load_save(model: Path, out: Path) -> float:
    t0 = time.perf_counter()
    if model.suffix == ".tflite":
        from modelkit.variants.tflite_makers import read_model, write_model

        data = write_model(read_model(model.read_bytes()))
    else:
        import onnx

        data = onnx.load(str(model)).SerializeToString()
    (out / f"copy{model.suffix}").write_bytes(data)
    return time.perf_counter() - t0


def _one_format(fmt: str, samples: int, tmp: Path) -> dict[str, Any]:
    from modelkit.variants import make_variants

    model = _build(fmt, tmp)
    calibration = _calibration(fmt, tmp, samples)
    progress(f"{fmt}: reference passes on {model.name} ({model.stat().st_size:,} bytes)")
    ref_pass = _inference_pass(model, calibration)
    ref_copy = _load_save(model, tmp)
    progress(f"{fmt}: making every variant")
    times: dict[str, float] = {}
    last = [time.perf_counter()]

    def tick(outcome: Any) -> None:
        now = time.perf_counter()
        times[outcome.name] = round(now - last[0], 3)
        last[0] = now

    t0 = time.perf_counter()
    outcomes = make_variants(
        model,
        tmp / f"variants_{fmt}",
        calibration=calibration,
        sparsities=SPARSITIES,
        on_outcome=tick,
    )
    total = time.perf_counter() - t0
    return {
        "format": fmt,
        "model_bytes": model.stat().st_size,
        "samples": samples,
        "reference_pass_s": round(ref_pass, 3),
        "reference_load_save_s": round(ref_copy, 3),
        "variants_s": round(total, 3),
        "ratio_to_pass": round(total / ref_pass, 2) if ref_pass else None,
        "ratio_to_load_save": round(total / ref_copy, 1) if ref_copy else None,
        "per_variant_s": times,
        "made": [o.name for o in outcomes if o.made],
        "not_made": {o.name: o.reason for o in outcomes if not o.made},
        "sizes": {o.name: o.size_bytes for o in outcomes if o.made},
    }


def run(formats: Sequence[str], samples: int, argv: Sequence[str] | None) -> dict[str, Any]:
    """Measure every format and return the report."""
    before = machine_info()
    results = []
    with tempfile.TemporaryDirectory(prefix="edgeprof-bench-study-") as tmp:
        for fmt in formats:
            if fmt not in ("tflite", "onnx"):
                raise BenchError(f"unknown format {fmt!r}: use tflite and/or onnx")
            results.append(_one_format(fmt, samples, Path(tmp)))
    after = machine_info()
    return {
        "benchmark": "study",
        "command": command_line("bench.study", argv),
        "machine_before": before,
        "machine_after": after,
        "usage": usage_line(before, after),
        "results": results,
    }


def render(report: Mapping[str, Any]) -> str:
    """The report for people."""
    lines = [
        f"$ {report['command']}",
        f"before: {machine_line(report['machine_before'])}",
        f"after:  {machine_line(report['machine_after'])}",
        report["usage"],
        "",
        "| format | model | all variants | one fp32 pass over the calibration set | ratio | "
        "load + save | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['format']} | {r['model_bytes'] / 1e6:.2f} MB | {r['variants_s']:.2f} s | "
            f"{r['reference_pass_s']:.3f} s ({r['samples']} samples) | {r['ratio_to_pass']}× | "
            f"{r['reference_load_save_s']:.3f} s | {r['ratio_to_load_save']}× |"
        )
    for r in report["results"]:
        per = ", ".join(f"{k} {v:.2f} s" for k, v in r["per_variant_s"].items())
        lines.append(f"\n{r['format']} per variant: {per}")
        if r["not_made"]:
            lines.append(f"{r['format']} not made: {r['not_made']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.study``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.study",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    parser.add_argument("--formats", default="tflite,onnx", help="tflite and/or onnx")
    parser.add_argument("--samples", type=int, default=32, help="calibration samples")
    args = parser.parse_args(argv)
    try:
        report = run([f.strip() for f in args.formats.split(",") if f.strip()], args.samples, argv)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    sys.exit(main())
