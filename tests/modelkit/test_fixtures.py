"""The generated test models run on the real runtimes and are what they claim to be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter

from modelkit import fixtures
from profiler.errors import ProfilerError
from profiler.models import demo_model

RUNNABLE_TFLITE = [
    "cnn_fp32.tflite",
    "cnn_fp16.tflite",
    "cnn_int8.tflite",
    "cnn_pruned.tflite",
    "slow.tflite",
    "tiny.tflite",
    "classifier_fp32.tflite",
    "classifier_int8.tflite",
    "sparse.tflite",
]
RUNNABLE_ONNX = [
    "cnn_fp32.onnx",
    "cnn_fp16.onnx",
    "cnn_int8.onnx",
    "cnn_pruned.onnx",
    "cnn_constants.onnx",
    "slow.onnx",
    "tiny.onnx",
    "classifier.onnx",
    "if_subgraph.onnx",
    "qlinear.onnx",
    "if_branches.onnx",
    "loop.onnx",
    "scan.onnx",
]


def run_tflite(path: Path, x: Any) -> Any:
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def onnx_session(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def random_input(shape: list[int], dtype: Any, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-1, 1, size=shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -100), min(info.max, 100), size=shape).astype(dtype)


@pytest.mark.parametrize("name", RUNNABLE_TFLITE)
def test_tflite_models_run_on_litert(model_files: dict[str, Path], name: str) -> None:
    interpreter = Interpreter(model_path=str(model_files[name]))
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(
            detail["index"], random_input(list(detail["shape"]), detail["dtype"])
        )
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    assert interpreter.get_tensor(out["index"]).shape == tuple(out["shape"])


@pytest.mark.parametrize("name", RUNNABLE_ONNX)
def test_onnx_models_run_on_onnxruntime(model_files: dict[str, Path], name: str) -> None:
    session = onnx_session(model_files[name])
    dtypes = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}
    feeds = {i.name: random_input(i.shape, dtypes[i.type]) for i in session.get_inputs()}
    outputs = session.run(None, feeds)
    assert outputs[0].shape == tuple(session.get_outputs()[0].shape)


def test_cnn_is_the_same_network_in_both_formats(model_files: dict[str, Path]) -> None:
    x_nchw = random_input([1, 3, 16, 16], np.float32)
    onnx_out = onnx_session(model_files["cnn_fp32.onnx"]).run(None, {"input": x_nchw})[0]
    tflite_out = run_tflite(model_files["cnn_fp32.tflite"], x_nchw.transpose(0, 2, 3, 1).copy())
    np.testing.assert_allclose(tflite_out, onnx_out, atol=1e-5)
    assert onnx_out.sum() == pytest.approx(1.0, abs=1e-5)  # softmax output


def test_compressed_variants_approximate_fp32(model_files: dict[str, Path]) -> None:
    x = random_input([1, 16, 16, 3], np.float32, seed=3) * 0.9
    reference = run_tflite(model_files["cnn_fp32.tflite"], x)
    fp16 = run_tflite(model_files["cnn_fp16.tflite"], x)
    np.testing.assert_allclose(fp16, reference, atol=1e-3)
    q = np.round(x * 128).astype(np.int8)  # input scale 1/128, zero point 0
    int8 = (run_tflite(model_files["cnn_int8.tflite"], q).astype(np.float32) + 128) / 256
    np.testing.assert_allclose(int8, reference, atol=0.05)
    x_nchw = x.transpose(0, 3, 1, 2).copy()
    for name in ("cnn_fp16.onnx", "cnn_int8.onnx", "cnn_constants.onnx"):
        out = onnx_session(model_files[name]).run(None, {"input": x_nchw})[0]
        np.testing.assert_allclose(out, reference, atol=0.05, err_msg=name)
    pruned = run_tflite(model_files["cnn_pruned.tflite"], x)
    assert not np.allclose(pruned, reference, atol=1e-3)  # pruning changed the network


def test_sparse_tflite_runs_as_its_dense_weights(model_files: dict[str, Path]) -> None:
    """LiteRT densifies the sparse weights (with and without XNNPACK) into exactly the
    matrices the analysis counts."""
    from ai_edge_litert.interpreter import OpResolverType

    w_block, w_csr = fixtures.sparse_fc_weights()
    x = random_input([1, 8], np.float32, seed=4)
    expected = np.maximum(x @ w_block.T + 0.1, 0) @ w_csr.T - 0.2
    for resolver in (OpResolverType.AUTO, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
        interpreter = Interpreter(
            model_path=str(model_files["sparse.tflite"]), experimental_op_resolver_type=resolver
        )
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert int((w_block == 0).sum() + (w_csr == 0).sum()) == fixtures.SPARSE_ZEROS


def test_control_flow_models_run_every_path(model_files: dict[str, Path]) -> None:
    x = random_input([1, 16], np.float32)
    branches = onnx_session(model_files["if_branches.onnx"])
    wide = branches.run(None, {"x": x, "wide": np.array(True)})[0]
    narrow = branches.run(None, {"x": x, "wide": np.array(False)})[0]
    assert wide.shape == narrow.shape == (1, 4) and not np.allclose(wide, narrow)
    h = random_input([1, 8], np.float32)
    looped = onnx_session(model_files["loop_dynamic.onnx"])
    three = looped.run(None, {"h": h, "steps": np.array(3)})[0]
    np.testing.assert_allclose(three, onnx_session(model_files["loop.onnx"]).run(None, {"h": h})[0])
    scan = onnx_session(model_files["scan_dynamic.onnx"])
    h_last, hs = scan.run(None, {"h0": h, "xs": random_input([7, 1, 8], np.float32)})
    assert hs.shape == (7, 1, 8)
    np.testing.assert_allclose(h_last, hs[-1])


def test_shape_chain_runs_at_any_batch_and_length(model_files: dict[str, Path]) -> None:
    session = onnx_session(model_files["shape_chain.onnx"])
    assert session.get_inputs()[0].shape == [None, None, 16]  # dim_value -1: dynamic
    for b, t in ((2, 5), (1, 3)):
        out = session.run(None, {"x": random_input([b, t, 16], np.float32)})[0]
        assert out.shape == (b, t, 16)


def test_sample_rate_model_needs_its_sample_rate(model_files: dict[str, Path]) -> None:
    session = onnx_session(model_files["sample_rate.onnx"])
    audio = random_input([1, 160], np.float32)
    out = session.run(None, {"audio": audio, "sr": np.array(fixtures.SAMPLE_RATE)})[0]
    np.testing.assert_allclose(out, audio * np.hanning(160).astype(np.float32), rtol=1e-6)
    with pytest.raises(Exception, match="out of data bounds"):
        session.run(None, {"audio": audio, "sr": np.array(7)})  # what random data gives


def test_dynamic_batch_onnx_accepts_any_batch(model_files: dict[str, Path]) -> None:
    session = onnx_session(model_files["cnn_dynamic.onnx"])
    assert session.get_inputs()[0].shape == ["N", 3, 16, 16]
    out = session.run(None, {"input": random_input([5, 3, 16, 16], np.float32)})[0]
    assert out.shape == (5, 10)


def test_custom_op_models_fail_to_load_naming_the_op(model_files: dict[str, Path]) -> None:
    with pytest.raises(RuntimeError, match="EdgeprofTestOp"):
        interpreter = Interpreter(model_path=str(model_files["custom_op.tflite"]))
        interpreter.allocate_tensors()
    with pytest.raises(Exception, match="EdgeprofTestOp"):
        onnx_session(model_files["custom_op.onnx"])


def test_dtypes_model_has_one_input_per_dtype(model_files: dict[str, Path]) -> None:
    session = onnx_session(model_files["dtypes.onnx"])
    types = {i.name: i.type for i in session.get_inputs()}
    assert types == {
        "x_float32": "tensor(float)",
        "x_float16": "tensor(float16)",
        "x_int8": "tensor(int8)",
        "x_uint8": "tensor(uint8)",
        "x_int32": "tensor(int32)",
        "x_int64": "tensor(int64)",
        "x_bool": "tensor(bool)",
    }
    dtypes = {
        "x_float32": np.float32,
        "x_float16": np.float16,
        "x_int8": np.int8,
        "x_uint8": np.uint8,
        "x_int32": np.int32,
        "x_int64": np.int64,
        "x_bool": np.bool_,
    }
    feeds = {name: random_input([1, 4], dtype) for name, dtype in dtypes.items()}
    outputs = session.run(None, feeds)
    for out, name in zip(outputs, dtypes, strict=True):
        np.testing.assert_array_equal(out, feeds[name])


def test_classifiers_score_the_promised_accuracy(model_files: dict[str, Path]) -> None:
    data = np.load(model_files["labelled.npz"])
    data_int8 = np.load(model_files["labelled_int8.npz"])
    assert data["x"].shape == (50, 10) and data["y"].shape == (50,)
    assert data_int8["x"].dtype == np.int8
    session = onnx_session(model_files["classifier.onnx"])

    def accuracy(predict: Any, xs: Any) -> float:
        hits = [int(np.argmax(predict(xs[i : i + 1]))) == int(y) for i, y in enumerate(data["y"])]
        return sum(hits) / len(hits)

    assert accuracy(lambda x: session.run(None, {"x": x})[0], data["x"]) == 0.8
    fp32 = model_files["classifier_fp32.tflite"]
    assert accuracy(lambda x: run_tflite(fp32, x), data["x"]) == 0.8
    int8 = model_files["classifier_int8.tflite"]
    assert accuracy(lambda x: run_tflite(int8, x), data_int8["x"]) == 0.8


def test_labelled_dataset_accuracy_follows_wrong_fraction(tmp_path: Path) -> None:
    assert fixtures.make_labelled_dataset(tmp_path / "a.npz", n=20, wrong_fraction=0.25) == 0.75
    assert fixtures.make_labelled_dataset(tmp_path / "b.npz", n=10, wrong_fraction=0.0) == 1.0


def test_cnn_spec_matches_hand_computation() -> None:
    spec = fixtures.CnnSpec()
    # conv 8*3*9+8, depthwise 8*9+8, 1x1 16*8+16, fc 10*16+10
    assert spec.params() == 224 + 80 + 144 + 170 == 618
    # 256 pixels: 8*27 + 8*9 + 16*8 MACs each, plus the fc's 160
    assert spec.macs() == 256 * (216 + 72 + 128) + 160 == 106656
    assert spec.macs(batch=4) == 4 * 106656
    assert spec.pruned_zeros(0.5) == 108 + 36 + 64 + 80


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        fixtures.build_onnx_cnn(variant="int4")


def test_committed_demo_models_are_current_and_small() -> None:
    spec = fixtures.DEMO_SPEC
    assert demo_model("tflite").read_bytes() == fixtures.build_tflite_cnn(spec)
    assert demo_model("tflite", "int8").read_bytes() == fixtures.build_tflite_cnn(
        spec, variant="int8"
    )
    assert demo_model("onnx").read_bytes() == fixtures.build_onnx_cnn(spec)
    assert demo_model().name == "demo_cnn.tflite"
    assert demo_model("onnx").stat().st_size < 100_000
    # int8 is the smaller file: the demo shows what quantization buys
    assert demo_model("tflite", "int8").stat().st_size < demo_model("tflite").stat().st_size
    with pytest.raises(ValueError, match="tflite"):
        demo_model("pb")


def test_missing_demo_model_is_a_profiler_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import profiler.models as models

    monkeypatch.setitem(models._FILES, ("onnx", "fp32"), "gone.onnx")
    with pytest.raises(ProfilerError, match=r"gone\.onnx is missing") as info:
        models.demo_model("onnx")
    assert info.value.code == "not_found"


def test_command_line_writes_the_demo_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fixtures.main(["--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "demo_cnn.onnx",
        "demo_cnn.tflite",
        "demo_cnn_int8.tflite",
    ]
    assert "demo_cnn.onnx" in capsys.readouterr().out
