"""Environment snapshots from fake sysfs trees and fake vendor tools (real files, real processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from profiler import environment
from tests.support.tools import fake_tool


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _pi_tree(root: Path) -> None:
    _write(root, "sys/class/thermal/thermal_zone0/type", "cpu-thermal")
    _write(root, "sys/class/thermal/thermal_zone0/temp", "61835")
    for cpu, khz in enumerate((1500000, 1500000, 1200000, 1800000)):
        base = f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        _write(root, f"{base}/scaling_cur_freq", str(khz))
        _write(root, f"{base}/scaling_max_freq", "1800000")
        _write(root, f"{base}/scaling_governor", "ondemand")
    _write(root, "proc/loadavg", "0.52 0.31 0.12 1/234 5678")


def test_snapshot_of_an_empty_tree_is_all_none(tmp_path: Path, no_tools: Path) -> None:
    snap = environment.snapshot(str(tmp_path))
    for key in (
        "temp_c",
        "cpu_freq_mhz",
        "governor",
        "load_avg",
        "throttle_count",
        "pi_throttled",
        "jetson_power_mode",
    ):
        assert snap[key] is None, key
    assert snap["timestamp"].endswith("+00:00")
    json.dumps(snap)


def test_raspberry_pi_tree(tmp_path: Path, no_tools: Path) -> None:
    _pi_tree(tmp_path)
    fake_tool(no_tools, "vcgencmd", 'echo "throttled=0x50005"')
    snap = environment.snapshot(str(tmp_path))
    assert snap["temp_c"] == pytest.approx(61.835)
    assert snap["temp_source"] == "thermal:cpu-thermal"
    assert snap["cpu_freq_mhz"] == {"mean": 1500.0, "min": 1200.0, "max": 1800.0, "cap": 1800.0}
    assert snap["governor"] == "ondemand"
    assert snap["load_avg"] == [0.52, 0.31, 0.12]
    pi = snap["pi_throttled"]
    assert pi["raw"] == "0x50005"
    assert pi["now"] == {
        "under_voltage": True,
        "freq_capped": False,
        "throttled": True,
        "soft_temp_limit": False,
    }
    assert pi["since_boot"]["under_voltage"] and pi["since_boot"]["throttled"]
    assert not pi["since_boot"]["freq_capped"]


def test_preferred_zone_wins_over_acpi_and_hwmon_is_a_fallback(
    tmp_path: Path, no_tools: Path
) -> None:
    _write(tmp_path, "sys/class/thermal/thermal_zone0/type", "acpitz")
    _write(tmp_path, "sys/class/thermal/thermal_zone0/temp", "27800")
    _write(tmp_path, "sys/class/thermal/thermal_zone1/type", "x86_pkg_temp")
    _write(tmp_path, "sys/class/thermal/thermal_zone1/temp", "55000")
    assert environment.cpu_temperature(str(tmp_path)) == (55.0, "thermal:x86_pkg_temp")

    other = tmp_path / "other"
    _write(other, "sys/class/hwmon/hwmon0/name", "nvme")
    _write(other, "sys/class/hwmon/hwmon0/temp1_input", "40000")
    _write(other, "sys/class/hwmon/hwmon1/name", "coretemp")
    _write(other, "sys/class/hwmon/hwmon1/temp1_input", "48000")
    assert environment.cpu_temperature(str(other)) == (48.0, "hwmon:coretemp")


def test_unreadable_or_garbage_files_are_none(tmp_path: Path, no_tools: Path) -> None:
    _write(tmp_path, "sys/class/thermal/thermal_zone0/type", "cpu-thermal")
    _write(tmp_path, "sys/class/thermal/thermal_zone0/temp", "garbage")
    _write(tmp_path, "proc/loadavg", "")
    snap = environment.snapshot(str(tmp_path))
    assert snap["temp_c"] is None and snap["load_avg"] is None


def test_jetson_power_mode_from_nvpmodel_and_status_file(tmp_path: Path, no_tools: Path) -> None:
    _write(tmp_path, "var/lib/nvpmodel/status", "pmode:0002 fmode:quiet")
    assert environment.jetson_power_mode(str(tmp_path)) == {
        "name": None,
        "id": 2,
        "source": "status",
    }
    fake_tool(no_tools, "nvpmodel", 'echo "NV Power Mode: MAXN"; echo 0')
    assert environment.jetson_power_mode(str(tmp_path)) == {
        "name": "MAXN",
        "id": 0,
        "source": "nvpmodel",
    }


def test_failing_or_hanging_tool_is_none(
    tmp_path: Path, no_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tool(no_tools, "vcgencmd", "echo 'VCHI initialization failed' >&2; exit 1")
    assert environment.pi_throttled() is None
    fake_tool(no_tools, "vcgencmd", "exec sleep 30")
    monkeypatch.setattr(environment, "TOOL_TIMEOUT_S", 0.2)
    assert environment.pi_throttled() is None


def _snap(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "temp_c": None,
        "cpu_freq_mhz": None,
        "governor": None,
        "load_avg": None,
        "throttle_count": None,
        "pi_throttled": None,
    }
    base.update(kw)
    return base


def cap(mhz: float) -> dict[str, float | None]:
    return {"mean": mhz, "min": mhz, "max": mhz, "cap": mhz}


def free(mhz: float) -> dict[str, float | None]:
    return {"mean": mhz, "min": mhz, "max": mhz, "cap": None}


def test_throttling_rules() -> None:
    pi = environment.decode_pi_throttled
    assert environment.throttled_between(_snap(), _snap()) is None
    assert (
        environment.throttled_between(_snap(pi_throttled=pi(0)), _snap(pi_throttled=pi(0))) is False
    )
    # Sticky since-boot bit already set before the run: not this run's fault.
    assert (
        environment.throttled_between(
            _snap(pi_throttled=pi(0x20000)), _snap(pi_throttled=pi(0x20000))
        )
        is False
    )
    assert (
        environment.throttled_between(_snap(pi_throttled=pi(0)), _snap(pi_throttled=pi(0x40000)))
        is True
    )
    assert environment.throttled_between(_snap(throttle_count=3), _snap(throttle_count=5)) is True
    assert environment.throttled_between(_snap(throttle_count=3), _snap(throttle_count=3)) is False
    assert (
        environment.throttled_between(_snap(cpu_freq_mhz=cap(1800)), _snap(cpu_freq_mhz=cap(1500)))
        is True
    )
    # Frequency alone only counts under the performance governor.
    assert (
        environment.throttled_between(
            _snap(cpu_freq_mhz=free(2000), governor="ondemand"),
            _snap(cpu_freq_mhz=free(1000), governor="ondemand"),
        )
        is None
    )
    assert (
        environment.throttled_between(
            _snap(cpu_freq_mhz=free(2000), governor="performance"),
            _snap(cpu_freq_mhz=free(1500), governor="performance"),
        )
        is True
    )


def test_env_section(tmp_path: Path, no_tools: Path) -> None:
    _pi_tree(tmp_path)
    before = environment.snapshot(str(tmp_path))
    _write(tmp_path, "sys/class/thermal/thermal_zone0/temp", "70000")
    fake_tool(no_tools, "vcgencmd", 'echo "throttled=0x0"')
    after = environment.snapshot(str(tmp_path))
    env = environment.env_section(before, after)
    assert env["temp_c_start"] == pytest.approx(61.835)
    assert env["temp_c_end"] == 70.0
    assert env["throttled"] is False  # cap unchanged; vcgencmd only in the after snapshot
    assert env["cpu_freq_mhz"] == 1500.0
    assert env["governor"] == "ondemand"
    assert env["load_avg"] == [0.52, 0.31, 0.12]
    assert env["before"] == before and env["after"] == after
    json.dumps(env)


def test_snapshot_of_this_machine_does_not_fail() -> None:
    snap = environment.snapshot()
    json.dumps(snap)
    assert isinstance(snap["time"], float)
