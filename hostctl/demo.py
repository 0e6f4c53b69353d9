"""`hostctl demo`: a whole fleet on this machine — broker, key pair, one agent — and
the compression study of the digits CNN shipped in the package run on it.

The study is the table compression papers publish: the trained CNN
(:mod:`modelkit.demo_digits`, scikit-learn's 8×8 digits) as fp32, F16, BLQ, FIQ
(calibrated), PRN and PRQ (50 % pruned), each pushed to the agent with the held-out
images, measured there (top-1 on the device, latency with CIs, memory), and an HTML
report written. The phases are shorter than a real study's (:data:`DEMO_SETTINGS`)
so the whole demo stays under a minute on two cores.

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
from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.study import StudyPlan

logger = logging.getLogger(__name__)

DEVICE_ID = "demo-device"
LABEL = "demo"
DEMO_SETTINGS: dict[str, Any] = {
    "runs": 50,
    "warmup": 5,
    "warmup_seconds": 0.2,
    "min_seconds": 1.0,
    "max_seconds": 5.0,
    "threads": 1,
}
"""Short phases (a real study: 1 s of warm-up, 5 s of steady state), one thread (the
demo's agent shares this machine with hostctl and the broker): the demo is about
seeing the study work in under a minute, not about precise numbers."""

DEMO_PHASES = (
    "short phases for the demo: 0.2 s of warm-up and 1 s of steady state per variant, "
    "1 thread (a real study measures 1 s and 5 s: hostctl study MODEL --eval VAL.npz)"
)


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


DEMO_NEEDS = (("ai_edge_quantizer", "ai-edge-quantizer"), ("matplotlib", "matplotlib"))
"""What the demo needs beyond edgeprof itself (import name, distribution): the TFLite
variant makers and the report's plots (``edgeprof[demo]`` brings them)."""
ONNX_NEEDS = (("onnxconverter_common", "onnxconverter-common"),)
"""What ``--onnx`` needs besides (ONNX Runtime's quantizers come with edgeprof)."""


def missing_packages(*, include_onnx: bool = False) -> list[str]:
    """The distributions the demo needs that are not installed here."""
    import importlib.util

    missing = []
    for module, dist in DEMO_NEEDS + (ONNX_NEEDS if include_onnx else ()):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(dist)
    return missing


def demo_plans(workdir: Path, *, include_onnx: bool = False) -> list[StudyPlan]:
    """The demo's studies: the digits CNN as .tflite (and its .onnx twin), each made
    into fp32, F16, BLQ, FIQ, PRN50 and PRQ50 in ``workdir``, checked and measured on
    the held-out digits, FIQ calibrated on training images."""
    from hostctl.study import STUDY_KINDS, StudyPlan
    from modelkit import demo_digits

    formats = ["tflite", "onnx"] if include_onnx else ["tflite"]
    return [
        StudyPlan(
            model=demo_digits.model_path(fmt),
            out_dir=workdir / f"variants-{fmt}",
            label=LABEL,
            eval_data=demo_digits.eval_path(),
            calibration=str(demo_digits.calibration_path()),
            kinds=STUDY_KINDS,
            sparsities=(0.5,),
        )
        for fmt in formats
    ]


def default_report_path() -> Path:
    """Where the demo writes its HTML report unless told: the user data dir."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("edgeprof")) / "demo-report.html"


def run_demo(
    fleet: DemoFleet,
    models: Sequence[Path],
    *,
    eval_data: Path | None = None,
    db: str | Path | None = None,
    on_update: Callable[[Any], None] | None = None,
    on_targets: Callable[[list[Any]], None] | None = None,
    timeout: float = 300.0,
) -> Any:
    """Push `models` (with `eval_data`) to the demo device; returns the fleet.PushOutcome.

    Results go to the store at `db` (the user's, so they outlive the demo fleet),
    or to the fleet's own temporary one when None. Each variant's recipe travels
    into its results (the host attaches it)."""
    from hostctl.fleet import FLEET_SUBSCRIPTIONS
    from hostctl.mqtt import HostSession, host_client_id
    from hostctl.store import ResultStore
    from hostctl.study import measure_on_fleet
    from profiler.settings import ProfileSettings
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
            return measure_on_fleet(
                session,
                store,
                key,
                list(models),
                ProfileSettings(**DEMO_SETTINGS),
                label=LABEL,
                eval_data=eval_data,
                devices=[DEVICE_ID],
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


def study_command(fleet: DemoFleet, plan: StudyPlan, db: str | Path | None = None) -> str:
    """The exact `hostctl study` of the demo's model against a kept demo fleet."""
    return (
        f"hostctl --broker {fleet.url} --key {fleet.key_path} --db {db or fleet.db_path} "
        f"study {plan.model} --eval {plan.eval_data} --calibration {plan.calibration} "
        f"--device {DEVICE_ID} --html study.html"
    )
