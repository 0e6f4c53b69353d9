"""Where the time goes: a separate profiling pass, never the timed one.

ONNX Runtime: a second InferenceSession with ``enable_profiling`` runs the
model on the same inputs after the measurement (and after the memory
readings), and its Chrome-trace JSON is turned into ``per_op[]`` (op type →
share of kernel time) and ``per_op_info.top_nodes[]`` (the slowest nodes, with
their provider). The first run of the pass is a warm-up and is left out.
Profiling adds its own overhead per node, so shares are what this pass saw,
not the timed latency split up.

LiteRT / tflite-runtime: their Python API exposes no per-op timings (the
interpreter's profiler is C++-only; TensorFlow's ``benchmark_model`` tool has
``--enable_op_profiling``); ``per_op`` is null and ``per_op_info.note`` says so.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

PASS_RUNS = 20
"""Minimum runs of the profiling pass (after one warm-up run) ..."""
PASS_SECONDS = 1.0
"""... and minimum duration, capped by :data:`PASS_MAX_SECONDS`."""
PASS_MAX_SECONDS = 30.0
PASS_MAX_RUNS = 200
"""A fast model stops here: every run adds a few events per node to the trace."""
TOP_NODES = 10

LITERT_NOTE = (
    "LiteRT's Python API exposes no per-op timings (its op profiler is C++-only); "
    "TensorFlow's benchmark_model tool with --enable_op_profiling=true gives them"
)


def unavailable(note: str) -> dict[str, Any]:
    """``per_op_info`` when there is no per-op table."""
    return {"source": None, "runs": 0, "top_nodes": [], "note": note}


def parse_ort_trace(
    events: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(per_op rows, per_op_info)`` from an ONNX Runtime profiling trace.

    Node kernels are the ``cat: "Node"`` events named ``<node>_kernel_time``
    (``args.op_name``, ``args.provider``, ``dur`` in µs); each ``model_run``
    session event is one run. Events of the first run are dropped (warm-up).
    Rows: ``{op_type, share, total_ms, ms_per_run, calls_per_run, nodes,
    providers[]}``, biggest share first.
    """
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: float(e.get("ts", 0)),
    )
    cutoff = float(runs[0].get("ts", 0)) + float(runs[0].get("dur", 0)) if len(runs) > 1 else None
    counted_runs = runs[1:] if cutoff is not None else runs
    n_runs = max(1, len(counted_runs))
    by_type: dict[str, dict[str, Any]] = {}
    by_node: dict[str, dict[str, Any]] = {}
    total_us = 0.0
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        if cutoff is not None and float(event.get("ts", 0)) < cutoff:
            continue
        args = event.get("args") or {}
        op_type = str(args.get("op_name") or "?")
        provider = str(args.get("provider") or "?")
        node = name[: -len("_kernel_time")]
        dur = float(event.get("dur", 0))
        total_us += dur
        row = by_type.setdefault(
            op_type, {"us": 0.0, "calls": 0, "nodes": set(), "providers": set()}
        )
        row["us"] += dur
        row["calls"] += 1
        row["nodes"].add(node)
        row["providers"].add(provider)
        entry = by_node.setdefault(node, {"us": 0.0, "op_type": op_type, "provider": provider})
        entry["us"] += dur
    rows = [
        {
            "op_type": op_type,
            "share": row["us"] / total_us if total_us else None,
            "total_ms": row["us"] / 1000.0,
            "ms_per_run": row["us"] / 1000.0 / n_runs,
            "calls_per_run": row["calls"] / n_runs,
            "nodes": len(row["nodes"]),
            "providers": sorted(row["providers"]),
        }
        for op_type, row in by_type.items()
    ]
    rows.sort(key=lambda r: r["total_ms"], reverse=True)
    top = sorted(by_node.items(), key=lambda kv: kv[1]["us"], reverse=True)[:TOP_NODES]
    run_us = sum(float(e.get("dur", 0)) for e in counted_runs)
    info = {
        "source": "onnxruntime enable_profiling",
        "runs": len(counted_runs),
        "kernel_ms_per_run": total_us / 1000.0 / n_runs,
        "run_ms_per_run": run_us / 1000.0 / n_runs if counted_runs else None,
        "top_nodes": [
            {
                "name": node,
                "op_type": entry["op_type"],
                "provider": entry["provider"],
                "ms_per_run": entry["us"] / 1000.0 / n_runs,
                "share": entry["us"] / total_us if total_us else None,
            }
            for node, entry in top
        ],
        "note": "timings of a separate profiling pass (profiling adds per-node overhead); "
        "not the timed steady state",
    }
    return rows, info


def onnx_op_profile(
    model_path: str,
    feed: Mapping[str, Any],
    *,
    threads: int | None,
    provider: str | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the profiling pass with a fresh ONNX Runtime session and parse its trace."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgeprof-ort-profile-") as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "trace")
        if threads is not None:
            options.intra_op_num_threads = threads
        chosen = provider or "CPUExecutionProvider"
        providers = (
            [chosen] if chosen == "CPUExecutionProvider" else [chosen, "CPUExecutionProvider"]
        )
        session = ort.InferenceSession(model_path, sess_options=options, providers=providers)
        session.run(None, dict(feed))  # warm-up run: parse_ort_trace drops it
        start = time.monotonic()
        runs = 0
        while runs < PASS_RUNS or (
            time.monotonic() - start < PASS_SECONDS and runs < PASS_MAX_RUNS
        ):
            session.run(None, dict(feed))
            runs += 1
            if time.monotonic() - start > PASS_MAX_SECONDS:
                break
        trace_path = session.end_profiling()
        with open(trace_path, encoding="utf-8") as fh:
            events = json.load(fh)
    return parse_ort_trace(events if isinstance(events, list) else [])
