"""The agent as a real process against a real Mosquitto, driven by a paho "host"."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol import topics
from protocol.signing import SigningKey, seal
from tests.agent.conftest import StartAgent, new_device_id
from tests.agent.fleet_host import AgentProcess, HostClient, Received, onnx_model_bytes
from tests.support.broker import MosquittoBroker

pytestmark = pytest.mark.broker

HEAVY_LIBRARIES = (
    "libonnxruntime",
    "_multiarray_umath",
    "onnxruntime_pybind",
    "_pywrap_tensorflow",
)


def _is(topic: str) -> Callable[[Received], bool]:
    return lambda m: m.topic == topic


def test_announces_state_and_info_retained(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        host.wait_for(
            lambda m: m.topic == topics.info(device) and bool(m.json()["runtimes"]),
            what="info with runtimes (probed in a child process)",
        )
        # A host arriving later still sees both (retained).
        late = HostClient(mosquitto.port, keys[0])
        try:
            state = late.wait_for(_is(topics.state(device)), what="retained state")
            info = late.wait_for(
                lambda m: m.topic == topics.info(device) and bool(m.json()["runtimes"]),
                what="retained info with runtimes",
            )
        finally:
            late.close()
        assert state.retain and state.json()["state"] == "online"
        body = info.json()
        assert info.retain
        assert body["tags"] == ["test"]
        assert body["unsigned_jobs_allowed"] is False
        assert "onnxruntime" in body["runtimes"]
        assert body["device"]["python"]
        # The idle agent has not loaded a runtime or NumPy into its own process.
        maps = Path(f"/proc/{agent.pid}/maps").read_text()
        assert not [lib for lib in HEAVY_LIBRARIES if lib in maps]
        assert agent.terminate() == 0
        offline = host.wait_state(device, "offline")
        assert offline["device_id"] == device
    finally:
        host.close()


@pytest.mark.slow
def test_signed_job_runs_and_result_stays_until_acked(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        data = onnx_model_bytes(2048)
        manifest = host.manifest(device, data)
        assert manifest.model.chunks > 4
        host.send(device, manifest)
        host.wait_event(device, manifest.job_id, "accepted")
        host.publish_chunks(manifest)
        result = host.wait_result(device, manifest.job_id)
        assert result["result"]["status"] == "ok", result["result"].get("error")
        assert result["result"]["job_id"] == manifest.job_id
        assert result["result"]["model"]["sha256"] == manifest.model.sha256
        assert result["result"]["model"]["name"] == "tiny.onnx"
        assert result["result"]["latency_ms"]["n"] >= 5
        host.wait_event(device, manifest.job_id, "succeeded")
        # Profiling happened in child processes: the agent itself loaded no runtime.
        maps = Path(f"/proc/{agent.pid}/maps").read_text()
        assert not [lib for lib in HEAVY_LIBRARIES if lib in maps]
        states = [m.json()["state"] for m in host.matching(_is(topics.state(device)))]
        assert "busy" in states
        # The model is now cached and announced.
        host.wait_for(
            lambda m: (
                m.topic == topics.info(device)
                and manifest.model.sha256 in m.json()["cached_models"]
            ),
            what="info listing the cached model",
        )
        # Not acked: a Collect makes the agent send it again.
        host.clear()
        host.collect(device)
        again = host.wait_result(device, manifest.job_id, timeout=15)
        assert again["result"]["job_id"] == manifest.job_id
        # Acked: gone from the outbox; the same manifest again is a replay.
        host.ack(device, [manifest.job_id])
        host.clear()
        host.send(device, manifest)
        rejected = host.wait_event(device, manifest.job_id, "rejected")
        assert rejected["code"] == "replayed"
        assert not host.matching(_is(topics.job_result(device, manifest.job_id)))
        # A second job for the cached model downloads nothing.
        second = host.manifest(device, data)
        host.clear()
        host.send(device, second)
        assert host.wait_result(device, second.job_id)["result"]["status"] == "ok"
        assert not host.matching(lambda m: m.topic.endswith("/request"))
        assert not host.matching(
            lambda m: (
                m.topic == topics.job_event(device, second.job_id)
                and m.json()["state"] == "downloading"
            )
        )
        assert agent.alive()
    finally:
        host.close()


@pytest.mark.parametrize("case", ["unsigned", "tampered", "wrong_key", "expired"])
def test_untrusted_manifests_are_rejected_without_download(
    case: str,
    mosquitto: MosquittoBroker,
    keys: tuple[SigningKey, Path],
    start_agent: StartAgent,
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        data = onnx_model_bytes(2048)
        if case == "expired":
            manifest = host.manifest(device, data, issued_at=time.time() - 1000, ttl=100)
        else:
            manifest = host.manifest(device, data)
        if case == "unsigned":
            host.send(device, manifest, key=None)
        elif case == "wrong_key":
            host.send(device, manifest, key=SigningKey.generate())
        elif case == "tampered":
            import base64
            import json

            envelope = json.loads(seal(manifest, keys[0]))
            body = json.loads(base64.b64decode(envelope["payload"]))
            body["settings"]["runs"] = 100000
            envelope["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
            host.send_raw(device, json.dumps(envelope).encode())
        else:
            host.send(device, manifest)
        expected = {
            "unsigned": "unsigned",
            "tampered": "bad_signature",
            "wrong_key": "untrusted_key",
            "expired": "expired",
        }[case]
        event = host.wait_event(device, manifest.job_id, "rejected")
        assert event["code"] == expected
        # Give a would-be download time to ask for chunks: it must not.
        time.sleep(1.5)
        assert not host.matching(lambda m: m.topic.endswith("/request"))
        states = {
            m.json()["state"] for m in host.matching(_is(topics.job_event(device, manifest.job_id)))
        }
        assert states == {"rejected"}
        assert agent.alive()
    finally:
        host.close()


@pytest.mark.slow
def test_dropped_chunk_is_requested_and_download_completes(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        manifest = host.manifest(device, onnx_model_bytes(2048))
        host.send(device, manifest)
        host.wait_event(device, manifest.job_id, "accepted")
        host.publish_chunks(manifest, skip=[3])
        request = host.wait_for(
            _is(topics.blob_request(manifest.model.sha256)), what="chunk request"
        ).json()
        assert 3 in request["missing"]
        assert request["device_id"] == device
        assert host.wait_result(device, manifest.job_id)["result"]["status"] == "ok"
    finally:
        host.close()


def test_bad_hash_fails_the_job(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        data = onnx_model_bytes(2048)
        manifest = host.manifest(device, data)
        host.blobs[manifest.model.sha256] = (b"\0" + data[1:], 1024)  # corrupted in transit
        host.send(device, manifest)
        host.publish_chunks(manifest)
        event = host.wait_event(device, manifest.job_id, "failed")
        assert event["code"] == "bad_hash"
        assert agent.alive()
    finally:
        host.close()


def test_garbage_on_job_topic_does_not_kill_agent(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        for payload in (
            b"",
            b"\xff\xfe garbage",
            b"[]",
            b'{"schema": "edgeprof.signed/1"}',
            b"{" * 5000,
        ):
            host.send_raw(device, payload)
        host.client.publish(topics.blob_chunk("0" * 64, 7), b"stray chunk", qos=1)
        # Still answering: a valid job after the garbage is accepted.
        manifest = host.manifest(device, onnx_model_bytes())
        host.send(device, manifest)
        host.wait_event(device, manifest.job_id, "accepted")
        assert agent.alive()
    finally:
        host.close()


def test_sigkill_fires_the_will(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        agent.kill()
        host.wait_state(device, "offline", timeout=60)
        late = HostClient(mosquitto.port, keys[0])
        try:
            state = late.wait_for(_is(topics.state(device)), what="retained state")
            assert state.retain and state.json()["state"] == "offline"
        finally:
            late.close()
    finally:
        host.close()


@pytest.mark.slow
def test_broker_restart_reconnects_and_resends_unacked_result(
    fresh_mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(fresh_mosquitto, device)
    host = HostClient(fresh_mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        manifest = host.manifest(device, onnx_model_bytes())
        host.send(device, manifest)
        host.publish_chunks(manifest)
        host.wait_result(device, manifest.job_id)
        host.close()
        fresh_mosquitto.restart()  # no persistence: retained state and info are gone
        host = HostClient(fresh_mosquitto.port, keys[0])
        host.wait_state(device, "online", timeout=60)
        host.wait_for(_is(topics.info(device)), what="info re-announced")
        resent = host.wait_result(device, manifest.job_id, timeout=30)
        assert resent["result"]["status"] == "ok"
        assert agent.alive()
    finally:
        host.close()


def test_without_trust_exits_with_one_line(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    agent = AgentProcess(
        ["--broker", mosquitto.url, "--device-id", "d1", "--cache-dir", str(tmp_path / "c")],
        tmp_path / "agent.log",
    )
    assert agent.proc.wait(30) == 1
    agent.stop()
    lines = agent.output().strip().splitlines()
    assert len(lines) == 1
    assert "--trust host.pub" in lines[0] and "--allow-unsigned" in lines[0]


def test_allow_unsigned_is_loud_and_announced(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], tmp_path: Path
) -> None:
    device = new_device_id()
    agent = AgentProcess(
        ["--broker", mosquitto.url, "--device-id", device, "--allow-unsigned",
         "--cache-dir", str(tmp_path / "c")],
        tmp_path / "agent.log",
    )  # fmt: skip
    host = HostClient(mosquitto.port, None)
    try:
        info = host.wait_for(_is(topics.info(device)), what="info").json()
        assert info["unsigned_jobs_allowed"] is True
        manifest = host.manifest(device, onnx_model_bytes())
        host.send(device, manifest, key=None)
        host.wait_event(device, manifest.job_id, "accepted")
        assert agent.terminate() == 0
        assert "WARNING" in agent.output() and "UNSIGNED" in agent.output()
    finally:
        host.close()
        agent.stop()


@pytest.mark.slow
def test_download_resumes_after_agent_restart(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    host.serve_requests = False
    try:
        host.wait_state(device, "online")
        manifest = host.manifest(device, onnx_model_bytes(2048))
        request_topic = topics.blob_request(manifest.model.sha256)
        host.send(device, manifest)
        host.wait_event(device, manifest.job_id, "accepted")
        host.publish_chunks(manifest, skip=[5, 6, 7])
        first = host.wait_for(
            lambda m: m.topic == request_topic and m.json()["missing"] == [5, 6, 7],
            what="request for the three missing chunks",
        )
        assert first.json()["job_id"] == manifest.job_id
        assert agent.terminate() == 0  # mid-download
        host.clear()
        agent = start_agent(mosquitto, device)
        host.wait_state(device, "online")
        host.send(device, manifest)  # the host re-sends the unfinished job
        again = host.wait_for(_is(request_topic), what="request after restart").json()
        assert again["missing"] == [5, 6, 7]  # the chunks it had were kept
        host.serve_requests = True
        host.publish_chunks(manifest, skip=range(5))
        assert host.wait_result(device, manifest.job_id)["result"]["status"] == "ok"
    finally:
        host.close()


@pytest.mark.slow
def test_agent_started_before_its_broker_says_so_and_comes_online_later(
    fresh_mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    fresh_mosquitto.stop()
    device = new_device_id()
    agent = start_agent(fresh_mosquitto, device)
    deadline = time.monotonic() + 30
    while b"cannot connect to the broker: nothing listens at" not in agent.log_path.read_bytes():
        assert time.monotonic() < deadline, "the agent never said the broker is unreachable"
        assert agent.alive()
        time.sleep(0.2)
    fresh_mosquitto.start()
    host = HostClient(fresh_mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online", timeout=60)
        assert agent.alive()
    finally:
        host.close()
