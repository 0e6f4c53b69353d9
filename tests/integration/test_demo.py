"""`hostctl demo` end to end, and the embedded amqtt broker it falls back on."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.integration.fleet_support import REPO, close_client, subprocess_env
from tests.support.broker import free_port, wait_for_port

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hostctl", "demo", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env(),
        timeout=300,
    )


def test_demo_exits_0_and_prints_a_results_table() -> None:
    done = _demo()
    assert done.returncode == 0, done.stderr
    assert "edgeprof demo" in done.stdout
    assert "demo-device" in done.stdout and "demo_cnn.tflite" in done.stdout
    assert "demo_cnn.onnx" in done.stdout and "demo_cnn_int8" in done.stdout


def test_demo_on_the_amqtt_fallback_broker() -> None:
    done = _demo("--embedded-broker", "amqtt", "--json", "--no-onnx")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [(r["model"]["name"], r["status"]) for r in results] == [
        ("demo_cnn.tflite", "ok"),
        ("demo_cnn_int8.tflite", "ok"),
    ]


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
