"""Every fixture written to disk, the labelled data sets, and the command
``python -m modelkit.fixtures --out DIR [--all]``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelkit.cnn import (
    CLASSIFIER_CLASSES,
    CUSTOM_OP_NAME,
    DEMO_SPEC,
    ONNX_OPSET,
    SLOW_SPEC,
    VARIANTS,
    CnnSpec,
)
from modelkit.onnx_build import (
    QLINEAR_MACS,
    QLINEAR_PARAMS,
    build_onnx_classifier,
    build_onnx_cnn,
    build_onnx_custom_op,
    build_onnx_dtypes,
    build_onnx_if_subgraph,
    build_onnx_matmul_chain,
    build_onnx_qlinear,
    build_onnx_tiny,
)
from modelkit.onnx_control import (
    IF_ELSE_MACS,
    IF_PARAMS,
    IF_THEN_MACS,
    LOOP_BODY_MACS,
    LOOP_TRIP_COUNT,
    SAMPLE_RATE,
    SCAN_LENGTH,
    SCAN_PARAMS,
    SCAN_STEP_MACS,
    SHAPE_CHAIN_MACS_PER_ROW,
    SHAPE_CHAIN_PARAMS,
    build_onnx_if_branches,
    build_onnx_loop,
    build_onnx_sample_rate,
    build_onnx_scan,
    build_onnx_shape_chain,
)
from modelkit.tflite_build import (
    SPARSE_MACS,
    SPARSE_PARAMS,
    SPARSE_ZEROS,
    build_tflite_classifier,
    build_tflite_cnn,
    build_tflite_custom_op,
    build_tflite_sparse,
    build_tflite_tiny,
    sparse_fc_weights,
)

# ---------------------------------------------------------------------------
# Labelled data and writing to disk
# ---------------------------------------------------------------------------

__all__ = [
    "CLASSIFIER_CLASSES",
    "CUSTOM_OP_NAME",
    "DEMO_SPEC",
    "IF_ELSE_MACS",
    "IF_PARAMS",
    "IF_THEN_MACS",
    "LOOP_BODY_MACS",
    "LOOP_TRIP_COUNT",
    "ONNX_OPSET",
    "QLINEAR_MACS",
    "QLINEAR_PARAMS",
    "SAMPLE_RATE",
    "SCAN_LENGTH",
    "SCAN_PARAMS",
    "SCAN_STEP_MACS",
    "SHAPE_CHAIN_MACS_PER_ROW",
    "SHAPE_CHAIN_PARAMS",
    "SLOW_SPEC",
    "SPARSE_MACS",
    "SPARSE_PARAMS",
    "SPARSE_ZEROS",
    "VARIANTS",
    "CnnSpec",
    "build_onnx_classifier",
    "build_onnx_cnn",
    "build_onnx_custom_op",
    "build_onnx_dtypes",
    "build_onnx_if_branches",
    "build_onnx_if_subgraph",
    "build_onnx_loop",
    "build_onnx_qlinear",
    "build_onnx_sample_rate",
    "build_onnx_scan",
    "build_onnx_shape_chain",
    "build_onnx_tiny",
    "build_tflite_classifier",
    "build_tflite_cnn",
    "build_tflite_custom_op",
    "build_tflite_sparse",
    "build_tflite_tiny",
    "main",
    "make_labelled_dataset",
    "sparse_fc_weights",
    "write_all",
    "write_demo",
]


def make_labelled_dataset(
    path: str | Path,
    *,
    n: int = 50,
    wrong_fraction: float = 0.2,
    seed: int = 0,
    int8: bool = False,
) -> float:
    """Write a labelled ``.npz`` (``x`` of shape (n, 10), ``y`` int64 (n,)) for the
    classifiers and return the exact top-1 accuracy they score on it.

    Row i's largest value (0.9) is at class ``t_i``; every other value lies in
    [-0.9, 0.7], so even int8 quantization keeps the argmax. ``floor(n *
    wrong_fraction)`` labels are deliberately wrong. ``int8`` stores x already
    quantized for the int8 classifier (``round(x * 127)``, int8).
    """
    rng = np.random.default_rng(seed)
    classes = CLASSIFIER_CLASSES
    truth = rng.integers(0, classes, size=n)
    x = rng.uniform(-0.9, 0.7, size=(n, classes)).astype(np.float32)
    x[np.arange(n), truth] = 0.9
    y = truth.astype(np.int64)
    wrong = math.floor(n * wrong_fraction)
    for i in rng.permutation(n)[:wrong]:
        y[i] = (truth[i] + 1 + rng.integers(0, classes - 1)) % classes
    data = np.clip(np.round(x * 127), -128, 127).astype(np.int8) if int8 else x
    with open(path, "wb") as fh:
        np.savez(fh, x=data, y=y)
    return (n - wrong) / n


def _write(out_dir: Path, name: str, data: bytes) -> Path:
    path = out_dir / name
    path.write_bytes(data)
    return path


def write_demo(out_dir: str | Path) -> list[Path]:
    """Write the demo CNN (:data:`DEMO_SPEC`) into ``out_dir``: ``demo_cnn.tflite``
    and ``demo_cnn.onnx`` (fp32) and ``demo_cnn_int8.tflite`` (full-integer)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        _write(out, "demo_cnn.tflite", build_tflite_cnn(DEMO_SPEC)),
        _write(out, "demo_cnn_int8.tflite", build_tflite_cnn(DEMO_SPEC, variant="int8")),
        _write(out, "demo_cnn.onnx", build_onnx_cnn(DEMO_SPEC)),
    ]


