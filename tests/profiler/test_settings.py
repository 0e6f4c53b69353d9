"""ProfileSettings' input fills: parsing the options, and validating what arrives
from the network (the agent builds settings from a manifest with from_dict)."""

from __future__ import annotations

from typing import Any

import pytest

from profiler.settings import (
    ProfileSettings,
    parse_input_range_option,
    parse_input_value_option,
)


def test_input_values_parse_numbers_and_flags() -> None:
    assert parse_input_value_option(["sr=16000", "gain=0.5", "use_cache=false", "on=TRUE"]) == {
        "sr": 16000,
        "gain": 0.5,
        "use_cache": 0,
        "on": 1,
    }
    assert parse_input_range_option(["ids=0,30521", "x=-1.5,1.5"]) == {
        "ids": [0, 30521],
        "x": [-1.5, 1.5],
    }


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (["sr"], "--input-value 'sr': expected NAME=V, e.g. sr=16000"),
        (["=3"], "expected NAME=V"),
        (["sr=nan"], "V must be a finite number"),
        (["sr=inf"], "V must be a finite number"),
        (["sr=16k"], "V must be a finite number (or true/false), e.g. sr=16000"),
    ],
)
def test_bad_input_values(values: list[str], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_input_value_option(values)


@pytest.mark.parametrize(
    ("ranges", "words"),
    [
        (["x=1"], "expected NAME=LO,HI, e.g. x=0,255"),
        (["x=1,2,3"], "expected NAME=LO,HI"),
        (["x=a,2"], "LO and HI must be finite numbers"),
        (["x=5,1"], "--input-range 'x=5,1': LO is above HI; give LO,HI"),
    ],
)
def test_bad_input_ranges(ranges: list[str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_input_range_option(ranges)


@pytest.mark.parametrize(
    "changes",
    [
        {"input_values": {"sr": "16000"}},
        {"input_values": {"sr": float("nan")}},
        {"input_values": ["sr", 1]},
        {"input_ranges": {"x": [1]}},
        {"input_ranges": {"x": [2, 1]}},
        {"input_ranges": {"x": "0,1"}},
        {"input_values": {"x": 1}, "input_ranges": {"x": [0, 1]}},
        {"input_values": {"x": 1}, "inputs_path": "in.npz"},
    ],
)
def test_hostile_fills_from_a_manifest_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ProfileSettings.from_dict(changes)


def test_fills_survive_the_trip_to_the_worker() -> None:
    settings = ProfileSettings(input_values={"sr": 16000}, input_ranges={"x": [0, 1]})
    again = ProfileSettings.from_dict(settings.to_dict())
    assert again == settings
