"""Real pieces of a fleet for end-to-end tests: agent processes, hostctl as a
subprocess, and a plain paho client that counts what crosses the broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.agents import spawn_agent

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "--runs",
    "5",
    "--warmup",
    "1",
    "--warmup-seconds",
    "0",
    "--min-seconds",
    "0",
    "--max-seconds",
    "5",
]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    for name in ("EDGEPROF_BROKER", "EDGEPROF_DB", "EDGEPROF_KEY"):
        env.pop(name, None)
    return env


@dataclass
class Agent:
    """One `python -m agent` process with its own device id and cache directory."""

    device_id: str
    broker_url: str
    trust: Path
    workdir: Path
    tags: Sequence[str] = ()
    proc: subprocess.Popen[bytes] | None = None
    extra: Sequence[str] = field(default_factory=list)
    python: str = sys.executable
    """The interpreter (i.e. the environment and its runtimes) the agent runs in."""

    @property
    def cache_dir(self) -> Path:
        return self.workdir / f"cache-{self.device_id}"

    @property
    def log(self) -> Path:
        return self.workdir / f"agent-{self.device_id}.log"

    def start(self) -> Agent:
        args = [
            "--broker",
            self.broker_url,
            "--device-id",
            self.device_id,
            "--cache-dir",
            str(self.cache_dir),
            "--trust",
            str(self.trust),
            *self.extra,
        ]
        for tag in self.tags:
            args += ["--tag", tag]
        with self.log.open("ab") as log:
            self.proc = spawn_agent(args, log, python=self.python)
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, the broker publishes the Last Will."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Host:
    """hostctl run as a real subprocess against one broker, key and results store."""

    broker_url: str
    key: Path
    db: Path | str
    """A SQLite file or a postgresql:// URL."""
    options: Sequence[str] = ()
    """More global options (TLS, user name and password)."""

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "hostctl",
            "--broker",
            self.broker_url,
            "--key",
            str(self.key),
            "--db",
            str(self.db),
            *self.options,
            *args,
        ]

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            cwd=REPO,
            env=subprocess_env(),
            timeout=timeout,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=subprocess_env(),
        )

    def devices(self) -> dict[str, dict[str, Any]]:
        done = self.run("devices", "--json")
        assert done.returncode == 0, done.stderr
        return {d["id"]: d for d in json.loads(done.stdout)}

    def wait_for(
        self, predicate: Any, what: str, timeout: float = 60.0
    ) -> dict[str, dict[str, Any]]:
        """Poll `devices --json` until predicate(devices) holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            devices = self.devices()
            if predicate(devices):
                return devices
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}: {self.devices()}")

    def wait_online(self, *device_ids: str, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        return self.wait_for(
            lambda devs: all(devs.get(d, {}).get("state") == "online" for d in device_ids),
            f"{device_ids} online",
            timeout,
        )


def close_client(client: mqtt.Client) -> None:
    """Disconnect and close every socket now (paho leaves its socket pair to the GC)."""
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()


class Watcher:
    """A plain paho client counting messages on a topic filter (e.g. every chunk)."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda c, u, m, r, p: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10), "watcher could not subscribe"

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.messages]

    def close(self) -> None:
        close_client(self.client)


@dataclass
class Fleet:
    """A broker, real agents online on it, and hostctl pointed at it: what an
    end-to-end test of the fleet starts from."""

    broker: Any
    host: Host
    agents: dict[str, Agent]
    workdir: Path

    @property
    def agent(self) -> Agent:
        """The one agent of a one-device fleet."""
        (only,) = self.agents.values()
        return only


@contextmanager
def online_fleet(
    workdir: Path,
    devices: Mapping[str, Sequence[str]],
    *,
    broker: Any = None,
    extra: Sequence[str] = (),
) -> Iterator[Fleet]:
    """Start (or use `broker`, a MosquittoBroker) a broker, a key pair, one agent per
    device (name -> tags) and a Host; wait until every agent is online; stop the
    agents (and a broker started here) afterwards."""
    from protocol.signing import write_key_pair
    from tests.support.broker import MosquittoBroker

    own = broker is None
    if own:
        broker = MosquittoBroker(workdir / "broker")
        broker.start()
    key, pub = write_key_pair(workdir / "keys")
    agents: dict[str, Agent] = {}
    try:
        for name, tags in devices.items():
            agents[name] = Agent(name, broker.url, pub, workdir, tags=tags, extra=extra).start()
        host = Host(broker.url, key, workdir / "results.sqlite")
        host.wait_online(*agents)
        yield Fleet(broker, host, agents, workdir)
    finally:
        for agent in agents.values():
            agent.stop()
        if own:
            broker.stop()
