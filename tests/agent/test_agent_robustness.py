"""The agent under stress, as a real process against a real Mosquitto: control
messages during a chunk flood, partial downloads on disk, stopping mid-measurement."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from protocol import topics
from protocol.signing import SigningKey, seal
from tests.agent.conftest import StartAgent, new_device_id
from tests.agent.fleet_host import HostClient, onnx_model_bytes
from tests.support.broker import MosquittoBroker
from tests.support.processes import alive, workers_of

pytestmark = pytest.mark.broker


def test_manifests_are_answered_during_a_chunk_flood(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device, "--log-level", "INFO")
    host = HostClient(mosquitto.port, keys[0])
    host.serve_requests = False
    try:
        host.wait_state(device, "online")
        chunk = 1024
        big = os.urandom(3000 * chunk)
        flood = host.manifest(device, big, chunk_size=chunk)
        host.send(device, flood)
        host.wait_event(device, flood.job_id, "downloading")
        # Frozen, the agent lets the broker pile up thousands of chunks (and three
        # manifests among them); thawed, it receives them far faster than it can
        # write chunks: many more than its chunk inbox holds.
        agent.proc.send_signal(signal.SIGSTOP)
        try:
            sent = []
            for index in range(flood.model.chunks):
                host.publish_chunk(flood.model.sha256, big, chunk, index)
                if index % 1000 == 500:
                    job = host.manifest(device, onnx_model_bytes(4 + index))
                    host.client.publish(topics.job(device), seal(job, keys[0]), qos=1)
                    sent.append(job.job_id)
            host.client.publish(topics.job(device), b"", qos=1).wait_for_publish(30)
        finally:
            agent.proc.send_signal(signal.SIGCONT)
        for job_id in sent:
            host.wait_event(device, job_id, "accepted", timeout=60)
        log = agent.output()
        assert "chunk inbox full" in log  # the flood did overflow the inbox
        assert "control messages waiting" not in log
    finally:
        host.close()


def _partial_files(cache: Path) -> list[Path]:
    part = cache / "partial"
    return sorted(part.iterdir()) if part.is_dir() else []


def test_partial_downloads_count_against_the_quota_and_stale_ones_are_deleted(
    mosquitto: MosquittoBroker,
    keys: tuple[SigningKey, Path],
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    device = new_device_id()
    cache = tmp_path / f"cache-{device}"
    agent = start_agent(mosquitto, device, "--cache-quota-mb", "1")
    host = HostClient(mosquitto.port, keys[0])
    host.serve_requests = False  # missing chunks stay missing: downloads expire
    try:
        host.wait_state(device, "online")
        abandoned = []
        for _ in range(2):
            data = os.urandom(900_000)  # 14 chunks; half of them will come
            job = host.manifest(device, data, chunk_size=65536, ttl=3)
            host.send(device, job)
            host.wait_event(device, job.job_id, "accepted")
            host.wait_event(device, job.job_id, "downloading")
            host.publish_chunks(job, skip=range(7, 14))
            failed = host.wait_event(device, job.job_id, "failed")
            assert failed["code"] == "download_timeout"
            abandoned.append(job.model.sha256)
            # The partial file stays (a re-sent manifest would resume it) ...
            names = {p.name for p in _partial_files(cache)}
            assert f"{job.model.sha256}.part" in names
            # ... but only one fits the 1 MiB quota beside the next download: the
            # first one was deleted to make room for the second.
            part_bytes = sum(p.stat().st_size for p in _partial_files(cache))
            assert part_bytes <= 1024 * 1024
        assert not any(p.name.startswith(abandoned[0]) for p in _partial_files(cache))

        assert agent.terminate() == 0
        # A crash mid-write leaves a temporary file; and the partial ages.
        stray = cache / f".jobs.json.{os.getpid()}.1.tmp"
        stray.write_bytes(b"{}")
        young = start_agent(mosquitto, device, "--cache-quota-mb", "1")
        host.clear()
        host.wait_state(device, "online")
        assert not stray.exists()
        assert any(p.name.startswith(abandoned[1]) for p in _partial_files(cache))
        assert young.terminate() == 0

        two_hours_ago = time.time() - 7200
        for path in _partial_files(cache):
            os.utime(path, (two_hours_ago, two_hours_ago))
        start_agent(mosquitto, device, "--cache-quota-mb", "1")
        host.clear()
        host.wait_state(device, "online")
        assert _partial_files(cache) == []
    finally:
        host.close()


@pytest.mark.slow
def test_sigterm_mid_measurement_leaves_no_worker_behind(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        long_run = {
            "runs": 5,
            "warmup": 1,
            "warmup_seconds": 0,
            "min_seconds": 60,
            "max_seconds": 90,
        }
        job = host.manifest(device, onnx_model_bytes(), settings=long_run)
        host.send(device, job)
        host.wait_event(device, job.job_id, "downloading")
        host.publish_chunks(job)
        steady = topics.job_event(device, job.job_id)
        host.wait_for(
            lambda m: m.topic == steady and m.json().get("progress", {}).get("phase") == "steady",
            60,
            "the steady state",
        )
        time.sleep(1)  # well inside the 60 s steady state: nothing left to report
        deadline = time.monotonic() + 30
        workers = workers_of(agent.pid)
        while not workers and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = workers_of(agent.pid)
        assert workers, "the agent started no profiler.worker process"

        assert agent.terminate() == 0

        deadline = time.monotonic() + 10
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [w.pid for w in workers if alive(w)]
        for worker in workers:
            if alive(worker):
                worker.kill()
        assert survivors == [], f"worker(s) {survivors} outlived the agent"
    finally:
        host.close()
