"""A job for a runtime or provider the device lacks is rejected before any download,
with a reason naming what the device has — also when it arrives before the agent's
runtime probe is done."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import topics
from protocol.signing import SigningKey
from tests.agent.conftest import StartAgent, new_device_id
from tests.agent.fleet_host import TINY_SETTINGS, HostClient, onnx_model_bytes
from tests.support.broker import MosquittoBroker

pytestmark = pytest.mark.broker


def test_a_job_the_device_cannot_run_is_refused_before_download_even_right_at_start(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        # Sent at once: the probe (a child importing the runtimes) is still running.
        model = onnx_model_bytes(width=7)
        missing = host.manifest(
            device, model, settings={**TINY_SETTINGS, "provider": "NoSuchExecutionProvider"}
        )
        wrong = host.manifest(device, model, settings={**TINY_SETTINGS, "runtime": "litert"})
        fine = host.manifest(device, model)
        for manifest in (missing, wrong, fine):
            host.send(device, manifest)

        event = host.wait_event(device, missing.job_id, "rejected")
        assert event["code"] == "provider_missing"
        assert event["reason"].startswith("provider NoSuchExecutionProvider is not available;")
        assert "this device has" in event["reason"] and "onnxruntime" in event["reason"]
        assert "CPU" in event["reason"]
        event = host.wait_event(device, wrong.job_id, "rejected")
        assert event["code"] == "bad_manifest"
        assert event["reason"] == "runtime litert cannot run .onnx models; use onnxruntime or auto"

        # The job it can run goes ahead once the probe is done.
        host.wait_event(device, fine.job_id, "downloading")
        host.publish_chunks(fine)
        assert host.wait_result(device, fine.job_id)["result"]["status"] == "ok"

        for job in (missing, wrong):
            events = host.matching(lambda m, j=job.job_id: m.topic == topics.job_event(device, j))
            assert [m.json()["state"] for m in events] == ["rejected"]
        # The refusals were decided on the probe's answer: they follow the info with runtimes.
        seen = host.matching(lambda m: True)
        order = [m.topic for m in seen]
        info = next(
            i for i, m in enumerate(seen) if m.topic == topics.info(device) and m.json()["runtimes"]
        )
        assert order.index(topics.job_event(device, missing.job_id)) > info
        assert agent.alive()
    finally:
        host.close()
