"""The one error the variant makers raise for bad input."""

from __future__ import annotations


class VariantError(Exception):
    """Bad input for the variant makers (model, calibration data, options): the message
    is one line naming what was wrong and what to do."""
