"""Tensor shapes of an ONNX graph, as far as they follow from its input shapes.

``onnx.shape_inference.infer_shapes(data_prop=True)`` propagates the *values* of
shape tensors only through some ops (Shape, Gather, Concat, Slice, Squeeze,
Unsqueeze, Cast; Add/Sub/Mul from opset 14 on; never Div): a Paddle export at
opset 11 computes ``Reshape`` targets with Mul and Div over ``Shape`` outputs, and
every MatMul behind such a Reshape is left without a shape. ONNX Runtime's
``symbolic_shape_infer`` resolves those chains but needs sympy (85 MB with mpmath,
not a dependency of onnxruntime any more, too heavy for the agent). So
:func:`infer_concrete_shapes` alternates onnx's own inference with folding: every
node of the main graph whose inputs are now known constants (or, for Shape and
Size, tensors of a known shape) and small is evaluated with onnx's reference
implementation (``onnx.reference``) and replaced by a ``Constant``; inference runs
again, until nothing more folds. Only shape-sized integer arithmetic is evaluated
(:data:`FOLDABLE_OPS`, at most :data:`FOLD_MAX_ELEMENTS` elements); weights are
taken out of the graph first (shape inference needs their shapes, not their bytes).

Negative dims (Paddle's ``dim_value: -1``) are unknown dims here, as everywhere
(:func:`profiler.backends.base.normalize_dim`).

onnx and numpy are imported inside the functions (this module is imported by
profiler.analysis, itself imported lazily).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from profiler.backends.base import is_static_dim, normalize_dim

log = logging.getLogger(__name__)

FOLDABLE_OPS = frozenset(
    {
        "Abs",
        "Add",
        "And",
        "Cast",
        "Ceil",
        "Clip",
        "Concat",
        "ConstantOfShape",
        "Div",
        "Equal",
        "Expand",
        "Flatten",
        "Floor",
        "Gather",
        "GatherElements",
        "Greater",
        "GreaterOrEqual",
        "Identity",
        "Less",
        "LessOrEqual",
        "Max",
        "Min",
        "Mod",
        "Mul",
        "Neg",
        "Not",
        "Or",
        "Range",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceSum",
        "Reshape",
        "Round",
        "Shape",
        "Sign",
        "Size",
        "Slice",
        "Split",
        "Squeeze",
        "Sub",
        "Tile",
        "Transpose",
        "Unsqueeze",
        "Where",
    }
)
"""Ops evaluated when their inputs are known: the arithmetic of shape computations."""

FOLD_MAX_ELEMENTS = 4096
"""Inputs and outputs larger than this are never evaluated (a shape has a few dims)."""
FOLD_MAX_ROUNDS = 64
"""Inference/folding rounds at most (one per Shape of a tensor whose shape was just
found: a chain of reshaping blocks takes one round a block)."""
_KEEP_CONSTANT_ELEMENTS = 64
"""Constants up to this size stay in the graph for inference (their values may be
shapes); larger float weights leave it."""
_INTEGER_TYPES = frozenset({2, 3, 4, 5, 6, 7, 12, 13})  # (u)int8/16/32/64 in TensorProto


def dims_of(value: Any) -> list[int | None] | None:
    """The dims of a ValueInfoProto (None: not a tensor, or rank unknown); a dynamic
    dim (a name, nothing, or a negative size) is None."""
    if value.type.WhichOneof("value") != "tensor_type":
        return None
    tt = value.type.tensor_type
    if not tt.HasField("shape"):
        return None
    out: list[int | None] = []
    for d in tt.shape.dim:
        dim = normalize_dim(int(d.dim_value) if d.HasField("dim_value") else d.dim_param)
        out.append(dim if is_static_dim(dim) else None)  # type: ignore[arg-type]
    return out


def _value_infos(graph: Any) -> Iterator[Any]:
    yield from graph.input
    yield from graph.output
    yield from graph.value_info


def _subgraphs(graph: Any) -> Iterator[Any]:
    import onnx

    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield attr.g
            elif attr.type == onnx.AttributeProto.GRAPHS:
                yield from attr.graphs


def clear_negative_dims(graph: Any) -> None:
    """Every negative ``dim_value`` of ``graph`` and its subgraphs becomes an unknown dim
    (onnx's inference would otherwise take -1 as a size)."""
    for value in _value_infos(graph):
        if value.type.WhichOneof("value") != "tensor_type":
            continue
        for d in value.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and normalize_dim(int(d.dim_value)) is None:
                d.Clear()
    for sub in _subgraphs(graph):
        clear_negative_dims(sub)


def _set_input_shapes(graph: Any, shapes: Mapping[str, list[int]]) -> None:
    for value in graph.input:
        if value.name in shapes:
            for d, size in zip(value.type.tensor_type.shape.dim, shapes[value.name], strict=True):
                d.Clear()
                d.dim_value = size


def _strip_weights(graph: Any) -> None:
    """Move the main graph's large non-integer constants out: initializers and
    Constant nodes become graph inputs of the same type and shape (in place)."""
    from onnx import helper

    declared = {v.name for v in graph.input}
    kept = []
    for init in graph.initializer:
        small = len(init.dims) == 0 or _elements(init.dims) <= _KEEP_CONSTANT_ELEMENTS
        if small or init.data_type in _INTEGER_TYPES:
            kept.append(init)
            continue
        if init.name not in declared:
            graph.input.append(
                helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
            )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = []
    for node in graph.node:
        tensor = _constant_tensor(node)
        if (
            tensor is not None
            and tensor.data_type not in _INTEGER_TYPES
            and _elements(tensor.dims) > _KEEP_CONSTANT_ELEMENTS
        ):
            graph.input.append(
                helper.make_tensor_value_info(node.output[0], tensor.data_type, list(tensor.dims))
            )
            continue
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _elements(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def _constant_tensor(node: Any) -> Any:
    """The TensorProto of a ``Constant`` node's ``value`` attribute, else None."""
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or not node.output:
        return None
    for attr in node.attribute:
        if attr.name == "value":
            return attr.t
    return None


def constant_values(graph: Any) -> dict[str, Any]:
    """Values (numpy arrays) of the graph's small initializers and Constant nodes."""
    import numpy as np
    from onnx import helper, numpy_helper

    tensors = [(t.name, t) for t in graph.initializer]
    values: dict[str, Any] = {}
    for node in graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or not node.output:
            continue
        for attr in node.attribute:
            if attr.name == "value":
                tensors.append((node.output[0], attr.t))
            elif attr.name in ("value_int", "value_ints"):
                values[node.output[0]] = np.asarray(helper.get_attribute_value(attr), np.int64)
            elif attr.name in ("value_float", "value_floats"):
                values[node.output[0]] = np.asarray(helper.get_attribute_value(attr), np.float32)
    for name, tensor in tensors:
        if _elements(tensor.dims) > FOLD_MAX_ELEMENTS:
            continue
        try:
            values[name] = numpy_helper.to_array(tensor)
        except Exception:  # an odd dtype or external data: not a value to compute with
            log.debug("constant %s unreadable", name)
    return values


def shapes_of(graph: Any) -> dict[str, list[int | None]]:
    """Dims of every value the graph declares or infers, and of its constants."""
    known: dict[str, list[int | None]] = {}
    for value in _value_infos(graph):
        dims = dims_of(value)
        if dims is not None:
            known[value.name] = dims
    for init in graph.initializer:
        known[init.name] = [int(d) for d in init.dims]
    for node in graph.node:
        tensor = _constant_tensor(node)
        if tensor is not None:
            known[node.output[0]] = [int(d) for d in tensor.dims]
    return known


def _infer(model: Any) -> Any:
    import onnx

    return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)


def infer_concrete_shapes(model: Any, shapes: Mapping[str, list[int]]) -> tuple[Any, str | None]:
    """``(inferred model, problem)``: ``model`` (consumed: its weights are stripped)
    with ``shapes`` substituted for its inputs' shapes, shape subgraphs folded and
    every value's shape inferred as far as the inputs determine it; ``problem`` is
    why shape inference failed (then the model is returned as declared), else None.
    """
    graph = model.graph
    clear_negative_dims(graph)
    _set_input_shapes(graph, shapes)
    _strip_weights(graph)
    opsets = {(o.domain or ""): int(o.version) for o in model.opset_import}
    try:
        inferred = _infer(model)
        for _ in range(FOLD_MAX_ROUNDS):
            if not _fold(model.graph, inferred.graph, opsets):
                break
            inferred = _infer(model)
    except Exception as exc:  # onnx raises its own (C++) error classes
        log.debug("shape inference failed: %s", exc)
        return model, str(exc).strip().splitlines()[0][:100] if str(exc).strip() else "error"
    return inferred, None


def _fold(graph: Any, inferred: Any, opsets: Mapping[str, int]) -> int:
    """Replace every foldable node of ``graph`` by Constant nodes (one pass, in
    topological order); returns how many were folded.

    The shapes of what a pass folds are carried forward within the pass (each
    node not folded is inferred on its own, with its constant inputs' values), so a
    chain of Shape→…→Reshape blocks folds in one pass rather than one per round.
    """
    from onnx import helper, numpy_helper

    values = constant_values(graph)
    known = shapes_of(inferred)
    types = _types_of(inferred)
    folded = 0
    nodes = []
    for node in graph.node:
        result = None
        if node.op_type in FOLDABLE_OPS and node.domain in ("", "ai.onnx"):
            result = _evaluate(node, values, known, opsets)
        if result is None:
            nodes.append(node)
            _infer_node(node, types, values, known, opsets)
            continue
        folded += 1
        for name, value in zip(node.output, result, strict=True):
            values[name] = value
            known[name] = [int(d) for d in value.shape]
            types[name] = helper.make_tensor_type_proto(
                helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)
            )
            nodes.append(
                helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))
            )
    if folded:
        del graph.node[:]
        graph.node.extend(nodes)
    return folded


