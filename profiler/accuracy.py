"""Top-1 accuracy of a classifier on a labelled .npz (``x``: samples, ``y``: labels).

Runs in the worker after the timed loops. Quantized (int8/uint8) inputs are
quantized with the input's scale/zero point; quantized outputs are dequantized
before the argmax.

Besides top-1, the result carries which samples were right (``correct``,
bit-packed: :func:`protocol.result.encode_correct`) and the SHA-256 of the data file
(``data_sha256``), so the regression gate can pair two models sample by sample
when they were evaluated on the same data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from profiler.backends.base import Array, Backend, TensorSpec, is_static_dim
from profiler.errors import BAD_EVAL_DATA, ProfilerError
from profiler.inputs import NPY_MAGIC, ZIP_MAGIC, file_magic
from profiler.names import display_name
from profiler.result import file_sha256
from protocol.result import encode_correct

log = logging.getLogger(__name__)

MAX_BATCH = 64
"""Largest batch used when the model's batch dimension is dynamic."""

MAX_CORRECT_SAMPLES = 200_000
"""Per-sample correctness travels for at most this many samples (25 KB of bits,
33 KB of base64): a result must stay small enough for any broker."""


def _require_npz(file: Path) -> None:
    """BAD_EVAL_DATA unless ``file`` exists and starts like a zip archive (.npz).

    Checked before ``np.load``: on a non-zip file NumPy tries to unpickle it and
    complains about ``allow_pickle``, which sends the user the wrong way.
    """
    if not file.is_file():
        raise ProfilerError(BAD_EVAL_DATA, f"evaluation file {file} does not exist")
    head = file_magic(file)
    if head.startswith(ZIP_MAGIC):
        from profiler.arrays import check_declared_size

        check_declared_size(file, code=BAD_EVAL_DATA)  # a zip bomb stops here, before any read
        return
    what = "a single .npy array" if head.startswith(NPY_MAGIC) else "not a .npz archive"
    raise ProfilerError(
        BAD_EVAL_DATA,
        f"{display_name(file)} is {what}; give a .npz with x and y, saved with "
        "np.savez(path, x=samples, y=labels)",
    )


def _missing_keys(file: Path, keys: list[str]) -> None:
    missing = [k for k in ("x", "y") if k not in keys]
    if missing:
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{display_name(file)} lacks {' and '.join(missing)}: it has "
            f"{', '.join(keys) or 'no arrays'}; save it with "
            "np.savez(path, x=samples, y=labels)",
        )


def _labels(y: Array, file_name: str) -> Array:
    """Integer labels of shape (N,) from ``y`` (one-hot (N, C) is argmax-ed)."""
    import numpy as np

    if y.ndim == 2:  # one-hot
        y = np.argmax(y, axis=1)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file_name}: y must be integer labels of shape (N,) or one-hot (N, C), "
            f"got {y.dtype} {list(y.shape)}",
        )
    return y.astype(np.int64)


def _check_counts(x_shape: tuple[int, ...], n_labels: int, file_name: str) -> None:
    n_x = x_shape[0] if x_shape else 0
    if not x_shape or n_x != n_labels or n_x == 0:
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file_name}: x has {n_x} samples but y has "
            f"{n_labels} labels; they must match and be non-empty",
        )


def load_eval_data(path: str) -> tuple[Array, Array]:
    """``(x, y)`` with integer labels ``y`` of shape (N,); BAD_EVAL_DATA when unusable."""
    import zipfile

    import numpy as np

    file = Path(path)
    _require_npz(file)
    try:
        with np.load(file, allow_pickle=False) as data:
            _missing_keys(file, list(data.files))
            x, y = data["x"], data["y"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ProfilerError(
            BAD_EVAL_DATA, f"{display_name(file)} is not a readable .npz ({exc})"
        ) from None
    labels = _labels(y, display_name(file))
    _check_counts(tuple(x.shape), labels.shape[0], display_name(file))
    return x, labels


def model_classes(spec: TensorSpec | None) -> int | None:
    """How many scores the model's first output gives per sample (None if unknown).

    The argmax runs over everything but the batch dim, so that is the product
    of the remaining dims; a 1-D output has no batch dim.
    """
    if spec is None or not spec.shape:
        return None
    dims = spec.shape[1:] if len(spec.shape) > 1 else spec.shape
    if not all(is_static_dim(d) for d in dims):
        return None
    return math.prod(int(d) for d in dims if isinstance(d, int))


def _check_label_range(y: Array, classes: int | None, file_name: str) -> None:
    if len(y) == 0:
        return
    low, high = int(y.min()), int(y.max())
    if low < 0 or (classes is not None and high >= classes):
        span = f"0..{classes - 1} (the model has {classes} outputs)" if classes else "0.."
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file_name}: y has labels outside {span}; labels found {low}..{high}",
        )


def _check_samples(
    x_shape: tuple[int, ...], x_dtype: Any, spec: TensorSpec, file_name: str
) -> None:
    """x's per-sample shape fits the input and its dtype can be fed to it."""
    import numpy as np

    sample_dims = spec.shape[1:]
    if len(sample_dims) != len(x_shape) - 1 or any(
        is_static_dim(want) and want != got
        for want, got in zip(sample_dims, x_shape[1:], strict=False)
    ):
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file_name}: x samples have shape {list(x_shape[1:])} but input {spec.name} "
            f"expects {spec.dims_text()} (first dim = batch)",
        )
    dtype = np.dtype(x_dtype)
    if dtype.kind not in "biuf":
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file_name}: x is {dtype}, input {spec.name} expects {spec.dtype}; save x as numbers",
        )
    if (
        str(dtype) != spec.dtype
        and spec.dtype in ("int8", "uint8", "int16")
        and np.issubdtype(dtype, np.floating)
        and (spec.scale is None or spec.zero_point is None)
    ):
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file_name}: the model input {spec.name} is {spec.dtype} without "
            "quantization parameters; give x already as " + spec.dtype,
        )


