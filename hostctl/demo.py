"""`hostctl demo`: a whole fleet on this machine — broker, key pair, one agent — and
the bundled demo models pushed to it.

The broker is Mosquitto when it is installed, else amqtt (pure Python, MQTT
3.1.1) in a child process. Everything lives in a temporary directory that is
removed at the end, unless the user asks to keep the fleet running.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostctl.errors import HostctlError

logger = logging.getLogger(__name__)

DEVICE_ID = "demo-device"
DEMO_SETTINGS: dict[str, Any] = {
    "runs": 50,
    "warmup": 5,
    "warmup_seconds": 0.2,
    "min_seconds": 1.0,
    "max_seconds": 5.0,
}
"""Short settings: the demo is about seeing it work, not about precise numbers."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HostctlError(f"the embedded broker exited at start (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise HostctlError(f"the embedded broker did not listen on port {port} within {timeout:.0f} s")


def find_mosquitto() -> str | None:
    """The mosquitto executable (PATH, then the usual sbin), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in (
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/opt/homebrew/sbin/mosquitto",
    ):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def serve_amqtt(port: int) -> None:
    """Run an amqtt broker on 127.0.0.1:`port` until killed (child-process entry point)."""
    import asyncio

    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }

    async def main() -> None:
        broker = Broker(config)
        await broker.start()
        await asyncio.Event().wait()

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())


@dataclass
class DemoConnection:
    """Connection options of the embedded broker (fits mqtt.ConnectionOptions)."""

    broker: str
    username: str | None = None
    password: str | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False


@dataclass
class DemoFleet:
    """The running pieces of a demo."""

    workdir: Path
    port: int
    broker_kind: str
    key_path: Path
    public_path: Path
    db_path: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def agent_log(self) -> Path:
        return self.workdir / "agent.log"

    def stop(self, *, remove: bool = True) -> None:
        """Stop the agent and the broker (agent first, so its will is not needed)."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.processes.clear()
        if remove:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_broker(workdir: Path, kind: str) -> tuple[subprocess.Popen[bytes], int, str]:
    """Start the embedded broker; `kind` is 'auto', 'mosquitto' or 'amqtt'."""
    port = free_port()
    mosquitto = find_mosquitto() if kind in ("auto", "mosquitto") else None
    if kind == "mosquitto" and mosquitto is None:
        raise HostctlError("mosquitto is not installed (apt-get install mosquitto)")
    if mosquitto is not None:
        config = workdir / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 100000\n",
            encoding="utf-8",
        )
        cmd = [mosquitto, "-c", str(config)]
        used = "mosquitto"
    else:
        try:
            import amqtt  # noqa: F401
        except ImportError:
            raise HostctlError(
                "no broker for the demo: install mosquitto, or `pip install edgeprof[demo]` (amqtt)"
            ) from None
        cmd = [
            sys.executable,
            "-c",
            "import sys; from hostctl.demo import serve_amqtt; serve_amqtt(int(sys.argv[1]))",
            str(port),
        ]
        used = "amqtt"
    # The child keeps its own copy of the log descriptor; ours is closed at once.
    with (workdir / "broker.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, proc)
    return proc, port, used


def start_agent(fleet: DemoFleet) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "agent",
        "--broker",
        fleet.url,
        "--device-id",
        DEVICE_ID,
        "--tag",
        "demo",
        "--cache-dir",
        str(fleet.workdir / "agent-cache"),
        "--trust",
        str(fleet.public_path),
    ]
    with fleet.agent_log.open("wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_online(fleet: DemoFleet, agent: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until the agent announces itself online."""
    from hostctl.fleet import INVENTORY_SUBSCRIPTIONS, Fleet
    from hostctl.mqtt import HostSession, ephemeral_client_id

    session = HostSession(
        DemoConnection(fleet.url),
        client_id=ephemeral_client_id(),
        subscriptions=INVENTORY_SUBSCRIPTIONS,
        persistent=False,
    )
    session.connect()
    inventory = Fleet()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if agent.poll() is not None:
                tail = fleet.agent_log.read_text(errors="replace").strip().splitlines()[-3:]
                raise HostctlError(
                    f"the demo agent exited (code {agent.returncode}): " + " | ".join(tail)
                )
            item = session.get(0.2)
            if item is not None:
                inventory.update(*item)
            device = inventory.devices.get(DEVICE_ID)
            if device is not None and device.info is not None and device.status != "offline":
                return
        raise HostctlError(f"the demo agent did not come online within {timeout:.0f} s")
    finally:
        session.close()


def start_fleet(*, broker: str = "auto") -> DemoFleet:
    """Broker, key pair and agent in a fresh temporary directory."""
    from protocol.signing import write_key_pair

    workdir = Path(tempfile.mkdtemp(prefix="edgeprof-demo-"))
    key_path, public_path = write_key_pair(workdir / "keys")
    proc, port, kind = start_broker(workdir, broker)
    fleet = DemoFleet(workdir, port, kind, key_path, public_path, workdir / "results.sqlite")
    fleet.processes.append(proc)
    try:
        agent = start_agent(fleet)
        fleet.processes.append(agent)
        wait_online(fleet, agent)
    except BaseException:
        fleet.stop()
        raise
    return fleet


def demo_models(include_onnx: bool = True) -> list[Path]:
    """The demo models shipped inside the package."""
    from profiler.models import demo_model

    # fp32 next to its int8 quantization: the comparison edgeprof exists for.
    models = [demo_model("tflite"), demo_model("tflite", "int8")]
    if include_onnx:
        models.append(demo_model("onnx"))
    return models


def run_demo(
    fleet: DemoFleet,
    models: Sequence[Path],
    *,
    db: str | Path | None = None,
    on_update: Callable[[Any], None] | None = None,
    on_targets: Callable[[list[Any]], None] | None = None,
    timeout: float = 180.0,
) -> Any:
    """Push `models` to the demo device; returns the fleet.PushOutcome.

    Results go to the store at `db` (the user's, so they outlive the demo fleet),
    or to the fleet's own temporary one when None."""
    from hostctl.fleet import FLEET_SUBSCRIPTIONS, push
    from hostctl.mqtt import HostSession, host_client_id
    from hostctl.store import ResultStore
    from protocol.signing import load_signing_key

    key = load_signing_key(fleet.key_path)
    db_path = db if db is not None else fleet.db_path
    with ResultStore(db_path) as store:
        session = HostSession(
            DemoConnection(fleet.url),
            # not the store's own persistent session: this broker dies with the demo
            client_id=host_client_id(fleet.workdir / "session"),
            subscriptions=FLEET_SUBSCRIPTIONS,
            persistent=True,
        )
        session.connect()
        try:
            return push(
                session,
                store,
                key,
                models=list(models),
                settings=dict(DEMO_SETTINGS),
                devices=[DEVICE_ID],
                label="demo",
                timeout=timeout,
                on_update=on_update,
                on_targets=on_targets,
            )
        finally:
            session.close()


def next_command(fleet: DemoFleet, model: Path, db: str | Path | None = None) -> str:
    """The exact command to try against a kept demo fleet."""
    return (
        f"hostctl --broker {fleet.url} --key {fleet.key_path} --db {db or fleet.db_path} "
        f"push {model} --device {DEVICE_ID} --runs 50 --min-seconds 1"
    )
