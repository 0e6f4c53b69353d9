"""The agent as a hostile host, network or operator would treat it, as a real
process on a real Mosquitto: kill -9 mid-inference takes the worker with it and a
restarted agent kills what an earlier life left running before any job; control
messages are handled once; a flood of big control messages costs a few lines;
parse errors cost rate-limited lines, never tracebacks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from modelkit.hostile import build_onnx_endless_loop
from protocol import topics
from protocol.messages import Collect
from protocol.signing import SigningKey, seal
from tests.agent.conftest import StartAgent, new_device_id
from tests.agent.fleet_host import TINY_SETTINGS, HostClient, onnx_model_bytes
from tests.support.broker import MosquittoBroker
from tests.support.processes import alive, workers_of

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _wait(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _run_job(host: HostClient, device: str, model: bytes, settings: dict[str, object]) -> str:
    job = host.manifest(device, model, settings=settings)
    host.send(device, job)
    host.wait_event(device, job.job_id, "downloading")
    host.publish_chunks(job)
    return job.job_id


def test_kill_9_takes_a_hanging_worker_along_and_a_restart_kills_leftovers_first(
    mosquitto: MosquittoBroker,
    keys: tuple[SigningKey, Path],
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    leftover = None
    try:
        host.wait_state(device, "online")
        # The first inference never returns (a Loop that never ends, in native code).
        _run_job(host, device, build_onnx_endless_loop(), dict(TINY_SETTINGS))
        _wait(lambda: workers_of(agent.pid), "the worker")
        workers = workers_of(agent.pid)
        time.sleep(2.0)  # inside the hanging inference
        agent.kill()  # kill -9: no clean-up code of the agent runs
        _wait(lambda: not any(alive(w) for w in workers), "the worker to die with its agent", 10)

        # A worker an earlier life left (as if it had survived): recorded on disk.
        leftover = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
        )
        record = tmp_path / f"cache-{device}" / "workers" / f"{leftover.pid}.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        started = psutil.Process(leftover.pid).create_time()
        record.write_text(json.dumps({"pid": leftover.pid, "started": started, "parent": 1}))
        host.clear()
        again = start_agent(mosquitto, device)
        host.wait_state(device, "online")
        assert leftover.poll() is not None, "the restarted agent left the old worker running"
        job_id = _run_job(host, device, onnx_model_bytes(), dict(TINY_SETTINGS))
        assert host.wait_result(device, job_id)["result"]["status"] == "ok"
        assert "left running by an earlier agent" in again.output()
    finally:
        if leftover is not None and leftover.poll() is None:
            leftover.kill()
        host.close()


def test_a_replayed_collect_is_handled_once(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        job_id = _run_job(host, device, onnx_model_bytes(), dict(TINY_SETTINGS))
        host.wait_result(device, job_id)  # not acknowledged: it stays in the outbox
        now = time.time()
        sealed = seal(Collect(device, now, now + 3600), keys[0])
        host.clear()
        for _ in range(200):  # the same signed bytes, over and over
            host.send_raw(device, sealed)
        fresh = seal(Collect(device, time.time(), time.time() + 3600), keys[0])
        host.send_raw(device, fresh)  # a new request still works
        result_topic = topics.job_result(device, job_id)
        _wait(lambda: len(host.matching(lambda m: m.topic == result_topic)) >= 2, "two re-sends")
        time.sleep(2.0)
        assert len(host.matching(lambda m: m.topic == result_topic)) == 2
        states = host.matching(lambda m: m.topic == topics.state(device))
        assert len(states) <= 4, len(states)
    finally:
        host.close()


def test_a_flood_of_big_control_messages_costs_a_few_lines_and_the_agent_answers(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device, "--log-level", "INFO")
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        big = b"x" * (850 * 1024)  # bigger than any control message: dropped before queueing
        near = b"{" + b" " * (250 * 1024) + b"}"  # under the size limit: queued, bytes bounded
        # Frozen, the agent lets the broker pile the flood up; thawed, it receives it
        # far faster than it can handle control messages.
        agent.proc.send_signal(signal.SIGSTOP)
        try:
            for index in range(600):
                payload = big if index % 2 else near
                host.client.publish(topics.job(device), payload, qos=1)
            host.client.publish(topics.job(device), b"", qos=1).wait_for_publish(60)
        finally:
            agent.proc.send_signal(signal.SIGCONT)
        manifest = host.manifest(device, onnx_model_bytes())
        host.send(device, manifest)
        host.wait_event(device, manifest.job_id, "accepted", timeout=120)
        assert agent.alive()
        log = agent.output()
        assert "Traceback" not in log
        assert log.count("control message") < 40  # rate-limited lines
    finally:
        host.close()


def test_protocol_errors_cost_one_rate_limited_line_never_a_traceback(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device, "--log-level", "INFO")
    host = HostClient(mosquitto.port, keys[0])
    host.serve_requests = False
    try:
        host.wait_state(device, "online")
        data = onnx_model_bytes(2048)
        job = host.manifest(device, data, chunk_size=1024)
        host.send(device, job)
        host.wait_event(device, job.job_id, "downloading")
        sha = job.model.sha256
        bad_topics = [f"{topics.ROOT}/blob/{sha}/²", f"{topics.ROOT}/blob/{sha}/" + "9" * 5000,
                      f"{topics.ROOT}/blob/{sha}/-1", f"{topics.ROOT}/blob/{sha}/01"]  # fmt: skip
        for index in range(400):
            host.client.publish(bad_topics[index % len(bad_topics)], b"junk", qos=0)
            envelope = {"schema": "edgeprof.signed/1", "payload": "é" * 20, "sig": "ü", "key_id": 1}
            host.client.publish(topics.job(device), json.dumps(envelope).encode(), qos=0)
        host.client.publish(topics.job(device), b"", qos=1).wait_for_publish(30)
        host.publish_chunks(job)  # the download still completes
        assert host.wait_result(device, job.job_id)["result"]["status"] == "ok"
        log = agent.output()
        assert "Traceback" not in log
        assert sum(1 for line in log.splitlines() if "ignoring" in line or "rejected" in line) < 60
        assert agent.alive()
    finally:
        host.close()
