"""Energy per inference: the board's power, sampled by the parent during the steady state.

Where a board can measure its power, the runner measures an idle baseline
right before the worker starts, samples power (:data:`SAMPLE_INTERVAL_S`,
20 Hz) on a thread while the worker runs, and cuts the samples to the
worker's steady-state window (both sides stamp with CLOCK_MONOTONIC). Then

    mJ per inference = (mean power in the window − idle power) × window seconds / runs × 1000

Sources, first found wins (``root`` points the sysfs readers at a recorded tree):

- Jetson, JetPack 5/6: INA3221 via hwmon, ``/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/``
  ``in*_label``, ``in*_input`` (mV), ``curr*_input`` (mA). The rail ``VDD_IN`` (the
  module's input) when there is one; AGX Orin has none, so its module rails are
  summed and the figure is marked partial.
- Jetson, JetPack 4: the L4T ``ina3221x`` driver's iio files
  (``/sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_N``, ``in_powerN_input`` mW).
- Raspberry Pi 5: ``vcgencmd pmic_read_adc`` (each PMIC rail's V and A, summed):
  partial — the 5 V input current is not measured, so USB devices, the fan,
  HATs/PCIe and the PMIC's own losses are missing.
- Intel/AMD x86: RAPL, ``/sys/class/powercap/intel-rapl:N/energy_uj`` (the
  ``psys`` platform domain when present, else the packages: CPU only, partial).
- Any Linux hwmon ``power*_input`` (µW); what it covers depends on the board (partial).

No source means ``energy`` is null, never an error.
"""

from __future__ import annotations

import glob
import itertools
import logging
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.05
"""Power sampling period (20 Hz; a source slower than that lowers the rate, see ``rate_hz``)."""
IDLE_SECONDS = 1.0
"""Length of the idle baseline measured just before the worker starts."""
MIN_WINDOW_SAMPLES = 3
"""Fewer power samples than this in the steady state give no figure (too short a window)."""
TOOL_TIMEOUT_S = 2.0

# Rails that another rail already includes (NVIDIA's "Software-Based Power
# Consumption Modeling", Jetson Linux r36 developer guide: VDDQ_VDD2_1V8AO is
# part of VIN_SYS_5V0 on AGX Orin); summing them would count twice.
_INCLUDED_IN_OTHERS = {"VDDQ_VDD2_1V8AO"}
_NOT_A_RAIL = {"NC", "SUM OF SHUNT VOLTAGES"}
_INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "5V_IN", "VIN")

PI5_MISSES = (
    "PMIC output rails only: the 5 V input current is not measured, so USB devices, "
    "the fan, HATs/PCIe and the PMIC's conversion losses are missing"
)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _read_number(path: str) -> float | None:
    text = _read_text(path)
    if not text:
        return None
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):  # a torn or odd reading: skip this sample
        return None


@dataclass
class PowerSource:
    """Where the power comes from and how to read it (watts, now)."""

    source: str
    """Kind of sensor: ``ina3221-hwmon``, ``ina3221-iio``, ``vcgencmd-pmic``, ``rapl``, ``hwmon``."""
    rail: str
    """What is measured: a rail name, or ``A+B+C`` when rails are summed."""
    partial: bool
    """True when the figure leaves part of the board out (see ``note``)."""
    note: str | None = None

    def read(self) -> float | None:
        """Power in watts now (or since the previous call, for energy counters); None if unreadable."""
        raise NotImplementedError


@dataclass
class VoltageCurrentRails(PowerSource):
    """Rails read as mV × mA files (INA3221 hwmon), summed."""

    pairs: list[tuple[str, str]] = field(default_factory=list)

    def read(self) -> float | None:
        total = 0.0
        for volt_path, curr_path in self.pairs:
            mv, ma = _read_number(volt_path), _read_number(curr_path)
            if mv is None or ma is None:
                return None
            total += mv * ma / 1e6
        return total


@dataclass
class PowerFiles(PowerSource):
    """Rails read as power files (``scale`` watts per unit: 1e-3 for mW, 1e-6 for µW), summed."""

    paths: list[str] = field(default_factory=list)
    scale: float = 1e-3

    def read(self) -> float | None:
        total = 0.0
        for path in self.paths:
            value = _read_number(path)
            if value is None:
                return None
            total += value * self.scale
        return total


