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
from profiler.names import display_name
from profiler.settings import Number

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
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _dims_csv(dims: Sequence[int]) -> str:
    return ",".join(str(d) for d in dims)


def _shape_template(spec: TensorSpec) -> str:
    """``<batch>,3,48,<width>``: the --shape value to fill in, a fixed dim as it is and
    a dynamic one as a placeholder named after it (no size is guessed for it)."""
    names = iter(spec.dynamic_dims())
    return ",".join(str(d) if is_static_dim(d) else f"<{next(names)}>" for d in spec.shape)


def dynamic_shape_error(specs: Sequence[TensorSpec]) -> ProfilerError:
    """The DYNAMIC_SHAPE error: every input with dims of no size, which dims they are
    and the --shape to give (with placeholders, never a made-up size)."""
    dynamic = [s for s in specs if s.is_dynamic]
    listed = ", ".join(f"{s.label()} ({', '.join(s.dynamic_dims())})" for s in dynamic)
    options = " ".join(f"--shape {s.name}={_shape_template(s)}" for s in dynamic)
    return ProfilerError(
        DYNAMIC_SHAPE,
        f"model inputs have dims without a size: {listed}; give the whole shape of each "
        f"with the sizes to measure, {options}",
    )


def check_shapes(
    specs: Sequence[TensorSpec],
    given: Mapping[str, Sequence[int]],
    *,
    any_rank: Sequence[str] = (),
) -> dict[str, tuple[int, ...]]:
    """``--shape`` checked against the declared inputs: the one validation that
    ``hostctl inspect`` (profiler.analysis) and ``profile``/``push`` (the worker) share.

    Every name must be an input (``any_rank`` names inputs of unknown rank, which
    take any shape), of the input's rank, and agree with its fixed dims; a dynamic
    dim (named, None, or declared negative) takes any size. Returns the given shapes
    as tuples; raises BAD_INPUT naming what is wrong.
    """
    by_name = {s.name: s for s in specs}
    names = [*by_name, *(n for n in any_rank if n not in by_name)]
    checked: dict[str, tuple[int, ...]] = {}
    for name, dims in given.items():
        if name not in names:
            raise ProfilerError(
                BAD_INPUT,
                f"--shape {name}={_dims_csv(dims)}: the model has no input {name!r}; "
                f"its inputs are {', '.join(names) or '(none)'}",
            )
        spec = by_name.get(name)
        if spec is not None:
            _check_given(spec, dims, f"--shape {name}")
        checked[name] = tuple(int(d) for d in dims)
    return checked


def _check_given(spec: TensorSpec, given: Sequence[int], origin: str) -> tuple[int, ...]:
    if len(given) != len(spec.shape):
        raise ProfilerError(
            BAD_INPUT,
            f"{origin}: input {spec.label()} has {len(spec.shape)} dims, "
            f"got {len(given)} ({_shape_text(given)})",
        )
    for want, got in zip(spec.shape, given, strict=True):
        if is_static_dim(want) and want != got:
            raise ProfilerError(
                BAD_INPUT,
                f"{origin}: {_shape_text(given)} does not match the fixed dims of input "
                f"{spec.label()}",
            )
    return tuple(int(d) for d in given)


