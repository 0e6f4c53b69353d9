"""What the parent watches around one worker: cool-down, idle power, power and thermal samples.

The runner wraps its worker in an :class:`Observation`:

    obs = Observation(settings, root)
    request["env"] = obs.before_worker()     # settle (--cool-down), idle power baseline
    with obs:                                # samplers run while the worker does
        outcome = run_child(request, ...)
    sections = obs.sections(worker_data)     # energy{}, timeline[], sustained{}

Every part is best effort: no sensor, no thermometer or a failing reading
leaves its section null and never fails the measurement.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from profiler.settings import ProfileSettings

log = logging.getLogger(__name__)


class Observation:
    """The parent-side observers of one measurement."""

    def __init__(self, settings: ProfileSettings, root: str = "/") -> None:
        self.settings = settings
        self.root = root
        self.power: Any = None
        self.idle: list[tuple[int, float]] = []
        self.settle: dict[str, Any] | None = None
        self._power_sampler: Any = None
        self._thermal_sampler: Any = None

    def _read_temp(self) -> float | None:
        from profiler.environment import cpu_temperature

        return cpu_temperature(self.root)[0]

    def before_worker(self) -> dict[str, Any]:
        """Cool-down settle and idle power baseline; returns the worker request's ``env``."""
        env: dict[str, Any] = {"root": self.root, "idle_c": None, "waited_s": 0.0}
        if self.settings.cool_down:
            from profiler.sustained import wait_until_settled

            try:
                self.settle = wait_until_settled(self._read_temp, self.settings.cool_down_max_s)
            except Exception:  # a thermometer must never sink a measurement
                log.debug("cool-down settle failed", exc_info=True)
            if self.settle is not None:
                env.update(idle_c=self.settle["idle_c"], waited_s=self.settle["waited_s"])
                env["settle"] = self.settle
        if self.settings.energy:
            from profiler.energy import IDLE_SECONDS, SAMPLE_INTERVAL_S, find_power_source
            from profiler.sampler import collect_for

            self.power = find_power_source(self.root)
            if self.power is not None:
                # The baseline: nothing of ours runs yet, just before the worker does.
                self.idle = collect_for(self.power.read, IDLE_SECONDS, SAMPLE_INTERVAL_S)
        return env

    def __enter__(self) -> Observation:
        from profiler.sampler import PeriodicSampler

        if self.power is not None:
            from profiler.energy import SAMPLE_INTERVAL_S

            self._power_sampler = PeriodicSampler(
                self.power.read, SAMPLE_INTERVAL_S, "edgeprof-power"
            ).start()
        if self.settings.sustained_s is not None:
            from profiler.sustained import THERMAL_INTERVAL_S, thermal_reading

            root = self.root
            self._thermal_sampler = PeriodicSampler(
                lambda: thermal_reading(root), THERMAL_INTERVAL_S, "edgeprof-thermal"
            ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for sampler in (self._power_sampler, self._thermal_sampler):
            if sampler is not None:
                sampler.stop()

    def sections(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``energy``, ``timeline`` and ``sustained`` of the result (None where absent)."""
        phases = data.get("phases") if isinstance(data.get("phases"), Mapping) else {}
        steady = phases.get("steady") if isinstance(phases, Mapping) else None
        out: dict[str, Any] = {"energy": None, "timeline": None, "sustained": None}
        if not isinstance(steady, Mapping) or not isinstance(steady.get("start_ns"), int):
            return out
        start, end = int(steady["start_ns"]), int(steady["end_ns"])
        if self.power is not None and self._power_sampler is not None:
            from profiler.energy import energy_section

            out["energy"] = energy_section(
                self.power,
                self._power_sampler.samples,
                self.idle,
                start_ns=start,
                end_ns=end,
                runs=int(steady.get("runs") or 0),
            )
        blocks = data.get("blocks")
        if self._thermal_sampler is not None and isinstance(blocks, list):
            from profiler import sustained

            rows = sustained.timeline(blocks, self._thermal_sampler.samples, start)
            out["timeline"] = rows
            out["sustained"] = sustained.summary(rows, float(self.settings.sustained_s or 0.0))
        return out
