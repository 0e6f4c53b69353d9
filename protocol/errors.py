"""Protocol errors: a message that cannot be understood or trusted."""

from __future__ import annotations


class ProtocolError(Exception):
    """A payload that is not a valid message of this protocol (bad JSON, wrong
    type, unsupported version, missing or ill-typed field)."""


class SignatureError(ProtocolError):
    """A host→agent message that is unsigned, signed by an untrusted key,
    tampered with, expired or replayed."""
