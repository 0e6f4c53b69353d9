"""Magnitude pruning of weight tensors (unstructured, layer by layer).

Each weight tensor of a multiplying op (conv, depthwise, transposed conv, fully
connected / Gemm, MatMul with a constant operand) gets exactly ``floor(n * sparsity)``
of its smallest-magnitude elements set to zero; biases and every other constant stay
as they are. No fine-tuning follows: the check against the source shows what that
costs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelkit.variants.runtime import Array

METHOD = "magnitude"
SCOPE = "per-tensor"


def parse_sparsity(value: float) -> float:
    """``value`` when it is a sparsity in (0, 1); ValueError otherwise."""
    if not (0.0 < value < 1.0) or not math.isfinite(value):
        raise ValueError(f"sparsity {value:g} is outside (0, 1); give e.g. 0.5 for 50 % zeros")
    return value


def prune_array(weights: Array, sparsity: float) -> tuple[Array, int]:
    """A copy of ``weights`` with its ``floor(n * sparsity)`` smallest |w| set to 0,
    and how many elements that is. Ties break by position, so the count is exact."""
    flat = np.array(weights, copy=True).reshape(-1)
    count = math.floor(flat.size * sparsity)
    if count:
        order = np.argsort(np.abs(flat.astype(np.float32)), kind="stable")
        flat[order[:count]] = 0
    return flat.reshape(weights.shape), count


def pruning_options(sparsity: float, tensors: int, zeros: int, elements: int) -> dict[str, Any]:
    """The recipe options of a pruning step."""
    return {
        "method": METHOD,
        "scope": SCOPE,
        "sparsity": sparsity,
        "pruned_tensors": tensors,
        "pruned_elements": zeros,
        "weight_elements": elements,
        "fine_tuned": False,
    }
