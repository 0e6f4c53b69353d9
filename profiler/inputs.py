"""Model inputs: generated from the signature (seeded, dtype-aware) or read from .npy/.npz.

Runs in the worker process (imports NumPy lazily).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from profiler.backends.base import Array, TensorSpec, is_static_dim
from profiler.errors import BAD_INPUT, DYNAMIC_SHAPE, NOT_FOUND, ProfilerError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

SUPPORTED_DTYPES = (
    "float32",
    "float16",
    "float64",
    "int8",
    "uint8",
    "int16",
    "int32",
    "int64",
    "bool",
)


@dataclass
class PreparedInputs:
    """Concrete shapes, the arrays to bind and how they were obtained."""

    shapes: dict[str, tuple[int, ...]]
    arrays: dict[str, Array]
    description: dict[str, Any] = field(default_factory=dict)
    """``settings.inputs`` of the result: source, seed or file, and each tensor."""


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _example_shape(spec: TensorSpec) -> str:
    # Dynamic dims shown as 1: a runnable suggestion for batch-like dims.
    return ",".join(str(d) if is_static_dim(d) else "1" for d in spec.shape)


def dynamic_shape_error(specs: Sequence[TensorSpec]) -> ProfilerError:
    """The DYNAMIC_SHAPE error listing every dynamic input and the --shape to give."""
    dynamic = [s for s in specs if s.is_dynamic]
    listed = ", ".join(f"{s.name}{s.dims_text()}" for s in dynamic)
    options = " ".join(f"--shape {s.name}={_example_shape(s)}" for s in dynamic)
    return ProfilerError(
        DYNAMIC_SHAPE, f"model has dynamic input dims: {listed}; give them with {options}"
    )


def _check_given(spec: TensorSpec, given: Sequence[int], origin: str) -> tuple[int, ...]:
    if len(given) != len(spec.shape):
        raise ProfilerError(
            BAD_INPUT,
            f"{origin}: input {spec.name} has {len(spec.shape)} dims {spec.dims_text()}, "
            f"got {len(given)} ({_shape_text(given)})",
        )
    for want, got in zip(spec.shape, given, strict=True):
        if is_static_dim(want) and want != got:
            raise ProfilerError(
                BAD_INPUT,
                f"{origin}: input {spec.name} has fixed dims {spec.dims_text()}, "
                f"got {_shape_text(given)}",
            )
    return tuple(int(d) for d in given)


def resolve_shapes(
    specs: Sequence[TensorSpec],
    given: Mapping[str, Sequence[int]],
    supplied: Mapping[str, Array] | None = None,
) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every input.

    Dynamic dims come from ``given`` (``--shape``) or from supplied arrays;
    missing ones raise DYNAMIC_SHAPE, contradictions BAD_INPUT.
    """
    names = [s.name for s in specs]
    unknown = [n for n in given if n not in names]
    if unknown:
        raise ProfilerError(
            BAD_INPUT,
            f"--shape {unknown[0]}: the model has no input {unknown[0]!r}; "
            f"inputs: {', '.join(names)}",
        )
    shapes: dict[str, tuple[int, ...]] = {}
    missing: list[TensorSpec] = []
    for spec in specs:
        if spec.name in given:
            shapes[spec.name] = _check_given(spec, given[spec.name], f"--shape {spec.name}")
        elif supplied is not None and spec.name in supplied:
            shapes[spec.name] = tuple(int(d) for d in supplied[spec.name].shape)
        elif spec.is_dynamic:
            missing.append(spec)
        else:
            shapes[spec.name] = tuple(int(d) for d in spec.shape)  # type: ignore[arg-type]
    if missing:
        raise dynamic_shape_error(missing)
    return shapes


def inputs_nbytes(specs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]]) -> int:
    """Bytes the arrays of ``shapes`` take in their inputs' dtypes."""
    import numpy as np

    total = 0
    for spec in specs:
        try:
            itemsize = np.dtype(spec.dtype).itemsize
        except TypeError:
            itemsize = 8
        total += math.prod(int(d) for d in shapes[spec.name]) * itemsize
    return total


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def check_fits_in_memory(
    specs: Sequence[TensorSpec],
    shapes: Mapping[str, Sequence[int]],
    available_bytes: float | None = None,
) -> None:
    """BAD_INPUT when generated inputs of ``shapes`` cannot fit in available memory.

    Checked before allocating: a huge ``--shape`` would otherwise run for
    minutes, swap, and be SIGKILLed by the kernel's OOM killer. The runtime
    holds a copy of the inputs (and generating float16/float64 goes through a
    float32 array), so twice their size must be available. ``available_bytes``
    defaults to the system's MemAvailable.
    """
    if available_bytes is None:
        from profiler.memory import memory_available_mb

        available_mb = memory_available_mb()
        if available_mb is None:
            return
        available_bytes = available_mb * 1024 * 1024
    need = inputs_nbytes(specs, shapes)
    if 2 * need > available_bytes:
        raise ProfilerError(
            BAD_INPUT,
            f"inputs of {_gb(need)} do not fit in {_gb(available_bytes)} of available "
            "memory (the runtime needs its own copy too); lower --shape",
        )


