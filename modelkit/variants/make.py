"""Make the compressed variants of one model: :func:`make_variants`."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelkit.variants import onnx_makers, tflite_makers
from modelkit.variants.check import check_flags, compare
from modelkit.variants.errors import VariantError
from modelkit.variants.prune import parse_sparsity
from modelkit.variants.record import (
    FLAG_CHECK_FAILED,
    FLAG_RANDOM_CALIBRATION,
    FLAG_RANDOM_CHECK_INPUTS,
    KINDS,
    PRUNED_KINDS,
    Outcome,
    Recipe,
)
from modelkit.variants.runtime import Array, ModelRunner, run_all
from modelkit.variants.samples import SampleSet, load_samples, random_samples

log = logging.getLogger(__name__)

RANDOM = "random"
"""``calibration`` value that asks for seeded random calibration data (flagged)."""

DEFAULT_SPARSITIES = (0.5,)

RUNTIME_NAMES = {"tflite": "LiteRT", "onnx": "ONNX Runtime"}

PRUNE_TOOL = tflite_makers.PRUNE_TOOL

NO_FLOAT_WEIGHTS_REASON = (
    "the source has no float weights of conv / fully connected / matmul ops to compress "
    "(already quantized?): give its float model"
)

NO_CALIBRATION_REASON = (
    "FIQ needs calibration data: give --calibration CAL.npz (x = typical inputs), or "
    "--calibration random for a smoke test only"
)


def parse_kinds(text: str | None) -> list[str]:
    """``"fiq,prn"`` → ["fiq", "prn"] in :data:`KINDS` order; None/empty → all kinds."""
    if not text:
        return list(KINDS)
    asked = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [k for k in asked if k not in KINDS]
    if unknown:
        raise VariantError(
            f"unknown variant kind {', '.join(unknown)}; choose from {', '.join(KINDS)}"
        )
    return [k for k in KINDS if k in asked]


def parse_sparsities(text: str | None) -> list[float]:
    """``"0.5,0.75"`` → [0.5, 0.75] (each in (0, 1)); None/empty → [0.5]."""
    if not text:
        return list(DEFAULT_SPARSITIES)
    values: list[float] = []
    for part in text.split(","):
        try:
            value = parse_sparsity(float(part))
        except ValueError as exc:
            message = str(exc) if "outside" in str(exc) else f"{part.strip()!r} is not a number"
            raise VariantError(f"--sparsity: {message}") from None
        if value not in values:
            values.append(value)
    return values


# The libraries each format's makers need (import name, distribution).
_NEEDS = {
    "tflite": [("ai_edge_quantizer", "ai-edge-quantizer")],
    "onnx": [
        ("onnxruntime.quantization", "onnxruntime"),
        ("onnxconverter_common", "onnxconverter-common"),
    ],
}


def missing_dependencies(fmt: str) -> list[str]:
    """Distributions the makers of ``fmt`` need that are not installed."""
    import importlib.util

    missing = []
    for module, dist in _NEEDS.get(fmt, []):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(dist)
    return missing


def _detect_format(path: Path, data: bytes) -> str:
    from profiler.analysis import detect_format
    from profiler.errors import ProfilerError

    try:
        return detect_format(path, data)
    except ProfilerError as exc:
        raise VariantError(exc.message) from None


def _read_model(path: Path) -> bytes:
    if not path.is_file():
        raise VariantError(f"{path}: no such model file; give a .tflite or .onnx file")
    return path.read_bytes()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class _Maker:
    """State shared by the variants of one source model."""

    def __init__(
        self,
        model: Path,
        data: bytes,
        fmt: str,
        runner: ModelRunner,
        out_dir: Path,
        calibration: SampleSet | None,
        check_set: SampleSet,
    ) -> None:
        self.model = model
        self.data = data
        self.format = fmt
        self.runner = runner
        self.source_sha256 = hashlib.sha256(self.data).hexdigest()
        self.has_float_weights = _has_float_weights(data, fmt)
        self.out_dir = out_dir
        self.calibration = calibration
        self.check_set = check_set
        self.reference: Array | None = None

    def make(self, kind: str, sparsity: float | None) -> Outcome:
        name = kind if sparsity is None else f"{kind}{round(sparsity * 100):d}"
        outcome = Outcome(
            kind=kind,
            name=name,
            sparsity=sparsity,
            source_sha256=self.source_sha256,
            format=self.format,
        )
        try:
            data, recipe = self._build(kind, sparsity)
        except _NotMade as exc:
            outcome.reason = str(exc)
            return outcome
        return self._finish(outcome, data, recipe)

    def _build(self, kind: str, sparsity: float | None) -> tuple[bytes, Recipe]:
        if kind == "fp32":
            return self.data, Recipe(
                PRUNE_TOOL, tflite_makers.tool_version("edgeprof"), {"operation": "copy"}
            )
        if not self.has_float_weights:
            raise _NotMade(NO_FLOAT_WEIGHTS_REASON)
        if kind == "fiq" and self.calibration is None:
            raise _NotMade(NO_CALIBRATION_REASON)
        if self.format == "tflite":
            return self._build_tflite(kind, sparsity)
        return self._build_onnx(kind, sparsity)

    def _build_tflite(self, kind: str, sparsity: float | None) -> tuple[bytes, Recipe]:
        quantizer = tflite_makers.TOOL
        if kind in PRUNED_KINDS:
            assert sparsity is not None
            pruned, prune_recipe = _step(PRUNE_TOOL, tflite_makers.prune, self.data, sparsity)
            if kind == "prn":
                return pruned, prune_recipe
            data, recipe = _step(quantizer, tflite_makers.quantize, pruned, "prq")
            return data, _then(prune_recipe, recipe)
        return _step(quantizer, tflite_makers.quantize, self.data, kind, self.calibration)

    def _build_onnx(self, kind: str, sparsity: float | None) -> tuple[bytes, Recipe]:
        ort = onnx_makers.ORT_TOOL
        if kind == "wo8":
            raise _NotMade(onnx_makers.WO8_REASON)
        if kind == "f16":
            return _step(onnx_makers.F16_TOOL, onnx_makers.to_f16, self.data)
        if kind == "blq":
            return _step(ort, onnx_makers.quantize_dynamic, self.data)
        if kind == "fiq":
            return _step(ort, onnx_makers.quantize_static, self.data, self.calibration)
        assert sparsity is not None
        pruned, prune_recipe = _step(PRUNE_TOOL, onnx_makers.prune, self.data, sparsity)
        if kind == "prn":
            return pruned, prune_recipe
        data, recipe = _step(ort, onnx_makers.quantize_dynamic, pruned)
        return data, _then(prune_recipe, recipe)

    def reference_outputs(self) -> Array:
        """The source's outputs on the check samples (computed once)."""
        if self.reference is None:
            self.reference = run_all(self.runner, self.check_set.samples)
        return self.reference

    def _finish(self, outcome: Outcome, data: bytes, recipe: Recipe) -> Outcome:
        from profiler.analysis import analyze

        suffix = self.model.suffix or f".{self.format}"
        path = self.out_dir / f"{self.model.stem}.{outcome.name}{suffix}"
        try:
            runner = ModelRunner(data, self.format)
        except Exception as exc:
            runtime = RUNTIME_NAMES[self.format]
            outcome.reason = (
                f"{recipe.tool} wrote a model {runtime} cannot load: {_first_line(exc)}"
            )
            return outcome
        path.write_bytes(data)
        report = analyze(path)["model"]
        outcome.path = path
        outcome.recipe = recipe
        outcome.sha256 = report["sha256"]
        outcome.size_bytes = report["size_bytes"]
        outcome.measured_sparsity = report["sparsity"]
        outcome.weight_dtypes = dict(report["weight_dtypes"])
        if outcome.kind == "fiq" and self.calibration is not None and self.calibration.is_random:
            outcome.flags.append(FLAG_RANDOM_CALIBRATION)
        self._check(outcome, runner)
        outcome.write_record()
        return outcome

    def _check(self, outcome: Outcome, runner: ModelRunner) -> None:
        checks = self.check_set
        origin = "random" if checks.is_random else checks.origin
        try:
            reference = self.reference_outputs()
            outputs = reference if outcome.kind == "fp32" else run_all(runner, checks.samples)
            outcome.check = compare(reference, outputs, inputs=origin, labels=checks.labels)
        except Exception as exc:
            log.warning("checking %s failed: %s", outcome.name, _first_line(exc))
            outcome.flags.append(FLAG_CHECK_FAILED)
            return
        outcome.flags.extend(check_flags(outcome.check))
        if checks.is_random:
            outcome.flags.append(FLAG_RANDOM_CHECK_INPUTS)


