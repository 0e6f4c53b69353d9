"""End to end: `hostctl push MODEL --eval DATA.npz` / `--inputs FILE` with a real
Mosquitto, two agents as separate processes and hostctl as a subprocess. The data
files travel like models (chunks published once, cached on the devices) and the
accuracy measured on the devices is exactly the known one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelkit.fixtures import (
    build_onnx_classifier,
    build_tflite_classifier,
    make_labelled_dataset,
)
from protocol import topics
from tests.integration.fleet_support import TINY, Fleet, Watcher, online_fleet

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEVICES = ("pi-a", "pi-b")


@pytest.fixture(scope="module")
def fleet2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    devices = {name: ["lab"] for name in DEVICES}
    with online_fleet(tmp_path_factory.mktemp("fleet-eval"), devices) as fleet:
        yield fleet


def _push(fleet: Fleet, *args: str) -> list[dict[str, Any]]:
    done = fleet.host.run("push", *args, "--tag", "lab", *TINY, "--timeout", "90", "--json")
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert sorted(r["device"]["id"] for r in results) == list(DEVICES)
    for result in results:
        assert result["status"] == "ok", result.get("error")
    return results


def _chunk_hashes(watcher: Watcher) -> list[str]:
    """The blob hash of every chunk published so far (one entry per chunk)."""
    hashes = []
    for topic in watcher.topics():
        parsed = topics.parse(topic)
        if parsed.kind == "chunk" and parsed.sha256 is not None:
            hashes.append(parsed.sha256)
    return hashes


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_accuracy_on_two_devices_is_exactly_the_known_one(fleet2: Fleet, variant: str) -> None:
    model = fleet2.workdir / f"classifier-{variant}.tflite"
    model.write_bytes(build_tflite_classifier(variant))
    data = fleet2.workdir / f"labelled-{variant}.npz"
    expected = make_labelled_dataset(data, int8=variant == "int8")
    assert expected == 0.8
    watcher = Watcher(fleet2.broker.port, "edgeprof/v1/blob/#")
    try:
        results = _push(fleet2, str(model), "--eval", str(data), "--chunk-size", "1024")
        for result in results:
            assert result["accuracy"]["top1"] == expected
            assert result["accuracy"]["n"] == 50
            # Reported by the name it was pushed with, not the device's cache path.
            assert result["settings"]["eval"] == data.name
            assert result["settings"]["eval_path"] == data.name
        # The model and the data file each went out once, for both devices.
        chunks = _chunk_hashes(watcher)
        expected_chunks = -(-model.stat().st_size // 1024) + -(-data.stat().st_size // 1024)
        assert len(chunks) == expected_chunks
        assert set(chunks) == {_sha(model), _sha(data)}

        # Pushed again: both files are cached on both devices, nothing crosses the broker.
        before = len(watcher.topics())
        results = _push(fleet2, str(model), "--eval", str(data), "--chunk-size", "1024")
        assert all(r["accuracy"]["top1"] == expected for r in results)
        assert watcher.topics()[before:] == []
    finally:
        watcher.close()
    info = fleet2.host.devices()["pi-a"]["info"]
    assert {_sha(model), _sha(data)} <= set(info["cached_models"])


def test_a_cached_model_with_new_data_fetches_only_the_data(fleet2: Fleet) -> None:
    model = fleet2.workdir / "classifier.onnx"
    model.write_bytes(build_onnx_classifier())
    first = fleet2.workdir / "first.npz"
    assert make_labelled_dataset(first, seed=1) == 0.8
    _push(fleet2, str(model), "--eval", str(first))

    second = fleet2.workdir / "second.npz"
    expected = make_labelled_dataset(second, n=40, wrong_fraction=0.5, seed=2)
    watcher = Watcher(fleet2.broker.port, "edgeprof/v1/blob/#")
    try:
        results = _push(fleet2, str(model), "--eval", str(second))
    finally:
        watcher.close()
    assert expected == 0.5
    assert [(r["accuracy"]["top1"], r["accuracy"]["n"]) for r in results] == [(0.5, 40)] * 2
    # Both devices name the new data by its hash: the gate can pair them sample by sample.
    assert [r["accuracy"]["data_sha256"] for r in results] == [_sha(second)] * 2
    assert set(_chunk_hashes(watcher)) == {_sha(second)}


def test_inputs_file_reaches_the_devices(fleet2: Fleet) -> None:
    model = fleet2.workdir / "classifier-inputs.tflite"
    model.write_bytes(build_tflite_classifier("fp32"))
    inputs = fleet2.workdir / "x.npy"
    np.save(inputs, np.linspace(-1, 1, 10, dtype=np.float32).reshape(1, 10))
    results = _push(fleet2, str(model), "--inputs", str(inputs))
    for result in results:
        assert result["settings"]["inputs"]["source"] == "file"
        assert result["settings"]["inputs"]["file"] == "x.npy"
        assert result["accuracy"] is None


def test_data_files_the_devices_cannot_use_are_refused_on_the_host(fleet2: Fleet) -> None:
    model = fleet2.workdir / "classifier-refused.tflite"
    model.write_bytes(build_tflite_classifier("fp32"))
    not_npz = fleet2.workdir / "labels.csv"
    not_npz.write_text("x,y\n1,2\n")
    done = fleet2.host.run("push", str(model), "--tag", "lab", "--eval", str(not_npz))
    assert done.returncode != 0
    assert "--eval" in done.stderr and ".npz" in done.stderr
    assert "Traceback" not in done.stderr
    fake = fleet2.workdir / "fake.npz"
    fake.write_bytes(b"not a zip archive at all")
    done = fleet2.host.run("push", str(model), "--tag", "lab", "--eval", str(fake))
    assert done.returncode != 0 and "np.savez" in done.stderr
    assert "Traceback" not in done.stderr
