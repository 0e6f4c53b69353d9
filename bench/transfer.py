"""Transfer: push a ~20 MB ONNX model to one agent over a loopback Mosquitto, and
compare the chunked transfer's throughput with ``mosquitto_pub -f FILE`` of the
same file to a subscriber, measured in the same run.

Transfer time = first chunk seen on the broker (a subscriber on ``blob/SHA/0``)
→ the agent's ``verifying`` event (its own timestamp: every chunk received and
written). The reference is the time from starting ``mosquitto_pub -q 1 -f FILE``
to a paho subscriber having the whole message, minus the start-up of
``mosquitto_pub`` (a one-byte publish timed the same way). Each round uses a new
model (another seed, another hash) so nothing is cached; the order alternates.
"""

from __future__ import annotations

import argparse
import functools
import queue
import subprocess
import threading
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
    TINY_SETTINGS,
    Logged,
    TopicLog,
    agent_process,
    events,
    failures_text,
    host_keys,
    host_push,
    matmul_model,
    mosquitto,
    mosquitto_tool,
    sha256_of,
    stop_process,
    wait_online,
    workspace,
)

DEVICE = "bench-transfer"
TARGET_RATIO = 0.5
CHUNK = 64 * 1024


def _has_topic(topic: str, messages: Sequence[Logged]) -> bool:
    return any(m.topic == topic for m in messages)


def _reference_c(port: int, model: Path) -> dict[str, float]:
    """mosquitto_pub -f of `model` to ``mosquitto_sub -F '%t %l'`` (both C clients):
    seconds from starting mosquitto_pub to mosquitto_sub printing the message's length,
    and the same for a one-byte message (mosquitto_pub's start-up)."""
    pub, sub = mosquitto_tool("mosquitto_pub"), mosquitto_tool("mosquitto_sub")
    addr = ["-h", "127.0.0.1", "-p", str(port), "-q", "1"]
    lines: queue.Queue[tuple[float, str]] = queue.Queue()
    proc = subprocess.Popen([sub, *addr, "-t", "bench/c/#", "-F", "%t %l"],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put((time.time(), line.strip()))

    threading.Thread(target=reader, daemon=True).start()

    def publish_and_wait(topic: str, extra: list[str], timeout: float) -> tuple[float, str]:
        t0 = time.time()
        subprocess.run([pub, *addr, "-t", topic, *extra], check=True, timeout=120)
        deadline = time.monotonic() + timeout
        while True:
            try:
                at, line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"mosquitto_sub did not receive {topic}") from None
            if line.startswith(topic + " "):
                return at - t0, line

    try:
        for _ in range(50):  # until mosquitto_sub has subscribed
            try:
                publish_and_wait("bench/c/probe", ["-m", "x"], 0.2)
                break
            except BenchError:
                continue
        else:
            raise BenchError("mosquitto_sub never subscribed")
        startup = median([publish_and_wait("bench/c/small", ["-m", "x"], 30)[0]
                          for _ in range(3)])  # fmt: skip
        raw, line = publish_and_wait("bench/c/big", ["-f", str(model)], 120)
    finally:
        stop_process(proc)
    if line.split()[-1] != str(model.stat().st_size):
        raise BenchError(f"mosquitto_sub received {line!r}, sent {model.stat().st_size} bytes")
    return {"raw_s": raw, "startup_s": startup, "net_s": max(1e-6, raw - startup)}


def _reference(port: int, log: TopicLog, model: Path) -> dict[str, float]:
    """mosquitto_pub -f of `model` to a paho subscriber: seconds to receipt, and
    mosquitto_pub's own start-up."""
    pub = mosquitto_tool("mosquitto_pub")
    base = [pub, "-h", "127.0.0.1", "-p", str(port), "-q", "1"]
    startups = []
    for i in range(3):
        log.clear()
        t0 = time.time()
        subprocess.run([*base, "-t", f"bench/ref/small{i}", "-m", "x"], check=True, timeout=30)
        topic = f"bench/ref/small{i}"
        got = log.wait_for(functools.partial(_has_topic, topic), 30, "the one-byte message")
        startups.append(next(m.t for m in got if m.topic == topic) - t0)
    size = model.stat().st_size
    log.clear()
    t0 = time.time()
    done = subprocess.run([*base, "-t", "bench/ref/big", "-f", str(model)], timeout=120,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"mosquitto_pub -f failed (exit {done.returncode})")
    got = log.wait_for(lambda ms: any(m.topic == "bench/ref/big" for m in ms), 120,
                       "the reference file")  # fmt: skip
    message = next(m for m in got if m.topic == "bench/ref/big")
    if message.size != size:
        raise BenchError(f"reference received {message.size} bytes, sent {size}")
    startup = median(startups)
    return {"raw_s": message.t - t0, "startup_s": startup,
            "net_s": max(1e-6, message.t - t0 - startup)}  # fmt: skip


def _push(port: int, log: TopicLog, keys: tuple[Path, Path], db: Path, model: Path,
          sha: str) -> dict[str, Any]:  # fmt: skip
    """One push; the transfer and the other parts from the agent's events."""
    log.clear()
    times = host_push(port, keys[0], db, model, [DEVICE], settings=TINY_SETTINGS)
    if times.outcome.failures:
        raise BenchError(f"push failed: {failures_text(times.outcome)}")
    messages = log.wait_for(
        lambda ms: any(m.topic.endswith("/result") for m in ms), 30, "the result on the logger"
    )
    first_chunk = next(m.t for m in messages if m.topic == f"{ROOT}/blob/{sha}/0")
    seen: dict[str, float] = {}
    for received, event in events(messages):
        seen.setdefault(event["state"], float(event["ts"]))
        seen.setdefault(f"{event['state']}@host", received)
    result_at = next(m.t for m in messages if m.topic.endswith("/result"))
    needed = ("downloading", "verifying", "running", "succeeded")
    if any(state not in seen for state in needed):
        raise BenchError(f"missing events: saw {sorted(seen)}")
    transfer = seen["verifying"] - first_chunk
    return {
        "total_s": times.end - times.start,
        "transfer_s": transfer,
        "parts_s": {
            "connect_discover_wait_subscribe": first_chunk - times.start,
            "transfer": transfer,
            "verify_admit_queue": seen["running"] - seen["verifying"],
            "profile": seen["succeeded"] - seen["running"],
            "result_store_ack": times.end - min(result_at, seen["succeeded@host"]),
        },
    }


