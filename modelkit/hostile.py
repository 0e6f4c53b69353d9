"""Hostile fixtures, made in code, for the fault tests: a model that never
finishes an inference, one that asks for more memory than any device has, one
that reads another file through ONNX external data, and an .npz zip bomb."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from modelkit.onnx_build import model_bytes


def build_onnx_endless_loop() -> bytes:
    """``input [1,4] → output``, through a Loop whose condition never turns false
    (and whose trip count is INT64_MAX): the first inference hangs forever,
    inside ONNX Runtime's native code."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
        ],
        "forever",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1, 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1, 4]),
        ],
        initializer=[numpy_helper.from_array(np.ones((1, 4), dtype=np.float32), "one")],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "keep_going", "input"], ["output"], body=body)],
        "edgeprof_endless_loop",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
        initializer=[
            numpy_helper.from_array(np.array(np.iinfo(np.int64).max, dtype=np.int64), "trips"),
            numpy_helper.from_array(np.array(True), "keep_going"),
        ],
    )
    return model_bytes(graph)


def build_onnx_memory_hog(n_floats: int = 2**30) -> bytes:
    """``input [1,4] → output``, plus a ConstantOfShape of `n_floats` float32
    (4 GiB by default) summed into the output: each inference allocates it."""
    graph = helper.make_graph(
        [
            helper.make_node(
                "ConstantOfShape",
                ["shape"],
                ["big"],
                value=helper.make_tensor("fill", TensorProto.FLOAT, [1], [1.0]),
            ),
            helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
            helper.make_node("Add", ["input", "total"], ["output"]),
        ],
        "edgeprof_memory_hog",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
        initializer=[numpy_helper.from_array(np.array([n_floats], dtype=np.int64), "shape")],
    )
    return model_bytes(graph)


def build_onnx_external_data(location: str, length: int = 64) -> bytes:
    """``output = weights`` (uint8 [length]) where the weights are "external data"
    read from `location` — a file the model names, relative to its own directory
    (``index.json``, ``../models/index.json``) or absolute (``/etc/passwd``)."""
    weights = TensorProto()
    weights.name = "weights"
    weights.data_type = TensorProto.UINT8
    weights.dims.append(length)
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Identity", ["weights"], ["output"])],
        "edgeprof_external_data",
        [],
        [helper.make_tensor_value_info("output", TensorProto.UINT8, [length])],
        initializer=[weights],
    )
    return model_bytes(graph)


def write_npz_bomb(path: str | Path, declared_bytes: int, name: str = "x") -> Path:
    """A real zip bomb in .npz form: one float32 member `name` whose header
    declares `declared_bytes` of data, all zeros, deflated (≈1000:1). Written in
    chunks, so making it costs time but no memory; plus a small ``y``."""
    out = Path(path)
    count = declared_bytes // 4
    header = _npy_header((count,), "<f4")
    chunk = bytes(16 * 1024 * 1024)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            member.write(header)
            left = count * 4
            while left > 0:
                member.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
        with archive.open("y.npy", "w") as member:
            labels = np.zeros(count if count < 16 else 16, dtype=np.int64)
            member.write(_npy_header(labels.shape, "<i8") + labels.tobytes())
    return out


def _npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    """A version-1.0 .npy header (what numpy.lib.format writes)."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    body = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


def compressed_size(path: str | Path) -> int:
    """Bytes of the file on disk (to show the ratio of a bomb)."""
    return Path(path).stat().st_size
