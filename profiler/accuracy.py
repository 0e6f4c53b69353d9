"""Top-1 accuracy of a classifier on a labelled .npz (``x``: samples, ``y``: labels).

Runs in the worker after the timed loops. Quantized (int8/uint8) inputs are
quantized with the input's scale/zero point; quantized outputs are dequantized
before the argmax.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from profiler.backends.base import Array, Backend, TensorSpec, is_static_dim
from profiler.errors import BAD_EVAL_DATA, ProfilerError

log = logging.getLogger(__name__)

MAX_BATCH = 64
"""Largest batch used when the model's batch dimension is dynamic."""


def load_eval_data(path: str) -> tuple[Array, Array]:
    """``(x, y)`` with integer labels ``y`` of shape (N,); BAD_EVAL_DATA when unusable."""
    import numpy as np

    file = Path(path)
    if not file.is_file():
        raise ProfilerError(BAD_EVAL_DATA, f"evaluation file {file} does not exist")
    try:
        loaded = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ProfilerError(BAD_EVAL_DATA, f"{file.name} is not a readable .npz ({exc})") from None
    if isinstance(loaded, np.ndarray):
        raise ProfilerError(
            BAD_EVAL_DATA, f"{file.name} is a single array; give a .npz with x and y"
        )
    try:
        with loaded as data:
            missing = [k for k in ("x", "y") if k not in data.files]
            if missing:
                raise ProfilerError(
                    BAD_EVAL_DATA,
                    f"{file.name} lacks {' and '.join(missing)}: it has "
                    f"{', '.join(data.files) or 'no arrays'}; save it with "
                    "np.savez(path, x=samples, y=labels)",
                )
            x, y = data["x"], data["y"]
    except (OSError, ValueError, EOFError) as exc:
        raise ProfilerError(BAD_EVAL_DATA, f"{file.name} is not a readable .npz ({exc})") from None
    if y.ndim == 2:  # one-hot
        y = np.argmax(y, axis=1)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file.name}: y must be integer labels of shape (N,) or one-hot (N, C), "
            f"got {y.dtype} {list(y.shape)}",
        )
    if x.ndim < 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file.name}: x has {x.shape[0] if x.ndim else 0} samples but y has "
            f"{y.shape[0]} labels; they must match and be non-empty",
        )
    return x, y.astype(np.int64)


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
    """``{"top1": fraction correct, "n": samples}`` of the model's first output."""
    import numpy as np

    file_name = Path(eval_path).name
    x, y = load_eval_data(eval_path)
    specs = backend.input_specs()
    if len(specs) != 1:
        raise ProfilerError(
            BAD_EVAL_DATA, f"accuracy needs a single-input model; this one has {len(specs)}"
        )
    spec = specs[0]
    out_specs = backend.output_specs()
    out_spec = out_specs[0] if out_specs else None
    sample_dims = spec.shape[1:]
    if len(sample_dims) != x.ndim - 1 or any(
        is_static_dim(want) and want != got
        for want, got in zip(sample_dims, x.shape[1:], strict=False)
    ):
        raise ProfilerError(
            BAD_EVAL_DATA,
            f"{file_name}: x samples have shape {list(x.shape[1:])} but input {spec.name} "
            f"expects {spec.dims_text()} (first dim = batch)",
        )
    x = _to_model_dtype(x, spec, file_name)
    batch_dim = spec.shape[0] if spec.shape else 1
    fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
    batch = fixed_batch if fixed_batch is not None else min(MAX_BATCH, len(x))
    batch = max(batch, 1)
    correct = 0
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
        correct += int(np.sum(np.argmax(scores, axis=1) == y[start : start + n]))
    log.debug("accuracy: %d of %d correct", correct, len(x))
    return {"top1": correct / len(x), "n": len(x)}
