"""Rate-limited log lines: a flood of bad messages costs a few lines, not a full disk.

A hostile or broken peer can send thousands of malformed messages a second;
each one is worth knowing about, but not worth a line (let alone a traceback)
each. :class:`LogLimiter` lets through at most ``per_minute`` lines per kind of
problem and says how many it held back when it speaks again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    started: float
    logged: int = 0
    suppressed: int = 0


class LogLimiter:
    """At most ``per_minute`` lines per key (thread-safe)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        per_minute: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.per_minute = per_minute
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def log(
        self, level: int, key: str, message: str, *args: object, exc_info: bool = False
    ) -> bool:
        """Log one line under `key` unless its quota for this minute is used up;
        True when it was logged."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.started >= 60.0:
                held = window.suppressed if window is not None else 0
                window = self._windows[key] = _Window(now)
                if len(self._windows) > 1000:  # keys are few; never let them grow unbounded
                    self._windows = {key: window}
            else:
                held = 0
            if window.logged >= self.per_minute:
                window.suppressed += 1
                return False
            window.logged += 1
        if held:
            message += " (%d similar message(s) suppressed in the last minute)"
            args = (*args, held)
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, key: str, message: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, message, *args)

    def error(self, key: str, message: str, *args: object, exc_info: bool = False) -> bool:
        return self.log(logging.ERROR, key, message, *args, exc_info=exc_info)

    def info(self, key: str, message: str, *args: object) -> bool:
        return self.log(logging.INFO, key, message, *args)
