"""Faults, with real processes on a private Mosquitto: what is lost, duplicated or
crashed when things die or lie.

1. **kill -9 cycles** — N pushes (``hostctl push`` as a subprocess) to one real
   agent; in each, the agent or hostctl is killed with SIGKILL at a random stage
   (manifest sent, transfer, running, result published). A killed agent is started
   again; after the last cycle ``hostctl collect`` runs until nothing new comes.
   Figures: results the agent published vs results stored (lost = published and
   never stored), stored results beyond one per job (duplicated), results kept as
   conflict events, jobs the journal does not know (untraced) and jobs without a
   result, each of which ``hostctl jobs`` lists.
2. **broker restarts mid-transfer** — M pushes of a 2 MB model; at the first chunk
   the broker (no persistence: it forgets every session and queued message) is
   restarted. Figure: jobs completed / M.
3. **fuzz** — P malformed payloads (random bytes, deep nesting, NaN/Infinity,
   5,000-digit numbers, lone surrogates, wrong-type fields in valid messages,
   oversized payloads, bad topic levels, forged envelopes) at the agent's topics
   and at every topic the host reads, while a push runs; then ``hostctl devices``,
   ``collect``, ``results`` and ``jobs`` over what stayed retained or queued.
   Figures: crashes (agent exit, hostctl exit status other than 0/1, any
   traceback), agent RSS after / before.

Goals: 0 lost, 0 duplicated, 0 crashes, RSS back within 20 % of its start.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    TopicLog,
    agent_command,
    child_env,
    free_port,
    host_keys,
    matmul_model,
    mosquitto_tool,
    stop_process,
    wait_online,
    workspace,
)

DEVICE = "bench-faults"
STAGES = ("manifest", "transfer", "running", "result")
VICTIMS = ("agent", "hostctl")
TINY_FLAGS = ["--runs", "5", "--warmup", "1", "--warmup-seconds", "0", "--min-seconds", "1",
              "--max-seconds", "5"]  # fmt: skip
RSS_TARGET = 1.2


class Broker:
    """A private mosquitto on a fixed 127.0.0.1 port, which can be restarted."""

    def __init__(self, workdir: Path, *, persistence: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {workdir}/\n"
            "max_queued_messages 100000\nmax_inflight_messages 0\n"
            f"log_type error\nlog_dest file {workdir / 'mosquitto.log'}\n",
            encoding="utf-8",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        import socket

        self.proc = subprocess.Popen([mosquitto_tool("mosquitto"), "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise BenchError(f"mosquitto did not listen on {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1


@dataclass
class AgentProc:
    """The one real agent of the benchmark; same cache dir across restarts."""

    url: str
    workdir: Path
    trust: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with (self.workdir / "agent.log").open("ab") as log:
            self.proc = subprocess.Popen(
                agent_command(self.url, DEVICE, self.workdir / "cache", self.trust),
                stdout=log, stderr=subprocess.STDOUT, env=child_env(),
            )  # fmt: skip
        self.starts += 1

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mb(self) -> float:
        import psutil

        assert self.proc is not None
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log_text(self) -> str:
        return (self.workdir / "agent.log").read_text(errors="replace")


def _setup(work: Path) -> tuple[tuple[Path, Path], Path, Broker, AgentProc]:
    """Keys, a results store path, a started broker and a started agent."""
    keys = host_keys(work)
    broker = Broker(work)
    broker.start()
    agent = AgentProc(broker.url, work, keys[1])
    agent.start()
    return keys, work / "results.sqlite", broker, agent


def _hostctl(broker: Broker, keys: tuple[Path, Path], db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hostctl", "--broker", broker.url, "--key", str(keys[0]),
            "--db", str(db), *args]  # fmt: skip


def _run(argv: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=child_env(), timeout=timeout)


def _stage_reached(messages: Sequence[Any], stage: str) -> bool:
    job_topic = f"{ROOT}/dev/{DEVICE}/job"
    for m in messages:
        if stage == "manifest" and m.topic == job_topic:
            return True
        if stage == "transfer" and "/blob/" in m.topic and not m.topic.endswith("/request"):
            return True
        if (
            stage == "running"
            and m.topic.endswith("/event")
            and m.payload is not None
            and json.loads(m.payload).get("state") == "running"
        ):
            return True
        if stage == "result" and m.topic.endswith("/result"):
            return True
    return False


def _published_results(messages: Sequence[Any]) -> set[str]:
    return {m.topic.split("/")[5] for m in messages if m.topic.endswith("/result")}


# --------------------------------------------------------------------------- 1. kill -9


def kill_cycles(work: Path, cycles: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    keys, db, broker, agent = _setup(work)
    log = None
    kills: list[dict[str, Any]] = []
    crashes = 0
    try:
        wait_online(broker.port, [DEVICE])
        log = TopicLog(broker.port, [f"{ROOT}/dev/{DEVICE}/#", f"{ROOT}/blob/+/+"],
                       keep_below=64 * 1024)  # fmt: skip
        for cycle in range(cycles):
            model = matmul_model(work / f"m{cycle}.onnx", 256, 256, seed=cycle + 1)
            victim, stage = rng.choice(VICTIMS), rng.choice(STAGES)
            progress(f"cycle {cycle + 1}/{cycles}: kill -9 {victim} at {stage}")
            start = len(log.snapshot())
            push = subprocess.Popen(
                _hostctl(broker, keys, db, "push", str(model), "--device", DEVICE, *TINY_FLAGS,
                         "--chunk-size", "8192", "--timeout", "60", "--json"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
            )  # fmt: skip
            try:
                log.wait_for(lambda ms: _stage_reached(ms[start:], stage), 60, stage)  # noqa: B023
                reached = True
            except BenchError:
                reached = False
            if victim == "agent":
                agent.kill9()
                agent.start()
            else:
                push.kill()
            _out, err = push.communicate(timeout=180)
            crashes += push.returncode not in (0, 1, -9) or "Traceback" in err
            kills.append({"cycle": cycle, "victim": victim, "stage": stage, "reached": reached,
                          "push_exit": push.returncode})  # fmt: skip
            if victim == "agent":
                wait_online(broker.port, [DEVICE])
        time.sleep(3.0)  # let the last jobs finish on the device
        new = 1
        rounds = 0
        while new and rounds < 6:
            done = _run(_hostctl(broker, keys, db, "collect", "--wait", "5"))
            crashes += done.returncode != 0 or "Traceback" in done.stderr
            new = int(done.stdout.split()[0]) if done.stdout[:1].isdigit() else 0
            rounds += 1
        published = _published_results(log.snapshot())
        stored_docs = json.loads(_run(_hostctl(broker, keys, db, "results", "--no-collect",
                                               "--json")).stdout)  # fmt: skip
        jobs = json.loads(_run(_hostctl(broker, keys, db, "jobs", "--json")).stdout)
    finally:
        if log is not None:
            log.close()
        agent.stop()
        broker.stop()
    stored = [d["job_id"] for d in stored_docs]
    journaled = {j["job_id"] for j in jobs}
    per_model: dict[str, int] = {}
    for doc in stored_docs:
        per_model[doc["model"]["name"]] = per_model.get(doc["model"]["name"], 0) + 1
    return {
        "cycles": cycles,
        "kills": kills,
        "results_published": len(published),
        "results_stored": len(stored),
        "lost": len(published - set(stored)),
        "duplicated": len(stored)
        - len(set(stored))
        + sum(n - 1 for n in per_model.values() if n > 1),
        "conflicts_kept_as_events": sum(j["conflicts"] for j in jobs),
        "untraced_jobs": len(set(stored) - journaled),
        "cycles_without_a_journaled_job": cycles - len({j["model"]["name"] for j in jobs}),
        "jobs_without_result": [
            {"job_id": j["job_id"], "status": j["status"], "state": j["state"]}
            for j in jobs
            if j["result"] is None
        ],
        "agent_starts": agent.starts,
        "crashes": crashes,
    }


# --------------------------------------------------------------------------- 2. broker restarts


def broker_restarts(work: Path, jobs: int) -> dict[str, Any]:
    keys, db, broker, agent = _setup(work)
    completed = 0
    failures: list[str] = []
    crashes = 0
    try:
        wait_online(broker.port, [DEVICE])
        for n in range(jobs):
            model = matmul_model(work / f"big{n}.onnx", 724, 724, seed=100 + n)  # ~2 MB
            progress(f"push {n + 1}/{jobs}: broker restart at the first chunk")
            log = TopicLog(broker.port, [f"{ROOT}/blob/+/+"], keep_below=0)
            push = subprocess.Popen(
                _hostctl(broker, keys, db, "push", str(model), "--device", DEVICE, *TINY_FLAGS,
                         "--chunk-size", "16384", "--timeout", "120", "--json"),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
            )  # fmt: skip
            try:
                log.wait_for(lambda ms: any(not m.topic.endswith("/request") for m in ms),
                             60, "the first chunk")  # fmt: skip
            finally:
                log.close()
            broker.restart()
            out, err = push.communicate(timeout=300)
            crashes += push.returncode not in (0, 1) or "Traceback" in err
            try:
                ok = push.returncode == 0 and [r["status"] for r in json.loads(out)] == ["ok"]
            except ValueError:
                ok = False
            completed += ok
            if not ok:
                failures.append((err.strip().splitlines() or ["?"])[-1][:200])
            wait_online(broker.port, [DEVICE])
    finally:
        agent.stop()
        broker.stop()
    return {"jobs": jobs, "completed": completed, "broker_restarts": broker.restarts,
            "failures": failures, "crashes": crashes}  # fmt: skip


# --------------------------------------------------------------------------- 3. fuzz

_WEIRD: list[Any] = [None, True, -1, 10**30, 1e308, "boom", "", "²", [], {}, ["x"], {"a": [[[]]]},
                     "\ud800", "x" * 5000]  # fmt: skip
_VALID_BODIES: dict[str, dict[str, Any]] = {
    "state": {"type": "state", "v": 1, "device_id": DEVICE, "state": "online", "epoch": 1,
              "ts": 1.0},
    "info": {"type": "info", "v": 1, "device_id": DEVICE, "device": {"ram_mb": 1024},
             "runtimes": {}, "tags": [], "free_disk_mb": 1.0, "cached_models": [],
             "agent_version": "0", "ts": 1.0},
    "event": {"type": "event", "v": 1, "device_id": DEVICE, "job_id": "fuzzjob1",
              "state": "running", "ts": 1.0, "progress": {"phase": "x"}},
    "result": {"type": "result", "v": 1, "device_id": DEVICE, "job_id": "fuzzjob1",
               "result": {"schema": "edgeprof.result/1", "status": "ok",
                          "device": {"id": DEVICE}, "error": None}},
    "request": {"type": "chunk_request", "v": 1, "device_id": DEVICE, "sha256": "ab" * 32,
                "missing": [0]},
    "job": {"schema": "edgeprof.signed/1", "payload": "e30=", "sig": "AA==", "key_id": "x"},
}  # fmt: skip


def _mutated(rng: random.Random, body: Mapping[str, Any]) -> bytes:
    out = json.loads(json.dumps(body))
    target = out
    keys = list(target)
    if "result" in out and rng.random() < 0.5:
        target = out["result"]
        keys = [*target, "device", "error", "job_id"]
    key = rng.choice(keys)
    value = rng.choice(_WEIRD)
    if key == "device" and rng.random() < 0.5:
        value = {"id": rng.choice(_WEIRD)}
    target[key] = value
    text = json.dumps(out, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


def fuzz_payload(rng: random.Random, kind: str) -> bytes:
    """One malformed payload for a topic of `kind`."""
    how = rng.randrange(10)
    if how == 0:
        return rng.randbytes(rng.randrange(1, 400))
    if how == 1:
        return b"[" * rng.choice((40, 5000, 100_000))
    if how == 2:
        return b'{"type": "%s", "v": 1, "ts": %s}' % (kind.encode(), rng.choice(
            [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 5000]))  # fmt: skip
    if how == 3:
        return b'{"type": "state", "v": 1, "device_id": "\\ud800"}'
    if how == 4:
        return b"x" * rng.choice((300 * 1024, 900 * 1024))
    if how == 5:
        return json.dumps(rng.choice(_WEIRD), allow_nan=True).encode("utf-8", "surrogatepass")
    if how == 6 and kind == "job":
        return json.dumps({"schema": "edgeprof.signed/1", "payload": "é" * 30, "sig": "ü",
                           "key_id": 1}).encode()  # fmt: skip
    return _mutated(rng, _VALID_BODIES.get(kind, _VALID_BODIES["state"]))


def _fuzz_topics(rng: random.Random, sha: str, job: str) -> tuple[str, str]:
    """(kind, topic): the agent's topics, bad topic levels, or a topic the host reads."""
    choice = rng.randrange(9)
    if choice == 0:
        return "job", f"{ROOT}/dev/{DEVICE}/job"
    if choice == 1:
        index = rng.choice(["²", "9" * 5000, "-1", "01", str(rng.randrange(10_000))])
        return "chunk", f"{ROOT}/blob/{sha}/{index}"
    if choice == 2:
        return "state", f"{ROOT}/dev/{rng.choice([DEVICE, 'fuzz-a', 'fuzz-b'])}/state"
    if choice == 3:
        return "info", f"{ROOT}/dev/{rng.choice([DEVICE, 'fuzz-a'])}/info"
    if choice == 4:
        return "event", f"{ROOT}/dev/{rng.choice([DEVICE, 'fuzz-a'])}/job/{job}/event"
    if choice == 5:
        return "result", f"{ROOT}/dev/{rng.choice([DEVICE, 'fuzz-a'])}/job/{job}/result"
    if choice == 6:
        return "request", f"{ROOT}/blob/{sha}/request"
    if choice == 7:
        return "result", f"{ROOT}/dev/{DEVICE}/job/fuzzjob1/result"
    return "state", f"{ROOT}/dev/{rng.choice(['²', 'a b', 'x' * 70])}/state"


