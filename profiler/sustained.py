"""Sustained runs and cool-down: how a model behaves once the board is hot.

``--sustained 10m`` replaces the steady state by one continuous run of that
length, cut into blocks (:func:`block_seconds`); the worker reports each
block's runs and latency p50 with CLOCK_MONOTONIC stamps, the parent samples
temperature, CPU frequency and throttle state once a second, and
:func:`timeline` joins the two into the result's ``timeline[]``.
:func:`summary` says when throttling began and the latency before vs after.

``--cool-down`` waits (bounded) before measuring: the parent first waits
until the CPU temperature stops falling (the board is at idle; that
temperature is the reference), then the worker, after loading and warming up,
waits until it is back within ``cool_down_margin_c`` of it.

Neither half imports a runtime or NumPy: the worker side takes the timed loop
and the thermometer as arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

TIMELINE_MAX_BLOCKS = 120
"""A sustained run is cut into at most this many blocks (and blocks of at least 1 s)."""
THERMAL_INTERVAL_S = 1.0
SETTLE_WINDOW_S = 10.0
"""The temperature has stopped falling when it fell less than :data:`SETTLE_DROP_C` in this long."""
SETTLE_DROP_C = 0.5
POLL_S = 0.5


def block_seconds(duration_s: float) -> float:
    """Length of one timeline block: at least 1 s, at most 120 blocks in all."""
    return max(1.0, duration_s / TIMELINE_MAX_BLOCKS)


class _Loop(Protocol):
    samples: Any
    runs: int
    elapsed_ns: int


def run_blocks(
    timed_loop: Callable[[int, int, int], _Loop],
    duration_s: float,
) -> tuple[list[int], list[dict[str, Any]], int, int]:
    """Run back-to-back timed blocks for ``duration_s``; the worker's sustained steady state.

    ``timed_loop(min_runs, min_ns, max_ns)`` is the worker's loop (one block).
    Returns (all kept samples in ns, blocks, total runs, elapsed ns); each block
    is ``{start_ns, end_ns, runs, p50_ms, p90_ms}`` with CLOCK_MONOTONIC stamps.
    Samples are thinned (every other one dropped) whenever they pass
    :data:`MAX_KEPT`, so memory stays bounded over a long run; each block's
    percentiles are computed on all of its own samples first.
    """
    block_ns = int(block_seconds(duration_s) * 1e9)
    end_at = time.monotonic_ns() + int(duration_s * 1e9)
    kept: list[int] = []
    stride = 1
    blocks: list[dict[str, Any]] = []
    runs = 0
    start = time.monotonic_ns()
    while True:
        remaining = end_at - time.monotonic_ns()
        if remaining <= 0:
            break
        length = min(block_ns, remaining)
        t0 = time.monotonic_ns()
        loop = timed_loop(1, length, length)
        t1 = time.monotonic_ns()
        values = sorted(loop.samples)
        blocks.append(
            {
                "start_ns": t0,
                "end_ns": t1,
                "runs": loop.runs,
                "p50_ms": _percentile(values, 0.5) / 1e6 if values else None,
                "p90_ms": _percentile(values, 0.9) / 1e6 if values else None,
            }
        )
        runs += loop.runs
        kept.extend(list(loop.samples)[::stride])
        while len(kept) > MAX_KEPT:
            del kept[1::2]
            stride *= 2
    return kept, blocks, runs, time.monotonic_ns() - start


MAX_KEPT = 100_000


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    # Hyndman & Fan 7, as profiler.stats (not imported: the worker keeps its imports small).
    h = (len(sorted_values) - 1) * q
    lo = int(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo]))


# --------------------------------------------------------------------------- cool-down


def wait_until_settled(read_temp: Callable[[], float | None], max_s: float) -> dict[str, Any]:
    """Wait until the temperature stops falling (idle), at most ``max_s``; the parent's half.

    Returns ``{idle_c, start_c, waited_s, settled}``; ``idle_c`` is the last
    reading (None without a thermometer: then nothing is waited for).
    """
    t0 = time.monotonic()
    first = read_temp()
    if first is None:
        return {"idle_c": None, "start_c": None, "waited_s": 0.0, "settled": False}
    history: list[tuple[float, float]] = [(t0, first)]
    settled = False
    while time.monotonic() - t0 < max_s:
        time.sleep(POLL_S)
        now, temp = time.monotonic(), read_temp()
        if temp is None:
            break
        history.append((now, temp))
        older = [c for t, c in history if t <= now - SETTLE_WINDOW_S]
        if older and older[-1] - temp < SETTLE_DROP_C:
            settled = True
            break
    return {
        "idle_c": history[-1][1],
        "start_c": first,
        "waited_s": round(time.monotonic() - t0, 3),
        "settled": settled,
    }


def wait_until_cool(
    read_temp: Callable[[], float | None], idle_c: float | None, margin_c: float, max_s: float
) -> dict[str, Any]:
    """Wait until the temperature is within ``margin_c`` of ``idle_c``, at most ``max_s``.

    The worker's half, between warm-up and the steady state. Returns
    ``{start_c, end_c, waited_s, reached}``; ``reached`` is None when there is
    no thermometer or no idle reference.
    """
    t0 = time.monotonic()
    start = read_temp()
    if start is None or idle_c is None:
        return {"start_c": start, "end_c": start, "waited_s": 0.0, "reached": None}
    temp: float | None = start
    while temp is not None and temp > idle_c + margin_c and time.monotonic() - t0 < max_s:
        time.sleep(min(POLL_S, max(0.0, max_s - (time.monotonic() - t0))))
        temp = read_temp()
    return {
        "start_c": start,
        "end_c": temp,
        "waited_s": round(time.monotonic() - t0, 3),
        "reached": temp is not None and temp <= idle_c + margin_c,
    }


# --------------------------------------------------------------------------- parent side


def thermal_reading(root: str = "/") -> dict[str, Any] | None:
    """What the timeline records of the machine now: temperature, frequency, throttle state."""
    from profiler import environment

    temp, _source = environment.cpu_temperature(root)
    freq = environment.cpu_frequency(root)
    pi = environment.pi_throttled() if root == "/" else None
    return {
        "temp_c": temp,
        "cpu_freq_mhz": freq.get("mean"),
        "cpu_freq_cap_mhz": freq.get("cap"),
        "governor": freq.get("governor"),
        "throttle_count": environment.throttle_count(root),
        "pi_throttled": pi,
    }


def _as_snapshot(reading: Mapping[str, Any]) -> dict[str, Any]:
    """A reading in the shape environment.throttled_between compares."""
    return {
        "cpu_freq_mhz": {
            "mean": reading.get("cpu_freq_mhz"),
            "cap": reading.get("cpu_freq_cap_mhz"),
        },
        "governor": reading.get("governor"),
        "throttle_count": reading.get("throttle_count"),
        "pi_throttled": reading.get("pi_throttled"),
    }


def _throttle_bits(reading: Mapping[str, Any]) -> str | None:
    pi = reading.get("pi_throttled")
    return str(pi.get("raw")) if isinstance(pi, Mapping) else None


def timeline(
    blocks: Sequence[Mapping[str, Any]],
    readings: Sequence[tuple[int, Mapping[str, Any]]],
    start_ns: int,
) -> list[dict[str, Any]]:
    """``timeline[]``: one row per block, joined with the thermal readings taken during it.

    Row: ``{t_s, seconds, runs, p50_ms, p90_ms, temp_c, cpu_freq_mhz,
    cpu_freq_cap_mhz, throttle_bits, throttled}``. ``t_s`` is the block's end
    from the start of the steady state; temperature and frequency are the last
    reading inside the block (the previous one when a block is shorter than
    the reading interval); ``throttled`` compares that reading with the first
    of the run (:func:`profiler.environment.throttled_between`).
    """
    from profiler.environment import throttled_between

    base = _as_snapshot(readings[0][1]) if readings else None
    rows: list[dict[str, Any]] = []
    index = 0
    last: Mapping[str, Any] | None = None
    for block in blocks:
        while index < len(readings) and readings[index][0] <= block["end_ns"]:
            last = readings[index][1]
            index += 1
        reading = last or {}
        throttled = (
            throttled_between(base, _as_snapshot(reading)) if base is not None and last else None
        )
        rows.append(
            {
                "t_s": round((block["end_ns"] - start_ns) / 1e9, 3),
                "seconds": round((block["end_ns"] - block["start_ns"]) / 1e9, 3),
                "runs": block["runs"],
                "p50_ms": block["p50_ms"],
                "p90_ms": block["p90_ms"],
                "temp_c": reading.get("temp_c"),
                "cpu_freq_mhz": reading.get("cpu_freq_mhz"),
                "cpu_freq_cap_mhz": reading.get("cpu_freq_cap_mhz"),
                "throttle_bits": _throttle_bits(reading),
                "throttled": throttled,
            }
        )
    return rows


def _median(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    return _percentile(ordered, 0.5) if ordered else None


def summary(rows: Sequence[Mapping[str, Any]], duration_s: float) -> dict[str, Any]:
    """``sustained{...}``: when throttling began and latency before vs after.

    ``{duration_s, blocks, throttle_began_s, latency_before_ms, latency_after_ms,
    slowdown, temp_c_first, temp_c_max}``: ``throttle_began_s`` is the start of
    the first throttled block (null if none); before/after are the medians of the
    blocks' p50 on either side (``after`` null without throttling; ``before`` then
    covers the whole run); ``slowdown`` = after / before.
    """
    onset = next((i for i, r in enumerate(rows) if r.get("throttled")), None)
    p50s = [r["p50_ms"] for r in rows if r.get("p50_ms") is not None]
    temps = [r["temp_c"] for r in rows if r.get("temp_c") is not None]
    before = [r["p50_ms"] for r in rows[:onset] if r.get("p50_ms") is not None]
    after = (
        [r["p50_ms"] for r in rows[onset:] if r.get("p50_ms") is not None]
        if onset is not None
        else []
    )
    before_ms = _median(before if onset is not None else p50s)
    after_ms = _median(after)
    began = None
    if onset is not None:
        row = rows[onset]
        began = round(float(row["t_s"]) - float(row["seconds"]), 3)
    return {
        "duration_s": duration_s,
        "blocks": len(rows),
        "throttle_began_s": began,
        "latency_before_ms": before_ms,
        "latency_after_ms": after_ms,
        "slowdown": after_ms / before_ms if before_ms and after_ms else None,
        "temp_c_first": temps[0] if temps else None,
        "temp_c_max": max(temps) if temps else None,
    }
