"""The host against a hostile device on a real Mosquitto, with a real agent and
hostctl as a subprocess: every malformed payload class of issue 7 (the named
cases, then hypothesis-made ones) published while a push runs, retained on the
broker, and queued in the host's persistent session — `push`, `collect`,
`devices`, `results` and the next hostctl run go on, each bad message costing
one line; the real result is the one stored; `--json` is standard JSON."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from hostctl.intake import read_message
from profiler.models import demo_model
from protocol import topics
from protocol.messages import ChunkRequest, JobResult
from tests.integration.fleet_support import TINY, Fleet, Watcher, close_client, online_fleet
from tests.support.broker import MosquittoBroker
from tests.support.payloads import (
    HOST_READ_KINDS,
    JSON_VALUES,
    PATHS,
    info_message,
    mutate,
    result_document,
    valid_message,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SLOW_JOB = [*TINY, "--min-seconds", "8", "--max-seconds", "15"]
"""Long enough for the hostile traffic to arrive while the job runs."""


def _strict(text: str) -> Any:
    """json.loads that refuses NaN/Infinity, as every JSON parser but Python's does."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"--json printed {c}"))


class Hostile:
    """A device that speaks for everyone (no ACL on this broker: only the host's
    checks stand between it and the store)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.sent = 0

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
        self.sent += 1

    def close(self) -> None:
        close_client(self.client)


def _named_cases(real: str, job: str, sha: str) -> list[tuple[str, bytes]]:
    """Issue 7's single messages, on the real device's topics and the attacker's."""

    def result(sender: str, **doc: Any) -> bytes:
        body = {"type": "result", "v": 1, "device_id": sender, "job_id": job}
        body["result"] = {**result_document(sender, job), **doc}
        return json.dumps(body).encode()

    on_real = topics.job_result(real, job)
    return [
        (on_real, result(real, device={"id": [real]})),  # device.id a list
        (on_real, result(real, job_id=[job])),  # job_id a list
        (on_real, result(real, status="error", error="boom")),  # "error": "boom"
        (on_real, b'{"type": "result", "v": 1, "result": ' + b"[" * 50_000),  # nested
        (on_real, result(real).replace(b'"p50": 1.0', b'"p50": NaN')),
        (topics.job_event(real, job), b'{"type": "event", "v": 1, "ts": Infinity}'),
        (topics.job_event(real, job), b"[" * 100_000),
        (topics.info(real), info_message(real, ram_mb="lots").to_bytes().replace(b"1.0", b"1e999")),
        # Results for the real job from another device: not sent to it.
        (topics.job_result("evil", job), JobResult("evil", job, result_document("evil", job)).to_bytes()),
        (topics.job_result("evil", job), JobResult(real, job, result_document(real, job)).to_bytes()),
        # Repair requests in the real device's name and the attacker's.
        *[(topics.blob_request(sha), ChunkRequest(d, sha, list(range(10))).to_bytes())
          for d in ("evil", real) for _ in range(50)],
        (topics.blob_request(sha), b'{"type": "chunk_request", "v": 1, "missing": ["x"]}'),
        ("edgeprof/v1/blob/" + sha + "/²", b"x"),
    ]  # fmt: skip


def _retained_poison(hostile: Hostile) -> None:
    """What a device can leave on the broker for every later hostctl run."""
    hostile.publish(topics.state("evil"), b"[" * 100_000, retain=True)
    hostile.publish(topics.state("evil-2"), b'{"type": "state", "v": 1, "ts": NaN}', retain=True)
    hostile.publish(
        topics.info("evil-3"), info_message("evil-3", ram_mb="lots", cores=["4"]).to_bytes(),
        retain=True,
    )  # fmt: skip
    hostile.publish(
        topics.state("evil-3"),
        b'{"type":"state","v":1,"device_id":"evil-3","state":"online","epoch":1,"ts":1.0}',
        retain=True,
    )


