"""Errors hostctl turns into one red line and exit code 1."""

from __future__ import annotations


class HostctlError(Exception):
    """A user-facing failure: the message names what was wrong and what to do."""
