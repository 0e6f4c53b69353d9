"""Top-1 accuracy on classifiers whose correct answers are known (profiler.accuracy)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelkit import fixtures
from profiler.accuracy import evaluate_top1
from profiler.backends import Backend, create_backend, detect_format
from profiler.errors import BAD_EVAL_DATA, ProfilerError
from profiler.runner import profile
from profiler.settings import ProfileSettings
from protocol.result import decode_correct, read_result

TINY = ProfileSettings(runs=5, warmup=1, min_seconds=0, warmup_seconds=0)


@pytest.fixture(scope="module")
def data(model_files: dict[str, Path]) -> dict[str, Path]:
    names = (
        "classifier_fp32.tflite",
        "classifier_int8.tflite",
        "classifier.onnx",
        "cnn_dynamic.onnx",
        "cnn_dynamic.tflite",
    )
    return {name: model_files[name] for name in names}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    out = tmp_path_factory.mktemp("labels")
    expected = fixtures.make_labelled_dataset(out / "labelled.npz", n=50)
    same = fixtures.make_labelled_dataset(out / "labelled_int8.npz", n=50, int8=True)
    assert same == expected
    return out / "labelled.npz", out / "labelled_int8.npz", expected


@pytest.mark.parametrize(
    ("model", "int8_data"),
    [
        ("classifier_fp32.tflite", False),
        ("classifier_int8.tflite", False),
        ("classifier_int8.tflite", True),
        ("classifier.onnx", False),
    ],
)
def test_top1_matches_the_known_answer(
    data: dict[str, Path], labelled: tuple[Path, Path, float], model: str, int8_data: bool
) -> None:
    float_npz, int8_npz, expected = labelled
    eval_path = int8_npz if int8_data else float_npz
    result = profile(
        data[model],
        ProfileSettings.from_dict({**TINY.to_dict(), "eval_path": str(eval_path)}),
        analyze=False,
    )
    assert result["status"] == "ok", result["error"]
    accuracy = result["accuracy"]
    assert (accuracy["top1"], accuracy["n"]) == (pytest.approx(expected), 50)
    # Which samples were right travels too, with the data's hash, for paired gates.
    read = read_result(result).accuracy
    assert read is not None and read.correct() == _truth(eval_path)
    assert read.data_sha256 == hashlib.sha256(eval_path.read_bytes()).hexdigest()
    assert result["latency_ms"]["n"] == result["phases"]["steady"]["runs"]  # timing untouched


def _truth(npz: Path) -> list[bool]:
    """Per-sample correctness the fixture classifiers must score: each row's largest
    value sits at the true class, and some labels are deliberately wrong."""
    with np.load(npz) as data:
        return [bool(v) for v in np.argmax(data["x"], axis=1) == data["y"]]


def _backend(path: Path, shapes: dict[str, list[int]] | None = None) -> Backend:
    backend = create_backend(detect_format(path), TINY)
    backend.load(str(path))
    backend.prepare(shapes or {})
    return backend


def test_one_hot_labels(
    data: dict[str, Path], labelled: tuple[Path, Path, float], tmp_path: Path
) -> None:
    float_npz, _, expected = labelled
    with np.load(float_npz) as npz:
        x, y = npz["x"], npz["y"]
    np.savez(tmp_path / "onehot.npz", x=x, y=np.eye(10, dtype=np.float32)[y])
    acc = evaluate_top1(_backend(data["classifier.onnx"]), str(tmp_path / "onehot.npz"))
    assert (acc["top1"], acc["n"]) == (pytest.approx(expected), 50)
    assert decode_correct(acc["correct"]) == _truth(float_npz)


@pytest.mark.parametrize(
    ("name", "sample"), [("cnn_dynamic.onnx", (3, 16, 16)), ("cnn_dynamic.tflite", (16, 16, 3))]
)
def test_dynamic_batch_models_run_in_batches(
    data: dict[str, Path], tmp_path: Path, name: str, sample: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, *sample)).astype(np.float32)
    backend = _backend(data[name], {"input": [1, *sample]})
    # The labels are the model's own one-at-a-time answers: batching must agree.
    y = np.array([int(np.argmax(backend.run({"input": x[i : i + 1]})[0])) for i in range(70)])
    np.savez(tmp_path / "eval.npz", x=x, y=y)
    acc = evaluate_top1(backend, str(tmp_path / "eval.npz"))
    assert (acc["top1"], acc["n"]) == (1.0, 70)
    assert decode_correct(acc["correct"]) == [True] * 70


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"x": np.zeros((4, 10), np.float32)}, "lacks y"),
        ({"images": np.zeros((4, 10), np.float32)}, "lacks x and y"),
        ({"x": np.zeros((4, 12), np.float32), "y": np.zeros(4, np.int64)}, "[12]"),
        ({"x": np.zeros((4, 10), np.float32), "y": np.zeros(3, np.int64)}, "3 labels"),
        ({"x": np.zeros((4, 10), np.float32), "y": np.zeros(4, np.float32)}, "integer labels"),
    ],
)
def test_bad_eval_data_is_explained(
    data: dict[str, Path], tmp_path: Path, arrays: dict[str, Any], words: str
) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ProfilerError) as err:
        evaluate_top1(_backend(data["classifier.onnx"]), str(tmp_path / "bad.npz"))
    assert err.value.code == BAD_EVAL_DATA
    assert words in err.value.message


def test_bad_eval_data_in_a_result(data: dict[str, Path], tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 10), np.float32))
    settings = ProfileSettings.from_dict({**TINY.to_dict(), "eval_path": str(tmp_path / "bad.npz")})
    result = profile(data["classifier.onnx"], settings, analyze=False)
    assert result["status"] == "error"
    assert result["error"]["code"] == BAD_EVAL_DATA


def test_a_large_eval_set_does_not_count_as_the_models_memory(tmp_path: Path) -> None:
    from profiler.models import demo_model

    # ~150 MB of labelled 64x64x3 images for a 17 KB CNN.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 64, 64, 3), dtype=np.float32)
    big = tmp_path / "big.npz"
    np.savez(big, x=x, y=rng.integers(0, 10, size=3000))
    del x
    model = demo_model("tflite")
    plain = profile(model, TINY, analyze=False)
    with_eval = profile(
        model, ProfileSettings.from_dict({**TINY.to_dict(), "eval_path": str(big)}), analyze=False
    )
    assert with_eval["status"] == "ok", with_eval["error"]
    assert with_eval["accuracy"]["n"] == 3000
    memory = with_eval["memory_mb"]
    # the model's peak is what it was without the data set (same worker, same model)
    assert memory["peak_rss"] < plain["memory_mb"]["peak_rss"] + 30
    # and the data set's cost is reported apart
    assert memory["peak_rss_with_eval"] > memory["peak_rss"] + 100


def _write_bad(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "eval.npz"
    x = np.zeros((4, 10), np.float32)
    if kind == "text":
        path.write_text("x,y\n1,2\n")
    elif kind == "npy":
        with path.open("wb") as fh:
            np.save(fh, x)
    elif kind == "labels":
        np.savez(path, x=x, y=np.array([0, 3, 12, 9]))
    elif kind == "one_hot":
        np.savez(path, x=x, y=np.eye(12, dtype=np.float32)[[0, 1, 2, 11]])
    elif kind == "shape":
        np.savez_compressed(path, x=np.zeros((4, 3, 4), np.float32), y=np.zeros(4, np.int64))
    return path


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("missing", "does not exist"),
        ("text", "not a .npz archive"),
        ("npy", "single .npy array"),
        ("labels", "y has labels outside 0..9 (the model has 10 outputs)"),
        ("one_hot", "y has labels outside 0..9 (the model has 10 outputs)"),
        ("shape", "x samples have shape [3, 4]"),
    ],
)
def test_a_bad_eval_file_fails_before_anything_is_measured(
    data: dict[str, Path], tmp_path: Path, kind: str, words: str
) -> None:
    path = _write_bad(tmp_path, kind)
    # min_seconds=30: finding the problem only after the measurement would show as a timeout
    settings = ProfileSettings.from_dict(
        {**TINY.to_dict(), "min_seconds": 30, "timeout_s": 20, "eval_path": str(path)}
    )
    result = profile(data["classifier.onnx"], settings, analyze=False)
    assert result["status"] == "error"
    assert result["error"]["code"] == BAD_EVAL_DATA, result["error"]
    assert words in result["error"]["message"]
    assert "allow_pickle" not in result["error"]["message"]
    assert result["phases"]["failed_in"] == "inputs"
    assert "warmup" not in result["phases"]["seen"]


def test_a_failing_accuracy_phase_keeps_the_latency(data: dict[str, Path], tmp_path: Path) -> None:
    # x's header and y are intact (they pass the early check); x's data is corrupt,
    # which only reading all of it (the accuracy phase) finds out.
    path = tmp_path / "corrupt.npz"
    np.savez(path, x=np.full((200, 10), 1.5, np.float32), y=np.zeros(200, np.int64))
    blob = bytearray(path.read_bytes())
    at = blob.index(np.full(64, 1.5, np.float32).tobytes()) + 1000
    blob[at] ^= 0xFF
    path.write_bytes(bytes(blob))
    settings = ProfileSettings.from_dict({**TINY.to_dict(), "eval_path": str(path)})
    result = profile(data["classifier.onnx"], settings, analyze=False)
    assert result["status"] == "ok", result["error"]
    assert result["latency_ms"]["n"] >= 5
    assert result["accuracy"] is None
    assert result["accuracy_error"]["code"] == BAD_EVAL_DATA
    assert "corrupt.npz" in result["accuracy_error"]["message"]
    assert "accuracy_error" in result["flags"]
