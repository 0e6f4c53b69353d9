"""Hostile files against the profiler, in real workers (modelkit.hostile makes them):
a zip bomb refused from its header, every worker under a memory limit, ONNX
external data kept inside the model's directory, a hanging runtime killed, and
workers that never outlive their parent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from modelkit import hostile
from profiler import memory, workers
from profiler.arrays import check_declared_size
from profiler.errors import BAD_MODEL, OUT_OF_MEMORY, TIMEOUT, ProfilerError
from profiler.external_data import check_locations
from profiler.limits import DEFAULT_MEMORY_SHARE, with_memory_limit
from profiler.models import demo_model
from profiler.runner import profile
from profiler.settings import ProfileSettings, parse_memory_size

REPO = Path(__file__).resolve().parents[2]


def _tiny(**extra: object) -> ProfileSettings:
    base: dict[str, object] = {"runs": 3, "warmup": 1, "warmup_seconds": 0.0, "min_seconds": 0.0}
    return ProfileSettings(**{**base, **extra})  # type: ignore[arg-type]


def test_a_zip_bomb_is_refused_from_its_header_before_a_byte_is_inflated(tmp_path: Path) -> None:
    bomb = hostile.write_npz_bomb(tmp_path / "bomb.npz", 2 * 1024**3)
    assert bomb.stat().st_size < 20 * 1024**2  # ~1000:1
    started = time.perf_counter()
    with pytest.raises(ProfilerError) as caught:
        check_declared_size(bomb, code="bad_eval_data", budget_bytes=512 * 1024**2)
    assert time.perf_counter() - started < 2.0  # headers only: nothing was inflated
    assert caught.value.code == OUT_OF_MEMORY
    assert "declares 2.1 GB" in caught.value.message and "nothing was read" in caught.value.message
    # Through a real worker under a limit: the result says so.
    result = profile(demo_model("onnx"), _tiny(eval_path=str(bomb), max_memory_mb=400.0))
    assert result["error"]["code"] == OUT_OF_MEMORY, result["error"]
    assert "nothing was read" in result["error"]["message"]


def test_a_model_that_allocates_gigabytes_runs_out_of_its_limit_not_the_machines(
    tmp_path: Path,
) -> None:
    hog = tmp_path / "hog.onnx"
    hog.write_bytes(hostile.build_onnx_memory_hog())
    result = profile(hog, _tiny(max_memory_mb=300.0), analyze=False)
    assert result["error"]["code"] == OUT_OF_MEMORY
    assert "worker limit 300 MiB" in result["error"]["message"]
    assert "an allocation of 4.3 GB failed" in result["error"]["message"]


def test_without_max_memory_a_worker_runs_under_a_share_of_the_memory_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine's MemAvailable would let the 4.3 GB hog run: say 1000 MiB are free.
    monkeypatch.setattr(memory, "memory_available_mb", lambda: 1000.0)
    hog = tmp_path / "hog.onnx"
    hog.write_bytes(hostile.build_onnx_memory_hog())
    result = profile(hog, _tiny(), analyze=False)  # no --max-memory
    limit = round(1000.0 * DEFAULT_MEMORY_SHARE)
    assert result["error"]["code"] == OUT_OF_MEMORY, result["error"]
    assert f"worker limit {limit} MiB" in result["error"]["message"]
    assert result["settings"]["max_memory_mb"] == limit  # the result says what applied
    # A device's own limit (the agent's --max-memory) caps what a job asks for, and is
    # the limit when the job asks for none.
    assert with_memory_limit(_tiny(max_memory_mb=2048.0), 1024.0).max_memory_mb == 1024.0
    assert with_memory_limit(_tiny(max_memory_mb=512.0), 1024.0).max_memory_mb == 512.0
    assert with_memory_limit(_tiny(), 1024.0).max_memory_mb == 1024.0


def test_memory_sizes_are_read_as_people_write_them() -> None:
    assert parse_memory_size("512M") == 512.0
    assert parse_memory_size("2G") == 2048.0
    assert parse_memory_size("1.5GiB") == 1536.0
    for bad in ("lots", "10M", "-2G", "inf", "nanG"):
        with pytest.raises(ValueError, match="memory size"):
            parse_memory_size(bad)


@pytest.mark.parametrize(
    "location", ["../models/index.json", "/etc/passwd", "sub/../../x", "link/data.bin"]
)
def test_external_data_may_not_leave_the_models_directory(tmp_path: Path, location: str) -> None:
    model = tmp_path / "jobs" / "m.onnx"
    model.parent.mkdir()
    model.write_bytes(hostile.build_onnx_external_data(location))
    (model.parent / "link").symlink_to(tmp_path)
    with pytest.raises(ProfilerError, match="outside its own directory") as caught:
        check_locations([location], str(model), allow=True)
    assert caught.value.code == BAD_MODEL
    result = profile(model, _tiny())
    assert result["error"]["code"] == BAD_MODEL and "external data" in result["error"]["message"]


def test_external_data_beside_the_model_is_read_locally_and_refused_from_a_job(
    tmp_path: Path,
) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(hostile.build_onnx_external_data("weights.bin"))
    (tmp_path / "weights.bin").write_bytes(bytes(range(64)))
    assert profile(model, _tiny(), analyze=False)["status"] == "ok"
    # The agent's way: a job brings no such files, so any is refused.
    refused = profile(model, _tiny(), analyze=False, allow_external_data=False)
    assert refused["error"]["code"] == BAD_MODEL
    assert "save_as_external_data=False" in refused["error"]["message"]


def test_a_hanging_runtime_is_killed_at_its_time_limit(tmp_path: Path) -> None:
    endless = tmp_path / "endless.onnx"
    endless.write_bytes(hostile.build_onnx_endless_loop())
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    result = profile(endless, _tiny(timeout_s=3.0), analyze=False)
    assert result["error"]["code"] == TIMEOUT
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


_PARENT = """
import sys
from profiler.runner import profile
from profiler.settings import ProfileSettings
profile(sys.argv[1], ProfileSettings(runs=3, warmup=1, warmup_seconds=0, min_seconds=0),
        analyze=False)
"""


def test_a_worker_dies_with_a_parent_killed_with_sigkill(tmp_path: Path) -> None:
    endless = tmp_path / "endless.onnx"
    endless.write_bytes(hostile.build_onnx_endless_loop())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(endless)], env=env)
    try:
        deadline = time.monotonic() + 60
        found: list[psutil.Process] = []
        while not found and time.monotonic() < deadline:
            kids = psutil.Process(parent.pid).children(recursive=True)
            found = [k for k in kids if "profiler.worker" in " ".join(k.cmdline())]
            time.sleep(0.1)
        assert found, "no worker started"
        time.sleep(2.0)  # inside the endless inference
        parent.kill()
        parent.wait()
        gone_by = time.monotonic() + 10
        while any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in found):
            assert time.monotonic() < gone_by, "the worker outlived its parent"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_leftover_records_of_dead_or_reused_pids_are_dropped(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "1.json").write_text("not json")
        (tmp_path / f"{sleeper.pid}.json").write_text(
            json.dumps({"pid": sleeper.pid, "started": psutil.Process(sleeper.pid).create_time()})
        )
        reused = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        # A record naming a live pid that started at another time: not a worker of ours.
        (tmp_path / f"{reused.pid}.json").write_text(
            json.dumps({"pid": reused.pid, "started": 1.0})
        )
        assert workers.leftovers(tmp_path) == [sleeper.pid]
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{sleeper.pid}.json"]
        reused.kill()
        reused.wait()
    finally:
        sleeper.kill()
        sleeper.wait()