def _job_id(watcher: Watcher, device: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    prefix = f"{topics.ROOT}/dev/{device}/job/"
    while time.monotonic() < deadline:
        for topic in watcher.topics():
            if topic.startswith(prefix) and topic.endswith("/event"):
                return topic[len(prefix) :].split("/")[0]
        time.sleep(0.05)
    raise AssertionError(f"no job event from {device}")


def test_a_push_goes_on_through_every_malformed_payload_and_so_do_later_runs(
    fresh_mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    with online_fleet(tmp_path, {"pi-real": []}, broker=fresh_mosquitto) as fleet:
        _hostile_push(fleet, fresh_mosquitto)


def _hostile_push(fleet: Fleet, broker: MosquittoBroker) -> None:
    hostile = Hostile(broker.port)
    watcher = Watcher(broker.port, f"{topics.ROOT}/#")
    host = fleet.host
    try:
        _retained_poison(hostile)
        model = demo_model("onnx")
        push = host.popen("push", str(model), "--device", "pi-real", *SLOW_JOB, "--json")
        job = _job_id(watcher, "pi-real")
        sha = next(t.split("/")[3] for t in _wait_topics(watcher, "/blob/"))
        for topic, payload in _named_cases("pi-real", job, sha):
            hostile.publish(topic, payload)
        named = hostile.sent

        @settings(max_examples=150, deadline=None, database=None)
        @given(
            kind=st.sampled_from(HOST_READ_KINDS),
            sender=st.sampled_from(["pi-real", "evil"]),
            on=st.sampled_from(["pi-real", "evil"]),
            how=st.sampled_from(["mutated", "json", "bytes"]),
            path=PATHS,
            value=JSON_VALUES,
            raw=st.binary(max_size=200),
        )
        def publish_one(
            kind: str, sender: str, on: str, how: str, path: list[str], value: Any, raw: bytes
        ) -> None:
            topic = {
                "state": topics.state(on),
                "info": topics.info(on),
                "event": topics.job_event(on, job),
                "result": topics.job_result(on, job),
                "request": topics.blob_request(sha),
            }[kind]
            body = valid_message(kind, sender, job, sha).to_dict()
            if how == "mutated":
                payload = json.dumps(mutate(body, path, value)).encode()
            elif how == "json":
                payload = json.dumps(value).encode()
            else:
                payload = raw
            # A valid message on the real device's own topics cannot be told from the
            # device's (keeping others off them is the ACL's job): not this test's.
            if on == "pi-real" and kind != "request" and read_message(topic, payload):
                return
            hostile.publish(topic, payload)
            assert push.poll() in (None, 0), push.communicate()[1][-3000:]

        publish_one()
        out, err = push.communicate(timeout=180)
    finally:
        hostile.close()
        watcher.close()
    assert push.returncode == 0, err[-3000:]
    assert "Traceback" not in err
    results = _strict(out)
    assert [(r["job_id"], r["device"]["id"], r["status"]) for r in results] == [
        (job, "pi-real", "ok")
    ]
    assert results[0]["model"]["name"] == "demo_cnn.onnx"
    # Bad messages cost lines naming device and topic; a flood costs only a few.
    bad = [line for line in err.splitlines() if "ignoring a bad" in line]
    assert bad and any("pi-real" in line and "/result" in line for line in bad), err[-3000:]
    assert named > 100 and len(bad) <= 80, len(bad)

    # The poison stays retained, and more is queued in the host's persistent session
    # while no hostctl runs: the next runs read past it.
    hostile = Hostile(broker.port)
    try:
        for topic, payload in _named_cases("pi-real", job, sha)[:8]:
            hostile.publish(topic, payload)
    finally:
        hostile.close()
    for args in (["collect", "--wait", "2"], ["results"], ["devices"], ["jobs"]):
        done = host.run(*args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, args
    devices = _strict(host.run("devices", "--json").stdout)
    by_id = {d["id"]: d for d in devices}
    assert by_id["pi-real"]["state"] == "online"
    assert "evil-2" not in by_id  # nothing readable came from it
    assert by_id["evil-3"]["info"]["device"]["ram_mb"] == "lots"  # shown as it came, not read
    stored = _strict(host.run("results", "--no-collect", "--json").stdout)
    assert [(r["job_id"], r["device"]["id"]) for r in stored] == [(job, "pi-real")]
    (entry,) = _strict(host.run("jobs", "--json").stdout)
    assert (entry["job_id"], entry["status"], entry["state"]) == (job, "finished", "succeeded")


def _wait_topics(watcher: Watcher, fragment: str, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [t for t in watcher.topics() if fragment in t and not t.endswith("/request")]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no message on {fragment}")


# -- item 8: a push whose hostctl died, cancel ----------------------------------------


def _sqlite_expire(db: Path, job_id: str) -> None:
    """Move a journaled job's expiry into the past, as if its time had passed (the
    manifest margin is minutes: a test does not wait for it)."""
    import sqlite3

    with sqlite3.connect(db) as con:
        con.execute("UPDATE jobs SET expires_at = ? WHERE job_id = ?", (time.time() - 1, job_id))


def test_a_push_killed_mid_transfer_is_journaled_and_collect_reports_it_expired(
    fresh_mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    with online_fleet(tmp_path, {"pi-1": []}, broker=fresh_mosquitto) as fleet:
        watcher = Watcher(fresh_mosquitto.port, f"{topics.ROOT}/dev/pi-1/job")
        try:
            push = fleet.host.popen("push", str(demo_model("onnx")), "--device", "pi-1", *TINY)
            deadline = time.monotonic() + 60
            while not watcher.topics() and time.monotonic() < deadline:
                time.sleep(0.005)
            push.kill()  # kill -9 the moment its manifest is on the broker
            push.communicate()
        finally:
            watcher.close()
        listed = _strict(fleet.host.run("jobs", "--json").stdout)
        assert [(j["device_id"], j["status"], j["state"]) for j in listed] == [
            ("pi-1", "pending", "sent")
        ]
        job = listed[0]["job_id"]
        _sqlite_expire(fleet.workdir / "results.sqlite", job)
        done = fleet.host.run("collect", "--wait", "1")
        assert done.returncode == 0, done.stderr
        assert f"job {job} on pi-1 (demo_cnn.onnx): expired without a result" in done.stderr
        lost = _strict(fleet.host.run("jobs", "--lost", "--json").stdout)
        assert [(j["job_id"], j["status"], j["state"]) for j in lost] == [(job, "lost", "expired")]
        assert _strict(fleet.host.run("jobs", "--pending", "--json").stdout) == []


def _workers(pid: int) -> list[Any]:
    import psutil

    return [p for p in psutil.Process(pid).children(recursive=True) if p.is_running()]


def test_cancel_stops_the_worker_and_the_canceled_result_is_stored(
    fresh_mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    with online_fleet(tmp_path, {"pi-1": []}, broker=fresh_mosquitto) as fleet:
        host, agent = fleet.host, fleet.agent
        assert agent.proc is not None
        # hostctl stops waiting after 3 s; the job goes on on the device for a minute.
        done = host.run("push", str(demo_model("onnx")), "--device", "pi-1", *TINY,
                        "--min-seconds", "60", "--max-seconds", "90", "--timeout", "3")  # fmt: skip
        assert done.returncode == 1 and "timed_out" in done.stderr
        (entry,) = _strict(host.run("jobs", "--json").stdout)
        job = entry["job_id"]
        assert entry["status"] == "pending"
        deadline = time.monotonic() + 60
        while not _workers(agent.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _workers(agent.proc.pid), "the job's worker never started"

        canceled = host.run("cancel", job, "--json")
        assert canceled.returncode == 0, canceled.stderr
        assert [(c["job_id"], c["outcome"]) for c in _strict(canceled.stdout)] == [
            (job, "canceled")
        ]
        deadline = time.monotonic() + 10
        while _workers(agent.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _workers(agent.proc.pid) == [], "the worker outlived the cancel"
        shown = _strict(host.run("results", "show", job, "--json").stdout)
        assert shown["status"] == "error" and shown["error"]["code"] == "canceled"
        (entry,) = _strict(host.run("jobs", "--json").stdout)
        assert (entry["status"], entry["result"]["error"]["code"]) == ("finished", "canceled")
        # Again: it is over, and said so; an unknown job is one line, exit 1.
        again = host.run("cancel", job)
        assert again.returncode == 0 and "canceled" in again.stderr
        unknown = host.run("cancel", "nosuchjob1")
        assert unknown.returncode == 1
        assert unknown.stderr.strip().count("\n") == 0 and "no job nosuchjob1" in unknown.stderr
        assert agent.proc.poll() is None


def test_many_devices_announcing_at_once_do_not_block_a_clean_device(
    fresh_mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    """Retained junk from hundreds of device ids: `devices` lists the real one."""
    hostile = Hostile(fresh_mosquitto.port)
    try:
        pending = [
            hostile.client.publish(
                topics.state(f"junk-{n}-{uuid.uuid4().hex[:4]}"), b"[" * 2000, qos=1, retain=True
            )
            for n in range(400)
        ]
        for info in pending:
            info.wait_for_publish(10)
        with online_fleet(tmp_path, {"pi-1": []}, broker=fresh_mosquitto) as fleet:
            done = fleet.host.run("devices", "--json")
            assert done.returncode == 0, done.stderr
            assert [d["id"] for d in _strict(done.stdout)] == ["pi-1"]
            assert len(done.stderr.splitlines()) <= 12  # rate-limited: not 400 lines
    finally:
        hostile.close()
