"""Static analysis: hand-computed parameters and MACs, sparsity, dtypes, ops, errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelkit import fixtures
from profiler.analysis import analyze, detect_format
from profiler.errors import ProfilerError

# The CNN, counted by hand (see tests/modelkit/test_fixtures.test_cnn_spec_matches_hand_computation):
# conv 3x3 8*3*9+8, depthwise 8*9+8, conv 1x1 16*8+16, fc 10*16+10.
CNN_PARAMS = 618
CNN_MACS = 256 * (8 * 27 + 8 * 9 + 16 * 8) + 160
CNN_KERNEL_ELEMENTS = 216 + 72 + 128 + 160
CNN_BIAS_ELEMENTS = 8 + 8 + 16 + 10

EXPECTED_DTYPES = {
    "fp32": {"float32": CNN_PARAMS},
    "pruned": {"float32": CNN_PARAMS},
    "fp16": {"float16": CNN_PARAMS},
    "int8": {"int8": CNN_KERNEL_ELEMENTS, "int32": CNN_BIAS_ELEMENTS},
}

TFLITE_OPS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "MEAN": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}
ONNX_OPS = {"Conv": 3, "Relu": 3, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1, "Softmax": 1}


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
@pytest.mark.parametrize("variant", fixtures.VARIANTS)
def test_cnn_params_macs_and_dtypes(model_files: dict[str, Path], fmt: str, variant: str) -> None:
    report = analyze(model_files[f"cnn_{variant}.{fmt}"])
    model = report["model"]
    assert model["format"] == fmt
    assert model["params"] == CNN_PARAMS
    assert model["macs"] == CNN_MACS
    assert model["flops"] == 2 * CNN_MACS
    assert model["macs_complete"] is True
    assert model["weight_dtypes"] == EXPECTED_DTYPES[variant]
    if variant == "pruned":
        # half of every kernel, rounded down; biases untouched
        assert model["sparsity"] == pytest.approx((108 + 36 + 64 + 80) / CNN_PARAMS)
    else:
        assert model["sparsity"] == 0.0


def test_op_histograms(model_files: dict[str, Path]) -> None:
    assert analyze(model_files["cnn_fp32.tflite"])["ops"] == TFLITE_OPS
    assert analyze(model_files["cnn_fp16.tflite"])["ops"] == {**TFLITE_OPS, "DEQUANTIZE": 8}
    assert analyze(model_files["cnn_fp32.onnx"])["ops"] == ONNX_OPS
    assert analyze(model_files["cnn_fp16.onnx"])["ops"] == {**ONNX_OPS, "Cast": 8}
    # QDQ: 8 weight/bias DequantizeLinear + 6 activation Q/DQ pairs
    assert analyze(model_files["cnn_int8.onnx"])["ops"] == {
        **ONNX_OPS,
        "QuantizeLinear": 6,
        "DequantizeLinear": 14,
    }


def test_slow_model_macs(model_files: dict[str, Path]) -> None:
    spec = fixtures.SLOW_SPEC
    for name in ("slow.tflite", "slow.onnx"):
        model = analyze(model_files[name])["model"]
        assert model["macs"] == spec.macs() == 96 * 96 * (64 * 27 + 64 * 9 + 128 * 64) + 1280
        assert model["params"] == spec.params()


def test_weights_in_constant_nodes_are_counted(model_files: dict[str, Path]) -> None:
    report = analyze(model_files["cnn_constants.onnx"])
    assert report["ops"]["Constant"] == 8
    assert report["model"]["params"] == CNN_PARAMS
    assert report["model"]["macs"] == CNN_MACS


def test_weights_in_if_subgraphs_are_counted(model_files: dict[str, Path]) -> None:
    report = analyze(model_files["if_subgraph.onnx"])
    model = report["model"]
    assert model["params"] == 32  # 4x4 initializer in `then` + 4x4 Constant in `else`
    assert report["ops"] == {"Constant": 2, "If": 1, "MatMul": 2}
    # each branch is [1,4]·[4,4]: 16 MACs, whichever runs
    assert model["macs"] == 16 and model["macs_complete"] is True
    assert any("costlier branch" in note for note in model["notes"])


# ---------------------------------------------------------------------------
# Sparse TFLite weights
# ---------------------------------------------------------------------------


def test_sparse_tflite_weights_count_dense_shape_and_implicit_zeros(
    model_files: dict[str, Path],
) -> None:
    model = analyze(model_files["sparse.tflite"])["model"]
    # fc1: [8,8] in 1x4 blocks, 6 of 16 blocks stored (24 values, 2 of them 0), bias 8;
    # fc2: [4,8] CSR with 10 values stored, bias 4 — every dense element a parameter.
    params = 8 * 8 + 8 + 4 * 8 + 4
    zeros = (64 - 24 + 2) + (32 - 10)
    assert model["params"] == params == 108 == fixtures.SPARSE_PARAMS
    assert zeros == 64 == fixtures.SPARSE_ZEROS
    assert model["sparsity"] == pytest.approx(64 / 108)  # was 2/108: only stored zeros
    assert model["weight_dtypes"] == {"float32": 108}
    assert model["macs"] == 8 * 8 + 4 * 8 and model["macs_complete"] is True
    assert any("stored sparse" in note and "DENSIFY" in note for note in model["notes"])


def test_sparse_encoding_keeps_the_dense_matrix(model_files: dict[str, Path]) -> None:
    """The fixture's weights really are stored sparse: the buffers hold only the
    stored values (what makes the analysis' count differ from a dense one)."""
    from ai_edge_litert import schema_py_generated as tfl

    data = model_files["sparse.tflite"].read_bytes()
    model = tfl.ModelT.InitFromPackedBuf(data, 0)
    sparse = [t for t in model.subgraphs[0].tensors if t.sparsity is not None]
    assert [t.shape.tolist() for t in sparse] == [[8, 8], [4, 8]]
    stored = [len(model.buffers[t.buffer].data) // 4 for t in sparse]
    assert stored == [24, 10]


# ---------------------------------------------------------------------------
# MACs inside If / Loop / Scan
# ---------------------------------------------------------------------------


def test_if_counts_the_costlier_branch(model_files: dict[str, Path]) -> None:
    model = analyze(model_files["if_branches.onnx"])["model"]
    then_macs, else_macs = 16 * 32 + 32 * 4, 16 * 4  # x·W1·W2 vs x·W3
    assert model["macs"] == then_macs == fixtures.IF_THEN_MACS
    assert model["macs_complete"] is True
    assert model["params"] == fixtures.IF_PARAMS == 704
    (note,) = model["notes"]
    assert "costlier branch" in note and f"then {then_macs}" in note
    assert f"else {else_macs}" in note


def test_loop_with_static_trip_count_multiplies_its_body(model_files: dict[str, Path]) -> None:
    model = analyze(model_files["loop.onnx"])["model"]
    assert model["macs"] == 3 * 8 * 8 == fixtures.LOOP_TRIP_COUNT * fixtures.LOOP_BODY_MACS
    assert model["macs_complete"] is True
    assert any("64 × 3" in note for note in model["notes"])


def test_loop_with_dynamic_trip_count_is_one_iteration_and_says_so(
    model_files: dict[str, Path],
) -> None:
    model = analyze(model_files["loop_dynamic.onnx"])["model"]
    assert model["macs"] == 8 * 8 and model["macs_complete"] is False
    assert any("one iteration" in n and "not static" in n for n in model["notes"])


def test_scan_multiplies_by_the_sequence_length(model_files: dict[str, Path]) -> None:
    step = 8 * 8 + 8 * 8  # x_t·Wx + h·Wh
    static = analyze(model_files["scan.onnx"])["model"]
    assert static["macs"] == 5 * step == fixtures.SCAN_LENGTH * fixtures.SCAN_STEP_MACS
    assert static["macs_complete"] is True
    dynamic = analyze(model_files["scan_dynamic.onnx"])["model"]
    assert dynamic["macs"] == step and dynamic["macs_complete"] is False
    assert any("one iteration" in n and "--shape" in n and "xs" in n for n in dynamic["notes"])
    given = analyze(model_files["scan_dynamic.onnx"], {"xs": [7, 1, 8]})["model"]
    assert given["macs"] == 7 * step and given["macs_complete"] is True


# ---------------------------------------------------------------------------
# Paddle exports: dims of -1, shapes computed with Shape/Gather/Concat/Reshape
# ---------------------------------------------------------------------------


def test_negative_dims_are_dynamic(model_files: dict[str, Path]) -> None:
    report = analyze(model_files["shape_chain.onnx"])
    assert report["inputs"] == [
        {"name": "x", "dtype": "float32", "shape": [None, None, 16], "dims": ["?", "?", "16"]}
    ]
    # a --shape for them is accepted (it was refused: "does not match the fixed dims -1")
    analyze(model_files["shape_chain.onnx"], {"x": [2, 5, 16]})
    with pytest.raises(ProfilerError, match="fixed dims"):
        analyze(model_files["shape_chain.onnx"], {"x": [2, 5, 15]})


def test_macs_behind_reshape_chains_are_counted(model_files: dict[str, Path]) -> None:
    path = model_files["shape_chain.onnx"]
    model = analyze(path, {"x": [2, 5, 16]})["model"]
    # [b*t,16]·[16,32] then [b, t*4/2, 16]·[16,8] with b=2, t=5
    assert model["macs"] == 10 * 16 * 32 + 2 * 10 * 16 * 8 == 7680
    assert model["macs"] == 2 * 5 * fixtures.SHAPE_CHAIN_MACS_PER_ROW
    assert model["macs_complete"] is True and model["notes"] == []
    assert model["params"] == fixtures.SHAPE_CHAIN_PARAMS


def test_long_reshape_chains_are_resolved(tmp_path: Path) -> None:
    """Every block's shapes come from the Shape of the block before it: 70 blocks in
    a row (more than the inference rounds a chain could take one by one)."""
    path = tmp_path / "deep.onnx"
    path.write_bytes(fixtures.build_onnx_shape_chain(blocks=70))
    model = analyze(path, {"x": [2, 5, 16]})["model"]
    assert model["macs"] == 70 * 10 * fixtures.SHAPE_CHAIN_MACS_PER_ROW
    assert model["macs_complete"] is True and model["notes"] == []


def test_unknown_macs_say_why_and_ask_for_shape_only_when_missing(
    model_files: dict[str, Path], tmp_path: Path
) -> None:
    without = analyze(model_files["shape_chain.onnx"])["model"]
    assert without["macs"] is None and without["flops"] is None
    assert without["macs_complete"] is False
    (note,) = without["notes"]
    assert "not counted, shapes unknown" in note and "--shape for the dynamic input(s) x" in note

    # Every input given, yet the MatMul's shape depends on an input's value.
    path = tmp_path / "value_dependent.onnx"
    path.write_bytes(_value_dependent_model())
    model = analyze(path, {"x": [1, 16]})["model"]
    assert model["macs"] is None and model["macs_complete"] is False
    (note,) = model["notes"]
    assert "--shape" not in note and "depend on input values" in note


def _value_dependent_model() -> bytes:
    """x [1,16] reshaped to [rows, -1] with ``rows`` an int64 input, then ·W[.., 4]."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from modelkit.onnx_build import model_bytes

    graph = helper.make_graph(
        [
            helper.make_node("Concat", ["rows", "minus_one"], ["target"], axis=0),
            helper.make_node("Reshape", ["x", "target"], ["x2"]),
            helper.make_node("MatMul", ["x2", "w"], ["y"]),
        ],
        "value_dependent",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16]),
            helper.make_tensor_value_info("rows", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one"),
            numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w"),
        ],
    )
    return model_bytes(graph)


def test_inspect_and_profile_validate_shapes_the_same_way(model_files: dict[str, Path]) -> None:
    """One validation of --shape: the analysis and the worker's input preparation
    (with the specs ONNX Runtime reports) give the same verdict and the same line."""
    from profiler.backends.onnxrt import OnnxRuntimeBackend
    from profiler.inputs import resolve_shapes

    path = model_files["shape_chain.onnx"]
    backend = OnnxRuntimeBackend()
    backend.load(str(path))
    specs = backend.input_specs()
    assert resolve_shapes(specs, {"x": [2, 5, 16]}) == {"x": (2, 5, 16)}
    for bad in ({"x": [2, 5]}, {"x": [2, 5, 8]}, {"y": [1]}):
        with pytest.raises(ProfilerError) as by_analysis:
            analyze(path, bad)
        with pytest.raises(ProfilerError) as by_worker:
            resolve_shapes(specs, bad)
        assert by_analysis.value.to_dict() == by_worker.value.to_dict()


def test_qlinear_ops(model_files: dict[str, Path]) -> None:
    model = analyze(model_files["qlinear.onnx"])["model"]
    # scales, zero points and the Reshape's int64 shape are not parameters
    assert model["params"] == 4 * 27 + 4 + 1440 == fixtures.QLINEAR_PARAMS
    assert model["weight_dtypes"] == {"int8": 108 + 1440, "int32": 4}
    assert model["macs"] == 36 * 4 * 27 + 1440 == fixtures.QLINEAR_MACS


def test_tiny_and_classifier(model_files: dict[str, Path]) -> None:
    assert analyze(model_files["tiny.onnx"])["model"]["params"] == 4
    assert analyze(model_files["tiny.tflite"])["model"]["params"] == 4
    classifier = analyze(model_files["classifier_int8.tflite"])["model"]
    assert classifier["params"] == 110 and classifier["macs"] == 100
    # identity weights: 90 zero weights and 10 zero biases of 110
    assert classifier["sparsity"] == pytest.approx(100 / 110)


def test_dynamic_batch_needs_shapes_for_macs(model_files: dict[str, Path]) -> None:
    path = model_files["cnn_dynamic.onnx"]
    report = analyze(path)
    assert report["inputs"] == [
        {
            "name": "input",
            "dtype": "float32",
            "shape": [None, 3, 16, 16],
            "dims": ["N", "3", "16", "16"],
        }
    ]
    assert report["model"]["macs_complete"] is False
    # nothing could be counted: unknown, not 0
    assert report["model"]["macs"] is None and report["model"]["flops"] is None
    assert any("--shape for the dynamic input(s) input" in n for n in report["model"]["notes"])
    assert report["model"]["params"] == CNN_PARAMS
    with_shape = analyze(path, {"input": [4, 3, 16, 16]})["model"]
    assert with_shape["macs"] == 4 * CNN_MACS and with_shape["macs_complete"] is True
    assert with_shape["notes"] == []


def test_dynamic_batch_tflite_reports_null_dim(tmp_path: Path) -> None:
    path = tmp_path / "dyn.tflite"
    path.write_bytes(fixtures.build_tflite_cnn(dynamic_batch=True))
    report = analyze(path)
    assert report["inputs"][0]["shape"] == [None, 16, 16, 3]
    assert report["inputs"][0]["dims"] == ["?", "16", "16", "3"]
    assert report["model"]["macs"] == CNN_MACS  # at the stored batch size of 1
    assert report["model"]["notes"]


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"image": [1, 3, 16, 16]}, "no input 'image'; its inputs are input"),
        ({"input": [1, 3, 16]}, r"input\[N\?, 3, 16, 16\] has 4 dims, got 3"),
        ({"input": [1, 4, 16, 16]}, "does not match the fixed dims"),
    ],
)
def test_bad_shapes_are_refused(
    model_files: dict[str, Path], shapes: dict[str, list[int]], message: str
) -> None:
    with pytest.raises(ProfilerError, match=message) as info:
        analyze(model_files["cnn_dynamic.onnx"], shapes)
    assert info.value.code == "bad_input"


def test_inputs_outputs_and_quantization(model_files: dict[str, Path]) -> None:
    report = analyze(model_files["cnn_int8.tflite"])
    assert report["inputs"] == [
        {
            "name": "input",
            "dtype": "int8",
            "shape": [1, 16, 16, 3],
            "dims": ["1", "16", "16", "3"],
            "quantization": {"scale": 1 / 128, "zero_point": 0},
        }
    ]
    assert report["outputs"][0]["quantization"] == {"scale": 1 / 256, "zero_point": -128}
    dtypes = analyze(model_files["dtypes.onnx"])
    assert [(i["name"], i["dtype"]) for i in dtypes["inputs"]] == [
        ("x_float32", "float32"),
        ("x_float16", "float16"),
        ("x_int8", "int8"),
        ("x_uint8", "uint8"),
        ("x_int32", "int32"),
        ("x_int64", "int64"),
        ("x_bool", "bool"),
    ]
    assert [o["name"] for o in dtypes["outputs"]][-1] == "y_bool"


def test_custom_ops_are_listed(model_files: dict[str, Path]) -> None:
    tflite = analyze(model_files["custom_op.tflite"])
    assert tflite["ops"] == {"EdgeprofTestOp": 1}
    assert tflite["model"]["custom_ops"] == ["EdgeprofTestOp"]
    onnx = analyze(model_files["custom_op.onnx"])
    assert onnx["ops"] == {"com.edgeprof.test:EdgeprofTestOp": 1}
    assert onnx["model"]["custom_ops"] == ["com.edgeprof.test:EdgeprofTestOp"]


@pytest.mark.parametrize(
    ("name", "op"),
    [
        ("custom_op.tflite", "EdgeprofTestOp"),
        ("custom_op.onnx", "com.edgeprof.test:EdgeprofTestOp"),
    ],
)
def test_macs_of_custom_ops_are_not_claimed_complete(
    model_files: dict[str, Path], name: str, op: str
) -> None:
    model = analyze(model_files[name])["model"]
    assert model["macs"] is None  # nothing else to count: unknown, never a 0 that reads "free"
    assert model["flops"] is None
    assert model["macs_complete"] is False
    assert any(op in note and "unknown cost" in note for note in model["notes"])


def test_the_result_document_says_whether_macs_are_complete(
    model_files: dict[str, Path],
) -> None:
    from profiler.runner import profile
    from profiler.settings import ProfileSettings

    tiny = ProfileSettings(runs=5, warmup=1, min_seconds=0, warmup_seconds=0)
    custom = profile(model_files["custom_op.onnx"], tiny)  # fails to run, still analysed
    assert custom["model"]["macs"] is None and custom["model"]["macs_complete"] is False
    plain = profile(model_files["tiny.onnx"], tiny)
    assert plain["status"] == "ok"
    assert plain["model"]["macs_complete"] is True


def test_document_shape_and_file_facts(tflite_cnn: Path, onnx_cnn: Path) -> None:
    for path in (tflite_cnn, onnx_cnn):
        report = analyze(str(path))
        assert set(report) == {"model", "inputs", "outputs", "ops"}
        model = report["model"]
        assert model["name"] == path.name
        assert model["size_bytes"] == path.stat().st_size
        assert model["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert model["producer"].startswith("edgeprof.modelkit")
        json.dumps(report)  # JSON-serializable as is
    assert analyze(onnx_cnn)["model"]["opset"] == fixtures.ONNX_OPSET
    assert analyze(tflite_cnn)["model"]["schema_version"] == 3


# ---------------------------------------------------------------------------
# Errors a user can cause
# ---------------------------------------------------------------------------


def _error(path: Path) -> ProfilerError:
    with pytest.raises(ProfilerError) as info:
        analyze(path)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    err = _error(tmp_path / "nope.tflite")
    assert err.code == "not_found" and "nope.tflite" in err.message
    assert _error(tmp_path).code == "not_found"  # a directory


def test_random_bytes_are_neither_format(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(range(256)) * 4)
    err = _error(path)
    assert err.code == "unsupported_format"
    assert err.message.startswith("x.bin is neither a .tflite nor an .onnx model (")


@pytest.mark.parametrize("source", ["cnn_fp32.tflite", "cnn_fp32.onnx", "slow.tflite"])
def test_truncated_files_are_bad_models(
    model_files: dict[str, Path], tmp_path: Path, source: str
) -> None:
    data = model_files[source].read_bytes()
    path = tmp_path / source
    path.write_bytes(data[: len(data) // 2])
    err = _error(path)
    assert err.code == "bad_model"
    assert "truncated or corrupt" in err.message


def test_empty_and_garbage_with_model_extensions(tmp_path: Path) -> None:
    for name, data in (("e.tflite", b""), ("g.onnx", b"\xff" * 64), ("g.tflite", b"hello world!")):
        (tmp_path / name).write_bytes(data)
        assert _error(tmp_path / name).code == "bad_model"


def test_wrong_extension_is_named(model_files: dict[str, Path], tmp_path: Path) -> None:
    tflite_as_onnx = tmp_path / "model.onnx"
    tflite_as_onnx.write_bytes(model_files["cnn_fp32.tflite"].read_bytes())
    err = _error(tflite_as_onnx)
    assert err.code == "unsupported_format"
    assert "holds a TFLite model" in err.message and "model.tflite" in err.message
    onnx_as_tflite = tmp_path / "model.tflite"
    onnx_as_tflite.write_bytes(model_files["cnn_fp32.onnx"].read_bytes())
    assert "holds an ONNX model" in _error(onnx_as_tflite).message


def test_format_detected_by_content_without_extension(
    model_files: dict[str, Path], tmp_path: Path
) -> None:
    for source, fmt in (("cnn_fp32.tflite", "tflite"), ("cnn_fp32.onnx", "onnx")):
        path = tmp_path / f"model_{fmt}"
        path.write_bytes(model_files[source].read_bytes())
        assert detect_format(path) == fmt
        assert analyze(path)["model"]["params"] == CNN_PARAMS


def test_import_loads_no_heavy_modules() -> None:
    code = (
        "import sys, profiler.analysis; "
        "print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'ai_edge_litert') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
