"""ONNX fixtures whose cost depends on control flow or on computed shapes, made
with ``onnx.helper``: ``If``/``Loop``/``Scan`` subgraphs holding the MatMuls, a
Paddle-style graph whose MatMul shapes come from Shape→Gather→Concat→Reshape
arithmetic (dims declared ``dim_value: -1``), and a model with a control input
(a sample rate) that fails on random values.

Each builder's docstring gives the figures counted by hand; the constants below
are what the tests compare :func:`profiler.analysis.analyze` against.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from modelkit.cnn import Array
from modelkit.onnx_build import model_bytes


def _init(name: str, arr: Array) -> TensorProto:
    return numpy_helper.from_array(arr, name)


def _const(name: str, arr: Array) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name))


def _weights(seed: int, *shapes: tuple[int, ...]) -> list[Array]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, size=s).astype(np.float32) for s in shapes]


# ---------------------------------------------------------------------------
# If: two branches of different cost
# ---------------------------------------------------------------------------

IF_THEN_MACS = 16 * 32 + 32 * 4
"""MACs of the ``then`` branch of :func:`build_onnx_if_branches` (the costlier)."""
IF_ELSE_MACS = 16 * 4
"""MACs of its ``else`` branch."""
IF_PARAMS = 16 * 32 + 32 * 4 + 16 * 4
"""Its parameters: the weights of both branches."""


def build_onnx_if_branches() -> bytes:
    """x [1,16] float32 and a flag ``wide`` (bool scalar) → ``If``:
    then x·W1[16,32] → Relu → ·W2[32,4] (640 MACs); else x·W3[16,4] (64 MACs) → y [1,4]."""
    w1, w2, w3 = _weights(3, (16, 32), (32, 4), (16, 4))
    out = [helper.make_tensor_value_info("branch_y", TensorProto.FLOAT, [1, 4])]
    then_graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("MatMul", ["hr", "w2"], ["branch_y"]),
        ],
        "wide_branch",
        [],
        out,
        initializer=[_init("w1", w1), _init("w2", w2)],
    )
    else_graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w3"], ["branch_y"])],
        "narrow_branch",
        [],
        out,
        initializer=[_init("w3", w3)],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["wide"], ["y"], then_branch=then_graph, else_branch=else_graph)],
        "edgeprof_if_branches",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16]),
            helper.make_tensor_value_info("wide", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    return model_bytes(graph)


# ---------------------------------------------------------------------------
# Loop: a body run M times
# ---------------------------------------------------------------------------

LOOP_BODY_MACS = 8 * 8
"""MACs of one iteration of :func:`build_onnx_loop`'s body."""
LOOP_TRIP_COUNT = 3
"""Its static trip count M."""


def build_onnx_loop(*, static_trip_count: bool = True) -> bytes:
    """h [1,8] float32 → ``Loop`` of M iterations of h = tanh(h·W[8,8]) (64 MACs each).

    ``static_trip_count``: M is a ``Constant`` 3 (192 MACs in all); else M is the
    graph input ``steps`` (int64 scalar) and only the per-iteration cost is known.
    """
    (w,) = _weights(4, (8, 8))
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MatMul", ["h_in", "w"], ["hw"]),
            helper.make_node("Tanh", ["hw"], ["h_out"]),
        ],
        "loop_body",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 8]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 8]),
        ],
    )
    nodes = [_const("keep_going", np.array(True))]
    inputs = [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 8])]
    if static_trip_count:
        nodes.append(_const("steps", np.array(LOOP_TRIP_COUNT, dtype=np.int64)))
    else:
        inputs.append(helper.make_tensor_value_info("steps", TensorProto.INT64, []))
    nodes.append(helper.make_node("Loop", ["steps", "keep_going", "h"], ["y"], body=body))
    graph = helper.make_graph(
        nodes,
        "edgeprof_loop",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[_init("w", w)],
    )
    return model_bytes(graph)


# ---------------------------------------------------------------------------
# Scan: a recurrent cell over a sequence
# ---------------------------------------------------------------------------

