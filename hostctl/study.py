"""The compression study: make the variants of one model, measure every one of them
(on the fleet, or on this machine), keep the results under one label.

``hostctl study`` and ``hostctl demo`` call these functions; the table and the
report come from :mod:`hostctl.report` and :mod:`hostctl.report_html`. Pure code
(no typer, no rich); raises HostctlError with one line.

On the fleet, the variants go out in one push (each file one copy for the whole
fleet, the ``--eval`` data with them) and the host attaches each variant's recipe
to its results (:mod:`hostctl.provenance`). On this machine, each variant runs in a
fresh worker of its own (:func:`profiler.runner.profile`), one after the other.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.fleet import PushOutcome
    from hostctl.mqtt import HostSession
    from hostctl.store import ResultStore
    from modelkit.variants import Outcome
    from protocol.signing import SigningKey

logger = logging.getLogger(__name__)

STUDY_KINDS = ("fp32", "f16", "blq", "fiq", "prn", "prq")
"""The setups of the papers' table (NQ, F16, BLQ, FIQ, PRN, PRQ): what a study makes
unless ``--only`` says otherwise (``wo8`` on request)."""


def default_label(model: Path, now: _dt.datetime | None = None) -> str:
    """``study-STEM-YYYYMMDDTHHMMSSZ``: one label for every result of one study."""
    moment = now or _dt.datetime.now(_dt.timezone.utc)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.stem) or "model"
    return f"study-{stem}-{moment.strftime('%Y%m%dT%H%M%SZ')}"


def default_out_dir(label: str) -> Path:
    """Where a study keeps its variant files unless ``--out`` says: the user data dir."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("edgeprof")) / "studies" / label


@dataclass(frozen=True)
class StudyPlan:
    """What one study makes and measures."""

    model: Path
    """The float source model (.tflite or .onnx)."""
    out_dir: Path
    """Where the variants and their recipe records are written."""
    label: str
    """The label every result of the study is stored under."""
    eval_data: Path | None = None
    """Labelled .npz (x, y): top-1 measured with every variant, on the device."""
    calibration: str | None = None
    """Calibration .npz for FIQ, or ``random`` (flagged); None: FIQ is not made."""
    kinds: tuple[str, ...] = STUDY_KINDS
    sparsities: tuple[float, ...] = (0.5,)


def make_variants(
    plan: StudyPlan, *, on_outcome: Callable[[Outcome], None] | None = None
) -> list[Outcome]:
    """The variants of ``plan.model`` in ``plan.out_dir`` (each checked against the
    source on the eval data, else the calibration data); HostctlError for bad input
    or when the variant makers are not installed."""
    try:
        from modelkit.variants import VariantError
        from modelkit.variants import make_variants as make
    except ImportError as exc:
        raise HostctlError(
            f"a study makes variants, which needs more packages ({exc}): "
            "pip install 'edgeprof[variants]'"
        ) from None
    try:
        return make(
            plan.model,
            plan.out_dir,
            calibration=plan.calibration,
            kinds=list(plan.kinds),
            sparsities=list(plan.sparsities),
            eval_data=plan.eval_data,
            on_outcome=on_outcome,
        )
    except VariantError as exc:
        raise HostctlError(str(exc)) from None


def made_files(outcomes: Sequence[Outcome]) -> list[Path]:
    """The variant files that were made, in the order they were made."""
    return [o.path for o in outcomes if o.made and o.path is not None]


def measure_locally(
    files: Sequence[Path],
    settings: Any,
    *,
    label: str,
    store: ResultStore | None,
    eval_data: Path | None = None,
    on_start: Callable[[Path], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Profile each file on this machine, one fresh worker per file, one after the
    other; each result gets its variant's recipe and is stored (before it is shown)."""
    from hostctl.provenance import vouch_local
    from profiler.runner import profile

    if eval_data is not None:
        settings = dataclasses.replace(settings, eval_path=str(eval_data))
    docs: list[dict[str, Any]] = []
    for path in files:
        if on_start is not None:
            on_start(path)
        doc = vouch_local(profile(path, settings, label=label, on_phase=on_phase), path)
        if store is not None:
            store.add(doc)  # gives a local run its job id
        docs.append(doc)
    return docs


def measure_on_fleet(
    session: HostSession,
    store: ResultStore,
    key: SigningKey,
    files: Sequence[Path],
    settings: Any,
    *,
    label: str,
    eval_data: Path | None = None,
    devices: Sequence[str] = (),
    tags: Sequence[str] = (),
    all_devices: bool = False,
    skip_offline: bool = False,
    timeout: float | None = None,
    on_update: Callable[[Any], None] | None = None,
    on_targets: Callable[[list[Any]], None] | None = None,
) -> PushOutcome:
    """Push every variant to the targets in one push and wait for all the results.

    A device runs its jobs one at a time, so the default wait covers every variant
    running to its worker's limit in turn."""
    from hostctl.fleet import push

    wait = timeout if timeout is not None else max(600.0, len(files) * settings.effective_timeout())
    return push(
        session,
        store,
        key,
        models=list(files),
        settings=settings.to_dict(),
        devices=devices,
        tags=tags,
        all_devices=all_devices,
        label=label,
        timeout=wait,
        attachments={"eval": eval_data} if eval_data is not None else None,
        on_update=on_update,
        on_targets=on_targets,
        skip_offline=skip_offline,
    )


def report_command(label: str, html: Path | None = None) -> str:
    """The command that shows a study again from the store."""
    target = str(html) if html is not None else "study.html"
    return f"hostctl report --label {label} --html {target}"


__all__ = [
    "STUDY_KINDS",
    "StudyPlan",
    "default_label",
    "default_out_dir",
    "made_files",
    "make_variants",
    "measure_locally",
    "measure_on_fleet",
    "report_command",
]