class _NotMade(Exception):
    """This variant cannot be made; the message says why (one line)."""


def _step(tool: str, fn: Callable[..., tuple[bytes, Recipe]], *args: Any) -> tuple[bytes, Recipe]:
    """Run one tool; its failure (or a warning it raises as an error) becomes this
    variant's one-line reason, named after the tool. Its warnings are logged."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn(*args)
    except _NotMade:
        raise
    except Exception as exc:  # a tool's failure is this variant's reason, not ours
        log.debug("%s failed", tool, exc_info=True)
        raise _NotMade(f"{tool}: {_first_line(exc)}") from None
    for warning in caught:
        log.info("%s: %s", tool, _first_line(Exception(str(warning.message))))
    return result


def _has_float_weights(data: bytes, fmt: str) -> bool:
    if fmt == "tflite":
        return bool(tflite_makers.weight_buffers(tflite_makers.read_model(data)))
    import onnx

    return bool(onnx_makers.weight_initializers(onnx.load_from_string(data)))


def _then(first: Recipe, second: Recipe) -> Recipe:
    """The recipe of two steps: the second tool wrote the file; the first step's
    recipe rides in its options under ``prune``."""
    options = dict(second.options)
    options["prune"] = {"tool": first.tool, "version": first.version, **first.options}
    return Recipe(second.tool, second.version, options, second.calibration_sha256)


def make_variants(
    model: str | Path,
    out_dir: str | Path,
    *,
    calibration: str | Path | None = None,
    kinds: Sequence[str] | None = None,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    eval_data: str | Path | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Write the variants of ``model`` into ``out_dir``, each with ``NAME.recipe.json``.

    ``calibration``: a ``.npz`` of typical inputs, :data:`RANDOM` (seeded random data,
    flagged ``random_calibration``) or None (then FIQ is not made). ``kinds``: which of
    :data:`KINDS` (default all); pruned kinds are made once per ``sparsities`` entry.
    Each variant is checked against the source on ``eval_data`` (``x``, ``y``
    optional), else the calibration samples, else seeded random inputs. A variant that
    cannot be made is an :class:`Outcome` with a ``reason``; bad input (model,
    calibration file, options) raises :class:`VariantError`.
    """
    source = Path(model)
    out = Path(out_dir)
    chosen = list(kinds) if kinds is not None else list(KINDS)
    for kind in chosen:
        if kind not in KINDS:
            raise VariantError(f"unknown variant kind {kind!r}; choose from {', '.join(KINDS)}")
    for value in sparsities:
        try:
            parse_sparsity(value)
        except ValueError as exc:
            raise VariantError(str(exc)) from None
    data = _read_model(source)
    fmt = _detect_format(source, data)
    missing = missing_dependencies(fmt)
    if missing:
        raise VariantError(
            f"making variants of .{fmt} models needs {', '.join(missing)}: "
            "pip install 'edgeprof[variants]'"
        )
    try:
        runner = ModelRunner(data, fmt)
    except Exception as exc:
        raise VariantError(
            f"{source.name} does not load in {RUNTIME_NAMES[fmt]} ({_first_line(exc)}); "
            "variants are checked against their source here, so the source must run"
        ) from None
    cal_set = _calibration_set(calibration, runner)
    check_set = _check_set(eval_data, cal_set, runner)
    out.mkdir(parents=True, exist_ok=True)
    maker = _Maker(source, data, fmt, runner, out, cal_set, check_set)
    outcomes: list[Outcome] = []
    for kind in chosen:
        for sparsity in sparsities if kind in PRUNED_KINDS else [None]:
            outcome = maker.make(kind, sparsity)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    return outcomes


def _calibration_set(calibration: str | Path | None, runner: ModelRunner) -> SampleSet | None:
    if calibration is None:
        return None
    if str(calibration) == RANDOM:
        log.info("calibrating on random data: FIQ's ranges will not match real inputs")
        return random_samples(runner.inputs)
    return load_samples(calibration, runner.inputs)


def _check_set(
    eval_data: str | Path | None, cal_set: SampleSet | None, runner: ModelRunner
) -> SampleSet:
    if eval_data is not None:
        return load_samples(eval_data, runner.inputs)
    if cal_set is not None:
        return cal_set
    return random_samples(runner.inputs)


def outputs_of(model: str | Path, samples: SampleSet) -> Array:
    """The first output of ``model`` on every sample (n, elements): for tests and reports."""
    path = Path(model)
    data = _read_model(path)
    return run_all(ModelRunner(data, _detect_format(path, data)), samples.samples)
