"""Where the host's signing key lives, and loading it with errors a user can act on."""

from __future__ import annotations

import os
from pathlib import Path

from hostctl.errors import HostctlError
from protocol.errors import ProtocolError
from protocol.signing import SigningKey, key_id, load_public_key, load_signing_key, write_key_pair

SECRET_NAME = "host.key"
PUBLIC_NAME = "host.pub"


def default_key_dir() -> Path:
    """The user config directory of edgeprof (platformdirs)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("edgeprof"))


def default_key_path() -> Path:
    """``host.key`` in :func:`default_key_dir`."""
    return default_key_dir() / SECRET_NAME


def resolve_key_path(path: str | os.PathLike[str] | None) -> Path:
    """`path` (``--key`` / ``EDGEPROF_KEY``) or the default key path."""
    return Path(path).expanduser() if path else default_key_path()


def load_key(path: str | os.PathLike[str] | None) -> SigningKey:
    """The signing key at `path` (None: the default key); HostctlError when unusable."""
    resolved = resolve_key_path(path)
    if not resolved.exists():
        hint = "" if path else " (the default key)"
        raise HostctlError(
            f"no signing key at {resolved}{hint}: create one with `hostctl keys init`, "
            "or pass --key FILE"
        )
    try:
        return load_signing_key(resolved)
    except ProtocolError as exc:
        raise HostctlError(str(exc)) from None


def create_key_pair(
    directory: str | os.PathLike[str] | None, *, force: bool
) -> tuple[Path, Path, str]:
    """Write a new key pair; return (secret path, public path, public key id)."""
    folder = Path(directory).expanduser() if directory else default_key_dir()
    try:
        secret, public = write_key_pair(folder, overwrite=force)
        return secret, public, key_id(load_public_key(public))
    except ProtocolError as exc:
        message = str(exc)
        if "already exists" in message:
            message += (
                " (or pass --force to replace it: agents trusting the old key will reject jobs)"
            )
        raise HostctlError(message) from None
    except OSError as exc:
        raise HostctlError(f"cannot write keys to {folder}: {exc}") from None