@dataclass
class EnergyCounters(PowerSource):
    """Monotonic energy counters in µJ (RAPL ``energy_uj``), turned into average power.

    The first call primes the counters and returns None; each later call
    returns the mean power since the previous one, handling wrap-around at
    ``max_energy_range_uj``.
    """

    counters: list[tuple[str, float]] = field(default_factory=list)
    """(energy_uj path, wrap range in µJ)."""
    _last: tuple[int, list[float]] | None = None

    def read(self) -> float | None:
        now = time.monotonic_ns()
        values: list[float] = []
        for path, _wrap in self.counters:
            value = _read_number(path)
            if value is None:
                return None
            values.append(value)
        last, self._last = self._last, (now, values)
        if last is None or now <= last[0]:
            return None
        joules = 0.0
        for (_path, wrap), before, after in zip(self.counters, last[1], values, strict=True):
            delta = after - before
            if delta < 0:
                delta += wrap
            joules += delta / 1e6
        return joules / ((now - last[0]) / 1e9)


@dataclass
class PmicTool(PowerSource):
    """Raspberry Pi 5's PMIC through ``vcgencmd pmic_read_adc``: Σ V × A over its rails."""

    argv: list[str] = field(default_factory=lambda: ["vcgencmd", "pmic_read_adc"])

    def read(self) -> float | None:
        try:
            done = subprocess.run(
                self.argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode != 0:
            return None
        rails = parse_pmic_adc(done.stdout)
        return sum(rails.values()) if rails else None


_PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-+]?[\d.]+)[AV]\s*$")


def parse_pmic_adc(text: str) -> dict[str, float]:
    """Watts per rail from ``vcgencmd pmic_read_adc`` output.

    Lines read ``VDD_CORE_A current(7)=0.56259000A`` / ``VDD_CORE_V volt(15)=0.76798460V``;
    a rail counts when it has both (EXT5V and BATT have a voltage only).
    """
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        match = _PMIC_LINE.match(line)
        if not match:
            continue
        name, kind, value = match.group(1), match.group(2), float(match.group(3))
        (amps if kind == "A" else volts)[name] = value
    return {name: volts[name] * amps[name] for name in amps if name in volts}


# --------------------------------------------------------------------------- discovery


def _ina3221_hwmon(root: str) -> PowerSource | None:
    channels: list[tuple[str, str, str]] = []  # (label, mV path, mA path)
    pattern = os.path.join(root, "sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label")
    for label_path in sorted(glob.glob(pattern)):
        label = (_read_text(label_path) or "").strip()
        match = re.search(r"in(\d+)_label$", label_path)
        if not label or not match or label.upper() in _NOT_A_RAIL:
            continue
        base, index = os.path.dirname(label_path), match.group(1)
        curr = os.path.join(base, f"curr{index}_input")
        volt = os.path.join(base, f"in{index}_input")
        if os.path.exists(curr) and os.path.exists(volt):
            channels.append((label, volt, curr))
    if not channels:
        return None
    rail, pairs, partial, note = _input_or_sum([(lb, (v, c)) for lb, v, c in channels])
    return VoltageCurrentRails(
        source="ina3221-hwmon", rail=rail, partial=partial, note=note, pairs=pairs
    )


def _ina3221_iio(root: str) -> PowerSource | None:
    rails: list[tuple[str, str]] = []
    pattern = os.path.join(root, "sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*")
    for name_path in sorted(glob.glob(pattern)):
        name = (_read_text(name_path) or "").strip()
        index = name_path.rsplit("_", 1)[-1]
        power = os.path.join(os.path.dirname(name_path), f"in_power{index}_input")
        if name and os.path.exists(power):
            rails.append((name, power))
    if not rails:
        return None
    rail, paths, partial, note = _input_or_sum(rails)
    return PowerFiles(source="ina3221-iio", rail=rail, partial=partial, note=note, paths=paths)


T = TypeVar("T")


