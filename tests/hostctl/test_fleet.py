"""Fleet inventory and target resolution from real protocol messages."""

from __future__ import annotations

import pytest

from hostctl.errors import HostctlError
from hostctl.fleet import Fleet, resolve_targets
from protocol import topics
from protocol.messages import DeviceInfo, DeviceState


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


def test_all_and_tags_take_every_device_that_is_not_offline() -> None:
    fleet = _fleet(*FLEET)
    assert resolve_targets(fleet, devices=[], tags=[], all_devices=True) == (["pi-a", "pi-b"], [])
    assert resolve_targets(fleet, devices=[], tags=["lab"], all_devices=False)[0] == [
        "pi-a",
        "pi-b",
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
    with pytest.raises(HostctlError, match="no online device"):
        resolve_targets(_fleet(("pi-c", "offline", [])), devices=[], tags=[], all_devices=True)


def test_a_cleared_retained_topic_forgets_the_device_and_bad_payloads_are_ignored() -> None:
    fleet = _fleet(*FLEET)
    fleet.update(topics.state("pi-a"), b"")
    fleet.update(topics.state("pi-b"), b"{not json")
    assert "pi-a" not in fleet.devices
    assert fleet.devices["pi-b"].status == "busy"
