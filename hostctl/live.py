"""Live checks: the baseline and the candidate measured interleaved on each device.

Each round sends every target device a run of jobs in ABBA order (A B B A A B
...), each job one fresh worker, so drift and thermal state hit both sides
alike; the models go out once and stay cached. Consecutive jobs form pairs
(A1, B1), (B2, A2), ... that :mod:`profiler.compare` reads as paired runs.
While a comparison is still INCONCLUSIVE another round is added, within the
time budget; each further round doubles the pairs.

**The models are cached before the first round.** An agent runs a job as soon
as its files are there: sent together with the transfer, every run of a model
the device already holds would run first, while the other downloads (A A A A
... B B B B), and the "pairs" would straddle the transfer. So the check first
sends one short run of each side (``LABEL:warmup``, never compared), and only
then the interleaved rounds. As a second guard, a pair whose two runs did not
run back to back on the device (their recorded start times say so) is left out
and counted.

**Repeated looks spend the error rate.** Looking at the data after every round
and stopping when it decides would, left alone, let noise reach a verdict it
would not reach at a fixed size. Look k is judged at family-wise level
``alpha / 2**k`` (2.5 %, 1.25 %, ...): the levels sum to less than alpha, so the
probability that any look gives a wrong verdict stays below 5 % (a union bound).
As the pairs double from look to look (8, 16, 32, 64 ...), the spent level
halves while the interval narrows by about 1/sqrt(2): later looks still decide.
A verdict reached at a look stands.

Pure code over a connected session (no typer, no rich).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError
from hostctl.format import number
from hostctl.gate import Subject, compare_subjects

if TYPE_CHECKING:
    from hostctl.fleet import Failure, Job, PushOutcome
    from hostctl.mqtt import HostSession
    from hostctl.store import ResultStore
    from profiler.compare import Comparison, Tolerances
    from protocol.signing import SigningKey

logger = logging.getLogger(__name__)

FIRST_PAIRS = 8
"""Pairs per device in the first round: with Holm over p50 and p90 and the first
look's 2.5 %, 8 pairs are the fewest that can decide (the signed-rank's smallest
p-value is 2 / 2**n)."""
MIN_PAIRS = 4
"""The smallest further round: fewer pairs would not move a verdict."""

STANDING_ERRORS = frozenset(
    {
        "not_found",
        "unsupported_format",
        "bad_model",
        "custom_op",
        "runtime_missing",
        "dynamic_shape",
        "bad_input",
        "bad_eval_data",
    }
)
"""Error codes of a run that every later run of the same model and options would repeat
(a crash, a timeout or running out of memory may not: those the rounds measure)."""

FIXED_METRICS = frozenset({"accuracy_top1", "model_size"})
"""Comparisons that more rounds cannot narrow: top-1 comes from the first evaluated
run of each side (more eval data would narrow it), the size is exact."""

WARMUP_SETTINGS: dict[str, Any] = {
    "runs": 1,
    "warmup": 0,
    "min_seconds": 0.0,
    "warmup_seconds": 0.0,
    "keep_samples": False,
    "cool_down": False,
    "sustained_s": None,
    "per_op": False,
}
"""What the warm-up run of each side changes in its settings: one inference (the
files it brings, eval and inputs data included, are what matters)."""


@dataclass(frozen=True)
class LiveSide:
    """One side of a live check: a model file and the settings it runs with."""

    model: Path
    settings: dict[str, Any]


@dataclass
class LiveOutcome:
    """What the rounds produced."""

    subjects: list[Subject]
    comparisons: list[Comparison]
    rounds: int = 0
    pairs: int = 0
    """Pairs per device sent."""
    elapsed_s: float = 0.0
    stopped: str = ""
    """Why no further round was added."""
    failures: list[Failure] = field(default_factory=list)
    looks: list[float] = field(default_factory=list)
    """The family-wise level of each look."""
    interrupted: bool = False
    """Ctrl-C stopped the waiting (the jobs sent go on on their devices)."""
    warmup_s: float = 0.0
    """Seconds the warm-up runs took (the models' transfer and one run of each)."""
    not_back_to_back: dict[str, int] = field(default_factory=dict)
    """Per device, pairs left out because their two runs did not run one after the other."""
    warmup_failures: list[Failure] = field(default_factory=list)
    """Warm-up runs without a result (not lost runs: the device's pairs say what it gave)."""

    def lost_lines(self) -> list[str]:
        """One line per device whose runs gave no result, with how many and why."""
        by_device: dict[str, list[Failure]] = {}
        for f in self.failures:
            by_device.setdefault(f.device_id, []).append(f)
        checked = {s.key[0] for s in self.subjects}
        lines = []
        for device_id, apart in sorted(self.not_back_to_back.items()):
            if apart and device_id not in checked and device_id not in by_device:
                lines.append(
                    f"{device_id}: no pair of results ({apart} pair(s) left out: their runs "
                    "did not run back to back, as when the device lacked a model's file)"
                )
        for device_id, failures in sorted(by_device.items()):
            reasons = sorted({f"{f.state}: {f.reason}" for f in failures})
            what = (
                "no pair of results"
                if device_id not in checked
                else (f"{len(failures)} run(s) without a result")
            )
            lines.append(f"{device_id}: {what} ({'; '.join(reasons[:3])})")
        return lines

    def summary(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "pairs_per_device": self.pairs,
            "elapsed_s": round(self.elapsed_s, 1),
            "stopped": self.stopped,
            "looks_alpha": self.looks,
            "interrupted": self.interrupted,
            "warmup_s": round(self.warmup_s, 1),
            "pairs_not_back_to_back": sum(self.not_back_to_back.values()),
            "warmup_failures": [_failure_dict(f) for f in self.warmup_failures],
            "failures": [_failure_dict(f) for f in self.failures],
        }


def _failure_dict(f: Failure) -> dict[str, Any]:
    return {"device": f.device_id, "model": f.model, "state": f.state, "reason": f.reason}


def fewest_pairs(comparisons: int, look_alpha: float) -> int:
    """The fewest pairs whose signed-rank test can reach Holm's first level among
    ``comparisons`` tested comparisons at family-wise ``look_alpha``: the smallest
    two-sided p-value of n pairs is 2 / 2**n."""
    n = 1
    while 2.0 / 2.0**n > look_alpha / max(1, comparisons):
        n += 1
    return n


def abba(start: int, n: int) -> list[str]:
    """The sides of ``n`` pairs from pair number ``start`` on: pair i is "AB" when i
    is even, "BA" when odd (A B B A A B B A ...)."""
    out: list[str] = []
    for i in range(start, start + n):
        out.extend(("A", "B") if i % 2 == 0 else ("B", "A"))
    return out


def _plan(
    order: Sequence[str], baseline: LiveSide, candidate: LiveSide, label: str
) -> tuple[list[Path], list[dict[str, Any]], list[tuple[int, int, str | None]]]:
    """Models, settings and the job plan of one round (a file or settings shared by
    both sides is sent once)."""
    models = [baseline.model]
    if candidate.model.resolve() != baseline.model.resolve():
        models.append(candidate.model)
    settings = [baseline.settings]
    if candidate.settings != baseline.settings:
        settings.append(candidate.settings)
    index = {
        "A": (0, 0, f"{label}:baseline"),
        "B": (len(models) - 1, len(settings) - 1, f"{label}:candidate"),
    }
    return models, settings, [index[side] for side in order]


def _steady_start(doc: dict[str, Any] | None) -> float | None:
    """When a run's steady state started, on the device's CLOCK_MONOTONIC (ns)."""
    phases = doc.get("phases") if isinstance(doc, dict) else None
    steady = phases.get("steady") if isinstance(phases, dict) else None
    if not isinstance(steady, dict) or steady.get("clock") != "CLOCK_MONOTONIC":
        return None
    return number(steady.get("start_ns"))


def _wall_start(doc: dict[str, Any] | None) -> float | None:
    """When a run started, on the device's wall clock, as its environment records it."""
    env = doc.get("env") if isinstance(doc, dict) else None
    before = env.get("before") if isinstance(env, dict) else None
    return number(before.get("time")) if isinstance(before, dict) else None


def _start_times(jobs: Sequence[Job]) -> list[float | None]:
    """The start of each job's run on one device: the monotonic clock when every run
    that has a steady state records it (immune to clock steps), else the wall clock.
    None for a run without one (no result, or an error before any timing)."""
    docs = [job.result for job in jobs]
    mono = [_steady_start(d) for d in docs]
    timed = [d for d in docs if isinstance(d, dict) and d.get("phases")]
    if timed and all(_steady_start(d) is not None for d in timed):
        return mono
    return [_wall_start(d) for d in docs]


def _pairs_of(
    jobs: Sequence[Job], order: Sequence[str]
) -> tuple[dict[str, list[tuple[dict[str, Any] | None, dict[str, Any] | None]]], dict[str, int]]:
    """Per device, the (baseline, candidate) result documents of each pair, in order,
    and per device how many pairs were left out because their runs did not run back
    to back: another run of the round started between them, by the start times the
    results record. A pair with a run of unknown start (no result, an error before
    any timing) is kept: the comparison counts what it lacks."""
    by_device: dict[str, list[Job]] = {}
    for job in jobs:
        by_device.setdefault(job.device_id, []).append(job)
    out: dict[str, list[tuple[dict[str, Any] | None, dict[str, Any] | None]]] = {}
    apart: dict[str, int] = {}
    for device_id, device_jobs in by_device.items():
        times = _start_times(device_jobs)
        known = sorted(t for t in times if t is not None)
        pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
        left_out = 0
        for i in range(0, len(order) - 1, 2):
            first, second = device_jobs[i], device_jobs[i + 1]
            a, b = (first, second) if order[i] == "A" else (second, first)
            t1, t2 = times[i], times[i + 1]
            if t1 is not None and t2 is not None:
                low, high = min(t1, t2), max(t1, t2)
                if any(low < t < high for t in known):
                    left_out += 1
                    pairs.append((None, None))
                    continue
            pairs.append((a.result, b.result))
        out[device_id] = pairs
        apart[device_id] = left_out
    return out, apart


def _baseline_must_run(jobs: Sequence[Job]) -> None:
    """After the warm-up: a baseline whose run fails on a device in a way every run would
    repeat (:data:`STANDING_ERRORS`) leaves nothing to compare there (a failing
    candidate is a regression the rounds will show): stop at once. ``jobs`` are the
    warm-up's, every job of it in plan order ("AB": a device's first is the
    baseline's), those without a result included (fleet.push returns them all)."""
    from protocol.result import ResultError, read_result

    seen: set[str] = set()
    for job in jobs:
        if job.device_id in seen:
            continue
        seen.add(job.device_id)
        if job.result is None:
            continue
        try:
            run = read_result(job.result)
        except ResultError:
            continue
        if not run.ok and run.error is not None and run.error.code in STANDING_ERRORS:
            lines = run.error.message.strip().splitlines() or [""]
            message = lines[0][:200] + ("…" if len(lines[0]) > 200 or len(lines) > 1 else "")
            raise HostctlError(
                f"the baseline failed on {job.device_id} in the warm-up "
                f"({run.error.code}: {message}): the check cannot measure it; "
                "fix the model or the options and run it again"
            )


def _subjects(
    pairs: dict[str, list[tuple[dict[str, Any] | None, dict[str, Any] | None]]],
) -> list[Subject]:
    """One paired subject per device; a pair missing a result is left out (a pair
    with an error result stays: the comparison counts it)."""
    from protocol.result import ResultError, read_result

    subjects = []
    for device_id in sorted(pairs):
        subject = Subject((device_id,), ("device",), paired=True)
        for a, b in pairs[device_id]:
            if a is None or b is None:
                continue
            try:
                ra, rb = read_result(a), read_result(b)
            except ResultError:
                continue
            subject.baseline.append(ra)
            subject.candidate.append(rb)
        if subject.baseline:
            subjects.append(subject)
    return subjects


def _key(c: Comparison) -> tuple[str, str]:
    # live subjects are one per device: the device names it (the title is made of run
    # values, which a failed run can change)
    return str(c.subject.get("device")), c.metric


def decide_look(
    subjects: Sequence[Subject],
    tolerances: Tolerances,
    look: int,
    settled: dict[tuple[str, str], Comparison],
) -> tuple[list[Comparison], float]:
    """The verdicts of look ``look`` (1-based) at its spent level; a verdict reached
    at an earlier look (``settled``) stands."""
    from profiler.compare import ALPHA, INCONCLUSIVE, decide

    alpha = ALPHA / 2**look
    decided = decide(compare_subjects(subjects, tolerances), alpha=alpha)
    out = []
    for c in decided:
        earlier = settled.get(_key(c))
        if earlier is not None and earlier.verdict != INCONCLUSIVE:
            out.append(earlier)
            continue
        c = replace(c, details={**c.details, "look": look, "look_alpha": alpha})
        if c.verdict != INCONCLUSIVE:
            settled[_key(c)] = c
        out.append(c)
    return out, alpha


def run_live(
    session: HostSession,
    store: ResultStore,
    key: SigningKey,
    *,
    baseline: LiveSide,
    candidate: LiveSide,
    tolerances: Tolerances,
    devices: Sequence[str] = (),
    tags: Sequence[str] = (),
    all_devices: bool = False,
    skip_offline: bool = False,
    label: str,
    budget_s: float,
    round_timeout: float,
    first_pairs: int = FIRST_PAIRS,
    comparisons_per_device: int = 2,
    attachments: dict[str, Path] | None = None,
    chunk_size: int = 64 * 1024,
    on_update: Callable[[Job], None] | None = None,
    on_targets: Callable[[list[Job]], None] | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> LiveOutcome:
    """Rounds of interleaved runs on every target until every comparison is decided,
    one FAILs, or the next round would not fit in ``budget_s`` (the first round
    always runs). Results are stored as they arrive, labelled
    ``LABEL:baseline`` / ``LABEL:candidate``."""
    from hostctl.fleet import push
    from profiler.compare import FAIL, INCONCLUSIVE

    started = time.monotonic()
    outcome = LiveOutcome([], [])
    pairs: dict[str, list[tuple[dict[str, Any] | None, dict[str, Any] | None]]] = {}
    settled: dict[tuple[str, str], Comparison] = {}
    from profiler.compare import ALPHA

    def round_push(
        models: list[Path],
        settings: list[dict[str, Any]],
        plan: Sequence[tuple[int, int, str | None]],
        targets: tuple[Sequence[str], Sequence[str], bool],
    ) -> PushOutcome:
        return push(
            session,
            store,
            key,
            models=models,
            settings=settings,
            devices=targets[0],
            tags=targets[1],
            all_devices=targets[2],
            label=label,
            timeout=round_timeout,
            chunk_size=chunk_size,
            attachments=attachments,
            skip_offline=skip_offline,
            plan=plan,
            on_update=on_update,
            on_targets=on_targets,
        )

    def unreachable_error(result: PushOutcome) -> None:
        unreachable = [f for f in result.failures if f.fatal and f.model is None]
        if unreachable or not result.jobs:
            # an offline or unknown target: the check could not cover what was asked
            reason = "; ".join(f"{f.device_id}: {f.state}: {f.reason}" for f in unreachable)
            raise HostctlError(
                f"cannot check on every target ({reason or 'no target'}); "
                "give reachable devices, or --skip-offline with --tag/--all"
            )

    # Warm-up: one short run of each side brings the files to every device, so that
    # the interleaved rounds run in the order they were sent.
    if on_round is not None:
        on_round(0, 0)
    warm = [
        LiveSide(side.model, {**side.settings, **WARMUP_SETTINGS}) for side in (baseline, candidate)
    ]
    models, settings, plan = _plan("AB", warm[0], warm[1], label)
    warm_plan = [(m, p, f"{label}:warmup") for m, p, _ in plan]
    result = round_push(models, settings, warm_plan, (devices, tags, all_devices))
    outcome.warmup_s = time.monotonic() - started
    if result.interrupted:
        outcome.interrupted = True
        outcome.stopped = "stopped by Ctrl-C during the warm-up (its jobs go on on their devices)"
        outcome.elapsed_s = outcome.warmup_s
        return outcome
    unreachable_error(result)
    outcome.warmup_failures.extend(f for f in result.failures if f.model is not None)
    _baseline_must_run(result.jobs)
    # The rounds go to the devices the warm-up reached, and no other (a device of a
    # --tag that was offline then would get its rounds without the files); the first
    # look can decide only with enough pairs for its share of alpha over all of them.
    reached = sorted({job.device_id for job in result.jobs})
    next_pairs = max(first_pairs, fewest_pairs(comparisons_per_device * len(reached), ALPHA / 2))
    round_s = 0.0
    while True:
        order = abba(outcome.pairs, next_pairs)
        models, settings, plan = _plan(order, baseline, candidate, label)
        if on_round is not None:
            on_round(outcome.rounds + 1, next_pairs)
        round_started = time.monotonic()
        result = round_push(models, settings, plan, (reached, (), False))
        round_s = time.monotonic() - round_started
        outcome.rounds += 1
        outcome.pairs += next_pairs
        outcome.failures.extend(result.failures)
        if outcome.rounds == 1:
            unreachable_error(result)
        if not result.jobs:
            outcome.stopped = "the last round reached no device"
            break
        round_pairs, apart = _pairs_of(result.jobs, order)
        for device_id, n in apart.items():
            outcome.not_back_to_back[device_id] = outcome.not_back_to_back.get(device_id, 0) + n
        for device_id, device_pairs in round_pairs.items():
            pairs.setdefault(device_id, []).extend(device_pairs)
        if result.interrupted:
            outcome.interrupted = True
            outcome.stopped = "stopped by Ctrl-C (the jobs sent go on on their devices)"
            break
        outcome.subjects = _subjects(pairs)
        outcome.comparisons, alpha = decide_look(
            outcome.subjects, tolerances, outcome.rounds, settled
        )
        outcome.looks.append(alpha)
        verdicts = {c.verdict for c in outcome.comparisons}
        elapsed = time.monotonic() - started
        if not outcome.comparisons:
            outcome.stopped = "no device returned a pair of results"
            break
        if FAIL in verdicts:
            outcome.stopped = "a comparison FAILed"
            break
        if INCONCLUSIVE not in verdicts:
            outcome.stopped = "every comparison is decided"
            break
        open_metrics = {c.metric for c in outcome.comparisons if c.verdict == INCONCLUSIVE}
        if open_metrics <= FIXED_METRICS:
            outcome.stopped = (
                f"more rounds would hardly decide {', '.join(sorted(open_metrics))} (top-1 "
                "is measured once a side: more eval data would narrow it)"
            )
            break
        # Each further round doubles the pairs (as many as the budget has room for):
        # looks grow geometrically, so their spent levels shrink no faster than the
        # intervals narrow.
        per_pair_s = round_s / max(1, order.count("A"))
        room = int((budget_s - elapsed) / per_pair_s) if per_pair_s > 0 else outcome.pairs
        # a round's jobs all expire with the round: keep it well inside --timeout
        fits = int(0.8 * round_timeout / per_pair_s) if per_pair_s > 0 else outcome.pairs
        next_pairs = min(outcome.pairs, room, fits)
        if next_pairs < MIN_PAIRS:
            outcome.stopped = (
                f"the time budget ({budget_s:.0f} s) leaves no room for another round "
                f"(about {per_pair_s * MIN_PAIRS:.0f} s for {MIN_PAIRS} pairs)"
            )
            break
    outcome.elapsed_s = time.monotonic() - started
    if not outcome.subjects:
        outcome.subjects = _subjects(pairs)
    return outcome
