"""The agent's MQTT session queues (agent.mqtt, unit): bounded by bytes, sizes
checked before anything is queued — a flood costs dropped messages, never memory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from agent.config import load_settings
from agent.mqtt import CONTROL_QUEUE_BYTES, INBOX_BYTES, MqttSession
from protocol import topics
from protocol.payload import MAX_CONTROL_BYTES
from protocol.signing import write_key_pair


def _session(tmp_path: Path) -> MqttSession:
    _key, pub = write_key_pair(tmp_path / "keys")
    settings = load_settings(
        {"broker": "mqtt://127.0.0.1:1", "device_id": "pi-1", "trust": [str(pub)]}, env={}
    )
    return MqttSession(
        settings,
        client_id="test",
        will_topic=topics.state("pi-1"),
        will_payload=b"",
        control_topic=topics.job("pi-1"),
    )


def _deliver(session: MqttSession, topic: str, payload: bytes) -> None:
    session._on_message(session._client, None, SimpleNamespace(topic=topic, payload=payload))  # type: ignore[arg-type]


def test_control_messages_are_bounded_by_bytes_and_checked_before_queueing(
    tmp_path: Path,
) -> None:
    session = _session(tmp_path)
    oversized = b"x" * (850 * 1024)
    for _ in range(2000):  # 2,000 x 850 KB: 1.7 GB once queued by count
        _deliver(session, topics.job("pi-1"), oversized)
    assert len(session._control) == 0 and session._control.bytes == 0
    near = b"y" * (MAX_CONTROL_BYTES - 10)
    for _ in range(2000):
        _deliver(session, topics.job("pi-1"), near)
    assert session._control.bytes <= CONTROL_QUEUE_BYTES
    assert len(session._control) == CONTROL_QUEUE_BYTES // len(near)
    # What is queued is still served, control first.
    _deliver(session, topics.blob_chunk("ab" * 32, 0), b"chunk")
    first = session.next_message(0.0)
    assert first is not None and first.topic == topics.job("pi-1")


def test_chunks_are_bounded_by_bytes_and_other_agents_requests_are_not_kept(
    tmp_path: Path,
) -> None:
    session = _session(tmp_path)
    chunk = b"z" * (1024 * 1024)  # the biggest chunk any blob has
    for index in range(200):
        _deliver(session, topics.blob_chunk("ab" * 32, index), chunk)
    assert session._inbox.bytes <= INBOX_BYTES and len(session._inbox) == INBOX_BYTES // len(chunk)
    _deliver(session, topics.blob_chunk("ab" * 32, 999), b"w" * (2 * 1024 * 1024))  # too big
    _deliver(session, topics.blob_request("ab" * 32), b"{}")
    assert len(session._inbox) == INBOX_BYTES // len(chunk)
