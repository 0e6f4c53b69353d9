"""Power sources on recorded board trees, the energy arithmetic, and energy per
inference measured during real profiles while a separate process drives the sensors.

The trees come from tests/support/boards.py (sources cited there); the Pi 5's
``vcgencmd pmic_read_adc`` output is a verbatim capture, replayed by a stand-in
``vcgencmd`` on PATH.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiler import energy
from profiler.runner import profile
from profiler.settings import ProfileSettings
from tests.support.boards import (
    AGX_HWMON_40,
    AGX_HWMON_41,
    BOARDS,
    NANO_IIO,
    ORIN_NANO_HWMON,
    PI5_PMIC_ADC,
)
from tests.support.tools import fake_tool


def _tree(tmp_path: Path, board: str) -> Path:
    return BOARDS[board].write(tmp_path / board)


def test_orin_nano_reads_vdd_in(tmp_path: Path, no_tools: Path) -> None:
    root = _tree(tmp_path, "orin-nano")
    source = energy.find_power_source(str(root))
    assert source is not None
    assert (source.source, source.rail, source.partial) == ("ina3221-hwmon", "VDD_IN", False)
    assert source.read() == pytest.approx(5.064 * 0.880)


def test_agx_orin_sums_its_rails_and_says_partial(tmp_path: Path, no_tools: Path) -> None:
    root = _tree(tmp_path, "agx-orin")
    source = energy.find_power_source(str(root))
    assert source is not None
    # No VDD_IN; VDDQ_VDD2_1V8AO is part of VIN_SYS_5V0 and NC is no rail.
    assert source.rail == "VDD_GPU_SOC+VDD_CPU_CV+VIN_SYS_5V0"
    assert source.partial is True and "no input rail (VDD_IN)" in (source.note or "")
    assert source.read() == pytest.approx(19.984 * 0.240 + 19.984 * 0.080 + 4.984 * 0.600)
    assert (root / AGX_HWMON_41 / "in2_label").read_text().strip() == "VDDQ_VDD2_1V8AO"
    assert (root / AGX_HWMON_40 / "in7_label").exists()


def test_jetson_nano_jetpack4_iio(tmp_path: Path, no_tools: Path) -> None:
    root = _tree(tmp_path, "jetson-nano")
    source = energy.find_power_source(str(root))
    assert source is not None
    assert (source.source, source.rail, source.partial) == ("ina3221-iio", "POM_5V_IN", False)
    assert source.read() == pytest.approx(1.232)
    (root / NANO_IIO / "in_power0_input").write_text("4100\n")
    assert source.read() == pytest.approx(4.1)


def test_pi5_pmic_sums_rails_and_says_what_it_misses(tmp_path: Path, no_tools: Path) -> None:
    fake_tool(no_tools, "vcgencmd", f"cat <<'EOF'\n{PI5_PMIC_ADC}EOF")
    root = _tree(tmp_path, "pi5")
    source = energy.find_power_source(str(root))
    assert source is not None
    assert source.source == "vcgencmd-pmic" and source.partial is True
    assert "USB" in (source.note or "") and "5 V input" in (source.note or "")
    rails = energy.parse_pmic_adc(PI5_PMIC_ADC)
    assert len(rails) == 12 and "EXT5V" not in rails and "BATT" not in rails
    assert rails["VDD_CORE"] == pytest.approx(0.76798460 * 0.56259000)
    assert source.read() == pytest.approx(sum(rails.values()))
    assert 1.0 < sum(rails.values()) < 2.5  # an idle Pi 5's PMIC rails, in watts


def test_pi4_vcgencmd_without_pmic_is_no_source(tmp_path: Path, no_tools: Path) -> None:
    fake_tool(no_tools, "vcgencmd", "echo 'error=1 error_msg=\"Command not registered\"'; exit 1")
    assert energy.find_power_source(str(_tree(tmp_path, "pi4"))) is None


def test_no_sensor_is_none(tmp_path: Path, no_tools: Path) -> None:
    assert energy.find_power_source(str(tmp_path)) is None


def test_rapl_counter_to_power_and_wrap(tmp_path: Path, no_tools: Path) -> None:
    zone = tmp_path / "sys/class/powercap/intel-rapl:0"
    sub = tmp_path / "sys/class/powercap/intel-rapl:0:0"
    for d, name in ((zone, "package-0"), (sub, "core")):
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text("1000\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    source = energy.find_power_source(str(tmp_path))
    assert source is not None
    assert (source.source, source.rail, source.partial) == ("rapl", "package-0", True)
    t0 = time.monotonic()
    (zone / "energy_uj").write_text(str(1000 + 2_000_000) + "\n")  # +2 J
    time.sleep(0.2)
    watts = source.read()
    elapsed = time.monotonic() - t0
    assert watts is not None and watts == pytest.approx(2.0 / elapsed, rel=0.2)
    (zone / "energy_uj").write_text("500\n")  # wrapped past max_energy_range_uj
    time.sleep(0.1)
    wrapped = source.read()
    assert wrapped is not None and wrapped > 0


def test_hwmon_power_input_microwatts(tmp_path: Path, no_tools: Path) -> None:
    hwmon = tmp_path / "sys/class/hwmon/hwmon3"
    hwmon.mkdir(parents=True)
    (hwmon / "name").write_text("ina219\n")
    (hwmon / "power1_input").write_text("3200000\n")
    (hwmon / "power1_label").write_text("board\n")
    source = energy.find_power_source(str(tmp_path))
    assert source is not None
    assert (source.source, source.rail) == ("hwmon", "ina219:board")
    assert source.read() == pytest.approx(3.2)
    (hwmon / "power1_input").write_text("32000")  # torn mid-write: a short number, not a crash
    assert source.read() == pytest.approx(0.032)
    (hwmon / "power1_input").write_text("")
    assert source.read() is None


def _samples(start: int, count: int, step: int, watts: float) -> list[tuple[int, float]]:
    return [(start + i * step, watts) for i in range(count)]


def test_energy_section_arithmetic() -> None:
    source = energy.PowerSource(source="hwmon", rail="x", partial=False)
    ms = 1_000_000
    idle = [(i * 50 * ms, 2.0 + (0.01 if i % 2 else -0.01)) for i in range(20)]
    start, end = 10_000 * ms, 12_000 * ms  # a 2 s steady state
    window = [(start + i * 50 * ms, 5.0 + (0.02 if i % 2 else -0.02)) for i in range(41)]
    outside = _samples(end + 50 * ms, 10, 50 * ms, 50.0)  # after the window: ignored
    section = energy.energy_section(
        source, window + outside, idle, start_ns=start, end_ns=end, runs=100
    )
    # (mean 5.0 W - idle 2.0 W) × 2 s / 100 runs = 60 mJ per inference
    assert section["mj_per_inference"] == pytest.approx(60.0, rel=1e-3)
    assert section["avg_power_w"] == pytest.approx(5.0, abs=1e-3)
    assert section["idle_power_w"] == pytest.approx(2.0, abs=1e-3)
    assert section["samples"] == 41 and section["rate_hz"] == pytest.approx(20.5)
    lo, hi = section["ci95"]
    assert lo < 60.0 < hi and hi - lo < 2.0
    assert set(section) >= {
        "mj_per_inference",
        "ci95",
        "avg_power_w",
        "idle_power_w",
        "rail",
        "source",
        "samples",
    }
    assert energy.summarize(section) is not None


def test_too_short_a_window_gives_no_figure() -> None:
    source = energy.PowerSource(source="hwmon", rail="x", partial=False)
    section = energy.energy_section(
        source, [(5, 3.0)], [(0, 1.0)], start_ns=0, end_ns=10_000_000, runs=5
    )
    assert section["mj_per_inference"] is None and section["ci95"] is None
    assert "too few power samples" in section["note"]


# --------------------------------------------------------------------------- live


_DRIVER = textwrap.dedent(
    """
    # Drives a recorded sensor tree like the hardware would: idle power until the
    # flag file appears, then load power; stops when the stop file appears.
    import os, sys, time
    mode, target, flag, stop, idle, load = sys.argv[1:7]
    idle, load = float(idle), float(load)
    energy_uj, last = 0.0, time.monotonic()

    def put(path, text):
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)  # a reader never sees a half-written number

    deadline = time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < deadline:
        now = time.monotonic()
        watts = load if os.path.exists(flag) else idle
        if mode == "hwmon":  # curr1_input in mA at a fixed 5064 mV
            put(target, "%d\\n" % round(watts / 5.064 * 1000))
        else:  # rapl energy_uj: integrate the injected power
            energy_uj += watts * (now - last) * 1e6
            put(target, "%d\\n" % energy_uj)
        last = now
        open(stop + ".ready", "w").close()
        time.sleep(0.002)
    """
)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[tuple[Path, Path, list[subprocess.Popen[bytes]]]]:
    flag, stop = tmp_path / "load.flag", tmp_path / "stop.flag"
    procs: list[subprocess.Popen[bytes]] = []
    yield flag, stop, procs
    stop.touch()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_driver(
    procs: list[subprocess.Popen[bytes]],
    mode: str,
    target: Path,
    flag: Path,
    stop: Path,
    idle: float,
    load: float,
) -> None:
    procs.append(
        subprocess.Popen(
            [sys.executable, "-c", _DRIVER, mode, *map(str, (target, flag, stop, idle, load))]
        )
    )
    deadline = time.monotonic() + 10
    while not Path(str(stop) + ".ready").exists():
        assert time.monotonic() < deadline, "the sensor driver did not start"
        time.sleep(0.01)


LIVE = ProfileSettings(runs=50, warmup=5, warmup_seconds=0.6, min_seconds=1.5, threads=1)


def _profile_with_load_flag(model: Path, root: Path, flag: Path) -> dict[str, object]:
    def on_phase(phase: str) -> None:
        if phase == "warmup":  # the load starts before the steady state does
            flag.touch()

    return profile(model, LIVE, root=str(root), on_phase=on_phase, analyze=False)


@pytest.mark.slow
def test_energy_per_inference_on_orin_nano_tree(
    tmp_path: Path,
    no_tools: Path,
    driver: tuple[Path, Path, list[subprocess.Popen[bytes]]],
    model_files: dict[str, Path],
) -> None:
    flag, stop, procs = driver
    root = _tree(tmp_path, "orin-nano")
    idle_w, load_w = 4.5, 7.5
    _start_driver(
        procs, "hwmon", root / ORIN_NANO_HWMON / "curr1_input", flag, stop, idle_w, load_w
    )
    result = _profile_with_load_flag(model_files["cnn_fp32.onnx"], root, flag)
    assert result["status"] == "ok", result["error"]
    section = result["energy"]
    assert isinstance(section, dict)
    # The driver writes whole mA at 5.064 V: the power the files really say.
    idle = 5.064 * round(idle_w / 5.064 * 1000) / 1000
    load = 5.064 * round(load_w / 5.064 * 1000) / 1000
    assert section["idle_power_w"] == pytest.approx(idle, abs=1e-4)
    assert section["avg_power_w"] == pytest.approx(load, abs=1e-4)
    steady = result["phases"]["steady"]  # type: ignore[index]
    expected_mj = (load - idle) * steady["seconds"] / steady["runs"] * 1000
    assert section["mj_per_inference"] == pytest.approx(expected_mj, rel=1e-3)
    assert section["rail"] == "VDD_IN" and section["source"] == "ina3221-hwmon"
    assert section["rate_hz"] >= 10 and section["samples"] >= 15
    assert section["idle_samples"] >= 10


@pytest.mark.slow
def test_energy_per_inference_from_rapl_counters(
    tmp_path: Path,
    no_tools: Path,
    driver: tuple[Path, Path, list[subprocess.Popen[bytes]]],
    model_files: dict[str, Path],
) -> None:
    flag, stop, procs = driver
    zone = tmp_path / "x86/sys/class/powercap/intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (zone / "energy_uj").write_text("0\n")
    _start_driver(procs, "rapl", zone / "energy_uj", flag, stop, 6.0, 21.0)
    result = _profile_with_load_flag(model_files["cnn_fp32.tflite"], tmp_path / "x86", flag)
    assert result["status"] == "ok", result["error"]
    section = result["energy"]
    assert isinstance(section, dict)
    assert section["source"] == "rapl" and section["partial"] is True
    # A counter read by one process while another writes it: the reading lags the
    # writer by however long the writer waited for a CPU (on a loaded 2-core CI
    # machine tens of ms), so the figures are close, not exact; the exact
    # arithmetic is the INA3221 test's.
    assert section["idle_power_w"] == pytest.approx(6.0, rel=0.1)
    assert section["avg_power_w"] == pytest.approx(21.0, rel=0.1)
    steady = result["phases"]["steady"]  # type: ignore[index]
    expected_mj = 15.0 * steady["seconds"] / steady["runs"] * 1000
    assert section["mj_per_inference"] == pytest.approx(expected_mj, rel=0.15)
    lo, hi = section["ci95"]
    assert lo <= section["mj_per_inference"] <= hi


@pytest.mark.slow
def test_no_power_source_means_null_energy(
    tmp_path: Path, no_tools: Path, model_files: dict[str, Path]
) -> None:
    result = profile(
        model_files["tiny.onnx"],
        ProfileSettings(runs=5, warmup=1, min_seconds=0, warmup_seconds=0),
        root=str(tmp_path),
        analyze=False,
    )
    assert result["status"] == "ok"
    assert result["energy"] is None and result["timeline"] is None and result["per_op"] is None
