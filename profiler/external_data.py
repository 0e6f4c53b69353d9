"""ONNX external data: a model may name other files to read its weights from.

A hostile model can name any file it likes (``../models/index.json``,
``/etc/passwd``), and ONNX Runtime before 1.24 reads it, and a model on the
agent sits in a directory it should not see. So before a worker loads an ONNX
model, the files it names are checked here: each must stay inside the model's
directory (no absolute path, no ``..``, no symbolic link), and where jobs carry
no such files (the agent, which runs each model from a directory holding only
that job's files) any external data is refused.

Finding the names needs the ``onnx`` package, which would count the parsed
model towards the worker's memory, so it runs in a child of its own (worker
mode ``external_data``) — and only for the rare model whose bytes contain the
key ``location`` at all (every external tensor names one, in plain bytes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from profiler.errors import BAD_MODEL, ProfilerError
from profiler.settings import ProfileSettings

_KEY = b"location"
_CHUNK = 1024 * 1024
CHECK_TIMEOUT_S = 120.0


def may_reference_external_data(path: str | os.PathLike[str]) -> bool:
    """False when the file cannot hold an external-data reference (it lacks the
    bytes ``location``); read in chunks, so no memory grows with the model."""
    tail = b""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                if _KEY in tail + chunk[: len(_KEY)] or _KEY in chunk:
                    return True
                tail = chunk[-(len(_KEY) - 1) :]
    except OSError:
        return False  # the worker reports the unreadable file
    return False


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        if attribute.HasField("sparse_tensor"):
            yield attribute.sparse_tensor.values
            yield attribute.sparse_tensor.indices
        for sparse in attribute.sparse_tensors:
            yield sparse.values
            yield sparse.indices
        if attribute.HasField("g"):
            yield from _graph_tensors(attribute.g)
        for graph in attribute.graphs:
            yield from _graph_tensors(graph)


def external_data_locations(path: str) -> list[str]:
    """The ``location`` of every tensor of the model kept as external data, in
    the main graph, subgraphs (If/Loop/Scan bodies), functions and training info."""
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: the runtime says more
        raise ProfilerError(
            BAD_MODEL, f"{Path(path).name} is not a valid ONNX model: {exc}"
        ) from None

    def tensors() -> Iterator[Any]:
        yield from _graph_tensors(model.graph)
        for function in model.functions:
            for node in function.node:
                yield from _node_tensors(node)
        for info in model.training_info:
            yield from _graph_tensors(info.initialization)
            yield from _graph_tensors(info.algorithm)

    found: list[str] = []
    for tensor in tensors():
        if tensor.data_location == TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            found.append(entries.get("location", ""))
    return found


def _escapes(location: str, directory: Path) -> bool:
    if not location or "\0" in location or os.path.isabs(location) or location.startswith("\\"):
        return True
    parts = Path(location).parts
    if ".." in parts:
        return True
    candidate = directory
    for part in parts:  # no component may be a link (it could point anywhere)
        candidate = candidate / part
        if candidate.is_symlink():
            return True
    resolved = (directory / location).resolve()
    return directory.resolve() not in resolved.parents


def check_locations(
    locations: list[str], model_path: str, *, allow: bool, name: str | None = None
) -> None:
    """BAD_MODEL when a location escapes the model's directory, or any exists
    while `allow` is False; messages call the model `name` (default: its file name)."""
    name = name or Path(model_path).name
    directory = Path(model_path).resolve().parent
    if not locations:
        return
    if not allow:
        shown = ", ".join(sorted({repr(loc[:60]) for loc in locations})[:3])
        raise ProfilerError(
            BAD_MODEL,
            f"{name} keeps weights in external data files ({shown}), which a push does not "
            "send: save it with the weights inside (onnx.save(model, path, "
            "save_as_external_data=False))",
        )
    for location in locations:
        if _escapes(location, directory):
            raise ProfilerError(
                BAD_MODEL,
                f"{name} names external data {location[:80]!r} outside its own directory: "
                "refused (keep external data files beside the model)",
            )


def check_external_data(
    model_path: str, settings: ProfileSettings, *, allow: bool, name: str | None = None
) -> None:
    """Refuse an ONNX model whose external data escapes its directory (or, when
    `allow` is False, that has any); raises ProfilerError, never anything else.
    Messages call the model `name` (the agent's job file is model.onnx)."""
    name = name or Path(model_path).name
    if not may_reference_external_data(model_path):
        return
    from profiler.runner import outcome_error, run_child

    outcome = run_child(
        {"mode": "external_data", "model_path": model_path, "settings": settings.to_dict()},
        timeout_s=CHECK_TIMEOUT_S,
    )
    err = outcome_error(outcome, name, CHECK_TIMEOUT_S, fmt="onnx")
    if err is not None:
        raise err
    locations = (outcome.result or {}).get("locations")
    if not isinstance(locations, list) or not all(isinstance(x, str) for x in locations):
        raise ProfilerError(BAD_MODEL, f"{name}: its external data was not listed")
    check_locations(locations, model_path, allow=allow, name=name)