def generate_array(spec: TensorSpec, shape: Sequence[int], rng: np.random.Generator) -> Array:
    """Random data of the input's dtype: normal floats, full-range small ints, small ids."""
    import numpy as np

    dtype = spec.dtype
    if dtype in ("float32", "float16", "float64"):
        return rng.standard_normal(size=tuple(shape), dtype=np.float32).astype(dtype, copy=False)
    if dtype in ("int8", "uint8", "int16"):
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=tuple(shape), dtype=dtype)
    if dtype in ("int32", "int64", "uint16", "uint32", "uint64"):
        # Wide integers are usually indices or token ids: stay small and valid.
        return rng.integers(0, 10, size=tuple(shape), dtype=dtype)
    if dtype == "bool":
        return rng.integers(0, 2, size=tuple(shape)).astype(bool)
    raise ProfilerError(
        BAD_INPUT,
        f"input {spec.name} has dtype {dtype}, which edgeprof cannot generate; "
        "supply it with --inputs FILE.npz",
    )


def generate_inputs(
    specs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]], seed: int
) -> dict[str, Array]:
    """Seeded random inputs for every model input, in model order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {s.name: generate_array(s, shapes[s.name], rng) for s in specs}


NPY_MAGIC = b"\x93NUMPY"
"""First bytes of a .npy file."""
ZIP_MAGIC = b"PK\x03\x04"
"""First bytes of a zip archive, i.e. of a .npz file."""


def file_magic(file: Path, length: int = 6) -> bytes:
    """The first ``length`` bytes of ``file`` (b"" when unreadable)."""
    try:
        with file.open("rb") as fh:
            return fh.read(length)
    except OSError:
        return b""


def load_input_file(path: str, specs: Sequence[TensorSpec]) -> dict[str, Array]:
    """Arrays by input name from a .npy (single input) or .npz (by name, or arr_0.. in order)."""
    import numpy as np

    file = Path(path)
    if not file.is_file():
        raise ProfilerError(NOT_FOUND, f"input file {file} does not exist")
    names = [s.name for s in specs]
    # Checked before np.load: on anything else NumPy tries to unpickle the file
    # and blames allow_pickle, which sends the user the wrong way.
    head = file_magic(file)
    if not (head.startswith(NPY_MAGIC) or head.startswith(ZIP_MAGIC)):
        raise ProfilerError(
            BAD_INPUT,
            f"{file.name} is neither a .npy nor a .npz file; save inputs with "
            "np.save(path, array) or np.savez(path, name=array, ...)",
        )
    try:
        loaded = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ProfilerError(
            BAD_INPUT, f"{file.name} is not a readable .npy/.npz file ({exc})"
        ) from None
    if isinstance(loaded, np.ndarray):
        if len(specs) != 1:
            raise ProfilerError(
                BAD_INPUT,
                f"{file.name} holds one array but the model has {len(specs)} inputs "
                f"({', '.join(names)}); give a .npz with one array per input name",
            )
        return {names[0]: loaded}
    with loaded as npz:
        keys = list(npz.files)
        if all(n in keys for n in names):
            arrays = {n: npz[n] for n in names}
        elif all(f"arr_{i}" in keys for i in range(len(names))):
            arrays = {n: npz[f"arr_{i}"] for i, n in enumerate(names)}
        else:
            missing = [n for n in names if n not in keys]
            raise ProfilerError(
                BAD_INPUT,
                f"{file.name} has arrays {', '.join(keys) or '(none)'} but the model needs "
                f"{', '.join(names)} (missing {', '.join(missing)}); "
                "name them after the inputs or save them in order (arr_0, arr_1, ...)",
            )
    return arrays


def check_supplied(
    specs: Sequence[TensorSpec], arrays: Mapping[str, Array], file_name: str
) -> None:
    """Every supplied array matches its input's dtype and fixed dims (else BAD_INPUT)."""
    for spec in specs:
        arr = arrays[spec.name]
        got_dtype = str(arr.dtype)
        if got_dtype != spec.dtype:
            raise ProfilerError(
                BAD_INPUT,
                f"{file_name}: input {spec.name} expects {spec.dtype} {spec.dims_text()}, "
                f"got {got_dtype} {_shape_text(arr.shape)}; convert with .astype('{spec.dtype}')",
            )
        _check_given(spec, arr.shape, file_name)


def prepare_inputs(
    specs: Sequence[TensorSpec],
    *,
    shapes: Mapping[str, Sequence[int]],
    inputs_path: str | None,
    seed: int,
) -> PreparedInputs:
    """Resolve shapes and produce the arrays to bind, from a file or generated."""
    if inputs_path:
        arrays = load_input_file(inputs_path, specs)
        check_supplied(specs, arrays, Path(inputs_path).name)
        resolved = resolve_shapes(specs, shapes, arrays)
        for spec in specs:
            if tuple(arrays[spec.name].shape) != resolved[spec.name]:
                raise ProfilerError(
                    BAD_INPUT,
                    f"{Path(inputs_path).name}: input {spec.name} has shape "
                    f"{_shape_text(arrays[spec.name].shape)} but --shape says "
                    f"{_shape_text(resolved[spec.name])}",
                )
        source: dict[str, Any] = {"source": "file", "file": Path(inputs_path).name, "seed": None}
    else:
        resolved = resolve_shapes(specs, shapes)
        check_fits_in_memory(specs, resolved)
        arrays = generate_inputs(specs, resolved, seed)
        source = {"source": "generated", "file": None, "seed": seed}
    source["tensors"] = [
        {"name": s.name, "shape": list(resolved[s.name]), "dtype": s.dtype} for s in specs
    ]
    return PreparedInputs(shapes=resolved, arrays=arrays, description=source)
