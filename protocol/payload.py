"""Bounded, strict JSON decoding of payloads that come from the network.

Every JSON payload the agent or the host reads goes through :func:`decode_json`
(``protocol.messages.parse_message`` and the signed envelope use it): the size
is checked before anything is parsed, the nesting depth before ``json.loads``
could recurse, and what the JSON standard does not allow is refused (``NaN``,
``Infinity``, numbers too long to be a measurement, lone UTF-16 surrogates).
Whatever the input, the only exception is :class:`ProtocolError`, with one line
saying what was wrong — never ``RecursionError``, ``MemoryError`` or a
``ValueError`` from deep inside the standard library.

Senders use :func:`finite_json` so that what they publish is always standard JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from protocol.errors import ProtocolError

MAX_JSON_BYTES = 4 * 1024 * 1024
"""Largest JSON payload read by default (a result document with 20,000 kept
samples is ~150 KB; AWS IoT caps any message at 128 KiB)."""
MAX_CONTROL_BYTES = 256 * 1024
"""Largest host→agent control message (a signed manifest is a few KB)."""
MAX_DEPTH = 32
"""Deepest nesting of arrays/objects accepted (result documents nest ~5 levels)."""
MAX_INT_CHARS = 24
"""Longest integer literal (int64 is 19 digits): longer ones are not measurements,
and converting a 5,000-digit one is refused by Python or quadratic in time."""
MAX_FLOAT_CHARS = 64

# A JSON string literal (escapes included), to blank out brackets inside strings.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _too_deep(raw: bytes, max_depth: int) -> bool:
    """True when the brackets of `raw` (outside strings) nest deeper than
    `max_depth` or do not pair up — decided without recursing: each pass
    deletes the innermost empty pairs, so `max_depth` passes empty any
    well-formed skeleton of that depth."""
    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not skeleton:
            return False
        shorter = _EMPTY_PAIR.sub(b"", skeleton)  # one scan: one level per pass
        if len(shorter) == len(skeleton):
            return True  # brackets that do not pair up: not JSON anyway
        skeleton = shorter
    return bool(skeleton)


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"payload contains {name}, which is not JSON")


def _int(text: str) -> int:
    if len(text) > MAX_INT_CHARS:
        raise ProtocolError(
            f"payload contains a {len(text)}-digit integer (at most {MAX_INT_CHARS})"
        )
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise ProtocolError(f"payload contains a {len(text)}-character number")
    value = float(text)
    if not math.isfinite(value):
        raise ProtocolError(f"payload contains the number {text[:30]}, which overflows a float")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """True when a string anywhere in `value` holds half a UTF-16 pair (it
    cannot be encoded as UTF-8: printing or storing it would fail later)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode_json(
    payload: bytes | bytearray | memoryview | str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_DEPTH,
) -> dict[str, Any]:
    """Decode a UTF-8 JSON object payload within the limits, or raise ProtocolError."""
    if len(payload) > max_bytes:  # a str is at least as many bytes as characters
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}")
    if isinstance(payload, str):
        try:
            raw = payload.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("payload is not JSON: not valid UTF-8") from None
        if len(raw) > max_bytes:
            raise ProtocolError(f"payload of {len(raw)} bytes exceeds the limit of {max_bytes}")
    else:
        raw = bytes(payload)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"payload is not JSON: not valid UTF-8 (byte {exc.start})") from None
    if _too_deep(raw, max_depth):
        raise ProtocolError(
            f"payload nests deeper than {max_depth} levels or its brackets do not pair up"
        )
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_int, parse_float=_float)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:  # RecursionError: belt and braces
        raise ProtocolError(f"payload is not JSON: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"payload is not a JSON object (a {type(data).__name__})")
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(data):
        raise ProtocolError("payload holds a lone UTF-16 surrogate, which is not text")
    return data


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def finite_json(value: Any) -> Any:
    """`value` with every NaN/±Infinity float replaced by None (recursively), so
    that it serialises as standard JSON; other values are returned as they are."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


__all__ = [
    "MAX_CONTROL_BYTES",
    "MAX_DEPTH",
    "MAX_JSON_BYTES",
    "decode_json",
    "finite_json",
    "first_line",
]