def run(rounds: int, rows: int, cols: int) -> dict[str, Any]:
    before = machine_info()
    rows_out: list[dict[str, Any]] = []
    with workspace("edgeprof-bench-transfer-") as work:
        progress(f"building {rounds} models of {rows}x{cols} float32 …")
        models = [matmul_model(work / f"big{i}.onnx", rows, cols, seed=i + 1)
                  for i in range(rounds)]  # fmt: skip
        size = models[0].stat().st_size
        shas = [sha256_of(m) for m in models]
        last = (size - 1) // CHUNK
        keys = host_keys(work)
        with (
            mosquitto(work) as port,
            agent_process(f"mqtt://127.0.0.1:{port}", DEVICE, work, keys[1]),
        ):
            wait_online(port, [DEVICE])
            filters = ["bench/ref/#", f"{ROOT}/dev/{DEVICE}/job/+/event",
                       f"{ROOT}/dev/{DEVICE}/job/+/result"]  # fmt: skip
            filters += [f"{ROOT}/blob/{sha}/{i}" for sha in shas for i in (0, last)]
            log = TopicLog(port, filters, keep_below=1 << 16)
            try:
                for i, (model, sha) in enumerate(zip(models, shas, strict=True)):
                    order = ("ref", "push") if i % 2 == 0 else ("push", "ref")
                    entry: dict[str, Any] = {"round": i + 1}
                    for what in order:
                        progress(f"round {i + 1}/{rounds}: {what}")
                        if what == "ref":
                            entry["reference"] = _reference_c(port, model)
                            entry["reference_paho"] = _reference(port, log, model)
                        else:
                            entry["push"] = _push(port, log, keys, work / "results.sqlite",
                                                  model, sha)  # fmt: skip
                    entry["ratio"] = entry["reference"]["net_s"] / entry["push"]["transfer_s"]
                    rows_out.append(entry)
            finally:
                log.close()
    after = machine_info()
    ratio = median([r["ratio"] for r in rows_out])
    transfer = median([r["push"]["transfer_s"] for r in rows_out])
    ref = median([r["reference"]["net_s"] for r in rows_out])
    return {
        "benchmark": "transfer",
        "model_bytes": size,
        "chunk_bytes": CHUNK,
        "settings": TINY_SETTINGS,
        "rounds": rows_out,
        "transfer_s": transfer,
        "transfer_MBps": size / transfer / 1e6,
        "reference_s": ref,
        "reference_MBps": size / ref / 1e6,
        "reference_paho_s": median([r["reference_paho"]["net_s"] for r in rows_out]),
        "total_push_s": median([r["push"]["total_s"] for r in rows_out]),
        "ratio": ratio,
        "target": f">= {TARGET_RATIO}",
        "verdict": verdict(ratio, TARGET_RATIO, at_most=False),
        "machine_before": before,
        "machine_after": after,
    }


def render(report: Mapping[str, Any]) -> str:
    lines = [
        f"transfer of a {report['model_bytes'] / 1e6:.1f} MB ONNX model to one agent "
        f"(loopback mosquitto, {report['chunk_bytes'] // 1024} KiB chunks)",
        f"machine: {machine_line(report['machine_before'])}",
        "",
        "round  ref raw s  ref net s  paho ref s  transfer s  total push s  ratio",
    ]
    for r in report["rounds"]:
        lines.append(
            f"{r['round']:5d}  {r['reference']['raw_s']:9.3f}  {r['reference']['net_s']:9.3f}  "
            f"{r['reference_paho']['net_s']:10.3f}  {r['push']['transfer_s']:10.3f}  {r['push']['total_s']:12.3f}  {r['ratio']:5.2f}"
        )
    lines += ["", "where a push's time goes (median round):"]
    mid = sorted(report["rounds"], key=lambda r: r["push"]["total_s"])[len(report["rounds"]) // 2]
    for name, value in mid["push"]["parts_s"].items():
        lines.append(f"  {name:34s} {value:7.3f} s")
    lines += [
        "",
        f"transfer: {report['transfer_s']:.3f} s = {report['transfer_MBps']:.1f} MB/s; "
        f"mosquitto_pub -f → mosquitto_sub: {report['reference_s']:.3f} s = "
        f"{report['reference_MBps']:.1f} MB/s (→ a paho subscriber: "
        f"{report['reference_paho_s']:.3f} s)",
        f"throughput ratio (median of rounds) = {report['ratio']:.2f}  "
        f"(target {report['target']}: {report['verdict']})",
        f"total push (connect → results stored), median: {report['total_push_s']:.2f} s",
        f"after: {machine_line(report['machine_after'])}",
        usage_line(report["machine_before"], report["machine_after"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_args(parser)
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--rows", type=int, default=2500, help="weight rows (default 2500)")
    parser.add_argument("--cols", type=int, default=2000,
                        help="weight columns (default 2000: 2500x2000x4 B = 20 MB)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        report = run(args.rounds, args.rows, args.cols)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    report["command"] = command_line("bench.transfer", argv)
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