def _input_or_sum(rails: Sequence[tuple[str, T]]) -> tuple[str, list[T], bool, str]:
    """The board's input rail when it has one; else every rail summed (partial).

    Returns (rail name, what to read, partial, note).
    """
    for name, item in rails:
        if name.upper() in _INPUT_RAILS:
            return name, [item], False, "the module's input rail; the carrier board is not measured"
    summed = [(n, item) for n, item in rails if n.upper() not in _INCLUDED_IN_OTHERS]
    return (
        "+".join(n for n, _ in summed),
        [item for _, item in summed],
        True,
        "no input rail (VDD_IN) on this board: the module's rails are summed; "
        "the carrier board and the module's input stage are not measured",
    )


def _pi5_pmic(root: str) -> PowerSource | None:
    if shutil.which("vcgencmd") is None:
        return None
    source = PmicTool(source="vcgencmd-pmic", rail="PMIC rails", partial=True, note=PI5_MISSES)
    try:
        done = subprocess.run(
            source.argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rails = parse_pmic_adc(done.stdout) if done.returncode == 0 else {}
    if not rails:  # a Pi before the 5 has vcgencmd but no PMIC ADC
        return None
    source.rail = f"PMIC rails ({len(rails)}: {', '.join(sorted(rails))})"
    return source


def _rapl(root: str) -> PowerSource | None:
    zones = sorted(glob.glob(os.path.join(root, "sys/class/powercap/intel-rapl:[0-9]*")))
    top = [z for z in zones if re.search(r"intel-rapl:\d+$", z)]  # not sub-zones (core, dram)
    named = [(z, (_read_text(os.path.join(z, "name")) or "").strip()) for z in top]
    readable = [(z, n) for z, n in named if _read_number(os.path.join(z, "energy_uj")) is not None]
    if not readable:
        return None
    psys = [(z, n) for z, n in readable if n == "psys"]
    chosen = psys or [(z, n) for z, n in readable if n.startswith("package")]
    if not chosen:
        return None
    counters = [
        (
            os.path.join(z, "energy_uj"),
            _read_number(os.path.join(z, "max_energy_range_uj")) or float(2**32),
        )
        for z, _ in chosen
    ]
    source = EnergyCounters(
        source="rapl",
        rail="+".join(n for _, n in chosen),
        partial=not psys,
        note=None
        if psys
        else "CPU package(s) only: memory, GPU and the rest of the board are not included",
        counters=counters,
    )
    source.read()  # prime the counters
    return source


def _hwmon_power(root: str) -> PowerSource | None:
    for hwmon in sorted(glob.glob(os.path.join(root, "sys/class/hwmon/hwmon*"))):
        inputs = sorted(glob.glob(os.path.join(hwmon, "power[0-9]*_input")))
        inputs = [p for p in inputs if _read_number(p) is not None]
        if not inputs:
            continue
        name = (_read_text(os.path.join(hwmon, "name")) or os.path.basename(hwmon)).strip()
        labels = []
        for path in inputs:
            base = os.path.basename(path)
            label = _read_text(os.path.join(hwmon, base.replace("_input", "_label")))
            labels.append(f"{name}:{label or base[: -len('_input')]}")
        return PowerFiles(
            source="hwmon",
            rail="+".join(labels),
            partial=True,
            note="a hwmon power sensor: what it covers depends on the board",
            paths=inputs,
            scale=1e-6,
        )
    return None


def find_power_source(root: str = "/") -> PowerSource | None:
    """The best power sensor this machine (or the tree at ``root``) offers, or None."""
    for finder in (_ina3221_hwmon, _ina3221_iio, _pi5_pmic, _rapl, _hwmon_power):
        try:
            source = finder(root)
        except Exception:  # discovery is best effort: never an error
            log.debug("power source %s failed", finder.__name__, exc_info=True)
            continue
        if source is not None:
            return source
    return None


# --------------------------------------------------------------------------- arithmetic

# Two-sided 97.5 % quantiles of Student's t for 1..9 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)
_MAX_BLOCKS = 10


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _time_weighted_mean(samples: Sequence[tuple[int, float]]) -> float:
    """Mean power with each sample weighted by the time since the one before.

    Equal to the plain mean when sampling is regular; when a reading came late
    (a busy machine, a slow tool), the interval it covers counts for its length,
    so energy counters (RAPL) telescope to Δenergy / Δtime.
    """
    if len(samples) < 2:
        return _mean([w for _, w in samples])
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples)]
    first = sorted(gaps)[len(gaps) // 2]  # the first sample covers a typical interval
    weights = [first, *gaps]
    total = sum(weights)
    if total <= 0:
        return _mean([w for _, w in samples])
    return sum(w * g for (_, w), g in zip(samples, weights, strict=True)) / total


def _block_means(values: Sequence[float]) -> list[float]:
    """Means of up to 10 consecutive equal blocks (batch means: power samples are autocorrelated)."""
    k = min(_MAX_BLOCKS, len(values) // 3)
    if k < 2:
        return []
    size = len(values) / k
    return [_mean(values[int(i * size) : int((i + 1) * size)]) for i in range(k)]


def _se(values: Sequence[float]) -> tuple[float, int] | None:
    """Standard error of the mean by batch means, and its degrees of freedom."""
    blocks = _block_means(values)
    if len(blocks) < 2:
        return None
    m = _mean(blocks)
    var = sum((b - m) ** 2 for b in blocks) / (len(blocks) - 1)
    return math.sqrt(var / len(blocks)), len(blocks) - 1


def energy_section(
    source: PowerSource,
    samples: Sequence[tuple[int, float]],
    idle: Sequence[tuple[int, float]],
    *,
    start_ns: int,
    end_ns: int,
    runs: int,
) -> dict[str, Any]:
    """The result's ``energy`` object from power samples and the steady-state window.

    ``{mj_per_inference, ci95, avg_power_w, idle_power_w, rail, source,
    samples}`` plus ``partial``, ``note``, ``active_power_w``, ``rate_hz``,
    ``seconds``, ``runs``, ``idle_samples``. ``ci95`` is a t interval from
    batch means of the window's and the baseline's samples (null with fewer
    than 6 samples in either). ``mj_per_inference`` is null when the window
    holds fewer than :data:`MIN_WINDOW_SAMPLES` samples or there is no baseline.
    """
    in_window = [(t, w) for t, w in samples if start_ns <= t <= end_ns]
    window = [w for _, w in in_window]
    idle_w = [w for _, w in idle]
    avg = _time_weighted_mean(in_window) if in_window else None
    idle_avg = _time_weighted_mean(idle) if idle else None
    seconds = max(0.0, (end_ns - start_ns) / 1e9)
    section: dict[str, Any] = {
        "mj_per_inference": None,
        "ci95": None,
        "avg_power_w": round(avg, 4) if avg is not None else None,
        "idle_power_w": round(idle_avg, 4) if idle_avg is not None else None,
        "active_power_w": None,
        "rail": source.rail,
        "source": source.source,
        "partial": source.partial,
        "note": source.note,
        "samples": len(window),
        "idle_samples": len(idle_w),
        "rate_hz": round(len(window) / seconds, 2) if seconds > 0 else None,
        "seconds": round(seconds, 4),
        "runs": runs,
    }
    if (
        len(window) < MIN_WINDOW_SAMPLES
        or avg is None
        or idle_avg is None
        or runs < 1
        or seconds <= 0
    ):
        section["note"] = "; ".join(
            n
            for n in (
                source.note,
                f"too few power samples ({len(window)} in {seconds:.2f} s) for a figure: "
                "lengthen --min-seconds",
            )
            if n
        )
        return section
    active = avg - idle_avg
    per_run_s = seconds / runs
    mj = active * per_run_s * 1000.0
    section["active_power_w"] = round(active, 4)
    section["mj_per_inference"] = mj
    se_window, se_idle = _se(window), _se(idle_w)
    if se_window is not None and se_idle is not None:
        se = math.hypot(se_window[0], se_idle[0])
        df = min(se_window[1], se_idle[1])
        half = _T975[df - 1] * se * per_run_s * 1000.0
        section["ci95"] = [mj - half, mj + half]
    return section


def summarize(section: Mapping[str, Any] | None) -> str | None:
    """One line for people: '1.23 mJ/inference [1.1–1.4] (VDD_IN, ina3221-hwmon)'."""
    if not section or section.get("mj_per_inference") is None:
        return None
    ci = section.get("ci95")
    interval = f" [{ci[0]:.3g}–{ci[1]:.3g}]" if ci else ""
    partial = ", partial" if section.get("partial") else ""
    return (
        f"{section['mj_per_inference']:.3g} mJ/inference{interval} "
        f"({section.get('rail')}, {section.get('source')}{partial})"
    )