def write_all(out_dir: str | Path) -> dict[str, Path]:
    """Write every fixture into ``out_dir``; returns {fixture name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    for variant in VARIANTS:
        files[f"cnn_{variant}.tflite"] = build_tflite_cnn(variant=variant)
        files[f"cnn_{variant}.onnx"] = build_onnx_cnn(variant=variant)
    files.update(
        {
            "cnn_dynamic.onnx": build_onnx_cnn(dynamic_batch=True),
            "cnn_dynamic.tflite": build_tflite_cnn(dynamic_batch=True),
            "cnn_constants.onnx": build_onnx_cnn(constants_as_nodes=True),
            "slow.tflite": build_tflite_cnn(SLOW_SPEC),
            "slow.onnx": build_onnx_cnn(SLOW_SPEC),
            "tiny.tflite": build_tflite_tiny(),
            "tiny.onnx": build_onnx_tiny(),
            "custom_op.tflite": build_tflite_custom_op(),
            "custom_op.onnx": build_onnx_custom_op(),
            "dtypes.onnx": build_onnx_dtypes(),
            "classifier_fp32.tflite": build_tflite_classifier("fp32"),
            "classifier_int8.tflite": build_tflite_classifier("int8"),
            "classifier.onnx": build_onnx_classifier(),
            "if_subgraph.onnx": build_onnx_if_subgraph(),
            "qlinear.onnx": build_onnx_qlinear(),
            "sparse.tflite": build_tflite_sparse(),
            "if_branches.onnx": build_onnx_if_branches(),
            "loop.onnx": build_onnx_loop(),
            "loop_dynamic.onnx": build_onnx_loop(static_trip_count=False),
            "scan.onnx": build_onnx_scan(),
            "scan_dynamic.onnx": build_onnx_scan(dynamic_length=True),
            "shape_chain.onnx": build_onnx_shape_chain(),
            "sample_rate.onnx": build_onnx_sample_rate(),
            "chain8.onnx": build_onnx_matmul_chain(8),
            "chain16.onnx": build_onnx_matmul_chain(16),
        }
    )
    paths = {
        Path(name).stem + Path(name).suffix: _write(out, name, data) for name, data in files.items()
    }
    make_labelled_dataset(out / "labelled.npz")
    make_labelled_dataset(out / "labelled_int8.npz", int8=True)
    paths["labelled.npz"] = out / "labelled.npz"
    paths["labelled_int8.npz"] = out / "labelled_int8.npz"
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m modelkit.fixtures --out DIR [--all]``."""
    parser = argparse.ArgumentParser(
        prog="python -m modelkit.fixtures",
        description="Write edgeprof's generated test models (demo CNN; --all: every fixture).",
    )
    parser.add_argument("--out", required=True, help="directory to write into")
    parser.add_argument("--all", action="store_true", help="write every fixture, not just the demo")
    args = parser.parse_args(argv)
    written = list(write_all(args.out).values()) if args.all else write_demo(args.out)
    for path in written:
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
