"""hostctl against a scripted device on a real Mosquitto: a manifest lost on the
way is sent again, and a device cannot file results under another's name."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hostctl.store import ResultStore
from profiler.models import demo_model
from protocol import topics
from protocol.messages import (
    DeviceInfo,
    DeviceState,
    JobEvent,
    JobManifest,
    JobResult,
    ResultAck,
)
from protocol.signing import key_id, load_public_key, open_envelope, write_key_pair
from tests.integration.fleet_support import Host, close_client
from tests.support.broker import MosquittoBroker

pytestmark = pytest.mark.broker


def _doc(device: str, job_id: str, status: str = "ok") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "edgeprof.result/1",
        "status": status,
        "job_id": job_id,
        "label": None,
        "device": {"id": device},
        "model": {"name": "demo_cnn.onnx"},
    }
    if status == "ok":
        doc["latency_ms"] = {"p50": 1.0, "p90": 1.0, "p99": 1.0, "mean": 1.0}
    else:
        doc["error"] = {"code": "runtime_error", "message": "forged failure"}
    return doc


class ScriptedDevice:
    """A device that announces itself (with the model cached), drops the first
    `drop` manifests it gets — as a dead connection would — and answers the next
    with a forged result from another device's topic, then its own result."""

    def __init__(
        self,
        port: int,
        device: str,
        public_key: Path,
        model_sha: str,
        drop: int,
        doc: Callable[[str, str, JobManifest], dict[str, Any]] | None = None,
    ):
        self.device = device
        self.doc = doc or (lambda device, job_id, manifest: _doc(device, job_id))
        self.trusted = {key_id(load_public_key(public_key)): load_public_key(public_key)}
        self.drop = drop
        self.manifests: list[str] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(topics.job(device), qos=1)
        now = time.time()
        state = DeviceState(device, "online", 1, now)
        info = DeviceInfo(device, {}, {}, [], None, [model_sha], "0.1.0", now)
        self.client.publish(topics.state(device), state.to_bytes(), qos=1, retain=True)
        self.client.publish(topics.info(device), info.to_bytes(), qos=1, retain=True)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        opened = open_envelope(bytes(message.payload), self.trusted, now=time.time())
        manifest = opened.message
        if not isinstance(manifest, JobManifest):
            return
        with self.lock:
            self.manifests.append(manifest.job_id)
            if len(self.manifests) <= self.drop:
                return  # lost
        job_id = manifest.job_id
        event = JobEvent(self.device, job_id, "accepted", time.time())
        client.publish(topics.job_event(self.device, job_id), event.to_bytes(), qos=1)
        # Another device speaks for this one: must be dropped, or the job "fails".
        forged = JobResult(self.device, job_id, _doc(self.device, job_id, "error"))
        client.publish(topics.job_result("intruder-1", job_id), forged.to_bytes(), qos=1)
        real = JobResult(self.device, job_id, self.doc(self.device, job_id, manifest))
        client.publish(topics.job_result(self.device, job_id), real.to_bytes(), qos=1)

    def close(self) -> None:
        for topic in (topics.state(self.device), topics.info(self.device)):
            self.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        close_client(self.client)


