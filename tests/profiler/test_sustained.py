"""Sustained runs and cool-down: the block loop, the timeline join, and real profiles
on recorded trees whose temperature and frequency cap the test changes while they run."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from profiler import sustained
from profiler.runner import profile
from profiler.settings import ProfileSettings
from profiler.worker import _timed_loop


def test_block_seconds() -> None:
    assert sustained.block_seconds(10) == 1.0
    assert sustained.block_seconds(600) == 5.0  # --sustained 10m: 120 blocks of 5 s


def test_run_blocks_covers_the_duration_in_blocks() -> None:
    def invoke() -> None:
        time.sleep(0.002)

    def block(min_runs: int, min_ns: int, max_ns: int) -> Any:
        return _timed_loop(invoke, min_runs, min_ns, max_ns)

    t0 = time.monotonic_ns()
    kept, blocks, runs, elapsed = sustained.run_blocks(block, 2.5)
    assert 2.5e9 <= elapsed < 3.5e9
    assert len(blocks) == 3  # 1 s, 1 s, 0.5 s
    assert blocks[0]["start_ns"] >= t0
    assert all(b["end_ns"] <= n["start_ns"] for b, n in itertools.pairwise(blocks))
    assert sum(b["runs"] for b in blocks) == runs == len(kept)
    assert all(2.0 <= b["p50_ms"] < 20.0 for b in blocks)


def _reading(temp: float, cap: float) -> dict[str, Any]:
    return {
        "temp_c": temp,
        "cpu_freq_mhz": cap,
        "cpu_freq_cap_mhz": cap,
        "governor": "ondemand",
        "throttle_count": None,
        "pi_throttled": None,
    }


def test_timeline_and_throttle_onset() -> None:
    s = 1_000_000_000
    start = 100 * s
    blocks = [
        {"start_ns": start + i * s, "end_ns": start + (i + 1) * s, "runs": 100,
         "p50_ms": 2.0 if i < 3 else 3.0, "p90_ms": 2.5 if i < 3 else 3.5}
        for i in range(6)
    ]  # fmt: skip
    readings = [(start - s // 2, _reading(50.0, 1800.0))]
    readings += [
        (start + i * s + s // 2, _reading(50.0 + 5 * i, 1800.0 if i < 3 else 1500.0))
        for i in range(6)
    ]
    rows = sustained.timeline(blocks, readings, start)
    assert [r["t_s"] for r in rows] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [r["throttled"] for r in rows] == [False, False, False, True, True, True]
    assert rows[3]["cpu_freq_cap_mhz"] == 1500.0 and rows[5]["temp_c"] == 75.0
    summary = sustained.summary(rows, 6.0)
    assert summary["throttle_began_s"] == 3.0
    assert summary["latency_before_ms"] == 2.0 and summary["latency_after_ms"] == 3.0
    assert summary["slowdown"] == pytest.approx(1.5)
    assert summary["temp_c_first"] == 50.0 and summary["temp_c_max"] == 75.0


def test_a_raspberry_pis_throttle_bits_are_in_the_timeline_and_start_the_onset() -> None:
    from profiler.environment import decode_pi_throttled

    s = 1_000_000_000
    blocks = [{"start_ns": i * s, "end_ns": (i + 1) * s, "runs": 10,
               "p50_ms": 2.0 if i < 2 else 2.6, "p90_ms": 3.0} for i in range(4)]  # fmt: skip
    # The firmware caps the clock (bit 1, now + since boot) while cpufreq still reads
    # 2400 MHz: only `vcgencmd get_throttled` shows it.
    bits = [0x0, 0x0, 0x20002, 0x20002]
    readings = [
        (i * s + s // 2, {**_reading(60.0, 2400.0), "pi_throttled": decode_pi_throttled(b)})
        for i, b in enumerate(bits)
    ]
    rows = sustained.timeline(blocks, readings, 0)
    assert [r["throttle_bits"] for r in rows] == ["0x0", "0x0", "0x20002", "0x20002"]
    assert [r["throttled"] for r in rows] == [False, False, True, True]
    summary = sustained.summary(rows, 4.0)
    assert summary["throttle_began_s"] == 2.0
    assert summary["latency_before_ms"] == 2.0 and summary["latency_after_ms"] == 2.6
    # Without vcgencmd (every board but a Pi) the column is empty, never made up.
    plain = sustained.timeline(blocks, [(s // 2, _reading(60.0, 2400.0))], 0)
    assert {r["throttle_bits"] for r in plain} == {None}


def test_no_throttling_reports_the_whole_run_as_before() -> None:
    s = 1_000_000_000
    blocks = [{"start_ns": i * s, "end_ns": (i + 1) * s, "runs": 1, "p50_ms": 1.0 + i,
               "p90_ms": 2.0} for i in range(3)]  # fmt: skip
    rows = sustained.timeline(blocks, [(0, _reading(40.0, 1800.0))], 0)
    summary = sustained.summary(rows, 3.0)
    assert summary["throttle_began_s"] is None and summary["latency_after_ms"] is None
    assert summary["latency_before_ms"] == 2.0


def test_wait_until_cool_reaches_the_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sustained, "POLL_S", 0.01)
    temps = iter([60.0, 55.0, 50.0, 46.5, 46.0])
    result = sustained.wait_until_cool(lambda: next(temps), 45.0, 2.0, 5.0)
    assert result["reached"] is True and result["end_c"] == 46.5 and result["start_c"] == 60.0


def test_wait_until_cool_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sustained, "POLL_S", 0.05)
    t0 = time.monotonic()
    result = sustained.wait_until_cool(lambda: 70.0, 45.0, 2.0, 0.3)
    assert result["reached"] is False and 0.25 <= time.monotonic() - t0 < 1.0
    assert sustained.wait_until_cool(lambda: None, 45.0, 2.0, 5.0)["reached"] is None


def test_wait_until_settled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sustained, "POLL_S", 0.01)
    monkeypatch.setattr(sustained, "SETTLE_WINDOW_S", 0.05)
    temps = itertools.chain([60.0, 57.0, 54.0, 51.0, 50.0], itertools.repeat(50.0))
    result = sustained.wait_until_settled(lambda: next(temps), 5.0)
    assert result["settled"] is True and result["idle_c"] == 50.0 and result["start_c"] == 60.0


# --------------------------------------------------------------------------- live


def _pi_tree(root: Path, temp_c: float) -> Path:
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("cpu-thermal\n")
    (zone / "temp").write_text(f"{int(temp_c * 1000)}\n")
    for cpu in range(4):
        base = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        base.mkdir(parents=True)
        (base / "scaling_cur_freq").write_text("1800000\n")
        (base / "scaling_max_freq").write_text("1800000\n")
        (base / "scaling_governor").write_text("ondemand\n")
    return root


def _set_temp(root: Path, temp_c: float) -> None:
    path = root / "sys/class/thermal/thermal_zone0/temp"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{int(temp_c * 1000)}\n")
    tmp.replace(path)


def _cap(root: Path, khz: int) -> None:
    for cpu in range(4):
        path = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_max_freq"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{khz}\n")
        tmp.replace(path)


@pytest.fixture
def timers() -> Iterator[list[threading.Timer]]:
    started: list[threading.Timer] = []
    yield started
    for timer in started:
        timer.cancel()


@pytest.mark.slow
def test_sustained_profile_records_the_timeline_and_when_throttling_began(
    tmp_path: Path, model_files: dict[str, Path], timers: list[threading.Timer]
) -> None:
    root = _pi_tree(tmp_path, 50.0)

    def on_phase(phase: str) -> None:
        if phase == "steady":  # 2.5 s into the run the kernel lowers the frequency cap
            timer = threading.Timer(2.5, _cap, (root, 1200000))
            timers.append(timer)
            timer.start()

    settings = ProfileSettings(warmup=2, warmup_seconds=0.2, sustained_s=5.0, threads=1)
    result = profile(
        model_files["cnn_fp32.tflite"], settings, root=str(root), on_phase=on_phase, analyze=False
    )
    assert result["status"] == "ok", result["error"]
    rows = result["timeline"]
    assert isinstance(rows, list) and len(rows) == 5
    assert rows[-1]["t_s"] == pytest.approx(5.0, abs=0.3)
    assert all(r["runs"] > 0 and r["p50_ms"] > 0 for r in rows)
    assert all(r["temp_c"] == 50.0 for r in rows)
    assert rows[0]["throttled"] is False and rows[-1]["throttled"] is True
    assert rows[-1]["cpu_freq_cap_mhz"] == 1200.0
    summary = result["sustained"]
    assert isinstance(summary, dict)
    assert 1.0 <= summary["throttle_began_s"] <= 4.0
    assert summary["latency_before_ms"] > 0 and summary["latency_after_ms"] > 0
    steady = result["phases"]["steady"]  # type: ignore[index]
    assert steady["runs"] == sum(r["runs"] for r in rows)
    assert steady["seconds"] == pytest.approx(5.0, abs=0.3)
    assert 0 < result["latency_ms"]["n"] <= steady["runs"]  # type: ignore[index]
    assert "throttled" in result["flags"]  # type: ignore[operator]


@pytest.mark.slow
def test_cool_down_waits_for_idle_temperature(
    tmp_path: Path,
    model_files: dict[str, Path],
    timers: list[threading.Timer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The parent's half runs in this process: a shorter settle window keeps the test short.
    monkeypatch.setattr(sustained, "SETTLE_WINDOW_S", 1.0)
    monkeypatch.setattr(sustained, "POLL_S", 0.1)
    root = _pi_tree(tmp_path, 62.0)
    for i, temp in enumerate([58.0, 54.0, 50.0, 47.0, 45.0]):  # a board cooling to idle
        timers.append(threading.Timer(0.3 * (i + 1), _set_temp, (root, temp)))

    def on_phase(phase: str) -> None:
        if phase == "importing":  # loading and warming up heat it again ...
            _set_temp(root, 55.0)
        if phase == "cooling":  # ... and, idle, it cools back in 1.5 s
            for i, temp in enumerate([52.0, 49.0, 46.5]):
                timer = threading.Timer(0.5 * (i + 1), _set_temp, (root, temp))
                timers.append(timer)
                timer.start()

    for timer in timers:
        timer.start()
    settings = ProfileSettings(
        runs=10, warmup=1, warmup_seconds=0, min_seconds=0.2, cool_down=True, cool_down_max_s=30
    )
    result = profile(
        model_files["tiny.onnx"], settings, root=str(root), on_phase=on_phase, analyze=False
    )
    assert result["status"] == "ok", result["error"]
    cool = result["phases"]["cool_down"]  # type: ignore[index]
    assert cool["parent"]["settled"] is True and cool["idle_c"] == 45.0
    assert cool["start_c"] == 55.0 and cool["end_c"] == 46.5 and cool["reached"] is True
    assert cool["waited_s"] >= 1.0
    assert result["env"]["temp_c_start"] == 45.0  # type: ignore[index]
    assert "not_cooled" not in result["flags"]  # type: ignore[operator]


@pytest.mark.slow
def test_cool_down_is_bounded_and_says_so(tmp_path: Path, model_files: dict[str, Path]) -> None:
    root = _pi_tree(tmp_path, 70.0)

    def on_phase(phase: str) -> None:
        if phase == "importing":
            _set_temp(root, 80.0)  # hotter than idle, and it never cools

    settings = ProfileSettings(
        runs=5, warmup=1, warmup_seconds=0, min_seconds=0, cool_down=True, cool_down_max_s=1.0
    )
    t0 = time.monotonic()
    result = profile(
        model_files["tiny.onnx"], settings, root=str(root), on_phase=on_phase, analyze=False
    )
    assert result["status"] == "ok", result["error"]
    cool = result["phases"]["cool_down"]  # type: ignore[index]
    assert cool["reached"] is False and cool["end_c"] == 80.0
    assert "not_cooled" in result["flags"]  # type: ignore[operator]
    assert time.monotonic() - t0 < 30
