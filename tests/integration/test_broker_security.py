"""The broker setup of docs/agent.md on a real Mosquitto: TLS with a CA, client
certificates, passwords and the documented ACL — with real agents and hostctl
connecting, and every failure named the same way on both sides."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hostctl.fleet import REPAIR_BUDGET_COPIES
from protocol import topics
from protocol.messages import ChunkRequest, Collect, JobResult
from protocol.signing import load_signing_key, seal, write_key_pair
from tests.integration.fleet_support import TINY, Agent, Host, close_client
from tests.support.broker import BrokerTls, MosquittoBroker, write_password_file
from tests.support.tls import CertificateAuthority

pytestmark = [pytest.mark.broker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
UNTRUSTED = "signed by a CA this machine does not trust"
MISMATCH = "is not issued for 127.0.0.1"
NEEDS_CERT = "requires a client certificate"
FOREIGN_CERT = "does not trust this client's certificate"


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "pki")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return write_key_pair(tmp_path / "keys")


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for agent in started:
        agent.stop()


def _start(broker: MosquittoBroker, tmp: Path, keys: tuple[Path, Path], agents: list[Agent],
           *extra: str, device: str | None = None) -> Agent:  # fmt: skip
    agent = Agent(
        device or f"dev-{uuid.uuid4().hex[:6]}",
        broker.url,
        keys[1],
        tmp,
        extra=["--log-level", "DEBUG", *extra],
    ).start()
    agents.append(agent)
    return agent


def _wait_log(agent: Agent, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = agent.log.read_text(errors="replace") if agent.log.exists() else ""
        if text in log:
            return log
        assert agent.proc is not None and agent.proc.poll() is None, log[-2000:]
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared in the agent's log:\n{log[-3000:]}")


def _fails_naming(host: Host, text: str) -> None:
    done = host.run("devices", "--json", timeout=60)
    assert done.returncode == 1, done.stdout
    assert text in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_tls_with_a_ca_both_sides_connect_and_name_an_unknown_ca(
    tmp_path: Path, ca: CertificateAuthority, keys: tuple[Path, Path], agents: list[Agent]
) -> None:
    server = ca.issue("broker", dns=("localhost",), ips=("127.0.0.1",))
    broker = MosquittoBroker(tmp_path / "broker", tls=BrokerTls(ca.cert, server.cert, server.key))
    broker.start()
    try:
        trusted = _start(broker, tmp_path, keys, agents, "--ca-cert", str(ca.cert))
        host = Host(broker.url, keys[0], tmp_path / "r.sqlite", ["--ca-cert", str(ca.cert)])
        host.wait_online(trusted.device_id)

        # Without the CA: refused by both, and both say why.
        _fails_naming(Host(broker.url, keys[0], tmp_path / "r.sqlite"), UNTRUSTED)
        stranger = _start(broker, tmp_path, keys, agents)
        log = _wait_log(stranger, UNTRUSTED)
        assert "Traceback" not in log
        # A plain mqtt:// URL to the TLS port says to use mqtts://.
        plain = broker.url.replace("mqtts://", "mqtt://")
        _fails_naming(Host(plain, keys[0], tmp_path / "r.sqlite"), "speaks TLS: use mqtts://")
        # --insecure (testing only) skips the check on both sides.
        loose = _start(broker, tmp_path, keys, agents, "--insecure")
        careless = Host(broker.url, keys[0], tmp_path / "r.sqlite", ["--insecure"])
        careless.wait_online(loose.device_id)
        assert stranger.device_id not in careless.devices()
    finally:
        broker.stop()


def test_a_certificate_for_another_host_name_is_named(
    tmp_path: Path, ca: CertificateAuthority, keys: tuple[Path, Path], agents: list[Agent]
) -> None:
    server = ca.issue("elsewhere", dns=("broker.example",))
    broker = MosquittoBroker(tmp_path / "broker", tls=BrokerTls(ca.cert, server.cert, server.key))
    broker.start()
    try:
        _fails_naming(
            Host(broker.url, keys[0], tmp_path / "r.sqlite", ["--ca-cert", str(ca.cert)]), MISMATCH
        )
        agent = _start(broker, tmp_path, keys, agents, "--ca-cert", str(ca.cert))
        _wait_log(agent, MISMATCH)
    finally:
        broker.stop()


def test_client_certificates_are_the_identity_and_a_missing_one_is_named(
    tmp_path: Path, ca: CertificateAuthority, keys: tuple[Path, Path], agents: list[Agent]
) -> None:
    server = ca.issue("broker", ips=("127.0.0.1",))
    tls = BrokerTls(
        ca.cert, server.cert, server.key, require_certificate=True, use_identity_as_username=True
    )
    broker = MosquittoBroker(tmp_path / "broker", tls=tls, acl=_documented_acl())
    broker.start()
    device = f"dev-{uuid.uuid4().hex[:6]}"
    device_cert = ca.issue(device, client=True)
    host_cert = ca.issue("hostctl", client=True)
    other = CertificateAuthority(tmp_path / "other-pki", "another CA").issue(device, client=True)
    try:

        def tls_options(cert: Any) -> list[str]:
            return ["--ca-cert", str(ca.cert), "--client-cert", str(cert.cert),
                    "--client-key", str(cert.key)]  # fmt: skip

        agent = _start(broker, tmp_path, keys, agents, *tls_options(device_cert), device=device)
        host = Host(broker.url, keys[0], tmp_path / "r.sqlite", tls_options(host_cert))
        host.wait_online(device)
        # A job runs end to end with the certificates as identities under the ACL.
        model = REPO / "profiler" / "models" / "demo_cnn.onnx"
        pushed = host.run("push", str(model), "--device", device, *TINY, "--json", timeout=180)
        assert pushed.returncode == 0, pushed.stderr
        assert agent.proc is not None and agent.proc.poll() is None

        # No certificate, or one from a CA the broker does not know: named on both sides.
        no_cert = ["--ca-cert", str(ca.cert)]
        _fails_naming(Host(broker.url, keys[0], tmp_path / "r2.sqlite", no_cert), NEEDS_CERT)
        _wait_log(_start(broker, tmp_path, keys, agents, *no_cert), NEEDS_CERT)
        _fails_naming(
            Host(broker.url, keys[0], tmp_path / "r3.sqlite", tls_options(other)), FOREIGN_CERT
        )
        _wait_log(_start(broker, tmp_path, keys, agents, *tls_options(other)), FOREIGN_CERT)
    finally:
        broker.stop()


# -- the documented ACL ----------------------------------------------------------
def _documented_acl() -> str:
    """The ACL file exactly as docs/agent.md shows it."""
    text = (REPO / "docs" / "agent.md").read_text()
    start = text.index("`/etc/mosquitto/edgeprof.acl`")
    match = re.compile(r"```conf\n(.*?)```", re.DOTALL).search(text, start)
    assert match is not None, "docs/agent.md has no ACL block"
    return match.group(1)


def _acl_broker(tmp_path: Path) -> tuple[MosquittoBroker, dict[str, str], Path]:
    """A started broker with passwords and the documented ACL: the users (two
    devices and hostctl) and the file holding B's password."""
    users = {"dev-a": "pass-a", "dev-b": "pass-b", "hostctl": "pass-host"}
    passwords = write_password_file(tmp_path / "passwd", users)
    broker = MosquittoBroker(tmp_path / "broker", password_file=passwords, acl=_documented_acl())
    broker.start()
    secret = tmp_path / "b.password"
    secret.write_text(users["dev-b"])
    return broker, users, secret


