"""`hostctl demo` end to end (the compression study of the digits CNN on a local
broker and agent), and the embedded amqtt broker it falls back on."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hostctl.store import ResultStore
from tests.integration.fleet_support import REPO, close_client, subprocess_env
from tests.support.broker import free_port, wait_for_port

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _demo(*args: str, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    store = ["--db", str(db)] if db is not None else []
    return subprocess.run(
        [sys.executable, "-m", "hostctl", *store, "demo", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env(),
        timeout=300,
    )


TAGS = ("fp32", "f16", "blq", "fiq", "prn50", "prq50")


def test_demo_runs_the_compression_study_and_writes_the_report(tmp_path: Path) -> None:
    db, page = tmp_path / "results.sqlite", tmp_path / "demo.html"
    done = _demo("--html", str(page), db=db)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "edgeprof demo: digits_cnn.tflite (source" in out
    assert all(f" {tag} " in out for tag in TAGS), out
    assert "98.61%" in out  # the trained CNN's top-1 on the 360 held-out digits, on the device
    assert out.count("baseline") >= 3 and "49.5%" in out  # connections removed by prn50/prq50
    assert "short phases for the demo" in done.stderr
    assert f"report (table, plots, data; open it in a browser): {page}" in done.stderr
    text = page.read_text()
    assert "edgeprof-results" in text and text.count('class="plot"') >= 5
    # The results went to the store it was given, with their variants' recipes.
    with ResultStore(db) as store:
        docs = store.query(label="demo")
    kinds = sorted(d["model"]["variant"]["kind"] for d in docs)
    assert kinds == sorted(["fp32", "f16", "blq", "fiq", "prn", "prq"])
    assert all(d["status"] == "ok" and d["accuracy"]["n"] == 360 for d in docs)


def test_demo_on_the_amqtt_fallback_broker(tmp_path: Path) -> None:
    done = _demo("--embedded-broker", "amqtt", "--json", "--html", str(tmp_path / "r.html"))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert sorted(r["model"]["name"] for r in results) == sorted(
        f"digits_cnn.{tag}.tflite" for tag in TAGS
    )
    assert all(r["status"] == "ok" for r in results)


@pytest.fixture
def amqtt_port() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from hostctl.demo import serve_amqtt; serve_amqtt(int(sys.argv[1]))",
            str(port),
        ],
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=20)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _Client:
    def __init__(self, port: int, client_id: str, *, will: tuple[str, bytes] | None = None) -> None:
        self.received: list[tuple[str, bytes, bool]] = []
        self.event = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.received.append((message.topic, bytes(message.payload), bool(message.retain)))
        self.event.set()

    def subscribe(self, topic: str) -> None:
        self.event.clear()
        result, _mid = self.client.subscribe(topic, 1)
        assert result == mqtt.MQTT_ERR_SUCCESS

    def close(self) -> None:
        close_client(self.client)


def test_amqtt_keeps_retained_messages_fires_wills_and_delivers_qos1(amqtt_port: int) -> None:
    device = _Client(amqtt_port, "dev", will=("t/dev/state", b"offline"))
    device.client.publish("t/dev/state", b"online", qos=1, retain=True).wait_for_publish(5)

    watcher = _Client(amqtt_port, "watcher")
    watcher.subscribe("t/#")
    assert watcher.event.wait(5)
    assert watcher.received[0] == ("t/dev/state", b"online", True)

    watcher.event.clear()
    device.client.publish("t/dev/data", b"x" * 70000, qos=1).wait_for_publish(5)
    assert watcher.event.wait(5)
    assert watcher.received[-1][:2] == ("t/dev/data", b"x" * 70000)

    # An unclean end (socket closed without DISCONNECT) publishes the will.
    watcher.event.clear()
    device.client.loop_stop()
    sock = device.client.socket()
    assert sock is not None
    sock.close()
    assert watcher.event.wait(15)
    assert watcher.received[-1][:2] == ("t/dev/state", b"offline")
    watcher.close()

    late = _Client(amqtt_port, "late")
    late.subscribe("t/dev/state")
    assert late.event.wait(5)
    assert late.received[0] == ("t/dev/state", b"offline", True)  # the will was retained
    late.close()
    device.client._reset_sockets()
