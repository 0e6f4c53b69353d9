"""Ed25519 envelopes: only what a trusted key signed, unaltered and fresh, opens."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from protocol.errors import ProtocolError, SignatureError
from protocol.messages import Collect, JobManifest, ModelRef
from protocol.signing import (
    key_id,
    load_public_key,
    load_signing_key,
    open_envelope,
    seal,
    write_key_pair,
)

NOW = 10_000.0


def make_manifest(issued: float = NOW, expires: float = NOW + 600) -> JobManifest:
    return JobManifest(
        job_id="job1",
        device_id="pi-1",
        model=ModelRef(sha256="cd" * 32, size_bytes=10, name="m.onnx", format="onnx"),
        settings={},
        issued_at=issued,
        expires_at=expires,
    )


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return write_key_pair(tmp_path / "keys")


def test_key_files(keys: tuple[Path, Path]) -> None:
    secret, public = keys
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    key = load_signing_key(secret)
    assert load_public_key(public) == key.public_key
    with pytest.raises(ProtocolError, match="already exists"):
        write_key_pair(secret.parent)


def test_bad_key_files(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="hostctl keys init"):
        load_signing_key(tmp_path / "missing.key")
    bad = tmp_path / "bad.pub"
    bad.write_text("ssh-ed25519 AAAA")
    with pytest.raises(ProtocolError, match="not an edgeprof key file"):
        load_public_key(bad)


def test_signed_manifest_opens(keys: tuple[Path, Path]) -> None:
    key = load_signing_key(keys[0])
    trusted = {key_id(load_public_key(keys[1])): load_public_key(keys[1])}
    opened = open_envelope(seal(make_manifest(), key), trusted, now=NOW)
    assert opened.message == make_manifest()
    assert opened.key_id == key.key_id


def test_tampered_manifest_is_refused(keys: tuple[Path, Path]) -> None:
    key = load_signing_key(keys[0])
    trusted = {key.key_id: key.public_key}
    envelope = json.loads(seal(make_manifest(), key))
    body = json.loads(base64.b64decode(envelope["payload"]))
    body["settings"] = {"runs": 1_000_000}
    envelope["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(SignatureError, match="bad signature"):
        open_envelope(json.dumps(envelope).encode(), trusted, now=NOW)


def test_untrusted_and_unsigned_are_refused(keys: tuple[Path, Path], tmp_path: Path) -> None:
    key = load_signing_key(keys[0])
    other = load_signing_key(write_key_pair(tmp_path / "other")[0])
    trusted = {key.key_id: key.public_key}
    with pytest.raises(SignatureError, match="untrusted key"):
        open_envelope(seal(make_manifest(), other), trusted, now=NOW)
    with pytest.raises(SignatureError, match="unsigned"):
        open_envelope(seal(make_manifest(), None), trusted, now=NOW)
    # development mode accepts it, and says nobody signed it
    assert (
        open_envelope(seal(make_manifest(), None), trusted, allow_unsigned=True, now=NOW).key_id
        is None
    )


def test_expired_and_future_manifests_are_refused(keys: tuple[Path, Path]) -> None:
    key = load_signing_key(keys[0])
    trusted = {key.key_id: key.public_key}
    with pytest.raises(SignatureError, match="expired"):
        open_envelope(seal(make_manifest(NOW - 100, NOW - 1), key), trusted, now=NOW)
    with pytest.raises(SignatureError, match="future"):
        open_envelope(seal(make_manifest(NOW + 3600, NOW + 7200), key), trusted, now=NOW)
    collect = Collect(device_id="pi-1", issued_at=NOW, expires_at=NOW + 60)
    assert open_envelope(seal(collect, key), trusted, now=NOW).message == collect


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"{}",
        b'{"schema": "edgeprof.signed/1"}',
        b'{"schema": "edgeprof.signed/1", "payload": "!!"}',
    ],
)
def test_garbage_envelopes(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        open_envelope(payload, {}, now=NOW)


def test_refusals_carry_machine_readable_codes(keys: tuple[Path, Path], tmp_path: Path) -> None:
    key = load_signing_key(keys[0])
    other = load_signing_key(write_key_pair(tmp_path / "other")[0])
    trusted = {key.key_id: key.public_key}
    cases = [
        (seal(make_manifest(), None), "unsigned"),
        (seal(make_manifest(), other), "untrusted_key"),
        (seal(make_manifest(NOW - 100, NOW - 1), key), "expired"),
        (seal(make_manifest(NOW + 3600, NOW + 7200), key), "not_yet_valid"),
    ]
    for payload, code in cases:
        with pytest.raises(SignatureError) as info:
            open_envelope(payload, trusted, now=NOW)
        assert info.value.code == code
