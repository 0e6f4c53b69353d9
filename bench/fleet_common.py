"""Shared pieces of the fleet benchmarks: a private Mosquitto on a free loopback
port, host keys, real loadable ONNX models of a chosen size, agent processes (or
many agents in a few processes), a timestamping topic logger and an in-process
``hostctl`` push.

Everything stays on 127.0.0.1; every process started here is stopped by the
context managers that started it. Run ``python -m bench.fleet_common --agents``
with a JSON request on stdin to host several :class:`agent.daemon.Agent`
instances in threads of one process (what :func:`agent_group` does).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchError

ROOT = "edgeprof/v1"
TINY_SETTINGS: dict[str, Any] = {
    "runs": 5,
    "warmup": 1,
    "warmup_seconds": 0.0,
    "min_seconds": 0.0,
    "max_seconds": 5.0,
}
"""Profile settings small enough that the run part of a push hardly matters."""


def child_env() -> dict[str, str]:
    """Environment for child processes: this checkout first on the path, no user config."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "200"
    for name in ("EDGEPROF_BROKER", "EDGEPROF_DB", "EDGEPROF_KEY", "EDGEPROF_DEVICE_ID"):
        env.pop(name, None)
    return env


def free_port() -> int:
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_tool(name: str) -> str:
    """Path of a Mosquitto executable (mosquitto, mosquitto_pub, mosquitto_sub)."""
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise BenchError(f"{name} is not installed: apt-get install mosquitto mosquitto-clients")
    return found


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """A private mosquitto on 127.0.0.1:PORT (yields PORT); stopped at the end."""
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        # As tests/support/broker.py: a big push queues many chunks per subscriber.
        "max_queued_messages 100000\nmax_inflight_messages 0\n"
        f"log_type error\nlog_type warning\nlog_dest file {workdir / 'mosquitto.log'}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [mosquitto_tool("mosquitto"), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise BenchError(f"mosquitto did not listen on {port}") from None
                time.sleep(0.05)
        yield port
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def workspace(prefix: str) -> Iterator[Path]:
    """A temporary directory removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def host_keys(workdir: Path) -> tuple[Path, Path]:
    """A fresh host key pair: (host.key, host.pub)."""
    from protocol.signing import write_key_pair

    return write_key_pair(workdir / "keys")


def matmul_model(path: Path, rows: int, cols: int, seed: int = 0) -> Path:
    """A real, loadable ONNX model: y = x @ W with W float32 [rows, cols] as an
    initializer (rows * cols * 4 bytes); `seed` makes distinct files (distinct hashes)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).standard_normal((rows, cols), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "bench_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cols])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- watching


@dataclass
class Logged:
    """One message seen by a :class:`TopicLog` (payload kept only for small messages)."""

    t: float
    topic: str
    size: int
    payload: bytes | None


@dataclass
class TopicLog:
    """A plain paho subscriber that timestamps (time.time()) every message it receives.

    Payloads of messages larger than `keep_below` bytes are not kept (chunks):
    only their size and arrival time.
    """

    port: int
    filters: Sequence[str]
    keep_below: int = 1 << 20
    messages: list[Logged] = field(default_factory=list)

    def __post_init__(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._lock = threading.Condition()
        self._subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.on_connect = lambda c, u, f, r, p: c.subscribe([(t, 1) for t in self.filters])
        client.on_subscribe = lambda c, u, m, r, p: self._subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        self.client = client
        if not self._subscribed.wait(10):
            self.close()
            raise BenchError("the topic logger could not subscribe")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.time()
        payload = bytes(message.payload)
        keep = payload if len(payload) < self.keep_below else None
        with self._lock:
            self.messages.append(Logged(now, message.topic, len(payload), keep))
            self._lock.notify_all()

    def snapshot(self) -> list[Logged]:
        with self._lock:
            return list(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def wait_for(
        self, predicate: Callable[[list[Logged]], bool], timeout: float, what: str
    ) -> list[Logged]:
        """Block until predicate(messages) holds; BenchError after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
                self._lock.wait(min(left, 0.5))
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client._reset_sockets()


def events(messages: Sequence[Logged]) -> list[tuple[float, dict[str, Any]]]:
    """(receipt time, decoded JSON) of every job event among `messages`."""
    found = []
    for m in messages:
        if m.topic.endswith("/event") and m.payload is not None:
            found.append((m.t, json.loads(m.payload)))
    return found


def online_devices(messages: Sequence[Logged]) -> set[str]:
    """Devices whose latest state is online and whose info lists probed runtimes
    (an agent publishes its info once on connect, again after its runtime probe
    child is done: only then is it idle)."""
    state: dict[str, str] = {}
    probed: set[str] = set()
    for m in messages:
        parts = m.topic.split("/")  # edgeprof/v1/dev/ID/state|info
        if len(parts) == 5 and parts[2] == "dev" and m.payload:
            if parts[4] == "state":
                state[parts[3]] = json.loads(m.payload).get("state", "")
            elif parts[4] == "info" and json.loads(m.payload).get("runtimes"):
                probed.add(parts[3])
    return {d for d, s in state.items() if s == "online" and d in probed}


def inventory_log(port: int) -> TopicLog:
    return TopicLog(port, [f"{ROOT}/dev/+/state", f"{ROOT}/dev/+/info"])


def wait_online(port: int, device_ids: Sequence[str], timeout: float = 120.0) -> None:
    """Until every device announced itself online with its runtimes probed, plus a
    second for the probe children to be reaped."""
    log = inventory_log(port)
    try:
        wanted = set(device_ids)
        log.wait_for(
            lambda ms: wanted <= online_devices(ms), timeout, f"{len(wanted)} agent(s) online"
        )
    finally:
        log.close()
    time.sleep(1.0)


# --------------------------------------------------------------------------- agents


def agent_command(url: str, device_id: str, cache_dir: Path, trust: Path) -> list[str]:
    return [
        sys.executable, "-m", "agent", "--broker", url, "--device-id", device_id,
        "--cache-dir", str(cache_dir), "--trust", str(trust), "--log-level", "WARNING",
    ]  # fmt: skip


@contextlib.contextmanager
def agent_process(
    url: str, device_id: str, workdir: Path, trust: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``python -m agent`` process (log in workdir), stopped at the end."""
    with (workdir / f"agent-{device_id}.log").open("ab") as log:
        proc = subprocess.Popen(
            agent_command(url, device_id, workdir / f"cache-{device_id}", trust),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=child_env(),
        )
    try:
        yield proc
    finally:
        stop_process(proc)


@contextlib.contextmanager
def agent_group(
    url: str, device_ids: Sequence[str], workdir: Path, trust: Path, *, processes: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`device_ids` agents as threads of `processes` processes (each agent: its own
    MQTT session, device id and cache dir); stopped at the end."""
    groups = [list(device_ids[i::processes]) for i in range(processes)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n, ids in enumerate(g for g in groups if g):
            request = {"broker": url, "device_ids": ids, "workdir": str(workdir),
                       "trust": str(trust)}  # fmt: skip
            with (workdir / f"group-{n}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.fleet_common", "--agents"],
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=REPO_ROOT,
                    env=child_env(),
                )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request).encode())
            proc.stdin.close()
            procs.append(proc)
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            stop_process(proc, timeout=20)


def agents_child_main() -> int:
    """Child side of :func:`agent_group`: run the agents until SIGTERM."""
    import logging

    from agent.config import load_settings
    from agent.daemon import Agent

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    request = json.loads(sys.stdin.read())
    workdir = Path(request["workdir"])
    agents = []
    for device_id in request["device_ids"]:
        settings = load_settings(
            {
                "broker": request["broker"],
                "device_id": device_id,
                "trust": [request["trust"]],
                "cache_dir": str(workdir / f"cache-{device_id}"),
                "log_level": "WARNING",
            },
            env={},
        )
        agents.append(Agent(settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    threads = [threading.Thread(target=a.run, name=a.device_id, daemon=True) for a in agents]
    for thread in threads:
        thread.start()
    stop.wait()
    for a in agents:
        a.request_stop()
    for thread in threads:
        thread.join(timeout=10)
    return 0


# --------------------------------------------------------------------------- host


@dataclass(frozen=True)
class Connection:
    """Connection options for hostctl.mqtt.HostSession."""

    broker: str
    username: str | None = None
    password: str | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False


@dataclass
class PushTimes:
    """Wall-clock (time.time()) marks of one in-process push."""

    start: float
    end: float
    outcome: Any


def host_push(
    port: int,
    key_path: Path,
    db_path: Path,
    model: Path,
    devices: Sequence[str],
    *,
    settings: dict[str, Any] | None = None,
    timeout: float = 300.0,
) -> PushTimes:
    """``hostctl push`` in this process (hostctl.fleet.push over a fresh persistent session)."""
    from hostctl.fleet import FLEET_SUBSCRIPTIONS, push
    from hostctl.mqtt import HostSession, host_client_id
    from hostctl.store import ResultStore
    from protocol.signing import load_signing_key

    key = load_signing_key(key_path)
    with ResultStore(db_path) as store:
        start = time.time()
        session = HostSession(
            Connection(f"mqtt://127.0.0.1:{port}"),
            client_id=host_client_id(db_path),
            subscriptions=FLEET_SUBSCRIPTIONS,
            persistent=True,
        )
        session.connect()
        try:
            outcome = push(
                session,
                store,
                key,
                models=[model],
                settings=dict(settings or TINY_SETTINGS),
                devices=list(devices),
                timeout=timeout,
            )
        finally:
            session.close()
        end = time.time()
    return PushTimes(start, end, outcome)


def failures_text(outcome: Any) -> str:
    return "; ".join(f"{f.device_id}: {f.state}: {f.reason}" for f in outcome.failures[:5])


if __name__ == "__main__":
    if sys.argv[1:] == ["--agents"]:
        sys.exit(agents_child_main())
    sys.stderr.write("usage: python -m bench.fleet_common --agents  (request as JSON on stdin)\n")
    sys.exit(2)
