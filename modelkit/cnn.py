"""The CNN fixture's architecture, its hand-computed cost and its weights.

The main fixture is a small CNN (:class:`CnnSpec`), identical in both formats (the
same weights, NHWC for TFLite, NCHW for ONNX)::

    input → Conv 3x3 (c1) + ReLU → depthwise 3x3 + ReLU → Conv 1x1 (c2) + ReLU
          → global average pool → fully connected (classes) → softmax

in four variants (:data:`VARIANTS`): ``fp32``; ``fp16`` (fp16 weights + DEQUANTIZE
ops in TFLite, as the converter emits; fp16 initializers + Cast in ONNX);
``int8`` (TFLite full-integer with int8 input/output; ONNX QDQ); ``pruned`` (fp32
with an exact fraction of zero kernel elements).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

VARIANTS = ("fp32", "fp16", "int8", "pruned")
"""Compression variants of the CNN fixture."""

DEFAULT_PRUNE_FRACTION = 0.5
"""Fraction of each kernel's elements set to exactly zero in the ``pruned`` variant."""

ONNX_OPSET = 17
# IR 8 / opset 17 load on onnxruntime >= 1.14, i.e. on the devices we target too.
ONNX_IR_VERSION = 8

CUSTOM_OP_NAME = "EdgeprofTestOp"
"""custom_code of the TFLite custom op and op_type of the unknown-domain ONNX node."""
CUSTOM_DOMAIN = "com.edgeprof.test"


# ---------------------------------------------------------------------------
# The CNN's architecture and its hand-computed cost
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CnnSpec:
    """Sizes of the CNN fixture; :meth:`params` and :meth:`macs` are computed by hand."""

    hw: int = 16
    """Input height = width."""
    in_ch: int = 3
    """Input channels."""
    c1: int = 8
    """Channels of the 3x3 conv (and of the depthwise conv)."""
    c2: int = 16
    """Channels of the 1x1 conv."""
    classes: int = 10
    """Outputs of the fully connected layer."""

    def kernel_sizes(self) -> dict[str, int]:
        """Element count of each kernel (weights, not biases)."""
        return {
            "conv1": self.c1 * self.in_ch * 9,
            "dw": self.c1 * 9,
            "conv2": self.c2 * self.c1,
            "fc": self.classes * self.c2,
        }

    def bias_sizes(self) -> dict[str, int]:
        """Element count of each bias."""
        return {"conv1": self.c1, "dw": self.c1, "conv2": self.c2, "fc": self.classes}

    def params(self) -> int:
        """Weights + biases (what analysis reports as ``params`` for every variant)."""
        return sum(self.kernel_sizes().values()) + sum(self.bias_sizes().values())

    def macs(self, batch: int = 1) -> int:
        """Multiply-accumulates of the conv and fully connected layers (SAME padding)."""
        pixels = self.hw * self.hw
        per_sample = (
            pixels * self.c1 * self.in_ch * 9  # conv 3x3
            + pixels * self.c1 * 9  # depthwise 3x3
            + pixels * self.c2 * self.c1  # conv 1x1
            + self.c2 * self.classes  # fully connected
        )
        return batch * per_sample

    def pruned_zeros(self, fraction: float = DEFAULT_PRUNE_FRACTION) -> int:
        """Exactly-zero elements of the ``pruned`` variant (kernels only; biases stay)."""
        return sum(math.floor(n * fraction) for n in self.kernel_sizes().values())

    def pruned_sparsity(self, fraction: float = DEFAULT_PRUNE_FRACTION) -> float:
        """Zero elements / all parameter elements of the ``pruned`` variant."""
        return self.pruned_zeros(fraction) / self.params()


DEMO_SPEC = CnnSpec(hw=64, in_ch=3, c1=32, c2=64, classes=10)
"""The CNN shipped for `hostctl demo`: ~13 M MACs, a fraction of a millisecond
per inference, ~17 KB as fp32 and ~10 KB as int8 — small enough to ship, big
enough for fp32-vs-int8 differences to show."""

SLOW_SPEC = CnnSpec(hw=96, in_ch=3, c1=64, c2=128, classes=10)
"""A CNN of ~100 M MACs: a few milliseconds per inference on a laptop core."""


def cnn_weights(spec: CnnSpec, *, seed: int = 0, prune_fraction: float = 0.0) -> dict[str, Array]:
    """Float32 weights in ONNX layouts (OIHW; FC as [out, in]).

    Every value has magnitude in [0.05, 0.5], so no weight is zero unless pruned and
    int8 quantization never rounds one to zero. With ``prune_fraction`` > 0, exactly
    ``floor(n * fraction)`` elements of each kernel are set to zero.
    """
    rng = np.random.default_rng(seed)
    shapes = {
        "w1": (spec.c1, spec.in_ch, 3, 3),
        "b1": (spec.c1,),
        "wd": (spec.c1, 1, 3, 3),
        "bd": (spec.c1,),
        "w2": (spec.c2, spec.c1, 1, 1),
        "b2": (spec.c2,),
        "wf": (spec.classes, spec.c2),
        "bf": (spec.classes,),
    }
    weights: dict[str, Array] = {}
    for name, shape in shapes.items():
        magnitude = rng.uniform(0.05, 0.5, size=shape)
        sign = rng.choice(np.array([-1.0, 1.0]), size=shape)
        weights[name] = (magnitude * sign).astype(np.float32)
    if prune_fraction > 0:
        for name in ("w1", "wd", "w2", "wf"):
            flat = weights[name].reshape(-1)
            count = math.floor(flat.size * prune_fraction)
            flat[rng.permutation(flat.size)[:count]] = 0.0
    return weights


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")


CLASSIFIER_CLASSES = 10
"""Inputs = outputs of the deterministic classifier."""


def quantize_per_channel(w: Array, axis: int) -> tuple[Array, list[float]]:
    """Symmetric int8 quantization per output channel (zero point 0, as TFLite requires)."""
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    scales = np.abs(moved).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
    return q, [float(s) for s in scales]
