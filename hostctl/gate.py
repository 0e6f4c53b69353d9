"""The regression gate's pure part: what each side is, which results are compared
with which, the comparisons and the verdict of one check (no typer, no rich).

``hostctl check`` and ``hostctl compare`` call these; the statistics live in
:mod:`profiler.compare` (the one implementation, see ``docs/gate.md``), the
live measurement in :mod:`hostctl.live`, the JUnit and markdown files in
:mod:`hostctl.gate_files`.

A **side** is written ``SPEC``: a model file (``.tflite`` / ``.onnx``: measured
live), a JSON file of result documents (``results --json``, ``push --json``,
``profile --json``, or a ``check --json`` report), or a selection of stored
results, ``KEY=VALUE[,KEY=VALUE...]`` with the keys of :data:`FILTER_KEYS` (a
key given twice matches either value; a bare word is a label). A model file may
carry settings for its side: ``m.tflite,runtime=tflite-runtime``.

**Pairing.** Results are compared per subject: device x model x runtime x
delegate/provider x threads x input shapes (:data:`DIMENSIONS`). What the two
sides are meant to differ in is left out of the subject: every dimension whose
values the two specs name differently (``runtime=litert`` against
``runtime=tflite-runtime``), the model when each side holds one model, and what
``--across`` names. A baseline subject without a candidate counterpart (or the
reverse) is reported as unmatched, never compared with something else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.store import ResultStore
    from profiler.compare import Comparison, Tolerances
    from protocol.result import Result

MODEL_SUFFIXES = (".tflite", ".onnx")
FILTER_KEYS = (
    "label",
    "job",
    "model",
    "device",
    "tag",
    "runtime",
    "provider",
    "threads",
    "since",
    "until",
)
"""Keys of a stored selection (``label=v1,device=pi-01``)."""
LIVE_KEYS = ("runtime", "provider", "threads")
"""Settings a model-file side may carry (``m.tflite,runtime=litert``)."""
DIMENSIONS = ("device", "model", "runtime", "provider", "threads", "shape")
"""What a subject is made of; ``--across`` names some of these."""
_SPEC_DIMENSION = {
    "device": "device",
    "model": "model",
    "runtime": "runtime",
    "provider": "provider",
    "threads": "threads",
}
MAX_JSON_FILE_BYTES = 256 * 1024 * 1024

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


class GateUsageError(HostctlError):
    """A check that cannot start (a side selects nothing, a bad spec): exit code 2."""


# --------------------------------------------------------------------------- sides


@dataclass(frozen=True)
class SideSpec:
    """One side of a check, as the user wrote it."""

    text: str
    kind: str
    """"live" (a model file), "json" (a file of result documents) or "stored"."""
    path: Path | None = None
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Stored: the selection. Live: the side's settings (runtime, provider, threads)."""

    @property
    def live(self) -> bool:
        return self.kind == "live"