def _types_of(graph: Any) -> dict[str, Any]:
    """TypeProto of every value the (inferred) graph declares, and of its constants."""
    from onnx import helper

    types = {v.name: v.type for v in _value_infos(graph) if v.type.WhichOneof("value")}
    for init in graph.initializer:
        types[init.name] = helper.make_tensor_type_proto(init.data_type, list(init.dims))
    for node in graph.node:
        tensor = _constant_tensor(node)
        if tensor is not None:
            types[node.output[0]] = helper.make_tensor_type_proto(
                tensor.data_type, list(tensor.dims)
            )
    return types


def _infer_node(
    node: Any,
    types: dict[str, Any],
    values: Mapping[str, Any],
    known: dict[str, list[int | None]],
    opsets: Mapping[str, int],
) -> None:
    """Infer one node's output types from its inputs' (and their values, where
    constant) into ``types`` and ``known``; nodes with subgraphs, of other domains,
    or whose outputs are already known are left to the whole-graph inference."""
    import onnx
    from onnx import numpy_helper

    if node.domain not in ("", "ai.onnx") or any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute
    ):
        return
    if all(name in known and None not in known[name] for name in node.output if name):
        return
    inputs = [name for name in node.input if name]
    if not all(name in types for name in inputs):
        return
    try:
        schema = onnx.defs.get_schema(node.op_type, opsets.get("", 13), "")
        data = {
            name: numpy_helper.from_array(values[name], name) for name in inputs if name in values
        }
        outputs = onnx.shape_inference.infer_node_outputs(
            schema, node, {name: types[name] for name in inputs}, data
        )
    except Exception:  # no schema, or inference refused: the whole-graph pass decides
        return
    for name, type_proto in outputs.items():
        types[name] = type_proto
        value = onnx.helper.make_value_info(name, type_proto)
        dims = dims_of(value)
        if dims is not None:
            known[name] = dims


