"""Fault tests with real processes: agents killed, chunks lost, hostctl killed mid-wait."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiler.models import demo_model
from tests.integration.fleet_support import TINY, Fleet, Watcher, online_fleet
from tests.support.broker import MosquittoBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def one_device(fresh_mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[Fleet]:
    with online_fleet(tmp_path, {"pi-1": []}, broker=fresh_mosquitto) as fleet:
        yield fleet


def _wait_until(predicate: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_agent_killed_with_sigkill_shows_offline(one_device: Fleet) -> None:
    one_device.agent.kill()
    devices = one_device.host.wait_for(
        lambda devs: devs.get("pi-1", {}).get("state") == "offline", "pi-1 offline"
    )
    assert devices["pi-1"]["state"] == "offline"
    done = one_device.host.run("push", str(demo_model("onnx")), "--device", "pi-1", *TINY)
    assert done.returncode == 1
    assert "pi-1" in done.stderr and "offline" in done.stderr


def test_chunks_lost_while_the_agent_was_down_are_repaired(one_device: Fleet) -> None:
    """The agent freezes, the chunks go out, the agent dies (the broker drops what it
    held for it) and starts again: the host re-sends the job, the agent asks for the
    chunks it never got, the host serves them."""
    model = demo_model("tflite")
    chunks = -(-model.stat().st_size // 1024)
    watcher = Watcher(one_device.broker.port, "edgeprof/v1/blob/#")
    agent = one_device.agent
    assert agent.proc is not None
    push = None
    try:
        os.kill(agent.proc.pid, signal.SIGSTOP)
        push = one_device.host.popen(
            "push",
            str(model),
            "--device",
            "pi-1",
            "--chunk-size",
            "1024",
            *TINY,
            "--timeout",
            "90",
            "--json",
        )
        _wait_until(lambda: len(watcher.topics()) >= chunks, "the first transfer")
        agent.kill()  # SIGKILL works on a stopped process
        agent.start()
        out, err = push.communicate(timeout=120)
        assert push.returncode == 0, err
        results = json.loads(out)
        assert [r["status"] for r in results] == ["ok"]
        topics = watcher.topics()
        requests = [t for t in topics if t.endswith("/request")]
        served = [t for t in topics if not t.endswith("/request")]
        assert requests, "the restarted agent never asked for missing chunks"
        assert len(served) > chunks  # the first transfer plus the repair
    finally:
        watcher.close()
        if push is not None and push.poll() is None:
            push.kill()
            push.communicate()


def test_results_survive_hostctl_being_killed_mid_wait(one_device: Fleet) -> None:
    host = one_device.host
    push = host.popen(
        "push",
        str(demo_model("onnx")),
        "--device",
        "pi-1",
        "--runs",
        "5",
        "--warmup",
        "1",
        "--min-seconds",
        "3",
        "--max-seconds",
        "10",
        "--timeout",
        "90",
    )
    try:
        host.wait_for(lambda devs: devs["pi-1"]["state"] == "busy", "the job to run")
    finally:
        push.send_signal(signal.SIGKILL)
        push.communicate()
    host.wait_for(lambda devs: devs["pi-1"]["state"] == "online", "the job to finish")
    empty = host.run("results", "--no-collect", "--json")
    assert json.loads(empty.stdout) == []  # hostctl died before it got the result

    collected = host.run("collect", "--wait", "2")
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout.startswith("1 new result")
    stored = json.loads(host.run("results", "--no-collect", "--json").stdout)
    assert [(r["device"]["id"], r["status"]) for r in stored] == [("pi-1", "ok")]

    again = host.run("collect", "--wait", "1")  # acknowledged: nothing comes back
    assert again.stdout.startswith("0 new result")


def test_ctrl_c_stops_the_wait_not_the_job_and_collect_gets_the_result_later(
    one_device: Fleet,
) -> None:
    host = one_device.host
    push = host.popen(
        "push",
        str(demo_model("onnx")),
        "--device",
        "pi-1",
        "--runs",
        "5",
        "--warmup",
        "1",
        "--min-seconds",
        "3",
        "--max-seconds",
        "10",
        "--timeout",
        "90",
    )
    try:
        host.wait_for(lambda devs: devs["pi-1"]["state"] == "busy", "the job to run")
        push.send_signal(signal.SIGINT)
        _, err = push.communicate(timeout=30)
    finally:
        if push.poll() is None:
            push.kill()
            push.communicate()
    assert push.returncode == 130
    assert "stopped waiting" in err and "1 job(s) go on" in err and "hostctl collect" in err
    assert "canceled" not in err and "error:" not in err
    host.wait_for(lambda devs: devs["pi-1"]["state"] == "online", "the job to finish")
    collected = host.run("collect", "--wait", "2")
    assert collected.stdout.startswith("1 new result"), collected.stderr


def test_a_job_without_result_by_the_timeout_is_timed_out(one_device: Fleet) -> None:
    done = one_device.host.run(
        "push",
        str(demo_model("onnx")),
        "--device",
        "pi-1",
        "--runs",
        "5",
        "--warmup",
        "1",
        "--min-seconds",
        "5",
        "--max-seconds",
        "10",
        "--timeout",
        "2",
    )
    assert done.returncode == 1
    assert "pi-1" in done.stderr and "timed_out" in done.stderr
