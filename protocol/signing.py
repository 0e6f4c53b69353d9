"""Ed25519 signing of host→agent messages (PyNaCl).

The host signs the exact bytes of a message and wraps them in an envelope::

    {"schema": "edgeprof.signed/1", "key_id": "<16 hex>", "payload": "<base64>", "sig": "<base64>"}

Signing bytes rather than re-serialised JSON means there is no canonical-form
problem: the agent verifies, then parses what was signed. Agents verify against
pinned public keys (``--trust host.pub``) *before* acting on anything, and
reject expired manifests; replay of a job id is refused by the agent, which
remembers the ids it has seen, and a control message (ack, collect, cancel) is
handled once: :attr:`Opened.digest` names the exact bytes that were signed, which
the agent remembers until the message expires.

Key files are one line of text: ``edgeprof-ed25519-secret <base64 seed>`` and
``edgeprof-ed25519-public <base64 key>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import ProtocolError, SignatureError, shown
from protocol.messages import Message, decode_json, parse_message
from protocol.payload import MAX_CONTROL_BYTES

ENVELOPE_SCHEMA = "edgeprof.signed/1"
SECRET_TAG = "edgeprof-ed25519-secret"
PUBLIC_TAG = "edgeprof-ed25519-public"
DEFAULT_CLOCK_SKEW_S = 300.0


def key_id(public_key: bytes) -> str:
    """Short fingerprint of a public key (first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    """The host's private key."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ProtocolError("an Ed25519 secret key is 32 bytes")

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(32))

    @property
    def public_key(self) -> bytes:
        from nacl.signing import SigningKey as NaclKey

        return bytes(NaclKey(self.seed).verify_key)

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        from nacl.signing import SigningKey as NaclKey

        return bytes(NaclKey(self.seed).sign(data).signature)


def _read_key_line(path: Path, tag: str) -> bytes:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ProtocolError(
            f"key file {path} does not exist: create one with `hostctl keys init`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"cannot read key file {path}: {exc}") from None
    parts = text.split()
    if len(parts) != 2 or parts[0] != tag:
        raise ProtocolError(
            f"{path} is not an edgeprof key file (expected a line '{tag} <base64>')"
        )
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise ProtocolError(f"{path}: the key is not valid base64") from None
    if len(raw) != 32:
        raise ProtocolError(f"{path}: an Ed25519 key is 32 bytes, found {len(raw)}")
    return raw


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    return SigningKey(_read_key_line(Path(path), SECRET_TAG))


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    return _read_key_line(Path(path), PUBLIC_TAG)


def write_key_pair(
    directory: str | os.PathLike[str], *, overwrite: bool = False
) -> tuple[Path, Path]:
    """Create ``host.key`` (mode 0600) and ``host.pub`` in `directory`."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    secret_path, public_path = folder / "host.key", folder / "host.pub"
    if not overwrite and (secret_path.exists() or public_path.exists()):
        raise ProtocolError(
            f"{secret_path} already exists: keep it, or remove it to make a new pair"
        )
    key = SigningKey.generate()
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"{SECRET_TAG} {base64.b64encode(key.seed).decode()}\n")
    public_path.write_text(
        f"{PUBLIC_TAG} {base64.b64encode(key.public_key).decode()}\n", encoding="utf-8"
    )
    return secret_path, public_path


def seal(message: Message, key: SigningKey | None) -> bytes:
    """Wrap `message` in an envelope, signed with `key` (None: unsigned, for dev mode)."""
    body = message.to_bytes()
    envelope: dict[str, Any] = {
        "schema": ENVELOPE_SCHEMA,
        "payload": base64.b64encode(body).decode(),
        "key_id": None,
        "sig": None,
    }
    if key is not None:
        envelope["key_id"] = key.key_id
        envelope["sig"] = base64.b64encode(key.sign(body)).decode()
    return json.dumps(envelope, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Opened:
    """A verified message and who signed it (None when accepted unsigned)."""

    message: Message
    key_id: str | None
    digest: str = ""
    """SHA-256 (hex) of the signed bytes: the same message replayed has the same
    digest, while two messages the host issued never do (they differ in issued_at)."""


def open_envelope(
    payload: bytes,
    trusted: dict[str, bytes],
    *,
    allow_unsigned: bool = False,
    now: float,
    clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
) -> Opened:
    """Verify and parse a host→agent envelope.

    `trusted` maps key ids to pinned public keys. Raises SignatureError when
    the envelope is unsigned (and unsigned messages are not allowed), signed by
    an unknown key, tampered with, not yet valid or expired; ProtocolError when
    it is not an envelope or the signed message is malformed.
    """
    data = decode_json(payload, max_bytes=MAX_CONTROL_BYTES)
    if data.get("schema") != ENVELOPE_SCHEMA:
        raise ProtocolError(f"not a signed envelope (schema {shown(data.get('schema'))})")
    body = envelope_body(data)
    signer = _verify(body, data, trusted, allow_unsigned)
    message = parse_message(body)
    _check_fresh(message, now, clock_skew_s)
    return Opened(message, signer, hashlib.sha256(body).hexdigest())


def envelope_body(data: dict[str, Any]) -> bytes:
    """The (not yet verified) signed bytes of a decoded envelope, or ProtocolError."""
    b64 = data.get("payload")
    if not isinstance(b64, str):
        raise ProtocolError("envelope has no payload")
    try:
        # str → bytes first: b64decode raises a plain ValueError on non-ASCII text.
        return base64.b64decode(b64.encode("ascii"), validate=True)
    except (UnicodeEncodeError, ValueError):
        raise ProtocolError("envelope payload is not base64") from None


def _verify(
    body: bytes, data: dict[str, Any], trusted: dict[str, bytes], allow_unsigned: bool
) -> str | None:
    sig, kid = data.get("sig"), data.get("key_id")
    if sig is None:
        if allow_unsigned:
            return None
        raise SignatureError(
            "unsigned message: this agent accepts only jobs signed by a trusted key", "unsigned"
        )
    if not isinstance(sig, str) or not isinstance(kid, str):
        raise SignatureError("malformed signature fields", "bad_signature")
    public = trusted.get(kid)
    if public is None:
        raise SignatureError(
            f"signed by untrusted key {shown(kid)}: give its host.pub to the agent with --trust",
            "untrusted_key",
        )
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    try:
        VerifyKey(public).verify(body, base64.b64decode(sig.encode("ascii"), validate=True))
    except (BadSignatureError, UnicodeEncodeError, ValueError):
        raise SignatureError(
            "bad signature: the message was altered or signed by another key", "bad_signature"
        ) from None
    return kid


def _check_fresh(message: Message, now: float, skew: float) -> None:
    issued = getattr(message, "issued_at", None)
    expires = getattr(message, "expires_at", None)
    if issued is None or expires is None:
        raise ProtocolError(f"{message.TYPE!r} messages are not sent to agents")
    if issued - skew > now:
        raise SignatureError(
            "manifest issued in the future: check the clocks of host and device", "not_yet_valid"
        )
    if expires < now:
        raise SignatureError("manifest expired: re-send it from the host", "expired")
