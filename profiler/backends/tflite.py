"""TFLite models through LiteRT, falling back to tflite-runtime, then tensorflow.lite."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from profiler.backends.base import (
    Array,
    Backend,
    TensorSpec,
    default_threads,
    np_dtype_name,
    package_version,
)
from profiler.errors import (
    BAD_INPUT,
    BAD_MODEL,
    CUSTOM_OP,
    RUNTIME_ERROR,
    RUNTIME_MISSING,
    ProfilerError,
)
from profiler.names import display_name

log = logging.getLogger(__name__)

# Tried in this order by runtime "auto" (DESIGN.md): maintained first.
TFLITE_RUNTIMES = ("litert", "tflite_runtime", "tensorflow")

NUMPY2_MESSAGE = (
    "tflite-runtime {version} needs NumPy < 2 (NumPy {numpy} is installed); "
    "install ai-edge-litert or pip install 'numpy<2'"
)

DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "litert": ("ai-edge-litert", "ai-edge-litert-nightly"),
    "tflite_runtime": ("tflite-runtime",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tf-nightly"),
}
"""The pip distributions that install each TFLite runtime."""

_INSTALL_HINT = {
    "litert": "pip install ai-edge-litert",
    "tflite_runtime": "pip install tflite-runtime",
    "tensorflow": "pip install tensorflow",
}

_CUSTOM_OP_RE = re.compile(r"unresolved custom op:\s*([\w.\-/]+)", re.IGNORECASE)
_BUILTIN_OP_RE = re.compile(
    r"Didn't find op for builtin opcode '([\w]+)' version '(\d+)'", re.IGNORECASE
)


def _numpy_major() -> int:
    import numpy as np

    return int(np.__version__.split(".")[0])


def _version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split(".")[:3]:
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


def tflite_runtime_numpy_problem() -> str | None:
    """Why tflite-runtime cannot work with this NumPy, or None if it should.

    Checked before importing it: under NumPy 2, tflite-runtime 2.14's extension
    fails to import (or worse) because it was built against NumPy 1.
    """
    version = package_version("tflite-runtime")
    if version is None:
        return None  # without pip metadata: the import itself tells (see below)
    if _numpy_major() >= 2 and _version_tuple(version) < (2, 15):
        import numpy as np

        return NUMPY2_MESSAGE.format(version=version, numpy=np.__version__)
    return None


def _version_of(runtime: str, package: Any) -> str | None:
    """The installed version: pip's metadata, else the package's ``__version__``
    (a runtime installed by a Debian package or by hand may have no metadata)."""
    version = package_version(*DISTRIBUTIONS[runtime])
    return version or str(getattr(package, "__version__", "") or "") or None


def import_interpreter_module(runtime: str) -> tuple[Any, str | None]:
    """Import one TFLite runtime: ``(module with Interpreter and OpResolverType, version)``.

    Raises RUNTIME_MISSING with what to install (or the NumPy 2 incompatibility).
    """
    try:
        if runtime == "litert":
            import ai_edge_litert as package
            from ai_edge_litert import interpreter as module

            return module, _version_of(runtime, package)
        if runtime == "tflite_runtime":
            problem = tflite_runtime_numpy_problem()
            if problem is not None:
                raise ProfilerError(RUNTIME_MISSING, problem)
            import tflite_runtime as package
            from tflite_runtime import interpreter as module

            return module, _version_of(runtime, package)
        if runtime == "tensorflow":
            import tensorflow as tf

            return tf.lite, _version_of(runtime, tf)
    except ImportError as exc:
        hint = _INSTALL_HINT[runtime]
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if runtime == "tflite_runtime" and ("numpy" in text.lower() or "_ARRAY_API" in text):
            raise ProfilerError(
                RUNTIME_MISSING,
                f"tflite-runtime failed to import under NumPy 2 ({text}); "
                "install ai-edge-litert or pip install 'numpy<2'",
            ) from None
        raise ProfilerError(RUNTIME_MISSING, f"{runtime} is not usable ({text}); {hint}") from None
    raise ProfilerError(BAD_INPUT, f"unknown TFLite runtime {runtime!r}")


def select_runtime(requested: str) -> tuple[str, Any, str | None]:
    """Import the requested TFLite runtime, or the first that works for 'auto'."""
    if requested != "auto":
        module, version = import_interpreter_module(requested)
        return requested, module, version
    problems: list[str] = []
    for runtime in TFLITE_RUNTIMES:
        try:
            module, version = import_interpreter_module(runtime)
        except ProfilerError as exc:
            log.debug("TFLite runtime %s unavailable: %s", runtime, exc.message)
            if package_version(*DISTRIBUTIONS[runtime]) is not None:
                problems.append(exc.message)  # installed but broken: worth telling
            continue
        return runtime, module, version
    detail = "; ".join(problems)
    raise ProfilerError(
        RUNTIME_MISSING,
        (detail + "; " if detail else "")
        + "no TFLite runtime is usable: pip install ai-edge-litert "
        "(or tflite-runtime with numpy<2, or tensorflow)",
    )


def classify_load_error(exc: BaseException, model_name: str) -> ProfilerError:
    """Turn a runtime's load/allocate exception into a ProfilerError naming the cause."""
    text = str(exc)
    custom = _CUSTOM_OP_RE.search(text)
    if custom:
        op = custom.group(1).rstrip(".")
        return ProfilerError(
            CUSTOM_OP,
            f"{model_name} uses custom op {op}, which this TFLite runtime does not provide; "
            "register it (InterpreterWithCustomOps) or convert the model without it",
        )
    builtin = _BUILTIN_OP_RE.search(text)
    if builtin:
        return ProfilerError(
            CUSTOM_OP,
            f"{model_name} uses op {builtin.group(1)} version {builtin.group(2)}, which this "
            "TFLite runtime lacks; upgrade the runtime (pip install -U ai-edge-litert)",
        )
    if "not a valid Flatbuffer" in text or "Could not open" in text or "Failed to open" in text:
        return ProfilerError(
            BAD_MODEL,
            f"{model_name} is not a valid TFLite model (truncated or corrupt flatbuffer)",
        )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ProfilerError(RUNTIME_ERROR, f"TFLite failed to load {model_name}: {first}")


