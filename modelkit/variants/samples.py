"""Samples for calibration and checking: a ``.npz`` file, or seeded random data.

A calibration (or eval) file holds the model's inputs stacked on the first axis:
``x`` for a single-input model (the same file ``--eval`` takes, ``y`` optional), or
one array per input name. Sample ``i`` is ``x[i:i+1]``: a batch of one, in the
model's own layout and dtype (floats for a quantized input are quantized when run).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelkit.variants.errors import VariantError
from modelkit.variants.record import sha256_file
from modelkit.variants.runtime import Array, InputSpec

MAX_SAMPLES = 1000
"""At most this many samples are used from a file (calibration and checks)."""

RANDOM_SAMPLES = 32
"""Samples of ``--calibration random`` and of a check without data."""

RANDOM_SEED = 0


@dataclass(frozen=True)
class SampleSet:
    """Inputs, one dict {input name: batch-of-one array} per sample, and their origin."""

    samples: list[dict[str, Array]]
    origin: str
    """``FILE`` (its name) or ``random``."""
    sha256: str | None
    """SHA-256 of the file; None for random data."""
    labels: Array | None = None
    """Integer labels (N,) when the file has ``y``."""

    @property
    def is_random(self) -> bool:
        """True for generated data."""
        return self.sha256 is None

    def __len__(self) -> int:
        return len(self.samples)


def _fixed_shape(spec: InputSpec) -> list[int]:
    """Sample shape of ``spec``: dynamic dims become 1 (batch) — others must be fixed."""
    dims = [d if d >= 0 else -1 for d in spec.shape]
    if dims and dims[0] < 0:
        dims[0] = 1
    if any(d < 0 for d in dims):
        raise VariantError(
            f"input {spec.name} has dynamic dimensions {list(spec.shape)}: give a "
            "calibration file (--calibration CAL.npz) whose x has the concrete shape"
        )
    return dims


def random_samples(specs: Sequence[InputSpec], n: int = RANDOM_SAMPLES) -> SampleSet:
    """``n`` seeded samples: floats uniform in [0, 1), integers in their range."""
    rng = np.random.default_rng(RANDOM_SEED)
    samples: list[dict[str, Array]] = []
    for _ in range(n):
        sample: dict[str, Array] = {}
        for spec in specs:
            shape = _fixed_shape(spec)
            if spec.scale is not None or spec.dtype.startswith("float"):
                # Quantized inputs get floats too: they are quantized when run.
                sample[spec.name] = rng.random(shape, dtype=np.float32)
            elif spec.dtype == "bool":
                sample[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
            else:
                info = np.iinfo(spec.dtype)
                low, high = max(info.min, -128), min(info.max, 127)
                sample[spec.name] = rng.integers(low, high + 1, size=shape).astype(spec.dtype)
        samples.append(sample)
    return SampleSet(samples=samples, origin="random", sha256=None)


def load_samples(path: str | Path, specs: Sequence[InputSpec]) -> SampleSet:
    """The samples of a ``.npz`` for a model with inputs ``specs``; VariantError when
    the file is missing, not a .npz, or does not fit the model's inputs."""
    file = Path(path)
    if not file.is_file():
        raise VariantError(f"{file}: no such file; give a .npz of the model's inputs")
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise VariantError(
            f"{file.name} is not a readable .npz ({_first_line(exc)}); save it with "
            "np.savez(path, x=samples)"
        ) from None
    by_input = _match_inputs(arrays, specs, file.name)
    count = _sample_count(by_input, file.name)
    used = min(count, MAX_SAMPLES)
    samples = [
        {
            name: _sample(arr[i : i + 1], spec, file.name)
            for (name, arr), spec in _zip(by_input, specs)
        }
        for i in range(used)
    ]
    labels = _labels(arrays.get("y"), count, file.name)
    return SampleSet(
        samples=samples,
        origin=file.name,
        sha256=sha256_file(file),
        labels=None if labels is None else labels[:used],
    )


def _zip(
    by_input: Mapping[str, Array], specs: Sequence[InputSpec]
) -> list[tuple[tuple[str, Array], InputSpec]]:
    return [((spec.name, by_input[spec.name]), spec) for spec in specs]


def _match_inputs(
    arrays: Mapping[str, Array], specs: Sequence[InputSpec], file_name: str
) -> dict[str, Array]:
    names = [spec.name for spec in specs]
    if all(name in arrays for name in names):
        return {name: arrays[name] for name in names}
    if len(specs) == 1 and "x" in arrays:
        return {names[0]: arrays["x"]}
    wanted = "x" if len(specs) == 1 else ", ".join(names)
    raise VariantError(
        f"{file_name} has {', '.join(arrays) or 'no arrays'}; the model's inputs need "
        f"{wanted}: save it with np.savez(path, {'x' if len(specs) == 1 else names[0]}=samples)"
    )


def _sample_count(by_input: Mapping[str, Array], file_name: str) -> int:
    counts = {arr.shape[0] if arr.ndim else 0 for arr in by_input.values()}
    if len(counts) != 1 or 0 in counts:
        raise VariantError(
            f"{file_name}: every input array needs the same, non-zero number of samples "
            "on its first axis"
        )
    return counts.pop()


def _sample(value: Array, spec: InputSpec, file_name: str) -> Array:
    want = _fixed_shape(spec) if all(d >= 0 for d in spec.shape[1:]) else None
    if want is not None and list(value.shape) != want:
        raise VariantError(
            f"{file_name}: a sample of input {spec.name} has shape {list(value.shape)} but "
            f"the model takes {want}; store the samples as x of shape (N, {', '.join(map(str, want[1:]))})"
        )
    if value.dtype.kind not in "fiub":
        raise VariantError(f"{file_name}: input {spec.name} must be numeric, not {value.dtype}")
    return value


def _labels(y: Array | None, count: int, file_name: str) -> Array | None:
    if y is None:
        return None
    if y.ndim == 2:
        y = np.argmax(y, axis=1)
    if y.ndim != 1 or y.shape[0] != count or y.dtype.kind not in "iub":
        raise VariantError(
            f"{file_name}: y must be {count} integer labels (or one-hot rows), "
            f"got {y.dtype} {list(y.shape)}"
        )
    return y.astype(np.int64)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def as_feeds(samples: Sequence[Mapping[str, Array]]) -> list[dict[str, Any]]:
    """Copies of the samples as plain dicts (what the quantizers' readers yield)."""
    return [dict(s) for s in samples]
