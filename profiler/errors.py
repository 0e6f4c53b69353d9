"""The profiler's error hierarchy.

Every failure a user can cause or meet (bad file, missing runtime, crash in a
runtime) is a :class:`ProfilerError` with a stable ``code`` (it becomes
``error.code`` in the result document) and a one-line message that names the
cause and what to do.
"""

from __future__ import annotations

# Stable error codes (they appear in result documents; never rename one).
NOT_FOUND = "not_found"  # the model or data file does not exist
UNSUPPORTED_FORMAT = "unsupported_format"  # extension / magic is neither .tflite nor .onnx
BAD_MODEL = "bad_model"  # truncated, corrupt, not a model
CUSTOM_OP = "custom_op"  # an op the runtime lacks (message names it)
RUNTIME_MISSING = "runtime_missing"  # no usable runtime installed
RUNTIME_ERROR = "runtime_error"  # the runtime failed while loading or invoking
DYNAMIC_SHAPE = "dynamic_shape"  # dynamic dims not given with --shape
BAD_INPUT = "bad_input"  # supplied inputs / --shape / options do not fit the model
BAD_EVAL_DATA = "bad_eval_data"  # --eval file missing x/y or of the wrong shape
OUT_OF_MEMORY = "out_of_memory"  # inputs or the run needed more memory than the device has
CRASHED = "crashed"  # the worker process died (signal or non-zero exit)
TIMEOUT = "timeout"  # the worker exceeded its time limit and was killed
CANCELED = "canceled"  # the job was canceled (hostctl cancel) and its worker killed
INTERNAL = "internal"  # a bug in edgeprof


class ProfilerError(Exception):
    """A failure with a stable code and a one-line, actionable message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
