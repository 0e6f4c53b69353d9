"""What the host itself vouches for about a model it sends: its variant record and
its gzip size, attached to the results of that model by the host, never taken from
a device.

A variant made by ``hostctl variants`` (``STEM.NAME.EXT``) has its recipe record
``STEM.NAME.recipe.json`` beside it (``modelkit.variants.record``). When the host
pushes or profiles such a file it reads the record, checks that it describes these
very bytes (its ``sha256``), and journals :func:`model_facts` with the job. When
the result comes back, :func:`vouch` writes those facts into ``model`` — and only
when the device ran the file the host sent (same SHA-256): a device cannot make a
result look like a variant, or claim another one's recipe, because whatever it
put under those keys is replaced by what the host knows (or removed).

Pure standard library (no typer, no rich): push, collect, profile and study use it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RECORD_SCHEMA = "edgeprof.variant/1"
"""The ``schema`` of a recipe record (``modelkit.variants.record.RECORD_SCHEMA``; not
imported from there: that package needs numpy and the variant makers)."""

RECORD_SUFFIX = ".recipe.json"

MAX_RECORD_BYTES = 1 << 20
"""A recipe record is a few hundred bytes; a larger file beside a model is not one."""

VOUCHED_KEYS = ("variant", "gzip_bytes")
"""The ``model`` keys only the host writes."""

GZIP_LEVEL = 6
"""gzip's default level: the "gzip size" compression papers quote."""


def record_path(model: Path) -> Path:
    """Where the recipe record of ``model`` lives: ``STEM.recipe.json`` beside it."""
    return model.with_name(model.stem + RECORD_SUFFIX)


def _hex64(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def read_variant(model: Path, sha256: str) -> dict[str, Any] | None:
    """The ``model.variant`` object of the record beside ``model``, or None when there
    is no record, it is not a variant record, or it describes other bytes than
    ``sha256`` (a stale record left beside a re-made file: warned, not attached)."""
    path = record_path(model)
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise ValueError("too large for a recipe record")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("ignoring %s: not a readable recipe record (%s)", path.name, exc)
        return None
    variant = doc.get("variant") if isinstance(doc, dict) else None
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != RECORD_SCHEMA
        or not isinstance(variant, dict)
    ):
        logger.warning("ignoring %s: not an %s record", path.name, RECORD_SCHEMA)
        return None
    if doc.get("sha256") != sha256:
        logger.warning(
            "ignoring %s: it describes another file than %s (made again since?); its "
            "results will not be grouped under a source",
            path.name,
            model.name,
        )
        return None
    kind, source = variant.get("kind"), variant.get("source_sha256")
    recipe = variant.get("recipe")
    if not isinstance(kind, str) or not kind or not _hex64(source) or not isinstance(recipe, dict):
        logger.warning("ignoring %s: its variant has no kind, recipe or source", path.name)
        return None
    return {"kind": kind, "recipe": recipe, "source_sha256": source}


def gzip_size(data: bytes) -> int:
    """Bytes of ``data`` as a ``.gz`` file at :data:`GZIP_LEVEL` (``gzip -6``)."""
    return len(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))


def model_facts(model: Path, data: bytes | None = None) -> dict[str, Any]:
    """What the host vouches for about ``model``: ``{"variant": {...} | None,
    "gzip_bytes": N}``. ``data`` is the file's bytes when already read."""
    content = model.read_bytes() if data is None else data
    sha = hashlib.sha256(content).hexdigest()
    return {"variant": read_variant(model, sha), "gzip_bytes": gzip_size(content)}


def vouch(
    doc: Mapping[str, Any], facts: Mapping[str, Any] | None, sent_sha256: str | None
) -> dict[str, Any]:
    """``doc`` with the host's facts in ``model`` (variant, gzip size) when its model is
    the file the host sent (``sent_sha256``); whatever the device wrote under those
    keys is dropped either way. A document whose ``model`` is not an object is
    returned as it came (the reader shows it as unreadable)."""
    out = dict(doc)
    model = out.get("model")
    if not isinstance(model, Mapping):
        return out
    section = {k: v for k, v in model.items() if k not in VOUCHED_KEYS}
    sha = section.get("sha256")
    if facts and sent_sha256 is not None and sha == sent_sha256:
        for key in VOUCHED_KEYS:
            if facts.get(key) is not None:
                section[key] = facts[key]
    elif any(model.get(k) is not None for k in VOUCHED_KEYS):
        logger.info(
            "dropping model facts a device wrote into its result (job %s)", doc.get("job_id")
        )
    out["model"] = section
    return out


def vouch_local(doc: Mapping[str, Any], model: Path) -> dict[str, Any]:
    """``doc`` — a result measured on this machine from the file ``model`` — with
    the host's facts about that file (none when it cannot be read any more)."""
    try:
        data = model.read_bytes()
    except OSError:
        return vouch(doc, None, None)
    return vouch(doc, model_facts(model, data), hashlib.sha256(data).hexdigest())


__all__ = [
    "GZIP_LEVEL",
    "RECORD_SCHEMA",
    "VOUCHED_KEYS",
    "gzip_size",
    "model_facts",
    "read_variant",
    "record_path",
    "vouch",
    "vouch_local",
]
