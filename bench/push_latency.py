"""Latency of the loop: ``hostctl push TINY.onnx --device D`` to one local agent,
from the command's start to its exit with the table printed, and where the time
goes.

Each repeat pushes a new tiny ONNX model (another seed, so it is transferred
every time, as when iterating on a model). A subscriber timestamps the manifest,
the first chunk, the agent's events (their own timestamps) and the result, which
splits the wall time into: Python start-up, imports, connect + fleet discovery,
waiting for the agent to subscribe, transfer, verify + queue, the profiling
child, and storing/acking/printing. References measured in the same run: bare
``python -c pass`` and a ``mosquitto_pub`` + ``mosquitto_sub`` round trip.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
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
    median,
    progress,
    usage_line,
    verdict,
)
from bench.fleet_common import (
    ROOT,
    TopicLog,
    agent_process,
    child_env,
    events,
    host_keys,
    matmul_model,
    mosquitto,
    mosquitto_tool,
    wait_online,
    workspace,
)

DEVICE = "bench-loop"
TARGET_S = 3.0
TINY_FLAGS = [
    "--runs",
    "5",
    "--warmup",
    "1",
    "--warmup-seconds",
    "0",
    "--min-seconds",
    "0",
    "--max-seconds",
    "5",
]
HOST_IMPORTS = (
    "import hostctl.cli, hostctl.cmd_push, hostctl.fleet, hostctl.mqtt, hostctl.store, "
    "hostctl.keys, hostctl.render, protocol.signing, paho.mqtt.client, rich.progress"
)


def _timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=child_env(), timeout=60)
    return time.perf_counter() - t0


def _references(port: int, repeats: int) -> dict[str, float]:
    pub, sub = mosquitto_tool("mosquitto_pub"), mosquitto_tool("mosquitto_sub")
    addr = ["-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", "bench/roundtrip"]

    def round_trip() -> float:
        t0 = time.perf_counter()
        subprocess.run([pub, *addr, "-r", "-m", "x"], check=True, timeout=30)
        subprocess.run([sub, *addr, "-C", "1", "-W", "10"], check=True, timeout=30,
                       capture_output=True)  # fmt: skip
        return time.perf_counter() - t0

    return {
        "python_pass_s": median([_timed([sys.executable, "-c", "pass"]) for _ in range(repeats)]),
        "python_imports_s": median(
            [_timed([sys.executable, "-c", HOST_IMPORTS]) for _ in range(repeats)]
        ),
        "mqtt_round_trip_s": median([round_trip() for _ in range(repeats)]),
    }


def _push(port: int, keys: tuple[Path, Path], db: Path, model: Path, flags: list[str],
          log: TopicLog) -> dict[str, Any]:  # fmt: skip
    log.clear()
    argv = [sys.executable, "-m", "hostctl", "--broker", f"mqtt://127.0.0.1:{port}",
            "--key", str(keys[0]), "--db", str(db), "push", str(model), "--device", DEVICE,
            *flags]  # fmt: skip
    start = time.time()
    done = subprocess.run(argv, capture_output=True, text=True, env=child_env(), timeout=300)
    end = time.time()
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise BenchError(f"hostctl push exited {done.returncode}: {' | '.join(tail)}")
    if "p50" not in done.stdout and "median" not in done.stdout.lower():
        progress(f"warning: no table recognised in the output: {done.stdout[:200]!r}")
    messages = log.wait_for(lambda ms: any(m.topic.endswith("/result") for m in ms), 10,
                            "the result on the logger")  # fmt: skip
    manifest = next(m.t for m in messages if m.topic == f"{ROOT}/dev/{DEVICE}/job")
    chunk = next((m.t for m in messages if "/blob/" in m.topic
                  and not m.topic.endswith("/request")), None)  # fmt: skip
    result = next(m.t for m in messages if m.topic.endswith("/result"))
    seen: dict[str, float] = {}
    phases: list[tuple[str, float]] = []
    for _, event in events(messages):
        seen.setdefault(event["state"], float(event["ts"]))
        if event["state"] == "running" and event.get("progress", {}).get("phase"):
            phases.append((str(event["progress"]["phase"]), float(event["ts"])))
    verifying = seen.get("verifying", chunk or manifest)
    running = seen["running"]
    parts = {
        "start_imports_connect_discover": manifest - start,
        "wait_for_subscription": (chunk - manifest) if chunk else 0.0,
        "transfer": (verifying - chunk) if chunk else 0.0,
        "verify_queue_to_running": running - (verifying if chunk else manifest),
        "profiling_child": result - running,
        "store_ack_print_exit": end - result,
    }
    # A phase can come back (the worker reports "loading" again to allocate tensors
    # after preparing inputs): its intervals add up.
    phase_s: dict[str, float] = {}
    for i, (name, t) in enumerate(phases):
        following = phases[i + 1][1] if i + 1 < len(phases) else result
        phase_s[name] = phase_s.get(name, 0.0) + following - t
    return {"total_s": end - start, "parts_s": parts, "phases_s": phase_s}


def run(repeats: int, with_default: bool) -> dict[str, Any]:
    before = machine_info()
    defaults: dict[str, Any] | None = None
    with workspace("edgeprof-bench-loop-") as work:
        models = [matmul_model(work / f"tiny{i}.onnx", 8, 8, seed=i + 1)
                  for i in range(repeats + 1)]  # fmt: skip
        keys = host_keys(work)
        db = work / "results.sqlite"
        with (
            mosquitto(work) as port,
            agent_process(f"mqtt://127.0.0.1:{port}", DEVICE, work, keys[1]),
        ):
            wait_online(port, [DEVICE])
            progress("references …")
            refs = _references(port, 5)
            log = TopicLog(port, [f"{ROOT}/dev/{DEVICE}/job", f"{ROOT}/blob/+/+",
                                  f"{ROOT}/dev/{DEVICE}/job/+/event",
                                  f"{ROOT}/dev/{DEVICE}/job/+/result"])  # fmt: skip
            try:
                runs = []
                for i in range(repeats):
                    progress(f"hostctl push {i + 1}/{repeats} (tiny settings) …")
                    runs.append(_push(port, keys, db, models[i], TINY_FLAGS, log))
                if with_default:
                    progress("hostctl push with default settings …")
                    defaults = _push(port, keys, db, models[repeats], [], log)
            finally:
                log.close()
    after = machine_info()
    total = median([r["total_s"] for r in runs])
    parts = {k: median([r["parts_s"][k] for r in runs]) for k in runs[0]["parts_s"]}
    phase_names = [k for k in runs[0]["phases_s"] if all(k in r["phases_s"] for r in runs)]
    phases = {k: median([r["phases_s"][k] for r in runs]) for k in phase_names}
    startup = refs["python_pass_s"]
    imports = max(0.0, refs["python_imports_s"] - startup)
    parts_split = {
        "python_start": startup,
        "imports": imports,
        "connect_discover": max(0.0, parts["start_imports_connect_discover"] - startup - imports),
        **{k: v for k, v in parts.items() if k != "start_imports_connect_discover"},
    }
    return {
        "benchmark": "push_latency",
        "flags": TINY_FLAGS,
        "runs": runs,
        "total_s_median": total,
        "total_s_all": [r["total_s"] for r in runs],
        "parts_s_median": parts_split,
        "phases_s_median": phases,
        "references": refs,
        "ratio_to_python_pass": total / startup,
        "ratio_to_mqtt_round_trip": total / refs["mqtt_round_trip_s"],
        "target": f"<= {TARGET_S} s",
        "verdict": verdict(total, TARGET_S),
        "default_settings": defaults,
        "machine_before": before,
        "machine_after": after,
    }


def render(report: Mapping[str, Any]) -> str:
    refs = report["references"]
    lines = [
        f"hostctl push of a tiny ONNX model to one local agent ({' '.join(report['flags'])})",
        f"machine: {machine_line(report['machine_before'])}",
        "",
        "totals, s: " + ", ".join(f"{t:.2f}" for t in report["total_s_all"]),
        f"median {report['total_s_median']:.2f} s (target {report['target']}: {report['verdict']})",
        f"references: python -c pass {refs['python_pass_s']:.3f} s (ratio "
        f"{report['ratio_to_python_pass']:.1f}), mosquitto_pub+mosquitto_sub round trip "
        f"{refs['mqtt_round_trip_s']:.3f} s (ratio {report['ratio_to_mqtt_round_trip']:.1f})",
        "",
        "where the time goes (medians):",
    ]
    for name, value in report["parts_s_median"].items():
        lines.append(f"  {name:28s} {value:6.3f} s")
    lines.append("  profiling child, by phase (agent events):")
    for name, value in report["phases_s_median"].items():
        lines.append(f"    {name:26s} {value:6.3f} s")
    default = report.get("default_settings")
    if default:
        lines += ["", f"with default settings (one push): {default['total_s']:.2f} s, of which "
                  f"profiling child {default['parts_s']['profiling_child']:.2f} s"]  # fmt: skip
    lines += [
        f"after: {machine_line(report['machine_after'])}",
        usage_line(report["machine_before"], report["machine_after"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.push_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_args(parser)
    parser.add_argument("--repeats", type=int, default=5, help="pushes (default 5)")
    parser.add_argument("--no-default", action="store_true",
                        help="skip the extra push with default profile settings")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        report = run(args.repeats, not args.no_default)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    report["command"] = command_line("bench.push_latency", argv)
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
