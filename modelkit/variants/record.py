"""What a variant is and how it was made: the recipe record written beside each file.

``NAME.recipe.json`` (next to ``NAME.tflite`` / ``NAME.onnx``) holds::

    {"schema": "edgeprof.variant/1",
     "variant": {kind, recipe{tool, version, options, calibration_sha256}, source_sha256},
     "file", "format", "sha256", "size_bytes", "sparsity", "weight_dtypes",
     "check": {inputs, n, agreement, snr_db, top1, top1_source} | null,
     "flags": [...]}

``variant`` is exactly the result document's ``model.variant`` (DESIGN), so it can
travel into results unchanged and a study can group variants under their source.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD_SCHEMA = "edgeprof.variant/1"

KINDS = ("fp32", "f16", "blq", "wo8", "fiq", "prn", "prq")
"""Variant kinds, in the order they are made and listed."""

KIND_TITLES = {
    "fp32": "the source, unchanged (NQ)",
    "f16": "float16 weights",
    "blq": "dynamic-range int8 (int8 weights, float activations quantized at run time)",
    "wo8": "int8 weight-only (dequantized to float before each op)",
    "fiq": "full integer int8 (static, calibrated; int8 input and output)",
    "prn": "magnitude-pruned fp32",
    "prq": "magnitude-pruned, then dynamic-range int8",
}

PRUNED_KINDS = ("prn", "prq")

# Flags a variant (or its check) may carry.
FLAG_RANDOM_CALIBRATION = "random_calibration"
FLAG_LOW_AGREEMENT = "low_agreement"
FLAG_LOW_SNR = "low_snr"
FLAG_RANDOM_CHECK_INPUTS = "checked_on_random_inputs"
FLAG_CHECK_FAILED = "check_failed"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Recipe:
    """How a variant was made: the tool that wrote the file and what it was told."""

    tool: str
    """Distribution name of the library that wrote the file (``ai-edge-quantizer``, …)."""
    version: str
    """Its installed version."""
    options: dict[str, Any]
    """What the tool was asked to do (recipe name, per-channel, sparsity, …)."""
    calibration_sha256: str | None = None
    """SHA-256 of the calibration file; None when none was used (or it was random)."""

    def to_dict(self) -> dict[str, Any]:
        """The ``recipe`` object of ``model.variant``."""
        return {
            "tool": self.tool,
            "version": self.version,
            "options": self.options,
            "calibration_sha256": self.calibration_sha256,
        }


@dataclass(frozen=True)
class Check:
    """How a variant's outputs compare with its source's on the same inputs."""

    inputs: str
    """Where the inputs came from: ``eval FILE``, ``calibration FILE`` or ``random``."""
    n: int
    """Samples compared."""
    agreement: float | None
    """Fraction of samples whose top-1 class is the source's (None: single-value output)."""
    snr_db: float | None
    """Output signal-to-noise ratio against the source, in dB (+inf: outputs identical;
    written as null with ``identical: true``)."""
    top1: float | None = None
    """Top-1 accuracy of the variant when the inputs came with labels."""
    top1_source: float | None = None
    """Top-1 accuracy of the source on the same labelled inputs."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; non-finite numbers become None."""

        def finite(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else round(x, 6)

        return {
            "inputs": self.inputs,
            "n": self.n,
            "agreement": finite(self.agreement),
            "snr_db": finite(self.snr_db),
            "identical": self.snr_db is not None and self.snr_db == math.inf,
            "top1": finite(self.top1),
            "top1_source": finite(self.top1_source),
        }


@dataclass
class Outcome:
    """One requested variant: made (``path`` set) or not (``reason`` set)."""

    kind: str
    name: str
    """File-name tag: the kind, with the sparsity in percent for pruned kinds (``prn50``)."""
    sparsity: float | None = None
    """Target sparsity of a pruned kind."""
    path: Path | None = None
    recipe_path: Path | None = None
    recipe: Recipe | None = None
    source_sha256: str = ""
    sha256: str | None = None
    size_bytes: int | None = None
    format: str = ""
    measured_sparsity: float | None = None
    """Fraction of exactly-zero parameters, as ``profiler.analysis`` counts them."""
    weight_dtypes: dict[str, int] = field(default_factory=dict)
    check: Check | None = None
    flags: list[str] = field(default_factory=list)
    reason: str | None = None
    """Why the variant was not made (one line)."""

    @property
    def made(self) -> bool:
        """True when the file was written."""
        return self.path is not None and self.reason is None

    def variant(self) -> dict[str, Any] | None:
        """The result document's ``model.variant`` object (None when not made)."""
        if self.recipe is None:
            return None
        return {
            "kind": self.kind,
            "recipe": self.recipe.to_dict(),
            "source_sha256": self.source_sha256,
        }

    def to_dict(self) -> dict[str, Any]:
        """What ``hostctl variants --json`` prints for this variant."""
        doc: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "made": self.made,
            "reason": self.reason,
            "target_sparsity": self.sparsity,
            "flags": list(self.flags),
        }
        if self.made:
            doc.update(self.record())
            doc["recipe_file"] = str(self.recipe_path) if self.recipe_path else None
        return doc

    def record(self) -> dict[str, Any]:
        """The content of ``NAME.recipe.json``."""
        return {
            "schema": RECORD_SCHEMA,
            "variant": self.variant(),
            "file": self.path.name if self.path else None,
            "format": self.format,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "sparsity": None
            if self.measured_sparsity is None
            else round(self.measured_sparsity, 6),
            "weight_dtypes": dict(self.weight_dtypes),
            "check": self.check.to_dict() if self.check else None,
            "flags": list(self.flags),
        }

    def write_record(self) -> Path:
        """Write ``NAME.recipe.json`` beside the variant file and return its path."""
        if self.path is None:
            raise ValueError("a variant that was not made has no record")
        target = self.path.with_name(self.path.stem + ".recipe.json")
        target.write_text(json.dumps(self.record(), indent=2) + "\n", encoding="utf-8")
        self.recipe_path = target
        return target


def read_record(path: str | Path) -> dict[str, Any]:
    """Load a ``NAME.recipe.json``; ValueError when it is not a variant record."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("schema") != RECORD_SCHEMA:
        raise ValueError(f"{path} is not an {RECORD_SCHEMA} record")
    return doc
