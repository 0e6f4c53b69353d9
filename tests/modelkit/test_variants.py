"""modelkit.variants: every kind made (or a one-line reason) for models built in code,
in both formats; each variant runs in its runtime and is what its recipe says."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest

from modelkit.cnn import CnnSpec
from modelkit.onnx_build import build_onnx_cnn
from modelkit.tflite_build import build_tflite_cnn
from modelkit.variants import VariantError, make_variants, parse_kinds, parse_sparsities
from modelkit.variants.check import compare
from modelkit.variants.make import NO_CALIBRATION_REASON, NO_FLOAT_WEIGHTS_REASON
from modelkit.variants.record import Outcome, read_record
from profiler.analysis import analyze
from tests.support.run_model import run_once

SPEC = CnnSpec(hw=16, in_ch=3, c1=32, c2=64, classes=10)
"""3,840 kernel weights: big enough that weight bytes dominate the file size."""
SPARSITIES = (0.5, 0.75)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _calibration(path: Path, shape: tuple[int, ...], n: int = 24) -> Path:
    rng = np.random.default_rng(7)
    with open(path, "wb") as fh:
        np.savez(fh, x=rng.random((n, *shape), dtype=np.float32))
    return path


class Made:
    """The variants of one source model, made once per module."""

    def __init__(self, source: Path, calibration: Path, out: Path) -> None:
        self.source = source
        self.calibration = calibration
        self.outcomes = make_variants(source, out, calibration=calibration, sparsities=SPARSITIES)
        self.by_name = {o.name: o for o in self.outcomes}


@pytest.fixture(scope="module", params=["tflite", "onnx"])
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Made:
    fmt = request.param
    base = tmp_path_factory.mktemp(f"variants-{fmt}")
    if fmt == "tflite":
        source = base / "cnn.tflite"
        source.write_bytes(build_tflite_cnn(SPEC))
        shape: tuple[int, ...] = (SPEC.hw, SPEC.hw, SPEC.in_ch)
    else:
        source = base / "cnn.onnx"
        source.write_bytes(build_onnx_cnn(SPEC))
        shape = (SPEC.in_ch, SPEC.hw, SPEC.hw)
    calibration = _calibration(base / "cal.npz", shape)
    return Made(source, calibration, base / "out")


def test_every_kind_is_made_or_says_why(made: Made) -> None:
    names = [o.name for o in made.outcomes]
    assert names == ["fp32", "f16", "blq", "wo8", "fiq", "prn50", "prn75", "prq50", "prq75"]
    not_made = {o.name: o.reason for o in made.outcomes if not o.made}
    if made.source.suffix == ".tflite":
        assert not_made == {}
    else:  # onnxruntime.quantization has no int8 weight-only mode for Conv/Gemm
        assert list(not_made) == ["wo8"]
        reason = not_made["wo8"] or ""
        assert "weight-only" in reason and "\n" not in reason


def test_each_variant_loads_and_runs_in_its_runtime(made: Made) -> None:
    with np.load(made.calibration) as data:
        x = data["x"][:1]
    reference, _, _ = run_once(made.source, x)
    for o in made.outcomes:
        if not o.made:
            continue
        assert o.path is not None and o.path.is_file()
        y, _, _ = run_once(o.path, x)
        assert y.shape == reference.shape == (1, SPEC.classes), o.name
        assert np.all(np.isfinite(y)), o.name


def test_recipe_record_names_tool_source_and_calibration(made: Made) -> None:
    source_sha = _sha(made.source)
    tools = {"ai-edge-quantizer", "onnxruntime", "onnxconverter-common", "edgeprof.modelkit"}
    for o in made.outcomes:
        if not o.made:
            continue
        assert o.path is not None and o.recipe_path is not None
        assert o.recipe_path.name == o.path.stem + ".recipe.json"
        record = read_record(o.recipe_path)
        variant = record["variant"]
        assert variant["kind"] == o.kind
        assert variant["source_sha256"] == source_sha
        recipe = variant["recipe"]
        assert recipe["tool"] in tools
        dist = "edgeprof" if recipe["tool"] == "edgeprof.modelkit" else recipe["tool"]
        assert recipe["version"] == importlib.metadata.version(dist)
        assert record["sha256"] == _sha(o.path)
        assert record["size_bytes"] == o.path.stat().st_size
        if o.kind == "fiq":
            assert recipe["calibration_sha256"] == _sha(made.calibration)
            assert recipe["options"]["calibration_samples"] == 24
        else:
            assert recipe["calibration_sha256"] is None
        if o.kind in ("prn", "prq"):
            prune = recipe["options"] if o.kind == "prn" else recipe["options"]["prune"]
            assert prune["sparsity"] == o.sparsity and prune["method"] == "magnitude"
        # The record is JSON that survives a round trip unchanged.
        assert json.loads(json.dumps(record)) == record


def _kernel_dtype(o: Outcome) -> dict[str, int]:
    assert o.path is not None
    return dict(analyze(o.path)["model"]["weight_dtypes"])


def test_weight_and_io_dtypes_are_what_the_recipe_says(made: Made) -> None:
    kernels = sum(SPEC.kernel_sizes().values())
    with np.load(made.calibration) as data:
        x = data["x"][:1]
    tflite = made.source.suffix == ".tflite"
    for o in made.outcomes:
        if not o.made:
            continue
        dtypes = _kernel_dtype(o)
        if o.kind in ("fp32", "prn"):
            assert dtypes.get("float32", 0) >= kernels and "int8" not in dtypes, o.name
        elif o.kind == "f16":
            assert dtypes.get("float16", 0) >= kernels, o.name
        else:  # blq, wo8, fiq, prq: every kernel stored as int8
            assert dtypes.get("int8", 0) >= kernels, o.name
        assert o.path is not None
        _, in_type, out_type = run_once(o.path, x)
        if tflite and o.kind == "fiq":
            assert (in_type, out_type) == ("int8", "int8")
        elif tflite:
            assert (in_type, out_type) == ("float32", "float32"), o.name
        else:
            assert (in_type, out_type) == ("tensor(float)", "tensor(float)"), o.name


def test_pruned_variants_have_exactly_the_asked_zeros(made: Made) -> None:
    for sparsity in SPARSITIES:
        for kind in ("prn", "prq"):
            o = made.by_name[f"{kind}{round(sparsity * 100)}"]
            assert o.path is not None
            model = analyze(o.path)["model"]
            zeros = round(model["sparsity"] * model["params"])
            # floor(n * s) per kernel; biases, scales and zero points are not pruned.
            assert zeros == SPEC.pruned_zeros(sparsity), (o.name, zeros)
            assert o.measured_sparsity == model["sparsity"]


def test_sizes_shrink_as_the_recipes_say(made: Made) -> None:
    size = {o.name: o.size_bytes or 0 for o in made.outcomes if o.made}
    fp32 = size["fp32"]
    assert size["f16"] < 0.65 * fp32
    # int8 kernels are a quarter of the fp32 bytes; scales, zero points and the graph
    # (QDQ / DynamicQuantizeLinear nodes) add their share on a model this small.
    for name in ("blq", "prq50", "prq75") + (("wo8",) if "wo8" in size else ()):
        assert size[name] < 0.6 * fp32, name
    # FIQ also quantizes every activation: per-channel scales and zero points, QDQ nodes.
    assert size["fiq"] < 0.75 * fp32
    # Pruning zeroes weights in place: the dense file keeps its size, gzip sees the zeros.
    assert abs(size["prn50"] - fp32) <= 64
    assert made.by_name["prn75"].path is not None
    gz = {n: len(gzip.compress(made.by_name[n].path.read_bytes())) for n in ("fp32", "prn75")}  # type: ignore[union-attr]
    assert gz["prn75"] < 0.6 * gz["fp32"]


def test_quantized_variants_agree_with_their_source(made: Made) -> None:
    for name in ("f16", "blq", "fiq") + (("wo8",) if made.by_name["wo8"].made else ()):
        check = made.by_name[name].check
        assert check is not None and check.n == 24
        assert check.agreement is not None and check.agreement >= 0.9, name
        assert check.snr_db is not None and check.snr_db > 20, name
        assert made.by_name[name].flags == [], name


# ---------------------------------------------------------------------------
# What cannot be made, and bad input
# ---------------------------------------------------------------------------


def test_fiq_without_calibration_is_not_made_and_says_how(tmp_path: Path) -> None:
    source = tmp_path / "cnn.tflite"
    source.write_bytes(build_tflite_cnn())
    outcomes = make_variants(source, tmp_path / "out", kinds=["fiq", "blq"])
    fiq, blq = outcomes
    assert not fiq.made and fiq.reason == NO_CALIBRATION_REASON
    assert "--calibration" in NO_CALIBRATION_REASON
    assert blq.made  # the others are still made
    assert not (tmp_path / "out" / "cnn.fiq.tflite").exists()


def test_random_calibration_is_flagged_in_outcome_and_record(tmp_path: Path) -> None:
    source = tmp_path / "cnn.onnx"
    source.write_bytes(build_onnx_cnn())
    (fiq,) = make_variants(source, tmp_path / "out", kinds=["fiq"], calibration="random")
    assert fiq.made and "random_calibration" in fiq.flags
    assert fiq.recipe_path is not None
    record = read_record(fiq.recipe_path)
    assert "random_calibration" in record["flags"]
    assert record["variant"]["recipe"]["options"]["calibration"] == "random"
    assert record["variant"]["recipe"]["calibration_sha256"] is None


@pytest.mark.parametrize("name", ["cnn_int8.tflite", "qlinear.onnx"])
def test_an_already_quantized_source_gives_one_reason_per_variant(
    name: str, model_files: dict[str, Path], tmp_path: Path
) -> None:
    outcomes = make_variants(model_files[name], tmp_path, calibration="random")
    assert outcomes[0].kind == "fp32" and outcomes[0].made
    for o in outcomes[1:]:
        assert not o.made and o.path is None
        assert o.reason == NO_FLOAT_WEIGHTS_REASON
    assert "\n" not in NO_FLOAT_WEIGHTS_REASON
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{Path(name).stem}.fp32{Path(name).suffix}", f"{Path(name).stem}.fp32.recipe.json"]
    )


def test_a_tool_failure_is_a_one_line_reason_naming_the_tool(
    model_files: dict[str, Path], tmp_path: Path
) -> None:
    # fp16 weights behind DEQUANTIZE ops: ai-edge-quantizer handles some recipes only.
    outcomes = make_variants(model_files["cnn_fp16.tflite"], tmp_path, calibration="random")
    assert any(o.made and o.kind == "blq" for o in outcomes)
    for o in outcomes:
        if not o.made:
            assert o.reason is not None and "\n" not in o.reason
            assert o.reason.startswith(("ai-edge-quantizer", "edgeprof.modelkit")), o.reason


@pytest.mark.parametrize("name", ["custom_op.tflite", "custom_op.onnx"])
def test_a_source_that_does_not_run_here_is_a_one_line_error(
    name: str, model_files: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(VariantError) as info:
        make_variants(model_files[name], tmp_path)
    message = str(info.value)
    assert "\n" not in message and "does not load" in message and name in message
    assert not any(tmp_path.iterdir())


def test_bad_calibration_files_are_one_line_errors(tmp_path: Path) -> None:
    source = tmp_path / "cnn.tflite"
    source.write_bytes(build_tflite_cnn())
    wrong = _calibration(tmp_path / "nchw.npz", (3, 16, 16))  # the ONNX layout
    with pytest.raises(
        VariantError, match=r"shape \[1, 3, 16, 16\] but the model takes \[1, 16, 16, 3\]"
    ):
        make_variants(source, tmp_path / "out", calibration=wrong)
    text = tmp_path / "cal.npz"
    text.write_text("not numpy")
    with pytest.raises(VariantError, match=r"not a readable \.npz"):
        make_variants(source, tmp_path / "out", calibration=text)
    with pytest.raises(VariantError, match="no such file"):
        make_variants(source, tmp_path / "out", calibration=tmp_path / "missing.npz")
    keys = tmp_path / "keys.npz"
    with open(keys, "wb") as fh:
        np.savez(fh, images=np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(VariantError, match="has images"):
        make_variants(source, tmp_path / "out", calibration=keys)


def test_kinds_and_sparsities_are_parsed_with_one_line_errors() -> None:
    assert parse_kinds("prq, FIQ") == ["fiq", "prq"]
    assert parse_kinds(None) == ["fp32", "f16", "blq", "wo8", "fiq", "prn", "prq"]
    assert parse_sparsities("0.5,0.75,0.5") == [0.5, 0.75]
    with pytest.raises(VariantError, match="unknown variant kind int4"):
        parse_kinds("fiq,int4")
    with pytest.raises(VariantError, match="outside"):
        parse_sparsities("1.5")
    with pytest.raises(VariantError, match="'half' is not a number"):
        parse_sparsities("half")


def test_snr_and_agreement_are_computed_as_defined() -> None:
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    same = compare(ref, ref.copy(), inputs="x")
    assert same.agreement == 1.0 and same.snr_db == float("inf")
    assert same.to_dict()["snr_db"] is None and same.to_dict()["identical"] is True
    noisy = compare(ref, np.array([[1.0, 0.1], [0.0, 1.0]]), inputs="x", labels=np.array([0, 0]))
    assert noisy.snr_db == pytest.approx(10 * np.log10(2 / 0.01))
    assert noisy.top1 == 0.5 and noisy.top1_source == 0.5
    swapped = compare(ref, ref[::-1].copy(), inputs="x")
    assert swapped.agreement == 0.0


def test_profiler_and_agent_never_import_modelkit() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for package in ("profiler", "agent", "protocol")
        for path in (root / package).rglob("*.py")
        if "import modelkit" in path.read_text() or "from modelkit" in path.read_text()
    ]
    assert offenders == []