SCAN_STEP_MACS = 8 * 8 + 8 * 8
"""MACs of one step of :func:`build_onnx_scan`'s body."""
SCAN_LENGTH = 5
"""Its static sequence length."""
SCAN_PARAMS = 2 * 8 * 8


def build_onnx_scan(*, dynamic_length: bool = False) -> bytes:
    """An RNN cell over xs [T,1,8]: h = tanh(x_t·Wx + h·Wh) (128 MACs a step), from
    h0 [1,8]; outputs the last h and every h [T,1,8].

    T is 5, or the named dim ``T`` with ``dynamic_length`` (then ``--shape`` gives it).
    """
    wx, wh = _weights(5, (8, 8), (8, 8))
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["x_t", "wx"], ["xw"]),
            helper.make_node("MatMul", ["h_prev", "wh"], ["hw"]),
            helper.make_node("Add", ["xw", "hw"], ["pre"]),
            helper.make_node("Tanh", ["pre"], ["h_next"]),
            helper.make_node("Identity", ["h_next"], ["h_seq"]),
        ],
        "scan_body",
        [
            helper.make_tensor_value_info("h_prev", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("x_t", TensorProto.FLOAT, [1, 8]),
        ],
        [
            helper.make_tensor_value_info("h_next", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("h_seq", TensorProto.FLOAT, [1, 8]),
        ],
    )
    length: int | str = "T" if dynamic_length else SCAN_LENGTH
    graph = helper.make_graph(
        [helper.make_node("Scan", ["h0", "xs"], ["h_last", "hs"], body=body, num_scan_inputs=1)],
        "edgeprof_scan",
        [
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("xs", TensorProto.FLOAT, [length, 1, 8]),
        ],
        [
            helper.make_tensor_value_info("h_last", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("hs", TensorProto.FLOAT, [length, 1, 8]),
        ],
        initializer=[_init("wx", wx), _init("wh", wh)],
    )
    return model_bytes(graph)


# ---------------------------------------------------------------------------
# Paddle-style shape arithmetic
# ---------------------------------------------------------------------------

SHAPE_CHAIN_OPSET = 11
"""Paddle2ONNX's usual opset; onnx's own data propagation does not reach through
its Mul and Div (it knows Mul from opset 14 on, Div not at all)."""
SHAPE_CHAIN_MACS_PER_ROW = 16 * 32 + 2 * 16 * 8
"""MACs of :func:`build_onnx_shape_chain` per (batch x time) row."""
SHAPE_CHAIN_PARAMS = 16 * 32 + 16 * 8


def _shape_chain_block(k: int, x: str, out: str) -> list[onnx.NodeProto]:
    """One block: x [b,t,16] → [b*t,16]·W1 → [b, t*4/2, 16]·W2 → back to [b,t,16],
    every target shape computed from Shape(x)."""
    n = "" if k == 0 else f"block{k}_"
    return [
        helper.make_node("Shape", [x], [n + "x_shape"]),
        helper.make_node("Gather", [n + "x_shape", "idx0"], [n + "batch"], axis=0),
        helper.make_node("Gather", [n + "x_shape", "idx1"], [n + "time"], axis=0),
        helper.make_node("Unsqueeze", [n + "batch"], [n + "batch_1d"], axes=[0]),
        helper.make_node("Unsqueeze", [n + "time"], [n + "time_1d"], axes=[0]),
        # [b, t, 16] → [b*t, 16] · W1 [16, 32]
        helper.make_node("Mul", [n + "batch", n + "time"], [n + "rows"]),
        helper.make_node("Unsqueeze", [n + "rows"], [n + "rows_1d"], axes=[0]),
        helper.make_node("Concat", [n + "rows_1d", "c16"], [n + "flat_shape"], axis=0),
        helper.make_node("Reshape", [x, n + "flat_shape"], [n + "flat"]),
        helper.make_node("MatMul", [n + "flat", "w1"], [n + "hidden"]),
        # [b*t, 32] → [b, t*4/2, 16] · W2 [16, 8]
        helper.make_node("Mul", [n + "time", "four"], [n + "time4"]),
        helper.make_node("Div", [n + "time4", "two"], [n + "time2"]),
        helper.make_node("Unsqueeze", [n + "time2"], [n + "time2_1d"], axes=[0]),
        helper.make_node(
            "Concat", [n + "batch_1d", n + "time2_1d", "c16"], [n + "seq_shape"], axis=0
        ),
        helper.make_node("Reshape", [n + "hidden", n + "seq_shape"], [n + "seq"]),
        helper.make_node("MatMul", [n + "seq", "w2"], [n + "seq_out"]),
        # [b, 2t, 8] → [b, t, 16]
        helper.make_node(
            "Concat", [n + "batch_1d", n + "time_1d", "c16"], [n + "back_shape"], axis=0
        ),
        helper.make_node("Reshape", [n + "seq_out", n + "back_shape"], [out]),
    ]


def _shape_chain_graph(blocks: int) -> onnx.GraphProto:
    w1, w2 = _weights(6, (16, 32), (16, 8))
    i64 = np.int64
    nodes = [
        _const("idx0", np.array(0, dtype=i64)),
        _const("idx1", np.array(1, dtype=i64)),
        _const("two", np.array(2, dtype=i64)),
        _const("four", np.array(4, dtype=i64)),
        _const("c16", np.array([16], dtype=i64)),
        _const("w1", w1),
        _const("w2", w2),
    ]
    for k in range(blocks):
        nodes += _shape_chain_block(k, "x" if k == 0 else f"out{k - 1}", f"out{k}")
    nodes.append(helper.make_node("Identity", [f"out{blocks - 1}"], ["y"]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16])
    for dim in x.type.tensor_type.shape.dim[:2]:
        dim.dim_value = -1  # how Paddle exports a dynamic dim
    return helper.make_graph(
        nodes,
        "edgeprof_shape_chain",
        [x],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )


def build_onnx_shape_chain(blocks: int = 1) -> bytes:
    """A Paddle-like export at opset 11: x [-1, -1, 16] (``dim_value: -1``, i.e. batch and
    time dynamic), weights in ``Constant`` nodes (shared by the blocks); MatMul shapes
    only from Shape→Gather→Mul/Div→Unsqueeze→Concat→Reshape, each block's from the
    Shape of the block before::

        x [b,t,16] → Reshape [b*t,16] → ·W1 [16,32] → Reshape [b, t*4/2, 16] → ·W2 [16,8]
                   → Reshape [b,t,16] → (next block) … → y [b,t,16]

    MACs blocks·b·t·(512 + 2·128) = blocks·b·t·768; 640 parameters.
    """
    # IR 7: what Paddle2ONNX writes for opset 11.
    return model_bytes(_shape_chain_graph(blocks), opset=SHAPE_CHAIN_OPSET, ir_version=7)


# ---------------------------------------------------------------------------
# A control input
# ---------------------------------------------------------------------------

SAMPLE_RATE = 16000
"""The sample rate :func:`build_onnx_sample_rate` needs (with its 160-sample frame)."""


def build_onnx_sample_rate() -> bytes:
    """audio [1,160] float32 and ``sr`` (int64 scalar) → audio × the window of that
    rate (a table of one window, for 16 kHz, indexed by sr/8000 − 2) → y [1,160].

    Like a voice-activity model's sample-rate input: only ``sr`` in 8000..23999
    runs (``--input-value sr=16000``); a random ``sr`` (a small integer) makes
    the runtime fail with an index out of range."""
    i64 = np.int64
    window = np.hanning(160).astype(np.float32)[None, :]
    nodes = [
        _const("rate_step", np.array(8000, dtype=i64)),
        _const("first_rate", np.array(2, dtype=i64)),
        _const("windows", window),
        helper.make_node("Div", ["sr", "rate_step"], ["rate_index"]),
        helper.make_node("Sub", ["rate_index", "first_rate"], ["table_index"]),
        helper.make_node("Gather", ["windows", "table_index"], ["window"], axis=0),
        helper.make_node("Mul", ["audio", "window"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "edgeprof_sample_rate",
        [
            helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, 160]),
            helper.make_tensor_value_info("sr", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 160])],
    )
    return model_bytes(graph)
