"""Compare a variant's outputs with its source's on the same samples: top-1 agreement
and output signal-to-noise ratio, so a broken variant is caught before it is pushed."""

from __future__ import annotations

import math

import numpy as np

from modelkit.variants.record import FLAG_LOW_AGREEMENT, FLAG_LOW_SNR, Check
from modelkit.variants.runtime import Array

MIN_AGREEMENT = 0.90
"""Below this top-1 agreement with the source a variant is flagged ``low_agreement``."""

MIN_SNR_DB = 10.0
"""Below this output SNR (noise a tenth of the signal's power) it is flagged ``low_snr``."""


def top1(outputs: Array) -> Array:
    """Index of the largest output per sample (rows of ``outputs``)."""
    return np.asarray(np.argmax(outputs, axis=1))


def snr_db(reference: Array, outputs: Array) -> float:
    """``10 log10(sum(ref²) / sum((ref − out)²))``; +inf when the outputs are identical."""
    ref = reference.astype(np.float64)
    noise = float(np.sum((ref - outputs.astype(np.float64)) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def compare(reference: Array, outputs: Array, *, inputs: str, labels: Array | None = None) -> Check:
    """The :class:`Check` of ``outputs`` against ``reference`` (both (n, elements))."""
    if reference.shape != outputs.shape:
        raise ValueError(
            f"the variant's output has {outputs.shape[1:]} values per sample, the source's "
            f"{reference.shape[1:]}"
        )
    classes = reference.shape[1] if reference.ndim == 2 else 0
    agreement = None
    if classes > 1:
        agreement = float(np.mean(top1(reference) == top1(outputs)))
    top1_variant = top1_source = None
    if labels is not None and classes > 1:
        top1_variant = float(np.mean(top1(outputs) == labels))
        top1_source = float(np.mean(top1(reference) == labels))
    return Check(
        inputs=inputs,
        n=int(reference.shape[0]),
        agreement=agreement,
        snr_db=snr_db(reference, outputs),
        top1=top1_variant,
        top1_source=top1_source,
    )


def check_flags(check: Check) -> list[str]:
    """``low_agreement`` / ``low_snr`` when the check is under the thresholds."""
    flags = []
    if check.agreement is not None and check.agreement < MIN_AGREEMENT:
        flags.append(FLAG_LOW_AGREEMENT)
    if check.snr_db is not None and check.snr_db < MIN_SNR_DB:
        flags.append(FLAG_LOW_SNR)
    return flags
