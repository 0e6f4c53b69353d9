"""The phases of one measurement, as the worker reports them and messages name them.

Shared by the worker (which enters them) and the runner (which words its errors),
so neither imports the other."""

from __future__ import annotations

# Phase identifiers → words for messages ("... while loading model.tflite").
PHASE_WORDS = {
    "starting": "starting on",
    "importing": "importing the runtime for",
    "loading": "loading",
    "inputs": "preparing inputs for",
    "first_inference": "running the first inference of",
    "warmup": "warming up",
    "cooling": "cooling down before",
    "steady": "running",
    "accuracy": "evaluating the accuracy of",
    "profiling_ops": "profiling the ops of",
    "finishing": "finishing",
    "analyzing": "analyzing",
    "probing": "probing runtimes for",
}


def phase_words(phase: str) -> str:
    """How a phase reads in a message, e.g. 'running the first inference of'."""
    return PHASE_WORDS.get(phase, phase)
