"""Jobs with data files attached (eval / inputs): the agent as a real process
against a real Mosquitto, driven by a paho "host". Hostile attachments fail or are
refused with a clear code, and the agent lives on."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from protocol import topics
from protocol.messages import AttachmentRef, JobManifest
from protocol.signing import SigningKey
from tests.agent.conftest import StartAgent, new_device_id
from tests.agent.fleet_host import HostClient, onnx_model_bytes
from tests.support.broker import MosquittoBroker

pytestmark = pytest.mark.broker


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _with_attachment(
    host: HostClient, manifest: JobManifest, kind: str, data: bytes, *, sent: bytes | None = None
) -> JobManifest:
    """`manifest` with `data` attached as `kind`; `sent` is what the host will really
    publish for it (other bytes = tampered in transit)."""
    sha = hashlib.sha256(data).hexdigest()
    host.blobs[sha] = (data if sent is None else sent, 1024)
    ref = AttachmentRef(sha, len(data), f"{kind}.npz", "npz", 1024)
    return dataclasses.replace(manifest, attachments={kind: ref})


def _publish_all(host: HostClient, manifest: JobManifest) -> None:
    for ref in manifest.blobs:
        data, chunk_size = host.blobs[ref.sha256]
        for index in range(ref.chunks):
            host.publish_chunk(ref.sha256, data, chunk_size, index)


def _job_events(host: HostClient, device: str, job_id: str) -> list[str]:
    topic = topics.job_event(device, job_id)
    return [m.json()["state"] for m in host.matching(lambda m: m.topic == topic)]


@pytest.mark.slow
def test_a_tampered_attachment_fails_the_job_and_the_agent_goes_on(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        model = onnx_model_bytes(2048)
        # The model adds an increasing bias: the top class of zeros is the last one.
        labelled = _npz(x=np.zeros((4, 2048), np.float32), y=np.full(4, 2047, np.int64))
        tampered = labelled[:-1] + bytes([labelled[-1] ^ 0xFF])
        manifest = _with_attachment(
            host, host.manifest(device, model), "eval", labelled, sent=tampered
        )
        host.send(device, manifest)
        host.wait_event(device, manifest.job_id, "accepted")
        _publish_all(host, manifest)
        failed = host.wait_event(device, manifest.job_id, "failed")
        assert failed["code"] == "bad_hash"
        assert "eval file eval.npz" in failed["reason"]
        assert not host.matching(lambda m: m.topic == topics.job_result(device, manifest.job_id))
        # The model itself arrived intact and stays cached; the bad file does not.
        info = host.wait_for(
            lambda m: (
                m.topic == topics.info(device)
                and manifest.model.sha256 in m.json()["cached_models"]
            ),
            what="info listing the cached model",
        ).json()
        assert manifest.attachments["eval"].sha256 not in info["cached_models"]

        # Sent again intact with a new job: only the data file is downloaded, and it runs.
        host.clear()
        retry = _with_attachment(host, host.manifest(device, model), "eval", labelled)
        host.send(device, retry)
        host.wait_event(device, retry.job_id, "accepted")
        host.publish_chunks(retry)  # the model's chunks too: ignored, it is cached
        for index in range(retry.attachments["eval"].chunks):
            host.publish_chunk(retry.attachments["eval"].sha256, labelled, 1024, index)
        result = host.wait_result(device, retry.job_id)["result"]
        assert result["status"] == "ok", result.get("error")
        accuracy = result["accuracy"]
        assert (accuracy["top1"], accuracy["n"]) == (1.0, 4)
        # The data evaluated on is named by the hash of the attachment the host sent.
        assert accuracy["data_sha256"] == retry.attachments["eval"].sha256
        assert result["settings"]["eval"] == "eval.npz"
        progress = [
            m.json()["progress"]
            for m in host.matching(lambda m: m.topic == topics.job_event(device, retry.job_id))
            if m.json()["state"] == "downloading"
        ]
        assert progress and all(p["total_bytes"] == len(labelled) for p in progress)
        assert progress[-1]["received_bytes"] == len(labelled)
        assert agent.alive()
    finally:
        host.close()


def test_an_attachment_that_is_not_an_npz_is_a_bad_eval_data_result(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device)
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        garbage = b"\x00\x01 definitely not numpy " * 50
        manifest = _with_attachment(
            host, host.manifest(device, onnx_model_bytes()), "eval", garbage
        )
        host.send(device, manifest)
        host.wait_event(device, manifest.job_id, "accepted")
        _publish_all(host, manifest)
        result = host.wait_result(device, manifest.job_id)["result"]
        assert result["status"] == "error"
        assert result["error"]["code"] == "bad_eval_data"
        # The message names the file as the host did, not by its hash on the device.
        assert "eval.npz" in result["error"]["message"]
        assert manifest.attachments["eval"].sha256 not in result["error"]["message"]
        assert host.wait_event(device, manifest.job_id, "failed")["code"] == "bad_eval_data"
        assert agent.alive()
    finally:
        host.close()


def test_oversized_attachments_and_device_paths_are_refused_before_any_download(
    mosquitto: MosquittoBroker, keys: tuple[SigningKey, Path], start_agent: StartAgent
) -> None:
    device = new_device_id()
    agent = start_agent(mosquitto, device, "--cache-quota-mb", "1")
    host = HostClient(mosquitto.port, keys[0])
    try:
        host.wait_state(device, "online")
        model = onnx_model_bytes()
        # Claims 2 MiB: larger than the quota, so nothing is fetched.
        huge = AttachmentRef("cd" * 32, 2 * 1024 * 1024, "huge.npz", "npz", 1024)
        too_large = dataclasses.replace(host.manifest(device, model), attachments={"eval": huge})
        host.send(device, too_large)
        event = host.wait_event(device, too_large.job_id, "rejected")
        assert event["code"] == "too_large" and "huge.npz" in event["reason"]

        # Each fits, but not both at once (they are held together while the job waits).
        half = AttachmentRef("ef" * 32, 600 * 1024, "half.npz", "npz", 1024)
        inputs = AttachmentRef("12" * 32, 600 * 1024, "half.npy", "npy", 1024)
        together = dataclasses.replace(
            host.manifest(device, model), attachments={"eval": half, "inputs": inputs}
        )
        host.send(device, together)
        event = host.wait_event(device, together.job_id, "rejected")
        assert event["code"] == "too_large" and "together" in event["reason"]

        # The settings still may not name a file on the device.
        named = host.manifest(device, model, settings={"runs": 1, "eval_path": "/etc/shadow"})
        host.send(device, named)
        assert host.wait_event(device, named.job_id, "rejected")["code"] == "bad_manifest"

        for job in (too_large, together, named):
            assert _job_events(host, device, job.job_id) == ["rejected"]
        assert not host.matching(lambda m: m.topic.endswith("/request"))
        assert agent.alive()
    finally:
        host.close()