class TFLiteBackend(Backend):
    """A .tflite model in LiteRT / tflite-runtime / tensorflow.lite."""

    def __init__(self, runtime: str = "auto", threads: int | None = None, xnnpack: bool = True):
        self.name, self._module, self.version = select_runtime(runtime)
        self._threads = threads
        self._xnnpack = xnnpack
        self._interp: Any = None
        self._model_name = "model"
        self._delegate = "none"

    def load(self, model_path: str) -> None:

        self._model_name = display_name(model_path)
        resolver = self._module.OpResolverType
        kwargs: dict[str, Any] = {
            "model_path": model_path,
            "experimental_op_resolver_type": (
                resolver.AUTO if self._xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            ),
        }
        kwargs["num_threads"] = self._resolved_threads()
        try:
            self._interp = self._module.Interpreter(**kwargs)
        except (ValueError, RuntimeError) as exc:
            raise classify_load_error(exc, self._model_name) from None

    def _details(self, details: list[dict[str, Any]]) -> list[TensorSpec]:
        specs = []
        for d in details:
            signature = d.get("shape_signature")
            if signature is None or len(signature) == 0:
                signature = d["shape"]
            scale, zero_point = d.get("quantization", (0.0, 0))
            quantized = bool(scale)
            specs.append(
                TensorSpec(
                    name=str(d["name"]),
                    shape=tuple(int(x) for x in signature),
                    dtype=np_dtype_name(d["dtype"]),
                    scale=float(scale) if quantized else None,
                    zero_point=int(zero_point) if quantized else None,
                )
            )
        return specs

    def input_specs(self) -> list[TensorSpec]:
        return self._details(self._interp.get_input_details())

    def output_specs(self) -> list[TensorSpec]:
        return self._details(self._interp.get_output_details())

    def prepare(self, shapes: Mapping[str, Sequence[int]]) -> None:
        try:
            for d in self._interp.get_input_details():
                shape = shapes.get(str(d["name"]))
                if shape is not None and list(shape) != [int(x) for x in d["shape"]]:
                    self._interp.resize_tensor_input(d["index"], list(shape), strict=False)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise classify_load_error(exc, self._model_name) from None
        self._delegate = self._detect_delegate()

    def _detect_delegate(self) -> str:
        """'xnnpack' when the default delegate took over at least one node, else 'none'."""
        if not self._xnnpack:
            return "none"
        try:
            ops = self._interp._get_ops_details()
        except Exception:  # a private API: absent in some builds, so assume it applied
            return "xnnpack"
        return "xnnpack" if any(op.get("op_name") == "DELEGATE" for op in ops) else "none"

    def bind(self, inputs: Mapping[str, Array]) -> None:
        for d in self._interp.get_input_details():
            self._interp.set_tensor(d["index"], inputs[str(d["name"])])

    def invoke(self) -> None:
        self._interp.invoke()

    def outputs(self) -> list[Array]:
        return [self._interp.get_tensor(d["index"]) for d in self._interp.get_output_details()]

    def runtime_info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "delegate_or_provider": self._delegate,
            "threads": self._resolved_threads(),
        }

    def _resolved_threads(self) -> int:
        # num_threads=None would make every TFLite Python wrapper run single-threaded
        # (LiteRT passes 1, the older ones -1 = the CPU backend default of 1): the
        # default is ONNX Runtime's instead, so both runtimes compare alike.
        return self._threads if self._threads is not None else default_threads()
