"""Footprint: an idle agent (a real ``python -m agent`` process, connected to a
loopback Mosquitto, runtimes probed) watched for 60 s: resident memory (sampled
every second, and the kernel's high-water mark VmHWM), CPU share of one core
(its own user + system time over wall time), and whether any runtime or numpy
is mapped into the process (/proc/PID/maps).

Reference, in the same run and the same window: a bare
``python -c "import time; time.sleep(N)"`` process's RSS.
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
    progress,
    usage_line,
    verdict,
)
from bench.fleet_common import (
    agent_process,
    host_keys,
    mosquitto,
    wait_online,
    workspace,
)

DEVICE = "bench-idle"
TARGET_RSS_MB = 30.0
TARGET_CPU_PCT = 1.0
RUNTIME_MARKERS = ("onnxruntime", "ai_edge_litert", "tflite_runtime", "tensorflow", "numpy")


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _mapped_runtimes(pid: int) -> list[str]:
    """Files of runtimes/numpy mapped into `pid` (shared objects and the like)."""
    found: set[str] = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and any(marker in parts[5] for marker in RUNTIME_MARKERS):
            found.add(parts[5])
    return sorted(found)


def run(seconds: float) -> dict[str, Any]:
    import psutil

    before = machine_info()
    with workspace("edgeprof-bench-footprint-") as work:
        keys = host_keys(work)
        with (
            mosquitto(work) as port,
            agent_process(f"mqtt://127.0.0.1:{port}", DEVICE, work, keys[1]) as proc,
        ):
            wait_online(port, [DEVICE])
            agent = psutil.Process(proc.pid)
            ref_proc = subprocess.Popen(
                [sys.executable, "-c", f"import time; time.sleep({seconds + 5})"]
            )
            try:
                ref = psutil.Process(ref_proc.pid)
                time.sleep(0.5)  # the reference has started Python and is sleeping
                progress(f"watching the idle agent for {seconds:.0f} s …")
                cpu0, wall0 = agent.cpu_times(), time.monotonic()
                agent_rss: list[float] = []
                ref_rss: list[float] = []
                children: list[int] = []
                while time.monotonic() - wall0 < seconds:
                    if proc.poll() is not None:
                        raise BenchError(f"the agent exited (code {proc.returncode})")
                    agent_rss.append(agent.memory_info().rss / 2**20)
                    ref_rss.append(ref.memory_info().rss / 2**20)
                    children.append(len(agent.children()))
                    time.sleep(1.0)
                cpu1, wall1 = agent.cpu_times(), time.monotonic()
                hwm = _vm_hwm_mb(proc.pid)
                ref_hwm = _vm_hwm_mb(ref_proc.pid)
                mapped = _mapped_runtimes(proc.pid)
                threads = agent.num_threads()
            finally:
                ref_proc.kill()
                ref_proc.wait()
    after = machine_info()
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    cpu_pct = 100 * cpu_s / (wall1 - wall0)
    rss_max = max(agent_rss)
    return {
        "benchmark": "footprint",
        "seconds": wall1 - wall0,
        "rss_mb_max": rss_max,
        "rss_mb_last": agent_rss[-1],
        "vm_hwm_mb": hwm,
        "reference_rss_mb": max(ref_rss),
        "reference_vm_hwm_mb": ref_hwm,
        "rss_ratio": rss_max / max(ref_rss),
        "rss_above_reference_mb": rss_max - max(ref_rss),
        "cpu_seconds": cpu_s,
        "cpu_pct": cpu_pct,
        "threads": threads,
        "children_max": max(children),
        "runtimes_mapped": mapped,
        "rss_target": f"<= {TARGET_RSS_MB} MB",
        "rss_verdict": verdict(max(rss_max, hwm or 0.0), TARGET_RSS_MB),
        "cpu_target": f"<= {TARGET_CPU_PCT} %",
        "cpu_verdict": verdict(cpu_pct, TARGET_CPU_PCT),
        "runtimes_verdict": "met" if not mapped else "MISSED",
        "machine_before": before,
        "machine_after": after,
    }


def render(report: Mapping[str, Any]) -> str:
    hwm = report["vm_hwm_mb"]
    mapped = report["runtimes_mapped"]
    return "\n".join(
        [
            f"idle agent footprint over {report['seconds']:.0f} s "
            "(python -m agent, connected, runtimes probed)",
            f"machine: {machine_line(report['machine_before'])}",
            "",
            f"RSS max {report['rss_mb_max']:.1f} MB, VmHWM "
            + (f"{hwm:.1f} MB" if hwm is not None else "n/a")
            + f" (target {report['rss_target']}: {report['rss_verdict']})",
            f"reference `python -c 'import time; time.sleep()'`: RSS "
            f"{report['reference_rss_mb']:.1f} MB → ratio {report['rss_ratio']:.2f}, "
            f"+{report['rss_above_reference_mb']:.1f} MB",
            f"CPU {report['cpu_seconds']:.3f} s over {report['seconds']:.0f} s = "
            f"{report['cpu_pct']:.3f} % of one core "
            f"(target {report['cpu_target']}: {report['cpu_verdict']})",
            f"threads {report['threads']}, child processes while idle: max "
            f"{report['children_max']}",
            "runtimes/numpy mapped: "
            + (", ".join(mapped) if mapped else "none")
            + f" ({report['runtimes_verdict']})",
            f"after: {machine_line(report['machine_after'])}",
            usage_line(report["machine_before"], report["machine_after"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_args(parser)
    parser.add_argument("--seconds", type=float, default=60.0, help="window (default 60)")
    args = parser.parse_args(argv)
    try:
        report = run(args.seconds)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    report["command"] = command_line("bench.footprint", argv)
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
