"""Train the demo's digits CNN (:mod:`modelkit.digits`) and write what
:mod:`modelkit.demo_digits` ships::

    python -m modelkit.train_digits --out modelkit/demo_digits

Data: scikit-learn's bundled 8×8 handwritten digits (1,797 images; no download),
pixels / 16. A seeded permutation holds out 360 images (``digits_eval.npz``: ``x``
(N,8,8,1) float32, ``y`` int64); the network trains on the other 1,437 with Adam and
cross-entropy, in NumPy; 128 training images form ``digits_calibration.npz`` (``x``).
The same weights are written as ``digits_cnn.tflite`` (flatbuffer schema),
``digits_cnn.onnx`` (onnx.helper) and ``digits_cnn.weights.npz``.

Needs scikit-learn (``pip install 'edgeprof[train]'``); nothing else runs it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modelkit.cnn import Array
from modelkit.digits import (
    WEIGHT_SHAPES,
    build_onnx,
    build_tflite,
    conv,
    forward,
    maxpool,
    patches,
)

log = logging.getLogger(__name__)

SEED = 0
HELD_OUT = 360
CALIBRATION = 128
EPOCHS = 40
BATCH = 32
LEARNING_RATE = 3e-3


def load_digits_nhwc() -> tuple[Array, Array]:
    """scikit-learn's digits as (x (N,8,8,1) float32 in [0, 1], y int64)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    return x, digits.target.astype(np.int64)


def split(x: Array, y: Array, seed: int = SEED) -> dict[str, tuple[Array, Array]]:
    """Seeded held-out / train split and a calibration subset of the training images."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    held, train = order[:HELD_OUT], order[HELD_OUT:]
    cal = rng.choice(train, size=CALIBRATION, replace=False)
    return {
        "eval": (x[held], y[held]),
        "train": (x[train], y[train]),
        "calibration": (x[cal], y[cal]),
    }


def init_weights(rng: np.random.Generator) -> dict[str, Array]:
    """He-initialised weights, zero biases."""
    weights: dict[str, Array] = {}
    for name, shape in WEIGHT_SHAPES.items():
        if name.startswith("b"):
            weights[name] = np.zeros(shape, dtype=np.float32)
        else:
            fan_in = int(np.prod(shape[:-1]))
            weights[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return weights


def _col2im(d_cols: Array, shape: tuple[int, ...]) -> Array:
    """Gradient of :func:`modelkit.digits.patches`: sum the patch gradients back."""
    n, h, w, c = shape
    d = d_cols.reshape(n, h, w, 3, 3, c)
    padded = np.zeros((n, h + 2, w + 2, c), dtype=d_cols.dtype)
    for kh in range(3):
        for kw in range(3):
            padded[:, kh : kh + h, kw : kw + w, :] += d[:, :, :, kh, kw, :]
    return padded[:, 1:-1, 1:-1, :]


def _unpool(x: Array, pooled: Array, d_pooled: Array) -> Array:
    """Gradient of 2x2 max pooling: to the position(s) of each maximum."""
    up = np.repeat(np.repeat(pooled, 2, axis=1), 2, axis=2)
    d_up = np.repeat(np.repeat(d_pooled, 2, axis=1), 2, axis=2)
    return np.asarray((x == up) * d_up)


def gradients(w: dict[str, Array], x: Array, y: Array) -> tuple[float, dict[str, Array]]:
    """Cross-entropy loss of a batch and its gradient for every weight."""
    n = len(x)
    c1 = conv(x, w["w1"], w["b1"])
    r1 = np.maximum(c1, 0)
    m1 = maxpool(r1)
    c2 = conv(m1, w["w2"], w["b2"])
    r2 = np.maximum(c2, 0)
    m2 = maxpool(r2)
    flat = m2.reshape(n, -1)
    z = flat @ w["wf"] + w["bf"]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = float(-np.mean(np.log(p[np.arange(n), y] + 1e-12)))
    dz = p
    dz[np.arange(n), y] -= 1.0
    dz /= n
    g: dict[str, Array] = {"wf": flat.T @ dz, "bf": dz.sum(axis=0)}
    d_m2 = (dz @ w["wf"].T).reshape(m2.shape)
    d_c2 = _unpool(r2, m2, d_m2) * (c2 > 0)
    d_c2_rows = d_c2.reshape(-1, d_c2.shape[-1])
    g["w2"] = (patches(m1).T @ d_c2_rows).reshape(w["w2"].shape)
    g["b2"] = d_c2_rows.sum(axis=0)
    d_m1 = _col2im(d_c2_rows @ w["w2"].reshape(-1, w["w2"].shape[-1]).T, m1.shape)
    d_c1 = _unpool(r1, m1, d_m1) * (c1 > 0)
    d_c1_rows = d_c1.reshape(-1, d_c1.shape[-1])
    g["w1"] = (patches(x).T @ d_c1_rows).reshape(w["w1"].shape)
    g["b1"] = d_c1_rows.sum(axis=0)
    return loss, g


def train(x: Array, y: Array, *, seed: int = SEED, epochs: int = EPOCHS) -> dict[str, Array]:
    """Adam on mini-batches; returns the trained float32 weights."""
    rng = np.random.default_rng(seed)
    w = init_weights(rng)
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(val) for k, val in w.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), BATCH):
            idx = order[start : start + BATCH]
            loss, g = gradients(w, x[idx], y[idx])
            losses.append(loss)
            step += 1
            for k in w:
                m[k] = beta1 * m[k] + (1 - beta1) * g[k]
                v[k] = beta2 * v[k] + (1 - beta2) * g[k] ** 2
                m_hat = m[k] / (1 - beta1**step)
                v_hat = v[k] / (1 - beta2**step)
                w[k] = (w[k] - LEARNING_RATE * m_hat / (np.sqrt(v_hat) + eps)).astype(np.float32)
        log.info("epoch %d: loss %.4f", epoch + 1, float(np.mean(losses)))
    return w


def top1(weights: dict[str, Array], x: Array, y: Array) -> float:
    """Fraction of ``x`` the NumPy reference classifies as ``y``."""
    return float(np.mean(np.argmax(forward(weights, x), axis=1) == y))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m modelkit.train_digits --out DIR [--epochs N] [--seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m modelkit.train_digits", description=__doc__)
    parser.add_argument("--out", required=True, help="directory to write into")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, y = load_digits_nhwc()
    parts = split(x, y, args.seed)
    weights = train(*parts["train"], seed=args.seed, epochs=args.epochs)
    with open(out / "digits_cnn.weights.npz", "wb") as fh:
        np.savez_compressed(fh, **weights)  # type: ignore[arg-type]
    (out / "digits_cnn.tflite").write_bytes(build_tflite(weights))
    (out / "digits_cnn.onnx").write_bytes(build_onnx(weights))
    x_eval, y_eval = parts["eval"]
    np.savez_compressed(out / "digits_eval.npz", x=x_eval, y=y_eval)
    np.savez_compressed(out / "digits_calibration.npz", x=parts["calibration"][0])
    summary = {
        "seed": args.seed,
        "epochs": args.epochs,
        "train": len(parts["train"][0]),
        "held_out": len(x_eval),
        "calibration": CALIBRATION,
        "top1_train": round(top1(weights, *parts["train"]), 4),
        "top1_held_out": round(top1(weights, x_eval, y_eval), 4),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
