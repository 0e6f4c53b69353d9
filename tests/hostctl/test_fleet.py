"""Fleet inventory and target resolution from real protocol messages; the job journal
written before a push sends anything."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from unittest import mock

import pytest

from hostctl.errors import HostctlError
from hostctl.fleet import Blob, Fleet, Pusher, resolve_targets
from hostctl.store import ResultStore
from protocol import topics
from protocol.messages import DeviceInfo, DeviceState
from protocol.signing import SigningKey


def _fleet(*devices: tuple[str, str, list[str]]) -> Fleet:
    fleet = Fleet()
    for device_id, state, tags in devices:
        info = DeviceInfo(
            device_id=device_id,
            device={"machine": "Linux aarch64", "cores": 4},
            runtimes={"litert": {"version": "2.3"}},
            tags=tags,
            free_disk_mb=100.0,
            cached_models=[],
            agent_version="0.1.0",
            ts=1000.0,
        )
        fleet.update(topics.info(device_id), info.to_bytes())
        fleet.update(
            topics.state(device_id),
            DeviceState(device_id=device_id, state=state, epoch=1, ts=2000.0).to_bytes(),
        )
    return fleet


FLEET = (("pi-a", "online", ["lab"]), ("pi-b", "busy", ["lab"]), ("pi-c", "offline", ["lab", "x"]))


def test_devices_json_shape() -> None:
    doc = _fleet(*FLEET).devices["pi-b"].to_json()
    assert doc["id"] == "pi-b" and doc["state"] == "busy" and doc["last_seen"] == 2000.0
    assert doc["tags"] == ["lab"]
    assert doc["info"]["device"]["cores"] == 4 and doc["info"]["runtimes"]["litert"]


def test_devices_table_shows_onnx_providers_and_when_the_device_was_last_heard() -> None:
    from rich.console import Console

    from hostctl.cmd_devices import devices_table

    fleet = Fleet()
    # The Last Will was stamped when the agent connected (ts 1000); its info was
    # re-published by the heartbeat until 1600: the device was last heard at 1600.
    fleet.update(
        topics.state("pi-a"),
        DeviceState(device_id="pi-a", state="offline", epoch=1, ts=1000.0).to_bytes(),
    )
    fleet.update(
        topics.info("pi-a"),
        DeviceInfo(
            device_id="pi-a",
            device={"machine": "Linux aarch64", "cores": 4},
            runtimes={
                "litert": {"version": "2.3.0"},
                "onnxruntime": {
                    "version": "1.32.0",
                    "providers": ["CPUExecutionProvider", "AzureExecutionProvider"],
                },
            },
            tags=["lab"],
            free_disk_mb=100.0,
            cached_models=[],
            agent_version="0.1.0",
            ts=1600.0,
        ).to_bytes(),
    )
    device = fleet.devices["pi-a"]
    assert device.last_seen == 1600.0 and device.to_json()["last_seen"] == 1600.0
    console = Console(width=200, record=True)
    with mock.patch("time.time", return_value=1600.0 + 125):
        console.print(devices_table(fleet.sorted()))
    (row,) = [line for line in console.export_text().splitlines() if "pi-a" in line]
    assert "offline" in row and "2m ago" in row
    assert "onnxruntime 1.32.0 (CPU, Azure)" in row and "litert 2.3.0" in row


def test_all_and_tags_take_every_online_device_and_name_the_offline_ones() -> None:
    fleet = _fleet(*FLEET)
    targets, failures = resolve_targets(fleet, devices=[], tags=[], all_devices=True)
    assert targets == ["pi-a", "pi-b"]
    assert [(f.device_id, f.state, f.fatal) for f in failures] == [("pi-c", "skipped", True)]
    assert "--skip-offline" in failures[0].reason
    assert resolve_targets(fleet, devices=[], tags=["lab"], all_devices=False)[0] == [
        "pi-a",
        "pi-b",
    ]
    _, skipped = resolve_targets(
        fleet, devices=[], tags=["lab"], all_devices=False, skip_offline=True
    )
    assert [(f.device_id, f.state, f.reason, f.fatal) for f in skipped] == [
        ("pi-c", "skipped", "offline", False)
    ]


def test_named_devices_that_cannot_run_are_failures_at_once() -> None:
    targets, failures = resolve_targets(
        _fleet(*FLEET), devices=["pi-a", "pi-c", "ghost"], tags=["nosuchtag"], all_devices=False
    )
    assert targets == ["pi-a"]
    assert [(f.device_id, f.state) for f in failures] == [
        ("pi-c", "offline"),
        ("ghost", "unknown"),
        ("tag:nosuchtag", "unknown"),
    ]


def test_no_target_at_all_is_an_error() -> None:
    with pytest.raises(HostctlError, match="--device"):
        resolve_targets(_fleet(*FLEET), devices=[], tags=[], all_devices=False)
    with pytest.raises(HostctlError, match=r"no online device .*pi-c: offline"):
        resolve_targets(_fleet(("pi-c", "offline", [])), devices=[], tags=[], all_devices=True)


def test_a_cleared_retained_topic_forgets_the_device_and_bad_payloads_are_ignored() -> None:
    fleet = _fleet(*FLEET)
    fleet.update(topics.state("pi-a"), b"")
    fleet.update(topics.state("pi-b"), b"{not json")
    assert "pi-a" not in fleet.devices
    assert fleet.devices["pi-b"].status == "busy"


# ---------------------------------------------------------------- the job journal


class _RecordingSession:
    """Stands in for the broker connection: records what the push publishes and
    what the journal held at that moment; no device ever answers."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self.manifests: list[tuple[str, bool]] = []

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        where = topics.parse(topic)
        if where.kind == "job" and where.device_id is not None:
            manifest = json.loads(base64.b64decode(json.loads(payload)["payload"]))
            job_id = manifest["job_id"]
            self.manifests.append((where.device_id, self.store.sent_to(job_id, where.device_id)))

    def get(self, timeout: float) -> None:
        time.sleep(min(timeout, 0.05))

    def wait_published(self, timeout: float = 10.0) -> None:
        return None


