"""A misbehaving stand-in for ``python -m profiler.worker`` (runner fault tests).

Usage: ``python fault_worker.py MODE [ARG]`` with the worker's protocol (request
on stdin, JSON lines on the request's ``reply_fd``). MODE:

- ``segv``: reports phase "loading", then really segfaults (reads address 0).
- ``kill SIGNAME``: reports phase "steady", then sends itself that signal.
- ``hang``: reports phase "first_inference", then sleeps forever.
- ``alloc MB``: touches MB MiB of memory, then replies with a valid result.
- ``exit CODE``: exits with CODE without replying.
- ``noisy``: floods stdout/stderr (as runtimes do), then replies with a valid result.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from typing import Any

from protocol.result import encode_samples


def _result() -> dict[str, Any]:
    return {
        "format": "onnx",
        "runtime": {"name": "fault", "version": "0", "delegate_or_provider": "none", "threads": 1},
        "inputs": {"source": "generated", "file": None, "seed": 0, "tensors": []},
        "init_ms": 1.0,
        "first_inference_ms": 1.0,
        "samples": encode_samples([1000, 1100, 1200, 1000, 1050]),
        "phases": {},
        "accuracy": None,
        "memory_mb": {},
    }


def main() -> None:
    mode = sys.argv[1]
    request = json.loads(sys.stdin.read())
    out = os.fdopen(int(request["reply_fd"]), "w")

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    if mode == "segv":
        send({"type": "phase", "phase": "loading"})
        ctypes.string_at(0)  # a real SIGSEGV, as a broken runtime would cause
    elif mode == "kill":
        send({"type": "phase", "phase": "steady"})
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        time.sleep(10)
    elif mode == "hang":
        send({"type": "phase", "phase": "first_inference"})
        while True:
            time.sleep(1)
    elif mode == "alloc":
        block = bytearray(int(sys.argv[2]) * 1024 * 1024)
        for i in range(0, len(block), 4096):  # touch every page: resident, not just reserved
            block[i] = 1
        send({"type": "result", "data": _result()})
    elif mode == "exit":
        sys.exit(int(sys.argv[2]))
    elif mode == "noisy":
        for _ in range(2000):  # far more than a pipe buffer holds
            sys.stdout.write("runtime chatter " * 10 + "\n")
            sys.stderr.write("more chatter " * 10 + "\n")
        send({"type": "result", "data": _result()})


if __name__ == "__main__":
    main()
