"""Input generation, .npy/.npz loading and shape resolution (profiler.inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from profiler.backends.base import TensorSpec
from profiler.errors import BAD_INPUT, DYNAMIC_SHAPE, ProfilerError
from profiler.inputs import prepare_inputs, random_inputs_hint, resolve_shapes

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
    specs = [TensorSpec("x", ("batch", 3, 48, "width"), "float32")]
    with pytest.raises(ProfilerError) as err:
        resolve_shapes(specs, {})
    assert err.value.code == DYNAMIC_SHAPE
    # named dims kept, legible; no size made up for them (it used to say x=1,3,48,1)
    assert err.value.message == (
        "model inputs have dims without a size: x[batch?, 3, 48, width?] (batch, width); "
        "give the whole shape of each with the sizes to measure, --shape x=<batch>,3,48,<width>"
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
        "model inputs have dims without a size: c[?, seq?] (d0, seq); give the whole shape "
        "of each with the sizes to measure, --shape c=<d0>,<seq>"
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
        ({"input": [1, 3, 224]}, "input input[N?, 3, 224, 224] has 4 dims, got 3"),
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
        ({"a": np.ones((1, 4), np.float64)}, "expects float32 [1, 4], got float64"),
        (
            {"a": np.ones((1, 5), np.float32)},
            "[1, 5] does not match the fixed dims of input a[1, 4]",
        ),
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


def test_negative_and_empty_dims_are_dynamic_everywhere() -> None:
    spec = TensorSpec("x", (-1, 3, "", None, "width", 0), "float32")
    assert spec.shape == (None, 3, None, None, "width", 0)
    assert spec.is_dynamic and spec.dynamic_dims() == ["d0", "d2", "d3", "width"]
    assert spec.label() == "x[?, 3, ?, ?, width?, 0]"
    assert resolve_shapes([spec], {"x": [2, 3, 4, 5, 6, 0]}) == {"x": (2, 3, 4, 5, 6, 0)}


# ---------------------------------------------------------------------------
# --input-value / --input-range
# ---------------------------------------------------------------------------


def _audio_specs() -> list[TensorSpec]:
    return [
        TensorSpec("audio", (1, 160), "float32"),
        TensorSpec("sr", (), "int64"),
        TensorSpec("flag", (1,), "bool"),
        TensorSpec("q", (2, 3), "uint8"),
    ]


def test_input_value_and_range_fill_generated_inputs() -> None:
    prepared = prepare_inputs(
        _audio_specs(),
        shapes={},
        inputs_path=None,
        seed=0,
        values={"sr": 16000, "flag": 1},
        ranges={"audio": [-0.5, 0.5], "q": [10, 12]},
    )
    arrays = prepared.arrays
    assert arrays["sr"].shape == () and arrays["sr"].dtype == np.int64 and arrays["sr"] == 16000
    assert arrays["flag"].dtype == np.bool_ and arrays["flag"].all()
    assert arrays["audio"].min() >= -0.5 and arrays["audio"].max() < 0.5
    assert set(np.unique(arrays["q"])) <= {10, 11, 12} and arrays["q"].dtype == np.uint8
    tensors = {t["name"]: t for t in prepared.description["tensors"]}
    assert tensors["sr"] == {
        "name": "sr",
        "shape": [],
        "dtype": "int64",
        "fill": "value",
        "value": 16000,
    }
    assert tensors["audio"]["fill"] == "range" and tensors["audio"]["range"] == [-0.5, 0.5]


def test_random_inputs_are_described() -> None:
    prepared = prepare_inputs(_audio_specs(), shapes={}, inputs_path=None, seed=0)
    tensors = {t["name"]: t for t in prepared.description["tensors"]}
    assert tensors["sr"]["fill"] == "random" and tensors["sr"]["range"] == [0, 9]
    assert tensors["q"]["range"] == [0, 255]
    assert tensors["audio"]["distribution"] == "normal(0, 1)"
    hint = random_inputs_hint(prepared.description)
    assert "audio (float32 normal(0, 1)), sr (int64 in [0, 9])" in hint
    assert "--input-value NAME=V" in hint and "--input-range NAME=LO,HI" in hint
    given = prepare_inputs(
        _audio_specs()[1:2], shapes={}, inputs_path=None, seed=0, values={"sr": 8000}
    )
    assert random_inputs_hint(given.description) == ""


@pytest.mark.parametrize(
    ("values", "ranges", "words"),
    [
        (
            {"rate": 16000},
            {},
            "--input-value rate=16000: the model has no input 'rate'; its inputs",
        ),
        ({"sr": 0.5}, {}, "0.5 is not a value of input sr's dtype int64"),
        (
            {"q": 256},
            {},
            "--input-value q=256: 256 is not a value of input q's dtype uint8 (integers 0..255)",
        ),
        ({}, {"q": [-1, 3]}, "--input-range q=-1,3: -1 is not a value"),
        ({"flag": 2}, {}, "dtype bool (0/1 or false/true)"),
        ({}, {"audio": [0, 1e39]}, "is not a value of input audio's dtype float32"),
    ],
)
def test_fills_that_do_not_fit_are_refused(
    values: dict[str, Any], ranges: dict[str, Any], words: str
) -> None:
    with pytest.raises(ProfilerError) as err:
        prepare_inputs(
            _audio_specs(), shapes={}, inputs_path=None, seed=0, values=values, ranges=ranges
        )
    assert err.value.code == BAD_INPUT
    assert words in err.value.message
    assert "\n" not in err.value.message
