"""Key files: creation, refusal to overwrite, loading with actionable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.errors import HostctlError
from hostctl.keys import create_key_pair, load_key
from protocol.signing import load_public_key


def test_create_then_load_signs_with_the_public_key_written(tmp_path: Path) -> None:
    secret, public, kid = create_key_pair(tmp_path, force=False)
    key = load_key(secret)
    assert key.public_key == load_public_key(public)
    assert key.key_id == kid
    assert secret.stat().st_mode & 0o077 == 0


def test_existing_key_is_not_overwritten_without_force(tmp_path: Path) -> None:
    secret, _, kid = create_key_pair(tmp_path, force=False)
    with pytest.raises(HostctlError, match="--force"):
        create_key_pair(tmp_path, force=False)
    assert load_key(secret).key_id == kid
    _, _, new_kid = create_key_pair(tmp_path, force=True)
    assert new_kid != kid


def test_missing_key_names_the_command_that_creates_one(tmp_path: Path) -> None:
    with pytest.raises(HostctlError, match="hostctl keys init"):
        load_key(tmp_path / "nope.key")


def test_a_public_key_is_not_accepted_as_signing_key(tmp_path: Path) -> None:
    _, public, _ = create_key_pair(tmp_path, force=False)
    with pytest.raises(HostctlError, match="not an edgeprof key file"):
        load_key(public)