def _evaluate(
    node: Any,
    values: Mapping[str, Any],
    known: Mapping[str, list[int | None]],
    opsets: Mapping[str, int],
) -> list[Any] | None:
    """The node's outputs when every input is known and small, else None."""
    import numpy as np

    if not node.output or not all(node.output):
        return None  # an omitted optional output: leave the node as it is
    if node.op_type in ("Shape", "Size"):
        dims = known.get(node.input[0])
        if dims is None or any(d is None for d in dims):
            return None
        sizes = [int(d) for d in dims if d is not None]
        if node.op_type == "Size":
            return [np.array(_elements(sizes), dtype=np.int64)]
        start, end = 0, len(sizes)
        for attr in node.attribute:
            if attr.name == "start":
                start = int(attr.i)
            elif attr.name == "end":
                end = int(attr.i)
        return [np.array(sizes[slice(start, end)], dtype=np.int64)]
    feeds = {}
    for name in node.input:
        if not name:
            continue
        value = values.get(name)
        if value is None or value.size > FOLD_MAX_ELEMENTS:
            return None
        feeds[name] = value
    try:
        outputs = _reference_run(node, feeds, opsets)
    except Exception as exc:  # a gap of the reference implementation: leave the node
        log.debug("cannot evaluate %s %s: %s", node.op_type, node.name, exc)
        return None
    arrays = [np.asarray(o) for o in outputs]
    if len(arrays) != len(node.output) or any(a.size > FOLD_MAX_ELEMENTS for a in arrays):
        return None
    return arrays


def _reference_run(node: Any, feeds: Mapping[str, Any], opsets: Mapping[str, int]) -> list[Any]:
    """Run one node with onnx's reference implementation. Evaluators are cached by
    the node's op and attributes and its inputs' dtypes and shapes (building one
    costs most of the time, and a model repeats the same few shape computations)."""
    import onnx

    canonical = onnx.NodeProto()
    canonical.CopyFrom(node)
    canonical.name = ""
    del canonical.input[:]
    canonical.input.extend(f"i{k}" if name else "" for k, name in enumerate(node.input))
    del canonical.output[:]
    canonical.output.extend(f"o{k}" for k in range(len(node.output)))
    signature = tuple(
        (str(feeds[name].dtype), tuple(feeds[name].shape)) if name else None for name in node.input
    )
    opset = opsets.get("", opsets.get("ai.onnx", 13))
    evaluator = _evaluator(canonical.SerializeToString(), signature, opset)
    inputs = {f"i{k}": feeds[name] for k, name in enumerate(node.input) if name}
    return list(evaluator.run(None, inputs))


@functools.lru_cache(maxsize=256)
def _evaluator(
    node_bytes: bytes, signature: tuple[tuple[str, tuple[int, ...]] | None, ...], opset: int
) -> Any:
    import numpy as np
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    node = onnx.NodeProto.FromString(node_bytes)
    graph = helper.make_graph(
        [node],
        "fold",
        [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(np.dtype(sig[0])), list(sig[1])
            )
            for name, sig in zip(node.input, signature, strict=True)
            if name and sig is not None
        ],
        [helper.make_empty_tensor_value_info(name) for name in node.output],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model)