def parse_side(text: str, role: str) -> SideSpec:
    """``text`` as a side (see the module doc); GateUsageError with one line when it
    is none. ``role`` ("baseline" / "candidate") names it in errors."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise GateUsageError(
            f"{role} {text!r}: empty; give a model file, a JSON file of results or a "
            "selection like label=v1,device=pi-01"
        )
    head = parts[0]
    path: Path | None = None
    if "=" not in head and (
        head.lower().endswith((*MODEL_SUFFIXES, ".json")) or Path(head).is_file()
    ):
        path = Path(head)
        parts = parts[1:]
    pairs: dict[str, list[str]] = {}
    for part in parts:
        if "=" not in part:
            if path is None and len(parts) == 1:
                pairs.setdefault("label", []).append(part)  # a bare word is a label
                continue
            raise GateUsageError(
                f"{role} {text!r}: {part!r} is not KEY=VALUE (keys: {', '.join(FILTER_KEYS)})"
            )
        key, _, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key == "jobs":
            key = "job"
        if key not in FILTER_KEYS or not value:
            keys, what = (
                (LIVE_KEYS, "setting of a model file")
                if path is not None and path.suffix.lower() in MODEL_SUFFIXES
                else (FILTER_KEYS, "selection key")
            )
            raise GateUsageError(
                f"{role} {text!r}: unknown {what} {key!r} (keys: {', '.join(keys)})"
                if key not in FILTER_KEYS
                else f"{role} {text!r}: {key}= needs a value"
            )
        pairs.setdefault(key, []).append(value)
    for key in ("since", "until"):
        if len(pairs.get(key, [])) > 1:
            raise GateUsageError(f"{role} {text!r}: {key}= given twice")
    filters = {k: tuple(v) for k, v in pairs.items()}
    if path is None:
        return SideSpec(text, "stored", None, filters)
    if not path.is_file():
        raise GateUsageError(f"{role} {path}: no such file")
    if path.suffix.lower() == ".json":
        if filters:
            raise GateUsageError(
                f"{role} {text!r}: a JSON file of results takes no selection; "
                "filter with --device, or select stored results instead"
            )
        return SideSpec(text, "json", path, {})
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise GateUsageError(f"{role} {path}: not a .tflite/.onnx model or a .json file of results")
    extra = sorted(set(filters) - set(LIVE_KEYS))
    if extra:
        raise GateUsageError(
            f"{role} {text!r}: a model file takes only {', '.join(LIVE_KEYS)} "
            f"(not {', '.join(extra)})"
        )
    for key, values in filters.items():
        if len(values) > 1:
            raise GateUsageError(f"{role} {text!r}: {key}= given twice")
    if "threads" in filters and not filters["threads"][0].isdigit():
        raise GateUsageError(f"{role} {text!r}: threads= takes a whole number")
    return SideSpec(text, "live", path, filters)


def read_json_results(path: Path, role: str) -> list[dict[str, Any]]:
    """The result documents of a JSON file: a list of them, one document, or a
    ``check --json`` report (its runs). GateUsageError with one line otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_FILE_BYTES:
            raise GateUsageError(
                f"{role} {path}: {size} bytes is more than a results file can be "
                f"({MAX_JSON_FILE_BYTES // (1024 * 1024)} MiB)"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GateUsageError(f"{role} {path}: cannot read it ({exc.strerror or exc})") from None
    except RecursionError:
        raise GateUsageError(f"{role} {path}: nested too deeply to be results") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise GateUsageError(
            f"{role} {path}: not JSON ({str(exc).splitlines()[0]}); give the output of "
            "`hostctl results --json`"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("runs"), dict):
        data = data["runs"].get(role)  # a check --json report keeps both sides' runs
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise GateUsageError(
            f"{role} {path}: not a list of result documents (`hostctl results --json` writes one)"
        )
    return [dict(d) for d in data]


def _matches(result: Result, filters: Mapping[str, tuple[str, ...]]) -> bool:
    """The filters the store cannot apply (several values, tags, runtime settings)."""
    checks: dict[str, Sequence[str | None]] = {
        "device": [result.device.id],
        "label": [result.label],
        "job": [result.job_id],
        "model": [result.model.name or "", result.model.stem or ""],
        "tag": list(result.device.tags),
        "runtime": [result.runtime.name, result.settings.runtime],
        "provider": [result.runtime.delegate_or_provider, result.settings.provider],
        "threads": [str(result.runtime.threads) if result.runtime.threads else None],
    }
    for key, wanted in filters.items():
        if key not in checks:
            continue
        have = [h for h in checks[key] if h]
        if key == "model":
            sha = (result.model.sha256 or "").lower()
            if not any(
                w in have[:2]
                or (
                    len(w) >= 8
                    and all(ch in "0123456789abcdef" for ch in w.lower())
                    and sha.startswith(w.lower())
                )
                for w in wanted
            ):
                return False
        elif not any(_same(h, w) for w in wanted for h in have):
            return False
    return True


def _same(have: str, wanted: str) -> bool:
    """Names as users write them: case and ``-``/``_`` do not matter
    (``tflite-runtime`` is the runtime a result names ``tflite_runtime``)."""
    return have.lower().replace("_", "-") == wanted.lower().replace("_", "-")


def load_stored(store: ResultStore, spec: SideSpec, role: str) -> list[dict[str, Any]]:
    """The stored results a selection names (error results too: the comparison counts
    them); GateUsageError when it names none."""
    f = spec.filters
    one = {k: v[0] for k, v in f.items() if len(v) == 1}
    docs = store.query(
        job_ids=list(f["job"]) if "job" in f else None,
        device=one.get("device"),
        model=one.get("model"),
        label=one.get("label"),
        since=one.get("since") or 0.0,
        until=one.get("until"),
    )
    from protocol.result import ResultError, read_result

    out = []
    for doc in docs:
        try:
            result = read_result(doc)
        except ResultError:
            continue
        if _matches(result, f):
            out.append(doc)
    if not out:
        said = ",".join(f"{k}={v}" for k, vs in f.items() for v in vs)
        raise GateUsageError(
            f"{role} {said}: no stored result matches; `hostctl results` lists what the store holds"
        )
    return out


# --------------------------------------------------------------------------- pairing


def _dimension(result: Result, dim: str) -> str:
    if dim == "device":
        return result.device.id or "?"
    if dim == "model":
        return result.model.name or result.model.sha256 or "?"
    if dim == "runtime":
        return result.runtime.name or "?"
    if dim == "provider":
        return result.runtime.delegate_or_provider or "-"
    if dim == "threads":
        return str(result.runtime.threads) if result.runtime.threads else "default"
    if dim == "shape":
        shapes = result.settings.input_shapes
        return "; ".join(f"{k}={'x'.join(map(str, v))}" for k, v in sorted(shapes.items())) or "-"
    raise ValueError(dim)


@dataclass
class Subject:
    """One device x model x runtime x settings and the runs of each side."""

    key: tuple[str, ...]
    dims: tuple[str, ...]
    baseline: list[Result] = field(default_factory=list)
    candidate: list[Result] = field(default_factory=list)
    paired: bool = False
    """baseline[i] and candidate[i] ran next to each other (live ABBA rounds)."""

    def describe(self) -> dict[str, Any]:
        """What was compared: the key's dimensions, and each side's value of the others."""
        out: dict[str, Any] = dict(zip(self.dims, self.key, strict=True))
        for dim in DIMENSIONS:
            if dim in out:
                continue
            a = sorted({_dimension(r, dim) for r in self.baseline})
            b = sorted({_dimension(r, dim) for r in self.candidate})
            out[dim] = {"baseline": ", ".join(a), "candidate": ", ".join(b)}
        versions = [
            sorted({r.runtime.version or "?" for r in side})
            for side in (self.baseline, self.candidate)
        ]
        out["runtime_version"] = {
            "baseline": ", ".join(versions[0]),
            "candidate": ", ".join(versions[1]),
        }
        return out

    def title(self) -> str:
        """``device · model · runtime · threads`` in words, sides shown where they differ."""
        info = self.describe()
        words = []
        for dim in ("device", "model", "runtime", "provider", "threads", "shape"):
            value = info.get(dim)
            if isinstance(value, dict):
                a, b = value["baseline"], value["candidate"]
                text = a if a == b else f"{a} → {b}"
            else:
                text = value
            if (dim == "provider" and text == "-") or (dim == "shape" and text == "-"):
                continue
            if dim == "threads":
                text = f"{text} threads" if text != "1" else "1 thread"
            words.append(text)
        return " · ".join(words)


@dataclass(frozen=True)
class Unmatched:
    """Results of one side with no counterpart on the other."""

    side: str
    subject: Mapping[str, str]
    runs: int
    hint: str | None = None

    def line(self) -> str:
        what = " · ".join(f"{v}" for v in self.subject.values())
        other = "candidate" if self.side == "baseline" else "baseline"
        text = f"{self.side} {what} ({self.runs} run(s)): no {other} counterpart"
        return text + (f"; {self.hint}" if self.hint else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "subject": dict(self.subject),
            "runs": self.runs,
            "hint": self.hint,
        }


def read_all(docs: Iterable[Mapping[str, Any]]) -> tuple[list[Result], int]:
    from protocol.result import ResultError, read_result

    out: list[Result] = []
    unreadable = 0
    for doc in docs:
        try:
            out.append(read_result(doc))
        except ResultError:
            unreadable += 1
    return out, unreadable


def compared_dimensions(
    baseline: SideSpec | None,
    candidate: SideSpec | None,
    base_runs: Sequence[Result],
    cand_runs: Sequence[Result],
    across: Iterable[str] = (),
) -> tuple[str, ...]:
    """The dimensions the two sides are meant to differ in (left out of the subject)."""
    out = set(across)
    if baseline is not None and candidate is not None:
        for key, dim in _SPEC_DIMENSION.items():
            a, b = baseline.filters.get(key), candidate.filters.get(key)
            # only what both name, differently: a filter on one side only narrows it
            if (
                a
                and b
                and {v.lower().replace("_", "-") for v in a}.isdisjoint(
                    v.lower().replace("_", "-") for v in b
                )
            ):
                out.add(dim)
        if baseline.live and candidate.live:
            out.add("model")
    models_a = {r.model.sha256 or r.model.name for r in base_runs}
    models_b = {r.model.sha256 or r.model.name for r in cand_runs}
    if len(models_a) == 1 and len(models_b) == 1:
        out.add("model")
    return tuple(d for d in DIMENSIONS if d in out)


def pair(
    baseline: Sequence[Result],
    candidate: Sequence[Result],
    across: Iterable[str],
) -> tuple[list[Subject], list[Unmatched]]:
    """Group both sides' runs by subject; the subjects with runs on both sides and
    the groups without a counterpart (with a hint when the sides differ in one
    dimension throughout: that may be what the user meant to compare)."""
    across = set(across)
    dims = tuple(d for d in DIMENSIONS if d not in across)
    groups: dict[tuple[str, ...], Subject] = {}
    for side, runs in (("baseline", baseline), ("candidate", candidate)):
        for run in runs:
            key = tuple(_dimension(run, d) for d in dims)
            subject = groups.setdefault(key, Subject(key, dims))
            getattr(subject, side).append(run)
    subjects = [s for s in groups.values() if s.baseline and s.candidate]
    unmatched: list[Unmatched] = []
    hint = _difference_hint(baseline, candidate, dims)
    for s in groups.values():
        if s.baseline and s.candidate:
            continue
        side = "baseline" if s.baseline else "candidate"
        count = len(s.baseline or s.candidate)
        unmatched.append(Unmatched(side, dict(zip(dims, s.key, strict=True)), count, hint))
    return subjects, unmatched


def _difference_hint(
    baseline: Sequence[Result], candidate: Sequence[Result], dims: Sequence[str]
) -> str | None:
    differing = []
    for dim in dims:
        a = {_dimension(r, dim) for r in baseline}
        b = {_dimension(r, dim) for r in candidate}
        if a and b and not (a & b):
            differing.append(f"{dim} ({', '.join(sorted(a))} vs {', '.join(sorted(b))})")
    if not differing:
        return None
    names = " ".join(f"--across {d.split(' ')[0]}" for d in differing)
    return f"the sides differ in {'; '.join(differing)}: add {names} if that is what you compare"


# --------------------------------------------------------------------------- the check


@dataclass
class GateReport:
    """Everything one check or compare found."""

    comparisons: list[Comparison]
    subjects: list[Subject]
    unmatched: list[Unmatched]
    tolerances: Tolerances | None
    """None for ``compare`` (no verdicts)."""
    unreadable: dict[str, int] = field(default_factory=dict)
    live: dict[str, Any] | None = None
    """Live mode: rounds, pairs, elapsed seconds, why it stopped."""
    sides: dict[str, str] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    """Live: one line per device whose runs gave no result (offline, timed out...)."""

    @property
    def verdict(self) -> str | None:
        from profiler.compare import FAIL, INCONCLUSIVE, overall

        if self.tolerances is None:
            return None
        verdict = overall(self.comparisons) if self.comparisons else INCONCLUSIVE
        if verdict != FAIL and (self.unmatched or self.lost):
            return INCONCLUSIVE  # a subject the gate could not check
        return verdict

    def exit_code(self, inconclusive: str = "exit3") -> int:
        verdict = self.verdict
        if verdict == "FAIL":
            return EXIT_FAIL
        if verdict == "INCONCLUSIVE":
            return {"pass": EXIT_PASS, "fail": EXIT_FAIL}.get(inconclusive, EXIT_INCONCLUSIVE)
        return EXIT_PASS

    def to_dict(self, inconclusive: str = "exit3") -> dict[str, Any]:
        from profiler.compare import ALPHA

        out: dict[str, Any] = {
            "schema": "edgeprof.check/1" if self.tolerances is not None else "edgeprof.compare/1",
            "sides": dict(self.sides),
            "comparisons": [
                {**c.to_dict(), "summary": summary(c), "title": c.subject.get("title")}
                for c in self.comparisons
            ],
            "unmatched": [u.to_dict() for u in self.unmatched],
            "lost": list(self.lost),
            "unreadable": dict(self.unreadable),
            "live": self.live,
            "runs": {
                "baseline": [dict(r.raw) for s in self.subjects for r in s.baseline],
                "candidate": [dict(r.raw) for s in self.subjects for r in s.candidate],
            },
        }
        if self.tolerances is not None:
            t = self.tolerances
            out["verdict"] = self.verdict
            out["exit_code"] = self.exit_code(inconclusive)
            out["alpha"] = ALPHA
            out["tolerances"] = {
                "max_regression": {p: t.regression_limit(p) for p in t.percentiles},
                "max_memory_growth": t.max_memory_growth,
                "max_accuracy_drop": t.max_accuracy_drop,
                "max_size_growth": t.max_size_growth,
            }
        return out


def compare_subjects(subjects: Sequence[Subject], tolerances: Tolerances) -> list[Comparison]:
    """Every metric the tolerances ask for, of every subject (no verdicts yet)."""
    from profiler.compare import compare_sides

    comparisons: list[Comparison] = []
    for s in subjects:
        comparisons.extend(
            compare_sides(
                s.baseline,
                s.candidate,
                tolerances,
                subject={**s.describe(), "title": s.title()},
                paired=s.paired,
            )
        )
    return comparisons


def run_check(subjects: Sequence[Subject], tolerances: Tolerances) -> list[Comparison]:
    """Every metric of every subject, then Holm's verdicts across all of them."""
    from profiler.compare import decide

    return decide(compare_subjects(subjects, tolerances))


def run_compare(subjects: Sequence[Subject]) -> list[Comparison]:
    """Every metric side by side (no limits, no verdicts): latency p50 and p90, peak
    RSS, init, first inference, model size, and accuracy where both were evaluated."""
    from dataclasses import replace

    from profiler import compare as c

    out: list[Comparison] = []
    for s in subjects:
        a, b = s.baseline, s.candidate
        rows = [
            c.compare_latency(a, b, percentile="p50", max_regression=0.0, paired=s.paired),
            c.compare_latency(a, b, percentile="p90", max_regression=0.0, paired=s.paired),
            c.compare_memory(a, b, max_growth=0.0),
            c.compare_init(a, b),
            c.compare_first_inference(a, b),
            c.compare_size(a, b),
        ]
        if any(r.accuracy is not None for r in a) or any(r.accuracy is not None for r in b):
            rows.append(c.compare_accuracy(a, b, max_drop=0.0))
        subject = {**s.describe(), "title": s.title()}
        out.extend(replace(row, subject=subject) for row in rows)
    return out


# --------------------------------------------------------------------------- wording

METRIC_NAMES = {
    "latency_p50": "p50",
    "latency_p90": "p90",
    "peak_rss": "peak RSS",
    "init_ms": "init",
    "first_inference_ms": "first inference",
    "accuracy_top1": "top-1",
    "model_size": "size",
    "failed_runs": "failed runs",
}


def _ratio_words(metric: str) -> tuple[str, str]:
    if metric in ("peak_rss", "model_size"):
        return "smaller", "bigger"
    return "faster", "slower"


def effect_text(c: Comparison) -> str:
    """The effect and its 95 % interval in words: "1.31× slower [1.25–1.38]",
    "−0.4 pt [−1.2, +0.5]" (a drop of top-1 is negative), "—" without one."""
    from hostctl import format as fmt

    if c.estimate is None:
        return fmt.DASH
    if c.metric == "failed_runs":
        fa, fb = (c.details.get("failed") or [0, 0])[:2]
        na, nb = (c.details.get("runs") or [0, 0])[:2]
        return f"{fb} of {nb} failed (baseline {fa} of {na})"
    if c.kind == "drop":
        change = -c.estimate
        text = fmt.points(change)
        if c.ci95 is not None:
            lo, hi = -c.ci95[1], -c.ci95[0]
            text += f" [{fmt.points(lo)}, {fmt.points(hi)}]"
        return text
    lower, higher = _ratio_words(c.metric)
    ci = None if c.exact else c.ci95
    return fmt.ratio(c.estimate, ci, lower=lower, higher=higher, limit=c.limit, undirected=True)


def limit_text(c: Comparison) -> str:
    """The tolerance as a user declared it: "limit 1.05×", "limit −1.0 pt"."""
    from hostctl import format as fmt

    if c.metric == "failed_runs":
        return "limit: as often as the baseline"
    if c.kind == "drop":
        return f"limit {fmt.points(-c.limit)}"
    return f"limit {c.limit:.{fmt.limit_digits(c.limit)}f}×"


def figure_text(c: Comparison, value: float | None) -> str:
    """One side's figure in the metric's unit."""
    from hostctl import format as fmt

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return fmt.DASH
    if c.metric.startswith("latency_") or c.metric in ("init_ms", "first_inference_ms"):
        return fmt.latency(value)
    if c.metric == "peak_rss":
        return f"{value:.1f} MB"
    if c.metric == "model_size":
        return fmt.size(value)
    if c.metric == "accuracy_top1":
        return fmt.percent(value, 2)
    if c.metric == "failed_runs":
        return fmt.percent(value, 0)
    return fmt.sig(value)


def summary(c: Comparison) -> str:
    """One line a person reads at a glance:
    ``p50 1.31× slower [1.25–1.38] FAIL (limit 1.05×)``."""
    name = METRIC_NAMES.get(c.metric, c.metric)
    text = f"{name} {effect_text(c)}"
    if c.verdict is not None:
        text += f" {c.verdict} ({limit_text(c)})"
    return text


def _confidence(value: float | None) -> str:
    """99.6875 % as "99.69 %", 99.99951 % as "99.9995 %": enough digits to differ from 100."""
    if value is None:
        return "?"
    miss = 1.0 - value
    digits = max(1, min(6, -math.floor(math.log10(miss)) + 1)) if miss > 0 else 6
    return f"{100 * value:.{max(0, digits - 2 + 1)}f} %"


_REASONS = {
    "error": "that failed",
    "unreadable": "unreadable",
    "throttled": "flagged throttled",
    "drift": "flagged drift",
    "no_value": "without this figure (too few samples, or not measured)",
}


def why(c: Comparison) -> str | None:
    """Why a verdict is what it is, when that is not plain from the interval: no
    interval (the note), Holm's stricter level, runs left out."""
    parts: list[str] = []
    if c.note:
        parts.append(c.note)
    if (
        c.verdict == "INCONCLUSIVE"
        and c.ci95 is not None
        and c.ci_decision is not None
        and (c.ci95[0] > c.limit or c.ci95[1] < c.limit)
    ):
        parts.append(
            f"its 95 % interval clears the limit, but this check decides it only at "
            f"{_confidence(c.decision_confidence)} (Holm across the check"
            + (", repeated looks" if "look" in c.details else "")
            + "): more runs decide it"
        )
    elif c.verdict == "INCONCLUSIVE" and c.ci95 is not None:
        parts.append("the interval straddles the limit: more runs narrow it")
    left_out = [
        f"{n} {side} run{'s' if n != 1 else ''} {_REASONS.get(reason, reason)}"
        for side, reasons in c.excluded.items()
        for reason, n in reasons.items()
    ]
    if left_out:
        parts.append("left out: " + ", ".join(left_out))
    return "; ".join(parts) or None


# --------------------------------------------------------------------------- tolerances


def parse_percent(text: str, option: str) -> float:
    """``"5%"`` (or a bare ``"5"``, ``"2.5"``) as 0.05; GateUsageError naming ``option``
    otherwise. A bare fraction below 2 (``0.05``, ``1.05``) is refused: read as a
    percentage it is a tolerance of almost nothing, and it looks like a ratio."""
    stripped = text.strip()
    value = stripped.removesuffix("%").strip()
    try:
        number = float(value)
    except ValueError:
        raise GateUsageError(f"{option} {text!r}: give a percentage like 5%") from None
    if not math.isfinite(number) or number < 0 or number > 1000:
        raise GateUsageError(f"{option} {text!r}: give a percentage between 0% and 1000%")
    if not stripped.endswith("%") and number < 2 and not number.is_integer():
        raise GateUsageError(
            f"{option} {text!r}: give a percentage with its % sign, e.g. 5% "
            f"(a bare {value} would be {value} %, not a ratio)"
        )
    return number / 100.0


def parse_points(text: str, option: str) -> float:
    """``"1pt"`` (or ``"1"``, ``"1%"``: points of top-1) as the fraction 0.01."""
    value = text.strip().lower()
    for suffix in ("points", "point", "pts", "pt", "%"):
        value = value.removesuffix(suffix)
    try:
        number = float(value.strip())
    except ValueError:
        raise GateUsageError(f"{option} {text!r}: give points of top-1 like 1pt") from None
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise GateUsageError(f"{option} {text!r}: give between 0pt and 100pt")
    return number / 100.0


def build_tolerances(
    *,
    max_regression: Sequence[str] = (),
    max_memory_growth: str | None = None,
    max_accuracy_drop: str | None = None,
    max_size_growth: str | None = None,
) -> Tolerances:
    """Tolerances from the options. ``--max-regression`` is ``5%`` (p50 and p90) or
    per percentile, ``p90=10%``; ``p90=off`` leaves that percentile out."""
    from profiler.compare import Tolerances

    limits = {"p50": 0.05, "p90": 0.05}
    for text in max_regression or ():
        if "," in text:
            raise GateUsageError(
                f"--max-regression {text!r}: one value per option, e.g. "
                "--max-regression 5% --max-regression p90=10%"
            )
        name, sep, value = text.partition("=")
        if not sep:
            limits = {p: parse_percent(text, "--max-regression") for p in limits}
            continue
        name = name.strip().lower()
        if name not in ("p50", "p90"):
            raise GateUsageError(
                f"--max-regression {text!r}: {name!r} is not p50 or p90 (e.g. p90=10%)"
            )
        if value.strip().lower() == "off":
            limits.pop(name, None)
        else:
            limits[name] = parse_percent(value, "--max-regression")
    if not limits:
        raise GateUsageError("--max-regression: p50 and p90 are both off; keep one")
    return Tolerances(
        max_regression=limits.get("p50", next(iter(limits.values()))),
        percentiles=tuple(limits),
        per_percentile=dict(limits),
        max_memory_growth=(
            parse_percent(max_memory_growth, "--max-memory-growth")
            if max_memory_growth is not None
            else None
        ),
        max_accuracy_drop=(
            parse_points(max_accuracy_drop, "--max-accuracy-drop")
            if max_accuracy_drop is not None
            else None
        ),
        max_size_growth=(
            parse_percent(max_size_growth, "--max-size-growth")
            if max_size_growth is not None
            else None
        ),
    )
