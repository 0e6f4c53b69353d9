"""Input generation, .npy/.npz loading and shape resolution (profiler.inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from profiler.backends.base import TensorSpec
from profiler.errors import BAD_INPUT, DYNAMIC_SHAPE, ProfilerError
from profiler.inputs import prepare_inputs, resolve_shapes

DTYPES = ("float32", "float16", "int8", "uint8", "int32", "int64", "bool")


def _specs() -> list[TensorSpec]:
    return [TensorSpec(name=f"x_{d}", shape=(1, 4), dtype=d) for d in DTYPES]


def test_every_dtype_is_generated_with_its_shape() -> None:
    prepared = prepare_inputs(_specs(), shapes={}, inputs_path=None, seed=3)
    for dtype in DTYPES:
        arr = prepared.arrays[f"x_{dtype}"]
        assert arr.dtype == np.dtype(dtype)
        assert arr.shape == (1, 4)
    assert prepared.description["source"] == "generated"
    assert prepared.description["seed"] == 3
    assert [t["dtype"] for t in prepared.description["tensors"]] == list(DTYPES)


def test_generated_inputs_follow_the_seed() -> None:
    spec = [TensorSpec("x", (2, 8), "float32"), TensorSpec("q", (2, 8), "int8")]
    a = prepare_inputs(spec, shapes={}, inputs_path=None, seed=1).arrays
    b = prepare_inputs(spec, shapes={}, inputs_path=None, seed=1).arrays
    c = prepare_inputs(spec, shapes={}, inputs_path=None, seed=2).arrays
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["q"], b["q"])
    assert not np.array_equal(a["x"], c["x"])


def test_dynamic_dims_without_shape_name_the_option() -> None:
    specs = [TensorSpec("input", ("N", 3, 224, 224), "float32")]
    with pytest.raises(ProfilerError) as err:
        resolve_shapes(specs, {})
    assert err.value.code == DYNAMIC_SHAPE
    assert err.value.message == (
        "model has dynamic input dims: input[N,3,224,224]; give them with --shape input=1,3,224,224"
    )


def test_every_dynamic_input_is_listed() -> None:
    specs = [
        TensorSpec("a", (-1, 3), "float32"),
        TensorSpec("b", (1, 5), "float32"),
        TensorSpec("c", (None, "seq"), "int64"),
    ]
    with pytest.raises(ProfilerError) as err:
        resolve_shapes(specs, {"a": [2, 3]})
    assert err.value.message == (
        "model has dynamic input dims: c[?,seq]; give them with --shape c=1,1"
    )
    assert resolve_shapes(specs, {"a": [2, 3], "c": [1, 7]}) == {
        "a": (2, 3),
        "b": (1, 5),
        "c": (1, 7),
    }


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"nope": [1, 3]}, "no input 'nope'"),
        ({"input": [1, 3, 224]}, "has 4 dims"),
        ({"input": [1, 4, 224, 224]}, "fixed dims"),
    ],
)
def test_bad_shape_options(given: dict[str, list[int]], words: str) -> None:
    specs = [TensorSpec("input", ("N", 3, 224, 224), "float32")]
    with pytest.raises(ProfilerError) as err:
        resolve_shapes(specs, given)
    assert err.value.code == BAD_INPUT
    assert words in err.value.message


def test_npy_for_a_single_input(tmp_path: Path) -> None:
    data = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(tmp_path / "x.npy", data)
    specs = [TensorSpec("x", (-1, 4), "float32")]
    prepared = prepare_inputs(specs, shapes={}, inputs_path=str(tmp_path / "x.npy"), seed=0)
    np.testing.assert_array_equal(prepared.arrays["x"], data)
    assert prepared.shapes == {"x": (2, 4)}  # the dynamic dim comes from the file
    assert prepared.description["source"] == "file"
    assert prepared.description["file"] == "x.npy"


def test_npy_for_two_inputs_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    specs = [TensorSpec("a", (1, 4), "float32"), TensorSpec("b", (1, 4), "float32")]
    with pytest.raises(ProfilerError) as err:
        prepare_inputs(specs, shapes={}, inputs_path=str(tmp_path / "x.npy"), seed=0)
    assert err.value.code == BAD_INPUT
    assert ".npz" in err.value.message


def test_npz_by_name_and_in_order(tmp_path: Path) -> None:
    a, b = np.ones((1, 4), np.float32), np.full((1, 2), 7, np.int64)
    specs = [TensorSpec("a", (1, 4), "float32"), TensorSpec("b", (1, 2), "int64")]
    np.savez(tmp_path / "named.npz", b=b, a=a)
    np.savez(tmp_path / "ordered.npz", a, b)
    for name in ("named.npz", "ordered.npz"):
        arrays = prepare_inputs(specs, shapes={}, inputs_path=str(tmp_path / name), seed=0).arrays
        np.testing.assert_array_equal(arrays["a"], a)
        np.testing.assert_array_equal(arrays["b"], b)


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"a": np.ones((1, 4), np.float64)}, "expects float32 [1,4], got float64"),
        ({"a": np.ones((1, 5), np.float32)}, "fixed dims [1,4]"),
        ({"other": np.ones((1, 4), np.float32)}, "missing a"),
    ],
)
def test_npz_mismatch_says_what_was_expected(
    tmp_path: Path, arrays: dict[str, Any], words: str
) -> None:
    np.savez(tmp_path / "in.npz", **arrays)
    with pytest.raises(ProfilerError) as err:
        prepare_inputs(
            [TensorSpec("a", (1, 4), "float32")],
            shapes={},
            inputs_path=str(tmp_path / "in.npz"),
            seed=0,
        )
    assert err.value.code == BAD_INPUT
    assert words in err.value.message


def test_unreadable_input_file(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not numpy at all")
    with pytest.raises(ProfilerError) as err:
        prepare_inputs(
            [TensorSpec("a", (1, 4), "float32")],
            shapes={},
            inputs_path=str(tmp_path / "junk.npz"),
            seed=0,
        )
    assert err.value.code == BAD_INPUT
    # named for what it is, not NumPy's misleading "allow_pickle" complaint
    assert "neither a .npy nor a .npz" in err.value.message
    assert "pickle" not in err.value.message
