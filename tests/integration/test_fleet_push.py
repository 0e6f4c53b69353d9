"""End to end: a real Mosquitto, three agents as separate processes, hostctl as a
subprocess. Push to all / a tag / one device, cache hits, failures, bad keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from modelkit.fixtures import build_onnx_cnn, build_tflite_custom_op, build_tflite_tiny
from profiler.models import demo_model
from protocol.signing import write_key_pair
from tests.integration.fleet_support import TINY, Fleet, Host, Watcher, online_fleet

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture(scope="module")
def fleet3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    # A broker of this module's own: no device of another test can join an --all push.
    devices = {"pi-a": ["lab"], "pi-b": ["lab", "arm"], "jetson-c": ["field"]}
    with online_fleet(tmp_path_factory.mktemp("fleet3"), devices) as fleet:
        yield fleet


def _push_json(host: Host, *args: str) -> tuple[int, list[dict[str, object]], str]:
    done = host.run("push", *args, *TINY, "--timeout", "90", "--json")
    return done.returncode, json.loads(done.stdout or "[]"), done.stderr


def _devices_of(results: list[dict[str, object]]) -> list[str]:
    return sorted(str(r["device"]["id"]) for r in results)  # type: ignore[index]


def test_push_to_all_to_a_tag_and_to_one_device(fleet3: Fleet) -> None:
    model = str(demo_model("onnx"))
    code, results, err = _push_json(fleet3.host, model, "--all", "--label", "all")
    assert code == 0, err
    assert _devices_of(results) == ["jetson-c", "pi-a", "pi-b"]
    assert all(r["status"] == "ok" and r["label"] == "all" for r in results)

    code, results, err = _push_json(fleet3.host, model, "--tag", "lab")
    assert code == 0, err
    assert _devices_of(results) == ["pi-a", "pi-b"]

    code, results, err = _push_json(fleet3.host, model, "--device", "jetson-c", "--seed", "7")
    assert code == 0, err
    assert _devices_of(results) == ["jetson-c"]
    # the profile options reach the device
    settings = results[0]["settings"]
    assert settings["warmup_seconds"] == 0 and settings["inputs"]["seed"] == 7  # type: ignore[index]

    # Every result shown was stored.
    stored = fleet3.host.run("results", "--no-collect", "--json", "--model", "demo_cnn.onnx")
    assert len(json.loads(stored.stdout)) == 6


def test_each_chunk_goes_out_once_and_a_repush_is_served_from_cache(fleet3: Fleet) -> None:
    model = fleet3.workdir / "tiny.tflite"
    model.write_bytes(build_tflite_tiny())  # a model no device has cached yet
    watcher = Watcher(fleet3.broker.port, "edgeprof/v1/blob/#")
    try:
        code, results, err = _push_json(
            fleet3.host, str(model), "--tag", "lab", "--chunk-size", "1024"
        )
        assert code == 0, err
        assert _devices_of(results) == ["pi-a", "pi-b"]
        chunks = [t for t in watcher.topics() if not t.endswith("/request")]
        expected = -(-model.stat().st_size // 1024)
        # Two targets, one publication per chunk: the broker fans out.
        assert sorted(chunks) == sorted({t for t in chunks}) and len(chunks) == expected

        before = len(watcher.topics())
        code, results, err = _push_json(
            fleet3.host, str(model), "--tag", "lab", "--chunk-size", "1024"
        )
        assert code == 0, err
        assert _devices_of(results) == ["pi-a", "pi-b"]
        assert watcher.topics()[before:] == []  # no chunk, no request: served from cache
    finally:
        watcher.close()


def test_a_model_that_fails_on_the_device_is_a_per_device_error(fleet3: Fleet) -> None:
    broken = fleet3.workdir / "custom_op.tflite"
    broken.write_bytes(build_tflite_custom_op())
    code, results, err = _push_json(fleet3.host, str(broken), "--device", "pi-a")
    assert code == 1
    assert "pi-a" in err and "failed" in err
    assert len(results) == 1 and results[0]["status"] == "error"
    assert results[0]["error"]["code"] == "custom_op"  # type: ignore[index]
    # the user's file name, not the device's hash-named cache file
    assert "custom_op.tflite uses custom op EdgeprofTestOp" in err

    # a truncated model passes the host's format check and fails on the device
    truncated = fleet3.workdir / "truncated.tflite"
    truncated.write_bytes(build_tflite_tiny()[:200])
    code, results, err = _push_json(fleet3.host, str(truncated), "--device", "pi-b")
    assert code == 1 and "pi-b" in err
    assert results[0]["status"] == "error"

    # a file that is no model at all never leaves the host: one line, exit 1
    garbage = fleet3.workdir / "garbage.tflite"
    garbage.write_bytes(b"\x00not a flatbuffer" * 64)
    code, results, err = _push_json(fleet3.host, str(garbage), "--device", "pi-b")
    assert code == 1 and results == [] and len(err.strip().splitlines()) == 1
    assert "garbage.tflite" in err


def test_an_unknown_device_fails_at_once(fleet3: Fleet) -> None:
    code, results, err = _push_json(
        fleet3.host, str(demo_model("onnx")), "--device", "no-such-device", "--device", "pi-a"
    )
    assert code == 1
    assert "no-such-device" in err and "no such device" in err
    assert _devices_of(results) == ["pi-a"]  # the other target still ran


def test_a_job_signed_by_an_untrusted_key_is_rejected_before_any_download(fleet3: Fleet) -> None:
    other_key, _ = write_key_pair(fleet3.workdir / "other-keys")
    fresh = fleet3.workdir / "fresh.tflite"
    fresh.write_bytes(build_tflite_tiny() + b"\0" * 64)  # a model no device has seen
    intruder = Host(fleet3.host.broker_url, other_key, fleet3.workdir / "intruder.sqlite")
    watcher = Watcher(fleet3.broker.port, "edgeprof/v1/blob/#")
    try:
        done = intruder.run("push", str(fresh), "--device", "pi-a", *TINY, "--timeout", "30")
    finally:
        watcher.close()
    assert done.returncode == 1
    assert "pi-a" in done.stderr and "rejected" in done.stderr
    assert "untrusted" in done.stderr
    assert watcher.topics() == []  # nothing was transferred
    sha = hashlib.sha256(fresh.read_bytes()).hexdigest()
    info = fleet3.host.devices()["pi-a"]["info"]
    assert sha not in info["cached_models"]


def test_a_sweep_is_one_transfer_and_one_result_per_setting(fleet3: Fleet) -> None:
    model = fleet3.workdir / "sweep.onnx"
    model.write_bytes(build_onnx_cnn(seed=7))  # weights no other test pushes: not cached
    watcher = Watcher(fleet3.broker.port, "edgeprof/v1/blob/#")
    try:
        code, results, err = _push_json(
            fleet3.host, str(model), "--device", "pi-a", "--threads", "1,2", "--chunk-size", "1024"
        )
        assert code == 0, err
        assert sorted(r["runtime"]["threads"] for r in results) == [1, 2]  # type: ignore[index]
        assert len({r["label"] for r in results}) == 1
        chunks = [t for t in watcher.topics() if not t.endswith("/request")]
        assert len(chunks) == -(-model.stat().st_size // 1024)  # sent once for both jobs
    finally:
        watcher.close()
