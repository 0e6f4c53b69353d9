"""Fan-out: one push to many agents (default 50) over a loopback Mosquitto.

Figures: bytes the host publishes on blob topics (a subscriber on
``blob/+/+``, chunk requests excluded) as a multiple of the model's size, and the
wall time from the start of the push to every result stored, as a ratio of the
same push to one agent (same model size, same settings, same run). The agents are
real :class:`agent.daemon.Agent` instances — each with its own MQTT session,
device id, cache directory and profiling child processes — run as threads of a
few processes (``python -m bench.fleet_common --agents``), since 50 Python
processes do not fit a small machine better than the agents themselves.
Each push uses a new model (another seed), so every agent downloads it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    add_common_args,
    command_line,
    emit,
    machine_info,
    machine_line,
    progress,
    usage_line,
    verdict,
)
from bench.fleet_common import (
    ROOT,
    TINY_SETTINGS,
    TopicLog,
    agent_group,
    events,
    failures_text,
    host_keys,
    host_push,
    matmul_model,
    mosquitto,
    wait_online,
    workspace,
)

TARGET_BYTES = 1.1
TARGET_TIME = 3.0


def _cpu_seconds(pids: Sequence[int]) -> float:
    """User + system time of the agent processes and their reaped children (the
    profiling workers, which also run the static analysis)."""
    import psutil

    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _one_push(
    port: int, keys: tuple[Path, Path], db: Path, model: Path, devices: list[str],
    timeout: float, pids: Sequence[int],
) -> dict[str, Any]:  # fmt: skip
    blob_log = TopicLog(port, [f"{ROOT}/blob/+/+"], keep_below=0)
    event_log = TopicLog(port, [f"{ROOT}/dev/+/job/+/event", f"{ROOT}/dev/+/job/+/result"])
    cpu0 = _cpu_seconds(pids)
    try:
        times = host_push(port, keys[0], db, model, devices, settings=TINY_SETTINGS,
                          timeout=timeout)  # fmt: skip
        blobs = blob_log.snapshot()
        seen = event_log.snapshot()
        agents_cpu = _cpu_seconds(pids) - cpu0
    finally:
        blob_log.close()
        event_log.close()
    if times.outcome.failures:
        raise BenchError(f"push to {len(devices)} failed: {failures_text(times.outcome)}")
    chunks = [m for m in blobs if not m.topic.endswith("/request")]
    requests = [m for m in blobs if m.topic.endswith("/request")]
    verifying = [float(e["ts"]) for _, e in events(seen) if e["state"] == "verifying"]
    running = [float(e["ts"]) for _, e in events(seen) if e["state"] == "running"]
    subscribed: dict[str, float] = {}  # job → its first `downloading` event (subscribed)
    for _, e in events(seen):
        if e["state"] == "downloading":
            subscribed.setdefault(e["job_id"], float(e["ts"]))
    size = model.stat().st_size
    return {
        "agents": len(devices),
        "wall_s": times.end - times.start,
        "all_downloaded_s": max(verifying) - times.start if verifying else None,
        "first_running_s": min(running) - times.start if running else None,
        "all_subscribed_s": max(subscribed.values()) - times.start if subscribed else None,
        "first_chunk_s": min(m.t for m in chunks) - times.start if chunks else None,
        "last_chunk_s": max(m.t for m in chunks) - times.start if chunks else None,
        "chunk_messages": len(chunks),
        "blob_bytes": sum(m.size for m in chunks),
        "blob_bytes_ratio": sum(m.size for m in chunks) / size,
        "chunk_requests": len(requests),
        "results": len(times.outcome.results),
        "agents_cpu_s": agents_cpu,
        "cpu_floor_s": agents_cpu / (os.cpu_count() or 1),
        "wall_above_cpu_floor_s": (times.end - times.start) - agents_cpu / (os.cpu_count() or 1),
    }


def run(agents: int, processes: int, rows: int, cols: int, timeout: float) -> dict[str, Any]:
    before = machine_info()
    with workspace("edgeprof-bench-fanout-") as work:
        singles = [matmul_model(work / f"one{i}.onnx", rows, cols, seed=101 + i)
                   for i in range(2)]  # fmt: skip
        many = matmul_model(work / "many.onnx", rows, cols, seed=202)
        size = many.stat().st_size
        keys = host_keys(work)
        ids = [f"fan-{i:03d}" for i in range(agents)]
        with mosquitto(work) as port:
            url = f"mqtt://127.0.0.1:{port}"
            with agent_group(url, ids, work, keys[1], processes=processes) as procs:
                pids = [p.pid for p in procs]
                progress(f"{agents} agents in {processes} processes: waiting for them online …")
                wait_online(port, ids, timeout=300)
                db = work / "results.sqlite"
                # 1 agent before and after the fan-out: a drift of the machine shows.
                progress("push to 1 agent …")
                ones = [_one_push(port, keys, db, singles[0], ids[:1], timeout, pids)]
                progress(f"push to {agents} agents …")
                fan = _one_push(port, keys, db, many, ids, timeout, pids)
                progress("push to 1 agent again …")
                ones.append(_one_push(port, keys, db, singles[1], ids[:1], timeout, pids))
    after = machine_info()
    one_wall = sum(o["wall_s"] for o in ones) / len(ones)
    one_dl = [o["all_downloaded_s"] for o in ones if o["all_downloaded_s"]]
    time_ratio = fan["wall_s"] / one_wall
    dl_ratio = (fan["all_downloaded_s"] / (sum(one_dl) / len(one_dl))
                if fan["all_downloaded_s"] and one_dl else None)  # fmt: skip
    return {
        "benchmark": "fanout",
        "harness": f"{agents} agent.daemon.Agent instances as threads of {processes} processes",
        "model_bytes": size,
        "settings": TINY_SETTINGS,
        "ones": ones,
        "one_wall_s_mean": one_wall,
        "fan": fan,
        "bytes_ratio": fan["blob_bytes_ratio"],
        "bytes_target": f"<= {TARGET_BYTES}",
        "bytes_verdict": verdict(fan["blob_bytes_ratio"], TARGET_BYTES),
        "time_ratio": time_ratio,
        "time_target": f"<= {TARGET_TIME}",
        "time_verdict": verdict(time_ratio, TARGET_TIME),
        "download_time_ratio": dl_ratio,
        "machine_before": before,
        "machine_after": after,
    }


def render(report: Mapping[str, Any]) -> str:
    ones, fan = report["ones"], report["fan"]
    lines = [
        f"fan-out of a {report['model_bytes'] / 1e6:.1f} MB ONNX model "
        f"({report['harness']}; settings {report['settings']})",
        f"machine: {machine_line(report['machine_before'])}",
        "",
        "agents  wall s  all subscribed s  chunks first-last s  all downloaded s  "
        "first running s  blob MB  x model  chunk requests",
    ]
    for r in (ones[0], fan, *ones[1:]):
        lines.append(
            f"{r['agents']:6d}  {r['wall_s']:6.2f}  {r['all_subscribed_s'] or 0:16.2f}  "
            f"{r['first_chunk_s'] or 0:8.2f}-{r['last_chunk_s'] or 0:<9.2f}  "
            f"{r['all_downloaded_s'] or 0:16.2f}  "
            f"{r['first_running_s'] or 0:15.2f}  {r['blob_bytes'] / 1e6:7.2f}  "
            f"{r['blob_bytes_ratio']:7.3f}  {r['chunk_requests']:14d}"
        )
    dl = report["download_time_ratio"]
    lines += [
        "",
        f"CPU used by the agents and their profiling children during the {fan['agents']}-push: "
        f"{fan['agents_cpu_s']:.1f} s = {fan['agents_cpu_s'] / fan['agents']:.2f} s per job; "
        f"on {report['machine_before'].get('nproc')} CPUs that alone needs "
        f"{fan['cpu_floor_s']:.1f} s of wall time (1-push: "
        + ", ".join(f"{o['agents_cpu_s']:.2f}" for o in ones)
        + " s CPU)",
        "",
        f"blob bytes published / model size = {report['bytes_ratio']:.3f} "
        f"(target {report['bytes_target']}: {report['bytes_verdict']})",
        f"wall to {fan['agents']} results / wall to 1 (mean of {len(ones)}: "
        f"{report['one_wall_s_mean']:.2f} s) = {report['time_ratio']:.2f} "
        f"(target {report['time_target']}: {report['time_verdict']})",
        f"time to all downloaded ({fan['agents']} / 1) = "
        + (f"{dl:.2f}" if dl is not None else "n/a"),
        f"after: {machine_line(report['machine_after'])}",
        usage_line(report["machine_before"], report["machine_after"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_args(parser)
    parser.add_argument("--agents", type=int, default=50, help="agents (default 50)")
    parser.add_argument("--processes", type=int, default=5,
                        help="processes the agents run in (default 5)")  # fmt: skip
    parser.add_argument("--rows", type=int, default=1000, help="weight rows (default 1000)")
    parser.add_argument("--cols", type=int, default=1000,
                        help="weight columns (default 1000: a 4 MB model)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600.0, help="push timeout, s")
    args = parser.parse_args(argv)
    try:
        report = run(args.agents, args.processes, args.rows, args.cols, args.timeout)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    report["command"] = command_line("bench.fanout", argv)
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