def resolve_shapes(
    specs: Sequence[TensorSpec],
    given: Mapping[str, Sequence[int]],
    supplied: Mapping[str, Array] | None = None,
) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every input.

    Dynamic dims come from ``given`` (``--shape``, see :func:`check_shapes`) or from
    supplied arrays; missing ones raise DYNAMIC_SHAPE, contradictions BAD_INPUT.
    """
    shapes = check_shapes(specs, given)
    missing: list[TensorSpec] = []
    for spec in specs:
        if spec.name in shapes:
            continue
        if supplied is not None and spec.name in supplied:
            shapes[spec.name] = tuple(int(d) for d in supplied[spec.name].shape)
        elif spec.is_dynamic:
            missing.append(spec)
        else:
            shapes[spec.name] = tuple(int(d) for d in spec.shape)  # type: ignore[arg-type]
    if missing:
        raise dynamic_shape_error(missing)
    return {spec.name: shapes[spec.name] for spec in specs}


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


_FLOAT_DTYPES = ("float32", "float16", "float64")
_INT_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
_SMALL_INT_DTYPES = ("int8", "uint8", "int16")


def _random_range(dtype: str) -> tuple[int, int] | None:
    """The inclusive range random integers of ``dtype`` are drawn from (None: floats,
    drawn from a standard normal)."""
    import numpy as np

    if dtype in _SMALL_INT_DTYPES:
        info = np.iinfo(dtype)
        return int(info.min), int(info.max)
    if dtype in _INT_DTYPES:
        # Wide integers are usually indices or token ids: stay small and valid.
        return 0, 9
    if dtype == "bool":
        return 0, 1
    return None


def _representable(value: Number, dtype: str) -> bool:
    """Whether ``value`` is exactly a value of ``dtype`` (floats: finite in it)."""
    import numpy as np

    if dtype in _FLOAT_DTYPES:
        return bool(abs(value) <= float(np.finfo(dtype).max))
    if dtype == "bool":
        return value in (0, 1)
    if dtype in _INT_DTYPES:
        info = np.iinfo(dtype)
        return float(value).is_integer() and int(info.min) <= value <= int(info.max)
    return False


def _generatable(spec: TensorSpec) -> None:
    if spec.dtype not in (*_FLOAT_DTYPES, *_INT_DTYPES, "bool"):
        raise ProfilerError(
            BAD_INPUT,
            f"input {spec.name} has dtype {spec.dtype}, which edgeprof cannot generate; "
            "supply it with --inputs FILE.npz",
        )


def check_fills(
    specs: Sequence[TensorSpec],
    values: Mapping[str, Number],
    ranges: Mapping[str, Sequence[Number]],
) -> None:
    """``--input-value`` / ``--input-range`` name inputs of the model and fit their
    dtypes (BAD_INPUT otherwise, naming the option, the input and what fits)."""
    by_name = {s.name: s for s in specs}
    given = [("--input-value", n, [v]) for n, v in values.items()]
    given += [("--input-range", n, list(r)) for n, r in ranges.items()]
    for option, name, numbers in given:
        text = f"{option} {name}={','.join(_number_text(v) for v in numbers)}"
        spec = by_name.get(name)
        if spec is None:
            raise ProfilerError(
                BAD_INPUT,
                f"{text}: the model has no input {name!r}; its inputs are "
                f"{', '.join(by_name) or '(none)'}",
            )
        _generatable(spec)
        bad = [v for v in numbers if not _representable(v, spec.dtype)]
        if bad:
            raise ProfilerError(
                BAD_INPUT,
                f"{text}: {_number_text(bad[0])} is not a value of input {name}'s dtype "
                f"{spec.dtype} ({_dtype_values(spec.dtype)})",
            )


def _number_text(value: Number) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _dtype_values(dtype: str) -> str:
    import numpy as np

    if dtype == "bool":
        return "0/1 or false/true"
    if dtype in _INT_DTYPES:
        info = np.iinfo(dtype)
        return f"integers {info.min}..{info.max}"
    return f"finite numbers up to ±{float(np.finfo(dtype).max):.4g}"


def generate_array(
    spec: TensorSpec,
    shape: Sequence[int],
    rng: np.random.Generator,
    *,
    value: Number | None = None,
    value_range: Sequence[Number] | None = None,
) -> Array:
    """Data of the input's dtype: ``value`` everywhere, uniform in ``value_range``
    (integers inclusive of its top), or random: normal floats, full-range small ints,
    small ids (see :func:`_random_range`)."""
    import numpy as np

    _generatable(spec)
    dtype = spec.dtype
    size = tuple(shape)
    if value is not None:
        return np.full(size, value, dtype=dtype)
    bounds = _random_range(dtype)
    if value_range is not None:
        lo, hi = value_range
        if bounds is None:
            return rng.uniform(lo, hi, size=size).astype(dtype, copy=False)
        bounds = (int(lo), int(hi))
    if bounds is None:
        return rng.standard_normal(size=size, dtype=np.float32).astype(dtype, copy=False)
    if dtype == "bool":
        return rng.integers(bounds[0], bounds[1] + 1, size=size).astype(bool)
    return rng.integers(bounds[0], bounds[1] + 1, size=size, dtype=dtype)


def fill_description(
    spec: TensorSpec,
    values: Mapping[str, Number],
    ranges: Mapping[str, Sequence[Number]],
) -> dict[str, Any]:
    """How a generated input is filled, for ``settings.inputs.tensors[]``:
    ``{"fill": "value", "value": V}``, ``{"fill": "range", "range": [LO, HI]}`` or
    ``{"fill": "random", "distribution": "normal(0, 1)" | "uniform", "range": ...}``."""
    if spec.name in values:
        return {"fill": "value", "value": values[spec.name]}
    if spec.name in ranges:
        return {"fill": "range", "range": list(ranges[spec.name])}
    bounds = _random_range(spec.dtype)
    if bounds is None:
        return {"fill": "random", "distribution": "normal(0, 1)", "range": None}
    return {"fill": "random", "distribution": "uniform", "range": list(bounds)}


def generate_inputs(
    specs: Sequence[TensorSpec],
    shapes: Mapping[str, Sequence[int]],
    seed: int,
    *,
    values: Mapping[str, Number] | None = None,
    ranges: Mapping[str, Sequence[Number]] | None = None,
) -> dict[str, Array]:
    """Seeded inputs for every model input, in model order; ``values``/``ranges`` by
    input name set the ones random data would not do for (checked with
    :func:`check_fills` first)."""
    import numpy as np

    values, ranges = values or {}, ranges or {}
    check_fills(specs, values, ranges)
    rng = np.random.default_rng(seed)
    return {
        s.name: generate_array(
            s, shapes[s.name], rng, value=values.get(s.name), value_range=ranges.get(s.name)
        )
        for s in specs
    }


def random_inputs_hint(description: Mapping[str, Any] | None) -> str:
    """``"; random inputs: sr (int64 in [0, 9]), …: …"`` naming the inputs that were
    filled randomly and how to set them, for the line of a runtime failure (a
    sample-rate or flag input filled with noise sends many models down an error
    branch); "" when no input was random."""
    if not description or description.get("source") != "generated":
        return ""
    random = [t for t in description.get("tensors") or [] if t.get("fill") == "random"]
    if not random:
        return ""

    def what(t: Mapping[str, Any]) -> str:
        bounds = t.get("range")
        spread = f"in [{bounds[0]}, {bounds[1]}]" if bounds else "normal(0, 1)"
        return f"{t.get('name')} ({t.get('dtype')} {spread})"

    listed = ", ".join(what(t) for t in random[:4])
    if len(random) > 4:
        listed += f" and {len(random) - 4} more"
    return (
        f"; inputs generated randomly: {listed}; if the model needs real values there, "
        "set them with --input-value NAME=V or --input-range NAME=LO,HI (or --inputs FILE.npz)"
    )


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
            f"{display_name(file)} is neither a .npy nor a .npz file; save inputs with "
            "np.save(path, array) or np.savez(path, name=array, ...)",
        )
    from profiler.arrays import check_declared_size

    check_declared_size(file, code=BAD_INPUT)  # a zip bomb stops here, before any read
    try:
        loaded = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ProfilerError(
            BAD_INPUT, f"{display_name(file)} is not a readable .npy/.npz file ({exc})"
        ) from None
    if isinstance(loaded, np.ndarray):
        if len(specs) != 1:
            raise ProfilerError(
                BAD_INPUT,
                f"{display_name(file)} holds one array but the model has {len(specs)} inputs "
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
                f"{display_name(file)} has arrays {', '.join(keys) or '(none)'} but the model needs "
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
    values: Mapping[str, Number] | None = None,
    ranges: Mapping[str, Sequence[Number]] | None = None,
) -> PreparedInputs:
    """Resolve shapes and produce the arrays to bind, from a file or generated
    (``values``/``ranges``: ``--input-value``/``--input-range`` by input name)."""
    values, ranges = values or {}, ranges or {}
    if inputs_path:
        arrays = load_input_file(inputs_path, specs)
        check_supplied(specs, arrays, display_name(inputs_path))
        resolved = resolve_shapes(specs, shapes, arrays)
        for spec in specs:
            if tuple(arrays[spec.name].shape) != resolved[spec.name]:
                raise ProfilerError(
                    BAD_INPUT,
                    f"{display_name(inputs_path)}: input {spec.name} has shape "
                    f"{_shape_text(arrays[spec.name].shape)} but --shape says "
                    f"{_shape_text(resolved[spec.name])}",
                )
        source: dict[str, Any] = {"source": "file", "file": display_name(inputs_path), "seed": None}
        fills: dict[str, dict[str, Any]] = {s.name: {"fill": "file"} for s in specs}
    else:
        check_fills(specs, values, ranges)
        resolved = resolve_shapes(specs, shapes)
        check_fits_in_memory(specs, resolved)
        arrays = generate_inputs(specs, resolved, seed, values=values, ranges=ranges)
        source = {"source": "generated", "file": None, "seed": seed}
        fills = {s.name: fill_description(s, values, ranges) for s in specs}
    source["tensors"] = [
        {"name": s.name, "shape": list(resolved[s.name]), "dtype": s.dtype, **fills[s.name]}
        for s in specs
    ]
    return PreparedInputs(shapes=resolved, arrays=arrays, description=source)
