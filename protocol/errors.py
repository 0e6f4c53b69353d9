"""Protocol errors: a message that cannot be understood or trusted."""

from __future__ import annotations


class ProtocolError(Exception):
    """A payload that is not a valid message of this protocol (bad JSON, wrong
    type, unsupported version, missing or ill-typed field)."""


class SignatureError(ProtocolError):
    """A host→agent message that is unsigned, signed by an untrusted key,
    tampered with, expired or replayed.

    ``code`` is machine-readable and becomes the rejection code the agent
    reports: ``unsigned``, ``untrusted_key``, ``bad_signature``, ``expired``,
    ``not_yet_valid``, ``replayed``.
    """

    def __init__(self, message: str, code: str = "bad_signature") -> None:
        super().__init__(message)
        self.code = code


def shown(value: object, limit: int = 60) -> str:
    """`value` as it may appear in a one-line error: a string's repr cut to
    `limit` characters, anything else by its type (a hostile payload can make
    a value megabytes long, or a list where a name was expected)."""
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 4] + "...'"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)[:limit]
    return f"a {type(value).__name__}"
