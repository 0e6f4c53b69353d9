"""What every runtime backend offers the worker: load, describe, bind, invoke.

Backends live in the worker process only; they import their runtime (and
NumPy) lazily so that importing this package costs nothing.
"""

from __future__ import annotations

import importlib.metadata
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[Any]
else:
    Array = Any

Dim = int | str | None
"""A model dimension: a size, or a symbol (its name) / None for a dynamic one."""


def normalize_dim(dim: Dim) -> Dim:
    """The one reading of a declared dimension: a size >= 0 stays, a named dim keeps
    its name, and every other spelling of "not fixed" — a negative size (Paddle
    exports ``dim_value: -1``, TFLite's shape signature says -1), None, an empty
    name — becomes None. TensorSpec applies it, so backends, analysis and inputs
    all see dynamic dims the same way."""
    if isinstance(dim, bool):  # a bool is an int to Python, never a size here
        return None
    if isinstance(dim, int):
        return dim if dim >= 0 else None
    if isinstance(dim, str):
        return dim or None
    return None


@dataclass(frozen=True)
class TensorSpec:
    """An input or output of the model as the runtime sees it."""

    name: str
    shape: tuple[Dim, ...]
    """Dimensions; dynamic ones are None or a symbolic name (see :func:`normalize_dim`)."""
    dtype: str
    """NumPy dtype name: float32, float16, int8, uint8, int32, int64, bool, ..."""
    scale: float | None = None
    """Quantization scale of an integer tensor (TFLite), else None."""
    zero_point: int | None = None
    """Quantization zero point of an integer tensor (TFLite), else None."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(normalize_dim(d) for d in self.shape))

    @property
    def is_dynamic(self) -> bool:
        """True when at least one dimension is not a fixed size."""
        return any(not is_static_dim(d) for d in self.shape)

    def dynamic_dims(self) -> list[str]:
        """The dynamic dims by name, or ``d<i>`` (their position) when unnamed."""
        return [
            d if isinstance(d, str) else f"d{i}"
            for i, d in enumerate(self.shape)
            if not is_static_dim(d)
        ]

    def dims_text(self) -> str:
        """Dimensions for messages: ``[batch?, 3, 48, width?]``, a dynamic dim by its
        name (or alone) with a question mark."""
        return "[" + ", ".join(_dim_text(d) for d in self.shape) + "]"

    def label(self) -> str:
        """``x[batch?, 3, 48, width?]``: the name with its dims, for messages."""
        return self.name + self.dims_text()


def is_static_dim(dim: Dim) -> bool:
    """True for a fixed, non-negative size."""
    return isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0


def _dim_text(dim: Dim) -> str:
    if is_static_dim(dim):
        return str(dim)
    if isinstance(dim, str) and dim:
        return dim + "?"
    return "?"


def package_version(*distributions: str) -> str | None:
    """The installed version of the first of ``distributions`` that is installed."""
    for dist in distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


class Backend(ABC):
    """One loaded model in one runtime.

    Lifecycle: ``load()`` (timed as init), then ``prepare(shapes)`` once the
    concrete input shapes are known, ``bind(inputs)`` once, then ``invoke()``
    in the timed loop.
    """

    name: str
    """Runtime name in results: litert, tflite_runtime, tensorflow, onnxruntime."""
    version: str | None

    @abstractmethod
    def load(self, model_path: str) -> None:
        """Read the model and build the interpreter / session."""

    @abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """The model's inputs, with dynamic dimensions as declared."""

    @abstractmethod
    def output_specs(self) -> list[TensorSpec]:
        """The model's outputs."""

    @abstractmethod
    def prepare(self, shapes: Mapping[str, Sequence[int]]) -> None:
        """Fix the concrete input shapes (resize + allocate where the runtime needs it)."""

    @abstractmethod
    def bind(self, inputs: Mapping[str, Array]) -> None:
        """Bind input arrays so that ``invoke`` runs without copying them again."""

    @abstractmethod
    def invoke(self) -> None:
        """Run the model once on the bound inputs (the only timed call)."""

    @abstractmethod
    def outputs(self) -> list[Array]:
        """The outputs of the last ``invoke``, in model order."""

    @abstractmethod
    def runtime_info(self) -> dict[str, Any]:
        """``{name, version, delegate_or_provider, threads}`` of what actually runs."""

    def run(self, inputs: Mapping[str, Array]) -> list[Array]:
        """Bind, invoke and return outputs (for accuracy evaluation, never timed)."""
        self.bind(inputs)
        self.invoke()
        return self.outputs()


def np_dtype_name(dtype: np.dtype[Any] | type) -> str:
    """The canonical NumPy name of a dtype or scalar type."""
    import numpy as np

    return str(np.dtype(dtype).name)


def default_threads() -> int:
    """The intra-op threads a run uses when ``--threads`` is not given: one per
    physical core, for every runtime alike (ONNX Runtime's own default; LiteRT's
    Python API would otherwise run single-threaded), so a .tflite and an .onnx
    twin profiled with default settings are compared at the same thread count."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        physical = None
    return int(physical or os.cpu_count() or 1)
