"""The fleet as a user manages it: offline targets named in a push's outcome, and
decommissioned devices forgotten — real broker, real agents, hostctl as a subprocess."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiler.models import demo_model
from tests.integration.fleet_support import TINY, Fleet, Host, online_fleet

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def fleet_one_down(tmp_path: Path) -> Iterator[Fleet]:
    with online_fleet(tmp_path, {"pi-up": ["lab"], "pi-down": ["lab"]}) as fleet:
        fleet.agents["pi-down"].kill()
        fleet.host.wait_for(
            lambda devs: devs["pi-down"]["state"] == "offline", "pi-down to go offline"
        )
        yield fleet


def test_an_offline_target_is_named_and_fails_the_push_unless_skipped(
    fleet_one_down: Fleet,
) -> None:
    host = fleet_one_down.host
    model = str(demo_model("tflite"))
    failed = host.run("push", model, "--tag", "lab", *TINY)
    assert failed.returncode == 1, failed.stderr
    assert "pi-up" in failed.stdout and "skipped: offline" in failed.stdout
    assert "pi-down: skipped: offline" in failed.stderr and "--skip-offline" in failed.stderr
    skipped = host.run("push", model, "--tag", "lab", "--skip-offline", *TINY)
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped: offline" in skipped.stdout and "error:" not in skipped.stderr


def test_forget_removes_a_decommissioned_device_and_refuses_a_live_one(
    fleet_one_down: Fleet,
) -> None:
    host = fleet_one_down.host
    live = host.run("devices", "forget", "pi-up")
    assert live.returncode == 1 and "pi-up is online" in live.stderr
    gone = host.run("devices", "forget", "pi-down")
    assert gone.returncode == 0, gone.stderr
    assert set(host.devices()) == {"pi-up"}
    again = host.run("devices", "forget", "pi-down")
    assert again.returncode == 1 and "no device pi-down" in again.stderr


def test_last_seen_is_the_last_time_the_device_was_heard_even_after_its_will(
    tmp_path: Path,
) -> None:
    """The Last Will is stamped when the agent connects; the heartbeat (the info
    re-announced, every second in this agent) is what says when it was last heard."""
    from protocol.signing import write_key_pair
    from tests.support.agents import spawn_agent
    from tests.support.broker import MosquittoBroker

    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    key, pub = write_key_pair(tmp_path / "keys")
    args = ["--broker", broker.url, "--device-id", "pi-hb", "--cache-dir",
            str(tmp_path / "cache"), "--trust", str(pub)]  # fmt: skip
    with (tmp_path / "agent.log").open("ab") as log:
        agent = spawn_agent(args, log, module="tests.support.heartbeat_agent")
    host = Host(broker.url, key, tmp_path / "results.sqlite")
    try:
        first = host.wait_online("pi-hb")["pi-hb"]["last_seen"]
        heard = host.wait_for(
            lambda devs: devs["pi-hb"]["last_seen"] > first + 1, "a heartbeat after the start"
        )["pi-hb"]["last_seen"]
        agent.kill()  # SIGKILL: the broker publishes the Will stamped at the start
        agent.wait()
        gone = host.wait_for(lambda devs: devs["pi-hb"]["state"] == "offline", "the Will")
        assert gone["pi-hb"]["last_seen"] >= heard > first
        table = host.run("devices")
        assert table.returncode == 0, table.stderr
        (row,) = [line for line in table.stdout.splitlines() if "pi-hb" in line]
        assert "offline" in row and " ago" in row
        # the ONNX providers it can use, in the order ORT lists them
        assert re.search(r"onnxruntime [\w.]+ \([^)]*\bCPU\b[^)]*\)", row), row
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        broker.stop()
