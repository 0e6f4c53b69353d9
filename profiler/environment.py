"""The machine's thermal and power state, captured before and after a run.

Every source is optional: a missing file, tool or permission yields None for
that field, never an exception, and never a long wait (external tools run with
a 2 s timeout). ``root`` lets tests point the sysfs/procfs readers at a fake
tree; the external tools (``vcgencmd``, ``nvpmodel``) are looked up on PATH.
"""

from __future__ import annotations

import datetime as _dt
import glob
import logging
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

TOOL_TIMEOUT_S = 2.0
"""Time limit of each external tool call."""

FREQ_DROP = 0.10
"""With the ``performance`` governor, a mean frequency drop larger than this counts as throttling."""

# Preferred thermal-zone types, best first (matched case-insensitively as substrings):
# Raspberry Pi "cpu-thermal", Intel "x86_pkg_temp", Jetson "CPU-therm", many SoCs "soc".
_ZONE_PREFERENCE = ("cpu", "x86_pkg_temp", "pkg", "soc", "core", "acpitz")
_HWMON_NAMES = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "soc_thermal")

# Raspberry Pi `vcgencmd get_throttled` bits.
PI_THROTTLE_BITS: dict[int, str] = {
    0: "under_voltage",
    1: "freq_capped",
    2: "throttled",
    3: "soft_temp_limit",
}
_PI_SINCE_BOOT_SHIFT = 16


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def _p(root: str, *parts: str) -> str:
    return os.path.join(root, *parts)


def _millideg(value: int) -> float:
    # The sysfs ABI is millidegrees Celsius; a few drivers report whole degrees.
    return value / 1000.0 if abs(value) >= 1000 else float(value)