def _pusher(store: ResultStore, session: _RecordingSession, tmp_path: Path) -> Pusher:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3" * 8)
    blob = Blob.from_file(model, fmt="tflite")
    pusher = Pusher(session, store, SigningKey.generate(), fleet=_fleet(*FLEET))  # type: ignore[arg-type]
    for device in ("pi-a", "pi-b"):
        pusher.add_job(device, blob, {"runs": 5}, "lbl", 0.3)
    return pusher


def test_every_job_is_journaled_before_its_manifest_is_sent(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        session = _RecordingSession(store)
        pusher = _pusher(store, session, tmp_path)
        pusher.run(0.3)
        assert sorted(session.manifests) == [("pi-a", True), ("pi-b", True)]
        entries = store.jobs()
        assert sorted(e.device_id for e in entries) == ["pi-a", "pi-b"]
        entry = entries[0]
        assert (entry.model_name, entry.label, entry.settings) == ("m.tflite", "lbl", {"runs": 5})
        assert entry.sha256 == hashlib.sha256(b"TFL3" * 8).hexdigest()
        assert entry.expires_at == pusher.jobs[entry.job_id].manifest.expires_at
        # Nobody answered: the push gave up, the job is still pending until it expires.
        assert entry.state == "timed_out" and entry.pending


def test_a_job_that_cannot_be_journaled_is_not_sent(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        session = _RecordingSession(store)
        pusher = _pusher(store, session, tmp_path)
        with sqlite3.connect(tmp_path / "r.sqlite") as other:  # the journal is gone
            other.execute("DROP TABLE jobs")
        with pytest.raises(HostctlError, match="cannot write to the results store"):
            pusher.run(0.3)
        assert session.manifests == []