def test_a_lost_manifest_is_sent_again_and_forged_results_are_dropped(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    key, pub = write_key_pair(tmp_path / "keys")
    host = Host(mosquitto.url, key, tmp_path / "results.sqlite")
    model = demo_model("onnx")
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    device = f"ghost-{uuid.uuid4().hex[:6]}"
    ghost = ScriptedDevice(mosquitto.port, device, pub, sha, drop=1)
    try:
        done = host.run("push", str(model), "--device", device, "--timeout", "30", "--json")
        assert done.returncode == 0, done.stderr
        results = json.loads(done.stdout)
        assert [r["status"] for r in results] == ["ok"]
        # Sent once, lost, sent again with the same job id.
        assert len(ghost.manifests) >= 2 and len(set(ghost.manifests)) == 1
        stored = host.run("results", "--no-collect", "--json")
        assert [r["status"] for r in json.loads(stored.stdout)] == ["ok"]
    finally:
        ghost.close()


def _journal(db: Any, jobs: dict[str, str]) -> None:
    """Journal jobs (id -> device) as if this host had pushed them."""
    with ResultStore(db) as store:
        for job_id, device in jobs.items():
            store.journal_job(job_id=job_id, device_id=device, model_name="demo_cnn.onnx",
                              sha256=None, label=None, settings={}, sent_at=time.time(),
                              expires_at=time.time() + 600)  # fmt: skip


def test_collect_stores_only_results_of_jobs_sent_to_their_device(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    key, pub = write_key_pair(tmp_path / "keys")
    host = Host(mosquitto.url, key, tmp_path / "results.sqlite")
    victim = f"victim-{uuid.uuid4().hex[:6]}"
    evil_id = f"evil-{uuid.uuid4().hex[:6]}"
    _journal(host.db, {"forged0001": victim, "forged0002": victim, "stolen0004": victim,
                       "honest0003": evil_id})  # fmt: skip
    acks: list[Any] = []
    trusted = {key_id(load_public_key(pub)): load_public_key(pub)}
    evil = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    evil.on_message = lambda c, u, m: acks.append(
        open_envelope(bytes(m.payload), trusted, now=time.time()).message
    )
    evil.connect("127.0.0.1", mosquitto.port)
    evil.loop_start()
    evil.subscribe(topics.job(evil_id), qos=1)
    evil.subscribe(topics.job(victim), qos=1)
    collecting = host.popen("collect", "--wait", "4")
    time.sleep(2.5)  # collect has subscribed (its session is persistent anyway)
    try:
        forgeries = [
            # The topic names the sender; the body names the victim.
            (evil_id, JobResult(victim, "forged0001", _doc(victim, "forged0001"))),
            # Topic and message agree; the document names the victim.
            (evil_id, JobResult(evil_id, "forged0002", _doc(victim, "forged0002"))),
            # All its own, but that job was sent to the victim (its id can be read
            # from the chunk requests every device sees).
            (evil_id, JobResult(evil_id, "stolen0004", _doc(evil_id, "stolen0004"))),
        ]
        for sender, message in forgeries:
            topic = topics.job_result(sender, message.job_id)
            evil.publish(topic, message.to_bytes(), qos=1).wait_for_publish(5)
        honest = JobResult(evil_id, "honest0003", _doc(evil_id, "honest0003"))
        evil.publish(topics.job_result(evil_id, "honest0003"), honest.to_bytes(), qos=1)
        _out, err = collecting.communicate(timeout=60)
        assert collecting.returncode == 0, err
        time.sleep(0.5)  # the acks are on their way
    finally:
        close_client(evil)
    stored = host.run("results", "--no-collect", "--json")
    docs = json.loads(stored.stdout)
    assert [(d["job_id"], d["device"]["id"]) for d in docs] == [("honest0003", evil_id)]
    # Each refusal is one line naming the device and the topic; no traceback.
    for job_id in ("forged0001", "forged0002", "stolen0004"):
        lines = [line for line in err.splitlines() if job_id in line]
        assert len(lines) == 1 and evil_id in lines[0], err
    assert "Traceback" not in err
    # Only what was stored was acknowledged: one ack, to its sender, for honest0003.
    assert [(a.device_id, a.job_ids) for a in acks if isinstance(a, ResultAck)] == [
        (evil_id, ["honest0003"])
    ]


FORGED_VARIANT = {"kind": "fiq", "recipe": {"tool": "trust me"}, "source_sha256": "ee" * 32}


def test_a_variant_s_recipe_comes_from_the_host_never_from_the_device(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    """The host attaches the recipe record it read beside the file it sent; a device
    that claims a variant (or a gzip size) for its result is not believed."""
    key, pub = write_key_pair(tmp_path / "keys")
    host = Host(mosquitto.url, key, tmp_path / "results.sqlite")
    variant = tmp_path / "demo_cnn.blq.onnx"
    variant.write_bytes(demo_model("onnx").read_bytes())
    sha = hashlib.sha256(variant.read_bytes()).hexdigest()
    mine = {"kind": "blq", "recipe": {"tool": "onnxruntime"}, "source_sha256": "ab" * 32}
    record = {"schema": "edgeprof.variant/1", "variant": mine, "sha256": sha}
    (tmp_path / "demo_cnn.blq.recipe.json").write_text(json.dumps(record))
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(variant.read_bytes())  # the same bytes, without a record
    claims = {"sha": sha}

    def claiming(device: str, job_id: str, manifest: JobManifest) -> dict[str, Any]:
        doc = _doc(device, job_id)
        doc["model"] = {
            "name": manifest.model.name,
            "sha256": claims["sha"],
            "variant": FORGED_VARIANT,
            "gzip_bytes": 1,
        }
        return doc

    device = f"liar-{uuid.uuid4().hex[:6]}"
    liar = ScriptedDevice(mosquitto.port, device, pub, sha, drop=0, doc=claiming)
    try:
        done = host.run("push", str(variant), "--device", device, "--timeout", "30", "--json")
        assert done.returncode == 0, done.stderr
        (shown,) = json.loads(done.stdout)
        stored = json.loads(host.run("results", "--no-collect", "--json").stdout)
        assert [d["model"]["variant"] for d in stored] == [mine] == [shown["model"]["variant"]]
        assert stored[0]["model"]["gzip_bytes"] > 100  # the host's figure, not the claim
        # A model without a record: the device's claim is dropped, nothing replaces it.
        done = host.run("push", str(plain), "--device", device, "--timeout", "30", "--json")
        assert done.returncode == 0, done.stderr
        # A device that reports having run another file gets no facts either.
        claims["sha"] = "cd" * 32
        done = host.run("push", str(variant), "--device", device, "--timeout", "30", "--json")
        assert done.returncode == 0, done.stderr
        stored = json.loads(host.run("results", "--no-collect", "--json").stdout)
        assert [d["model"].get("variant") for d in stored] == [mine, None, None]
    finally:
        liar.close()