def _run_tool(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s failed: %s", argv[0], exc)
        return None
    if done.returncode != 0:
        log.debug("%s exited %d: %s", argv[0], done.returncode, done.stderr.strip())
        return None
    return done.stdout


# --------------------------------------------------------------------------- sources


def cpu_temperature(root: str = "/") -> tuple[float | None, str | None]:
    """CPU temperature in °C and the sensor it came from, or (None, None)."""
    zones: list[tuple[str, float]] = []
    for zone in sorted(glob.glob(_p(root, "sys/class/thermal/thermal_zone*"))):
        ztype = _read(os.path.join(zone, "type")) or ""
        raw = _read_int(os.path.join(zone, "temp"))
        if raw is not None:
            zones.append((ztype, _millideg(raw)))
    for wanted in _ZONE_PREFERENCE:
        for ztype, celsius in zones:
            if wanted in ztype.lower():
                return celsius, f"thermal:{ztype}"
    for hwmon in sorted(glob.glob(_p(root, "sys/class/hwmon/hwmon*"))):
        name = _read(os.path.join(hwmon, "name")) or ""
        if name not in _HWMON_NAMES:
            continue
        # temp1 is the package / Tctl sensor for coretemp and k10temp.
        raw = _read_int(os.path.join(hwmon, "temp1_input"))
        if raw is not None:
            return _millideg(raw), f"hwmon:{name}"
    if zones:
        return zones[0][1], f"thermal:{zones[0][0]}"
    return None, None


def cpu_frequency(root: str = "/") -> dict[str, Any]:
    """Current CPU frequency over all CPUs (MHz), the policy cap and the governor."""
    cur: list[float] = []
    caps: list[float] = []
    governors: Counter[str] = Counter()
    for cpu in sorted(glob.glob(_p(root, "sys/devices/system/cpu/cpu[0-9]*"))):
        base = os.path.join(cpu, "cpufreq")
        khz = _read_int(os.path.join(base, "scaling_cur_freq"))
        if khz is not None:
            cur.append(khz / 1000.0)
        cap = _read_int(os.path.join(base, "scaling_max_freq"))
        if cap is not None:
            caps.append(cap / 1000.0)
        gov = _read(os.path.join(base, "scaling_governor"))
        if gov:
            governors[gov] += 1
    if not cur and root == "/":
        cur = _psutil_freqs()
    return {
        "mean": sum(cur) / len(cur) if cur else None,
        "min": min(cur) if cur else None,
        "max": max(cur) if cur else None,
        "cap": max(caps) if caps else None,
        "governor": governors.most_common(1)[0][0] if governors else None,
    }


def _psutil_freqs() -> list[float]:
    # VMs and some x86 kernels have no cpufreq in sysfs; psutil then reads /proc/cpuinfo.
    try:
        import psutil

        freqs = psutil.cpu_freq(percpu=True) or []
        return [float(f.current) for f in freqs if f.current]
    except Exception as exc:  # psutil is optional; any failure means "unknown"
        log.debug("psutil.cpu_freq failed: %s", exc)
        return []


def load_average(root: str = "/") -> list[float] | None:
    """1, 5 and 15 minute load averages."""
    text = _read(_p(root, "proc/loadavg"))
    if text:
        try:
            return [float(x) for x in text.split()[:3]]
        except ValueError:
            pass
    if root == "/" and hasattr(os, "getloadavg"):
        try:
            return [float(x) for x in os.getloadavg()]
        except OSError:
            return None
    return None


def throttle_count(root: str = "/") -> int | None:
    """Sum of x86 core and package thermal-throttle event counters (monotonic)."""
    total = None
    pattern = _p(root, "sys/devices/system/cpu/cpu[0-9]*/thermal_throttle/*_throttle_count")
    for path in glob.glob(pattern):
        value = _read_int(path)
        if value is not None:
            total = (total or 0) + value
    return total


def decode_pi_throttled(value: int) -> dict[str, Any]:
    """Decode the bit field of ``vcgencmd get_throttled``."""
    now = {name: bool(value >> bit & 1) for bit, name in PI_THROTTLE_BITS.items()}
    since = {
        name: bool(value >> (bit + _PI_SINCE_BOOT_SHIFT) & 1)
        for bit, name in PI_THROTTLE_BITS.items()
    }
    return {"raw": f"0x{value:x}", "now": now, "since_boot": since}


def pi_throttled() -> dict[str, Any] | None:
    """Raspberry Pi throttle flags via ``vcgencmd get_throttled``, if available."""
    out = _run_tool(["vcgencmd", "get_throttled"])
    if out is None:
        return None
    match = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", out)
    if not match:
        log.debug("unexpected vcgencmd output: %r", out)
        return None
    return decode_pi_throttled(int(match.group(1), 0))


def jetson_power_mode(root: str = "/", *, use_tool: bool = True) -> dict[str, Any] | None:
    """Jetson power mode from ``nvpmodel -q`` or /var/lib/nvpmodel/status.

    ``use_tool=False`` reads only the file under ``root`` (a recorded tree).
    """
    out = _run_tool(["nvpmodel", "-q"]) if use_tool else None
    if out is not None:
        name = re.search(r"NV Power Mode:\s*(.+)", out)
        ident = re.search(r"^\s*(\d+)\s*$", out, re.MULTILINE)
        if name or ident:
            return {
                "name": name.group(1).strip() if name else None,
                "id": int(ident.group(1)) if ident else None,
                "source": "nvpmodel",
            }
    status = _read(_p(root, "var/lib/nvpmodel/status"))
    if status:
        match = re.search(r"pmode:\s*(\d+)", status)
        if match:
            return {"name": None, "id": int(match.group(1)), "source": "status"}
    return None


# --------------------------------------------------------------------------- snapshot


def snapshot(root: str = "/") -> dict[str, Any]:
    """The machine's thermal and power state now.

    Keys: ``timestamp`` (ISO 8601 UTC), ``time`` (epoch s), ``temp_c``,
    ``temp_source``, ``cpu_freq_mhz`` {mean, min, max, cap}, ``governor``,
    ``load_avg`` [1, 5, 15 min], ``throttle_count`` (x86), ``pi_throttled``
    {raw, now{...}, since_boot{...}}, ``jetson_power_mode`` {name, id, source}.
    Absent sources are None.
    """
    now = time.time()
    temp, source = cpu_temperature(root)
    freq = cpu_frequency(root)
    governor = freq.pop("governor")
    return {
        "timestamp": _dt.datetime.fromtimestamp(now, _dt.timezone.utc).isoformat(),
        "time": now,
        "temp_c": temp,
        "temp_source": source,
        "cpu_freq_mhz": freq if freq["mean"] is not None or freq["cap"] is not None else None,
        "governor": governor,
        "load_avg": load_average(root),
        "throttle_count": throttle_count(root),
        "pi_throttled": pi_throttled(),
        "jetson_power_mode": jetson_power_mode(root),
    }


def _freq(snap: Mapping[str, Any], key: str) -> float | None:
    freq = snap.get("cpu_freq_mhz")
    if isinstance(freq, Mapping):
        value = freq.get(key)
        return float(value) if isinstance(value, (int, float)) else None
    return None


def throttled_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool | None:
    """Whether the device throttled between two snapshots; None if no source can tell.

    Throttling is any of: a Raspberry Pi throttle bit set *now* in either
    snapshot, or a *since boot* bit that was clear before and set after; the x86
    thermal-throttle counter increased; the cpufreq policy cap (which thermal
    cooling devices lower) decreased; or, under the ``performance`` governor
    (fixed frequency expected), the mean frequency fell by more than 10%.
    """
    known = False
    pi_b, pi_a = before.get("pi_throttled"), after.get("pi_throttled")
    for pi in (pi_b, pi_a):
        if isinstance(pi, Mapping):
            known = True
            if any(pi.get("now", {}).values()):
                return True
    if isinstance(pi_b, Mapping) and isinstance(pi_a, Mapping):
        # "Since boot" bits are sticky: only one that appeared during the run counts.
        since_before = pi_b.get("since_boot", {})
        for name, flag in pi_a.get("since_boot", {}).items():
            if flag and not since_before.get(name, False):
                return True
    count_b, count_a = before.get("throttle_count"), after.get("throttle_count")
    if isinstance(count_b, int) and isinstance(count_a, int):
        known = True
        if count_a > count_b:
            return True
    cap_b, cap_a = _freq(before, "cap"), _freq(after, "cap")
    if cap_b is not None and cap_a is not None:
        known = True
        if cap_a < cap_b:
            return True
    mean_b, mean_a = _freq(before, "mean"), _freq(after, "mean")
    if (
        before.get("governor") == "performance"
        and after.get("governor") == "performance"
        and mean_b
        and mean_a is not None
    ):
        known = True
        if mean_a < mean_b * (1.0 - FREQ_DROP):
            return True
    return False if known else None


def env_section(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The result document's ``env`` object from snapshots taken before and after a run.

    ``cpu_freq_mhz`` and ``governor`` are from the end of the run (the state the
    model ran in; the start may be an idle clock); ``load_avg`` is from the start
    (the end includes our own load). The raw snapshots travel as ``before``/``after``.
    """
    after_freq = _freq(after, "mean")
    return {
        "temp_c_start": before.get("temp_c"),
        "temp_c_end": after.get("temp_c"),
        "throttled": throttled_between(before, after),
        "cpu_freq_mhz": after_freq if after_freq is not None else _freq(before, "mean"),
        "governor": after.get("governor") or before.get("governor"),
        "load_avg": before.get("load_avg") or after.get("load_avg"),
        "before": dict(before),
        "after": dict(after),
    }