def _single_input(specs: Sequence[TensorSpec]) -> TensorSpec:
    if len(specs) != 1:
        raise ProfilerError(
            BAD_EVAL_DATA, f"accuracy needs a single-input model; this one has {len(specs)}"
        )
    return specs[0]


def check_eval_file(
    path: str, input_specs: Sequence[TensorSpec], output_specs: Sequence[TensorSpec]
) -> None:
    """Validate an ``--eval`` file cheaply, before anything is measured.

    Reads only the zip directory, x's .npy header (shape, dtype) and y (labels
    are small); x's data stays on disk until :func:`evaluate_top1`, so the
    worker's memory reading for the model does not include the data set.
    Raises BAD_EVAL_DATA with the same messages :func:`evaluate_top1` would.
    """
    import zipfile

    import numpy as np

    file = Path(path)
    _require_npz(file)
    spec = _single_input(input_specs)
    try:
        with zipfile.ZipFile(file) as archive:
            members = {n.removesuffix(".npy"): n for n in archive.namelist()}
            _missing_keys(file, list(members))
            with archive.open(members["x"]) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    x_shape, _, x_dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    x_shape, _, x_dtype = np.lib.format.read_array_header_2_0(fh)
            with archive.open(members["y"]) as fh:
                y = np.lib.format.read_array(fh, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ProfilerError(
            BAD_EVAL_DATA, f"{display_name(file)} is not a readable .npz ({exc})"
        ) from None
    labels = _labels(y, display_name(file))
    _check_counts(tuple(x_shape), labels.shape[0], display_name(file))
    _check_samples(tuple(x_shape), x_dtype, spec, display_name(file))
    _check_label_range(
        labels, model_classes(output_specs[0] if output_specs else None), display_name(file)
    )


def _to_model_dtype(x: Array, spec: TensorSpec, file_name: str) -> Array:
    import numpy as np

    if str(x.dtype) == spec.dtype:
        return x
    if spec.dtype in ("int8", "uint8", "int16") and np.issubdtype(x.dtype, np.floating):
        if spec.scale is None or spec.zero_point is None:
            raise ProfilerError(
                BAD_EVAL_DATA,
                f"{file_name}: the model input {spec.name} is {spec.dtype} without "
                "quantization parameters; give x already as " + spec.dtype,
            )
        info = np.iinfo(spec.dtype)
        q = np.round(x / spec.scale + spec.zero_point)
        return np.clip(q, info.min, info.max).astype(spec.dtype)
    return x.astype(spec.dtype)


def _scores(out: Array, spec: TensorSpec | None, batch: int) -> Array:
    import numpy as np

    values = out.astype(np.float32)
    if spec is not None and spec.scale is not None and spec.zero_point is not None:
        values = (values - spec.zero_point) * spec.scale
    return values.reshape(batch, -1)


def evaluate_top1(backend: Backend, eval_path: str) -> dict[str, Any]:
    """``{"top1": fraction correct, "n": samples, "correct": ..., "data_sha256": ...}``
    of the model's first output.

    ``correct`` is :func:`protocol.result.encode_correct` of the per-sample outcomes (null above
    :data:`MAX_CORRECT_SAMPLES`), ``data_sha256`` the eval file's hash: the gate
    pairs two results sample by sample when both name the same data.
    """
    import numpy as np

    file_name = display_name(eval_path)
    x, y = load_eval_data(eval_path)
    spec = _single_input(backend.input_specs())
    out_specs = backend.output_specs()
    out_spec = out_specs[0] if out_specs else None
    _check_samples(tuple(x.shape), x.dtype, spec, file_name)
    _check_label_range(y, model_classes(out_spec), file_name)
    x = _to_model_dtype(x, spec, file_name)
    batch_dim = spec.shape[0] if spec.shape else 1
    fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
    batch = fixed_batch if fixed_batch is not None else min(MAX_BATCH, len(x))
    batch = max(batch, 1)
    outcomes = np.zeros(len(x), dtype=bool)
    prepared_shape: tuple[int, ...] | None = None
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        n = len(chunk)
        if fixed_batch is not None and n < batch:
            # A fixed batch dim: pad the last chunk and ignore the padding.
            pad = np.zeros((batch - n, *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        chunk = np.ascontiguousarray(chunk)
        if chunk.shape != prepared_shape:
            backend.prepare({spec.name: list(chunk.shape)})
            prepared_shape = tuple(chunk.shape)
        scores = _scores(backend.run({spec.name: chunk})[0], out_spec, len(chunk))[:n]
        outcomes[start : start + n] = np.argmax(scores, axis=1) == y[start : start + n]
    correct = int(outcomes.sum())
    log.debug("accuracy: %d of %d correct", correct, len(x))
    return {
        "top1": correct / len(x),
        "n": len(x),
        "correct": (encode_correct(outcomes.tolist()) if len(x) <= MAX_CORRECT_SAMPLES else None),
        "data_sha256": file_sha256(eval_path),
    }