class Client:
    """A plain paho client with a user name, recording what it receives."""

    def __init__(self, port: int, user: str, password: str, subscribe: list[str]) -> None:
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}"
        )
        self.client.username_pw_set(user, password)
        topics_ = [(topic, 1) for topic in subscribe]

        def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            client.subscribe(topics_)  # one SUBACK for all of them

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda c, u, m, r, p: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10), f"{user} could not subscribe"

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.received.append((str(message.topic), bytes(message.payload)))

    def seen(self, fragment: str = "") -> list[tuple[str, bytes]]:
        with self._lock:
            return [(t, p) for t, p in self.received if fragment in t]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        close_client(self.client)


def test_the_documented_acl_keeps_each_device_to_its_own_subtree(
    tmp_path: Path, keys: tuple[Path, Path], agents: list[Agent]
) -> None:
    broker, users, secret = _acl_broker(tmp_path)
    watcher = attacker = None
    try:
        victim = _start(broker, tmp_path, keys, agents, "--username", "dev-b",
                        "--password-file", str(secret), device="dev-b")  # fmt: skip
        host = Host(broker.url, keys[0], tmp_path / "r.sqlite",
                    ["--username", "hostctl", "--password", users["hostctl"]])  # fmt: skip
        watcher = Client(broker.port, "hostctl", users["hostctl"], [f"{topics.ROOT}/#"])
        # Device A listens to everything it can, B's job topic by name too.
        attacker = Client(broker.port, "dev-a", users["dev-a"],
                          [topics.job("dev-b"), f"{topics.ROOT}/#"])  # fmt: skip
        host.wait_online("dev-b")

        # The whole flow works for B under the ACL: job, chunks, requests, events, result, ack.
        model = REPO / "profiler" / "models" / "demo_cnn.onnx"
        pushed = host.run("push", str(model), "--device", "dev-b", *TINY, "--json", timeout=180)
        assert pushed.returncode == 0, pushed.stderr
        assert watcher.seen("/dev/dev-b/job/"), "the host saw no events or result of B"
        # ... and A read none of B's jobs, events or results (the signed manifests
        # name what B runs), though the shared chunks reach every device.
        assert attacker.seen("/dev/dev-b/") == [], attacker.seen("/dev/dev-b/")
        assert attacker.seen("/blob/"), "chunks should be readable by every device"

        # A cannot publish in B's subtree, nor on the host's topics (jobs, chunks).
        sha = "cd" * 32
        forged = {
            topics.state("dev-b"): b'{"type": "state", "forged": true}',
            topics.info("dev-b"): b'{"type": "info", "forged": true}',
            topics.job_event("dev-b", "job1"): b'{"forged": "event"}',
            topics.job_result("dev-b", "job1"): b'{"forged": "result"}',
            topics.job("dev-b"): seal(Collect("dev-b", time.time(), time.time() + 60),
                                      load_signing_key(keys[0])),
            topics.blob_chunk(sha, 0): b"forged chunk",
        }  # fmt: skip
        with watcher._lock:
            before = len(watcher.received)
        for topic, payload in forged.items():
            attacker.publish(topic, payload, retain=topic.endswith(("/state", "/info")))
        attacker.publish(topics.state("dev-a"), b'{"own": "state"}')  # its own: allowed
        deadline = time.monotonic() + 10
        while not watcher.seen(topics.state("dev-a")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watcher.seen(topics.state("dev-a")), "A's own publish did not arrive"
        time.sleep(1.0)  # anything forged would have arrived by now, in order
        with watcher._lock:
            after = watcher.received[before:]
        arrived = [t for t, _ in after if t in forged]
        assert arrived == [], arrived
        # The retained state of B is still B's own (hostctl devices shows it online).
        assert host.devices()["dev-b"]["state"] == "online"
        assert victim.proc is not None and victim.proc.poll() is None

        # A forges B's result the one way the ACL leaves open: on its own topic, for
        # B's job (job ids travel in the chunk requests every device can read).
        (job,) = [j["job_id"] for j in json.loads(host.run("jobs", "--json").stdout)]
        collecting = host.popen("collect", "--wait", "4")
        time.sleep(2.0)
        forged_doc = {"schema": "edgeprof.result/1", "status": "ok", "job_id": job,
                      "device": {"id": "dev-a"}, "latency_ms": {"p50": 0.001}}  # fmt: skip
        attacker.publish(topics.job_result("dev-a", job),
                         JobResult("dev-a", job, forged_doc).to_bytes())  # fmt: skip
        _out, err = collecting.communicate(timeout=60)
        assert collecting.returncode == 0 and f"job {job} was not sent to dev-a" in err, err
        stored = json.loads(host.run("results", "--no-collect", "--json").stdout)
        assert [(r["job_id"], r["device"]["id"]) for r in stored] == [(job, "dev-b")]
    finally:
        for client in (watcher, attacker):
            if client is not None:
                client.close()
        broker.stop()


def _flood_requests(
    attacker: Client, sha_of: Callable[[], str | None], claims: list[str], seconds: float
) -> int:
    """Publish chunk requests for every chunk of the blob being pushed, claiming to
    be each of `claims` in turn, for `seconds`; how many were sent."""
    deadline = time.monotonic() + 30
    while (sha := sha_of()) is None:
        assert time.monotonic() < deadline, "no chunk of the push was seen"
        time.sleep(0.02)
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        claimed = claims[sent % len(claims)]
        request = ChunkRequest(claimed, sha, list(range(64)))
        attacker.client.publish(topics.blob_request(sha), request.to_bytes(), qos=0)
        sent += 1
        time.sleep(0.01)
    return sent


def test_under_the_acl_another_device_cannot_inflate_a_push(
    tmp_path: Path, keys: tuple[Path, Path], agents: list[Agent]
) -> None:
    broker, users, secret = _acl_broker(tmp_path)
    watcher = attacker = None
    try:
        _start(broker, tmp_path, keys, agents, "--username", "dev-b",
               "--password-file", str(secret), device="dev-b")  # fmt: skip
        host = Host(broker.url, keys[0], tmp_path / "r.sqlite",
                    ["--username", "hostctl", "--password", users["hostctl"]])  # fmt: skip
        watcher = Client(broker.port, "hostctl", users["hostctl"], [f"{topics.ROOT}/blob/#"])
        attacker = Client(broker.port, "dev-a", users["dev-a"], [f"{topics.ROOT}/blob/#"])
        host.wait_online("dev-b")

        def chunks_of(model: Path) -> int:
            return -(-model.stat().st_size // 1024)

        def sha_seen(client: Client, known: set[str]) -> Callable[[], str | None]:
            def seen() -> str | None:
                for topic, _ in client.seen("/blob/"):
                    sha = topic.split("/")[3]
                    if sha not in known and not topic.endswith("/request"):
                        return sha
                return None

            return seen

        def chunk_count(sha: str) -> int:
            return sum(1 for t, _ in watcher.seen(f"/blob/{sha}/") if not t.endswith("/request"))

        def push(model: Path, claims: list[str], known: set[str]) -> tuple[str, int]:
            proc = host.popen("push", str(model), "--device", "dev-b", "--chunk-size", "1024",
                              *TINY, "--min-seconds", "3", "--json")  # fmt: skip
            sent = _flood_requests(attacker, sha_seen(attacker, known), claims, seconds=3.0)
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            assert [r["status"] for r in json.loads(out)] == ["ok"]
            assert "Traceback" not in err and sent > 100
            sha = sha_seen(watcher, known)()
            assert sha is not None
            return sha, chunk_count(sha)

        # Requests in A's own name, or any device's but B: not one chunk more.
        onnx = REPO / "profiler" / "models" / "demo_cnn.onnx"
        sha, published = push(onnx, ["dev-a", "dev-c", "hostctl"], set())
        assert published == chunks_of(onnx)
        # In B's name (a request's body is not authenticated): coalesced to one a
        # second and bounded per push, a few copies at most (before: one per 0.15 s).
        tflite = REPO / "profiler" / "models" / "demo_cnn.tflite"
        _sha, published = push(tflite, ["dev-b"], {sha})
        assert chunks_of(tflite) < published <= (1 + REPAIR_BUDGET_COPIES) * chunks_of(tflite)
    finally:
        for client in (watcher, attacker):
            if client is not None:
                client.close()
        broker.stop()