def fuzz(work: Path, payloads: int, seed: int) -> dict[str, Any]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    rng = random.Random(seed)
    keys, db, broker, agent = _setup(work)
    crashes: list[str] = []
    sent = 0
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    try:
        wait_online(broker.port, [DEVICE])
        # The reference: the agent after one ordinary job, settled.
        model = matmul_model(work / "warm.onnx", 64, 64, seed=7)
        done = _run(_hostctl(broker, keys, db, "push", str(model), "--device", DEVICE,
                             *TINY_FLAGS, "--json"))  # fmt: skip
        if done.returncode != 0:
            raise BenchError(f"the reference push failed: {done.stderr.strip()[-300:]}")
        time.sleep(3.0)
        rss_before = agent.rss_mb()
        target = matmul_model(work / "fuzzed.onnx", 256, 256, seed=8)
        log = TopicLog(broker.port, [f"{ROOT}/dev/{DEVICE}/#", f"{ROOT}/blob/+/+"],
                       keep_below=64 * 1024)  # fmt: skip
        push = subprocess.Popen(
            _hostctl(broker, keys, db, "push", str(target), "--device", DEVICE, *TINY_FLAGS,
                     "--min-seconds", "15", "--max-seconds", "30", "--chunk-size", "4096",
                     "--timeout", "300", "--json"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        )  # fmt: skip
        try:
            messages = log.wait_for(lambda ms: any(m.topic.endswith("/event") for m in ms), 60,
                                    "the job's first event")  # fmt: skip
        finally:
            log.close()
        job = next(m.topic.split("/")[5] for m in messages if m.topic.endswith("/event"))
        from bench.fleet_common import sha256_of

        sha = sha256_of(target)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        progress(f"fuzzing with {payloads} payloads while job {job} runs …")
        for n in range(payloads):
            kind, topic = _fuzz_topics(rng, sha, job)
            payload = fuzz_payload(rng, kind)
            retain = kind in ("state", "info") and rng.random() < 0.05
            info = client.publish(topic, payload, qos=1, retain=retain)
            sent += 1
            if n % 200 == 199:
                info.wait_for_publish(30)
        out, err = push.communicate(timeout=400)
        if push.returncode not in (0, 1) or "Traceback" in err:
            crashes.append(f"push exited {push.returncode}: {err.strip()[-300:]}")
        try:
            statuses = [r["status"] for r in json.loads(out)]
        except ValueError:
            statuses = []
        # The next hostctl runs read what stayed retained or queued for their session.
        for args in (("devices", "--json"), ("collect", "--wait", "2"), ("results",), ("jobs",)):
            later = _run(_hostctl(broker, keys, db, *args))
            if later.returncode != 0 or "Traceback" in later.stderr:
                crashes.append(f"{args[0]} exited {later.returncode}: {later.stderr[-300:]}")
            if args[0] == "devices" and later.returncode == 0:
                json.loads(later.stdout, parse_constant=lambda c: crashes.append(f"devices: {c}"))
        time.sleep(5.0)  # the agent back to idle
        if not agent.alive():
            crashes.append(f"the agent exited ({agent.proc.returncode if agent.proc else '?'})")
            rss_after = float("nan")
        else:
            rss_after = agent.rss_mb()
        if "Traceback" in agent.log_text():
            crashes.append("a traceback in the agent's log")
        log_lines = len(agent.log_text().splitlines())
    finally:
        client.loop_stop()
        client.disconnect()
        agent.stop()
        broker.stop()
    return {
        "payloads": sent,
        "crashes": len(crashes),
        "crash_details": crashes,
        "push_result": statuses,
        "agent_rss_mb_before": rss_before,
        "agent_rss_mb_after": rss_after,
        "agent_rss_ratio": rss_after / rss_before,
        "agent_log_lines": log_lines,
    }


# --------------------------------------------------------------------------- report


def run(cycles: int, restarts: int, payloads: int, seed: int) -> dict[str, Any]:
    before = machine_info()
    report: dict[str, Any] = {"benchmark": "faults", "seed": seed}
    with workspace("edgeprof-bench-faults-") as work:
        for name, step in (
            ("kill", lambda d: kill_cycles(d, cycles, seed)),
            ("broker", lambda d: broker_restarts(d, restarts)),
            ("fuzz", lambda d: fuzz(d, payloads, seed)),
        ):
            directory = work / name
            directory.mkdir()
            if (
                (name == "kill" and cycles)
                or (name == "broker" and restarts)
                or (name == "fuzz" and payloads)
            ):
                report[name] = step(directory)
    kill, broker, fuzzed = report.get("kill"), report.get("broker"), report.get("fuzz")
    report["verdicts"] = {
        "lost": verdict(kill["lost"], 0) if kill else "n/a",
        "duplicated": verdict(kill["duplicated"], 0) if kill else "n/a",
        "jobs_completed": verdict(broker["completed"], broker["jobs"], at_most=False)
        if broker
        else "n/a",
        "crashes": verdict(
            sum(x["crashes"] for x in (kill, broker, fuzzed) if x), 0
        ),
        "rss": verdict(fuzzed["agent_rss_ratio"], RSS_TARGET) if fuzzed else "n/a",
    }  # fmt: skip
    report["machine_before"] = before
    report["machine_after"] = machine_info()
    return report


def render(report: Mapping[str, Any]) -> str:
    lines = [
        f"faults (seed {report['seed']})",
        f"machine: {machine_line(report['machine_before'])}",
    ]
    kill = report.get("kill")
    if kill:
        by = {}
        for k in kill["kills"]:
            key = f"{k['victim']}@{k['stage']}"
            by[key] = by.get(key, 0) + 1
        lines += [
            "",
            f"kill -9, {kill['cycles']} cycles ({', '.join(f'{k} x{n}' for k, n in sorted(by.items()))}):",
            f"  results published by the agent {kill['results_published']}, stored "
            f"{kill['results_stored']}: lost {kill['lost']}, duplicated {kill['duplicated']}, "
            f"conflicts kept as events {kill['conflicts_kept_as_events']}",
            f"  untraced jobs {kill['untraced_jobs']}, cycles without a journaled job "
            f"{kill['cycles_without_a_journaled_job']}; jobs without a result (all listed by "
            f"hostctl jobs): {len(kill['jobs_without_result'])}",
            f"  agent starts {kill['agent_starts']}, crashes {kill['crashes']}",
        ]  # fmt: skip
    broker = report.get("broker")
    if broker:
        lines += ["", f"broker restarted mid-transfer: {broker['completed']} of {broker['jobs']} "
                  f"jobs completed ({broker['broker_restarts']} restarts), crashes "
                  f"{broker['crashes']}"]  # fmt: skip
        lines += [f"  failed: {f}" for f in broker["failures"]]
    fuzzed = report.get("fuzz")
    if fuzzed:
        lines += ["", f"fuzz: {fuzzed['payloads']} payloads to agent and host during a push "
                  f"(result {fuzzed['push_result']}): crashes {fuzzed['crashes']}; agent RSS "
                  f"{fuzzed['agent_rss_mb_before']:.1f} -> {fuzzed['agent_rss_mb_after']:.1f} MB "
                  f"(ratio {fuzzed['agent_rss_ratio']:.3f}); agent log {fuzzed['agent_log_lines']} "
                  "lines"]  # fmt: skip
        lines += [f"  crash: {c}" for c in fuzzed["crash_details"]]
    lines += ["", "verdicts: " + ", ".join(f"{k} {v}" for k, v in report["verdicts"].items())]
    lines += [f"after: {machine_line(report['machine_after'])}",
              usage_line(report["machine_before"], report["machine_after"])]  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_args(parser)
    parser.add_argument("--cycles", type=int, default=20, help="kill -9 cycles (default 20)")
    parser.add_argument("--restarts", type=int, default=10,
                        help="pushes with a broker restart mid-transfer (default 10)")  # fmt: skip
    parser.add_argument("--payloads", type=int, default=5000,
                        help="fuzzed payloads (default 5000)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    try:
        report = run(args.cycles, args.restarts, args.payloads, args.seed)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    report["command"] = command_line("bench.faults", argv)
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
