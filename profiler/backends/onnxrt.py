"""ONNX models through ONNX Runtime."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from profiler.backends.base import Array, Backend, TensorSpec, default_threads, package_version
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

DEFAULT_PROVIDER = "CPUExecutionProvider"

# ONNX element types as ORT names them ("tensor(float)") → NumPy dtype names.
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(uint32)": "uint32",
    "tensor(int64)": "int64",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}

_NO_OP_RE = re.compile(r"No Op registered for (\S+) with domain_version of (\d+)")
_NOT_REGISTERED_RE = re.compile(r"([\w.\-]*:?[\w\-]+)\(-?\d+\) is not a registered function/op")
_NOT_IMPLEMENTED_RE = re.compile(r"Could not find an implementation for (\S+)\(")


def classify_load_error(exc: BaseException, model_name: str) -> ProfilerError:
    """Turn an InferenceSession construction error into a ProfilerError naming the cause."""
    text = str(exc)
    for pattern in (_NO_OP_RE, _NOT_REGISTERED_RE, _NOT_IMPLEMENTED_RE):
        match = pattern.search(text)
        if match:
            op = match.group(1)
            return ProfilerError(
                CUSTOM_OP,
                f"{model_name} uses op {op}, which ONNX Runtime does not provide; "
                "register a custom-op library or export the model without it",
            )
    if "INVALID_PROTOBUF" in text or "Protobuf parsing failed" in text:
        return ProfilerError(
            BAD_MODEL, f"{model_name} is not a valid ONNX model (truncated or corrupt protobuf)"
        )
    if "INVALID_GRAPH" in text or "NO_MODEL" in text or "ModelProto does not have" in text:
        detail = text.split("failed:", 1)[-1].strip().splitlines()[0]
        return ProfilerError(BAD_MODEL, f"{model_name} is not a valid ONNX model: {detail}")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return ProfilerError(RUNTIME_ERROR, f"ONNX Runtime failed to load {model_name}: {first}")


class OnnxRuntimeBackend(Backend):
    """An .onnx model in an ONNX Runtime InferenceSession."""

    name = "onnxruntime"

    def __init__(self, threads: int | None = None, provider: str | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ProfilerError(
                RUNTIME_MISSING, f"onnxruntime is not usable ({exc}); pip install onnxruntime"
            ) from None
        self._ort = ort
        self.version = (
            package_version(
                "onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"
            )
            or str(getattr(ort, "__version__", ""))
            or None
        )
        available = list(ort.get_available_providers())
        self._provider = provider or DEFAULT_PROVIDER
        if self._provider not in available:
            raise ProfilerError(
                BAD_INPUT,
                f"ONNX Runtime provider {self._provider!r} is not available here; "
                f"available: {', '.join(available)}",
            )
        self._threads = threads
        self._session: Any = None
        self._binding: Any = None
        self._feed: dict[str, Array] = {}

    def load(self, model_path: str) -> None:
        ort = self._ort
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings go to stderr otherwise
        if self._threads is not None:
            options.intra_op_num_threads = self._threads
        providers = [self._provider]
        if self._provider != DEFAULT_PROVIDER:
            providers.append(DEFAULT_PROVIDER)  # nodes the accelerator cannot run
        try:
            self._session = ort.InferenceSession(
                model_path, sess_options=options, providers=providers
            )
        except Exception as exc:  # ORT raises its own non-exported exception classes
            raise classify_load_error(exc, display_name(model_path)) from None

    @staticmethod
    def _spec(arg: Any) -> TensorSpec:
        dtype = _ORT_DTYPES.get(str(arg.type))
        if dtype is None:
            raise ProfilerError(
                BAD_INPUT, f"tensor {arg.name!r} has type {arg.type}, which edgeprof cannot feed"
            )
        shape = tuple(
            d if isinstance(d, int) else (d if isinstance(d, str) else None)
            for d in (arg.shape or [])
        )
        return TensorSpec(name=str(arg.name), shape=shape, dtype=dtype)

    def input_specs(self) -> list[TensorSpec]:
        return [self._spec(a) for a in self._session.get_inputs()]

    def output_specs(self) -> list[TensorSpec]:
        specs = []
        for a in self._session.get_outputs():
            try:
                specs.append(self._spec(a))
            except ProfilerError:  # a sequence/map output: describe it, it is never fed
                specs.append(TensorSpec(name=str(a.name), shape=(), dtype=str(a.type)))
        return specs

    def prepare(self, shapes: Mapping[str, Sequence[int]]) -> None:
        # ORT takes whatever shape is fed; nothing to allocate ahead of time.
        return None

    def bind(self, inputs: Mapping[str, Array]) -> None:
        import numpy as np

        self._feed = {name: np.ascontiguousarray(arr) for name, arr in inputs.items()}
        binding = self._session.io_binding()
        for name, arr in self._feed.items():
            binding.bind_cpu_input(name, arr)
        for out in self._session.get_outputs():
            binding.bind_output(out.name)
        self._binding = binding

    def invoke(self) -> None:
        self._session.run_with_iobinding(self._binding)

    def outputs(self) -> list[Array]:
        return list(self._binding.copy_outputs_to_cpu())

    def runtime_info(self) -> dict[str, Any]:
        providers = self._session.get_providers() if self._session else [self._provider]
        return {
            "name": self.name,
            "version": self.version,
            "delegate_or_provider": providers[0],
            "threads": self._threads if self._threads is not None else default_threads(),
        }
