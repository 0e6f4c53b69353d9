"""A tiny test "host" written with paho, and a real agent process, for the agent tests."""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol import topics
from protocol.messages import (
    Collect,
    JobManifest,
    Message,
    ModelRef,
    ResultAck,
)
from protocol.signing import SigningKey, seal
from tests.support.agents import spawn_agent

REPO = Path(__file__).resolve().parents[2]
TINY_SETTINGS = {"runs": 5, "warmup": 1, "min_seconds": 0, "warmup_seconds": 0, "max_seconds": 5}


def onnx_model_bytes(width: int = 4) -> bytes:
    """A valid ONNX model (output = input + bias[width]); width 2048 makes ~8 KiB."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["input", "bias"], ["output"])],
        "agent_test",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, width])],
        initializer=[numpy_helper.from_array(np.arange(width, dtype=np.float32) / width, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    serialized: bytes = model.SerializeToString()
    return serialized


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.payload)
        return data


class HostClient:
    """Subscribes to everything under edgeprof/v1 and records it; publishes jobs and chunks."""

    def __init__(self, broker_port: int, key: SigningKey | None) -> None:
        self.key = key
        self.messages: list[Received] = []
        self.cond = threading.Condition()
        self.blobs: dict[str, tuple[bytes, int]] = {}
        self.serve_requests = True
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-host-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.port = broker_port
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(f"{topics.ROOT}/#", qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        item = Received(msg.topic, bytes(msg.payload), bool(msg.retain))
        with self.cond:
            self.messages.append(item)
            self.cond.notify_all()
        if self.serve_requests and msg.topic.endswith("/request"):
            self._serve(item)

    def _serve(self, item: Received) -> None:
        request = item.json()
        blob = self.blobs.get(request["sha256"])
        if blob is None:
            return
        data, chunk_size = blob
        for index in request["missing"]:
            self.publish_chunk(request["sha256"], data, chunk_size, index)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    # -- waiting -------------------------------------------------------------
    def wait_for(
        self, predicate: Callable[[Received], bool], timeout: float = 30.0, what: str = ""
    ) -> Received:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.messages:
                    if predicate(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(
                        f"  {m.topic} {m.payload[:200]!r}" for m in self.messages[-30:]
                    )
                    raise AssertionError(f"timed out waiting for {what}; last messages:\n{seen}")
                self.cond.wait(left)

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if predicate(m)]

    def clear(self) -> None:
        with self.cond:
            self.messages.clear()

    def wait_event(
        self, device: str, job_id: str, state: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        topic = topics.job_event(device, job_id)
        return self.wait_for(
            lambda m: m.topic == topic and m.json().get("state") == state,
            timeout,
            f"event {state} of {job_id}",
        ).json()

    def wait_result(self, device: str, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
        topic = topics.job_result(device, job_id)
        return self.wait_for(lambda m: m.topic == topic, timeout, f"result of {job_id}").json()

    def wait_state(self, device: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
        topic = topics.state(device)
        return self.wait_for(
            lambda m: m.topic == topic and m.json().get("state") == state,
            timeout,
            f"state {state}",
        ).json()

    # -- publishing ----------------------------------------------------------
    def send(self, device: str, message: Message, key: SigningKey | str | None = "default") -> None:
        signer = self.key if key == "default" else key
        assert not isinstance(signer, str)
        self.send_raw(device, seal(message, signer))

    def send_raw(self, device: str, payload: bytes) -> None:
        self.client.publish(topics.job(device), payload, qos=1).wait_for_publish(5)

    def manifest(
        self,
        device: str,
        data: bytes,
        *,
        job_id: str | None = None,
        chunk_size: int = 1024,
        settings: dict[str, Any] | None = None,
        ttl: float = 120.0,
        issued_at: float | None = None,
    ) -> JobManifest:
        now = time.time() if issued_at is None else issued_at
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = (data, chunk_size)
        return JobManifest(
            job_id=job_id or uuid.uuid4().hex[:16],
            device_id=device,
            model=ModelRef(sha, len(data), "tiny.onnx", "onnx", chunk_size),
            settings=dict(settings if settings is not None else TINY_SETTINGS),
            issued_at=now,
            expires_at=now + ttl,
            label="agent-test",
        )

    def publish_chunk(self, sha: str, data: bytes, chunk_size: int, index: int) -> None:
        chunk = data[index * chunk_size : (index + 1) * chunk_size]
        self.client.publish(topics.blob_chunk(sha, index), chunk, qos=1)

    def publish_chunks(self, manifest: JobManifest, skip: Sequence[int] = ()) -> None:
        data, chunk_size = self.blobs[manifest.model.sha256]
        for index in range(manifest.model.chunks):
            if index not in skip:
                self.publish_chunk(manifest.model.sha256, data, chunk_size, index)

    def ack(self, device: str, job_ids: list[str]) -> None:
        now = time.time()
        self.send(device, ResultAck(device, job_ids, now, now + 60))

    def collect(self, device: str) -> None:
        now = time.time()
        self.send(device, Collect(device, now, now + 60))


class AgentProcess:
    """`python -m agent` as a real separate process."""

    def __init__(self, args: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = spawn_agent(args, self.log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 15.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
