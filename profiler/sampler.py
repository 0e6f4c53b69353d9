"""A background thread that reads one value periodically, with monotonic timestamps.

The runner samples power and the thermal state in the parent while the worker
measures. Timestamps are ``time.monotonic_ns()``: CLOCK_MONOTONIC, the clock
the worker stamps its steady state with, shared by every process on the
machine, so samples and runs line up without any clock exchange.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SAMPLES = 200_000
"""Bound of kept samples (a 10 min sustained run at 20 Hz keeps 12,000)."""


class PeriodicSampler(Generic[T]):
    """Calls ``read()`` every ``interval_s`` seconds on a daemon thread.

    ``read`` returning None (a failed or torn reading) records nothing; an
    exception stops nothing either (logged once at debug level). The schedule
    is absolute (start + k·interval), so a slow read does not shift later
    samples; a read slower than the interval simply lowers the rate, which the
    caller sees in the timestamps.
    """

    def __init__(self, read: Callable[[], T | None], interval_s: float, name: str) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._read = read
        self._interval_ns = int(interval_s * 1e9)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.samples: list[tuple[int, T]] = []
        self._failed = False

    def _sample(self) -> None:
        try:
            value = self._read()
        except Exception as exc:  # a sensor must never sink a measurement
            if not self._failed:
                log.debug("%s: reading failed: %s", self._thread.name, exc)
                self._failed = True
            return
        if value is not None and len(self.samples) < MAX_SAMPLES:
            self.samples.append((time.monotonic_ns(), value))

    def _run(self) -> None:
        next_at = time.monotonic_ns()
        while not self._stop.is_set():
            self._sample()
            next_at += self._interval_ns
            delay = (next_at - time.monotonic_ns()) / 1e9
            if delay < 0:  # fell behind (slow read): restart the schedule from now
                next_at = time.monotonic_ns()
                delay = 0.0
            if self._stop.wait(delay):
                break

    def start(self) -> PeriodicSampler[T]:
        self._thread.start()
        return self

    def stop(self) -> list[tuple[int, T]]:
        """Stop sampling (one last reading is taken) and return every sample."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=5.0)
            self._sample()
        return self.samples

    def __enter__(self) -> PeriodicSampler[T]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def collect_for(
    read: Callable[[], T | None], seconds: float, interval_s: float
) -> list[tuple[int, T]]:
    """Sample ``read`` for ``seconds`` in the calling thread (an idle baseline)."""
    samples: list[tuple[int, T]] = []
    end = time.monotonic_ns() + int(seconds * 1e9)
    next_at = time.monotonic_ns()
    while True:
        try:
            value = read()
        except Exception as exc:  # absent or flaky sensor: the baseline is just shorter
            log.debug("baseline reading failed: %s", exc)
            value = None
        now = time.monotonic_ns()
        if value is not None:
            samples.append((now, value))
        next_at += int(interval_s * 1e9)
        if next_at >= end:
            break
        time.sleep(max(0.0, (next_at - time.monotonic_ns()) / 1e9))
    return samples
