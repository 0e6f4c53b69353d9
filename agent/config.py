"""Agent settings: one frozen value, validated once at start-up.

Sources, highest precedence first: command-line flags, environment variables
(``EDGEPROF_*``), a TOML config file (``--config FILE``), defaults. A setting
that is wrong in any source raises :class:`ConfigError` with one readable line;
the CLI turns it into exit status 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from profiler.settings import parse_memory_size
from protocol.broker import BrokerAddress, BrokerSettings, broker_settings
from protocol.errors import ProtocolError
from protocol.signing import key_id, load_public_key
from protocol.topics import check_device_id

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_CACHE_QUOTA_MB = 2048
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# Environment variable → field name. Lists are comma-separated.
ENV_VARS: dict[str, str] = {
    "EDGEPROF_BROKER": "broker",
    "EDGEPROF_DEVICE_ID": "device_id",
    "EDGEPROF_TAGS": "tags",
    "EDGEPROF_TRUST": "trust",
    "EDGEPROF_ALLOW_UNSIGNED": "allow_unsigned",
    "EDGEPROF_CACHE_DIR": "cache_dir",
    "EDGEPROF_CACHE_QUOTA_MB": "cache_quota_mb",
    "EDGEPROF_USERNAME": "username",
    "EDGEPROF_PASSWORD": "password",
    "EDGEPROF_PASSWORD_FILE": "password_file",
    "EDGEPROF_CA_CERT": "ca_cert",
    "EDGEPROF_CLIENT_CERT": "client_cert",
    "EDGEPROF_CLIENT_KEY": "client_key",
    "EDGEPROF_INSECURE": "insecure",
    "EDGEPROF_MAX_MEMORY": "max_memory",
    "EDGEPROF_LOG_LEVEL": "log_level",
}
_LIST_FIELDS = {"tags", "trust"}
_BOOL_FIELDS = {"allow_unsigned", "insecure"}
_SIZE_FIELDS = {"max_memory"}
_INT_FIELDS = {"cache_quota_mb"}
# Keys accepted in the TOML file (password_file resolves into password).
_FILE_KEYS = set(ENV_VARS.values())


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line saying which and what to do."""


def _default_cache_dir() -> str:
    from platformdirs import user_cache_dir

    return user_cache_dir("edgeprof-agent")


@dataclass(frozen=True)
class AgentSettings:
    """Everything the agent needs to run, resolved from all sources and validated."""

    broker: str
    """Broker URL: ``mqtt://HOST[:PORT]`` (default port 1883) or ``mqtts://HOST[:PORT]`` (8883)."""
    device_id: str
    """This device's id: 1-64 letters, digits, '.', '_' or '-'; its topic subtree is dev/{id}/."""
    tags: tuple[str, ...] = ()
    """Free-form labels (e.g. 'rpi4', 'lab') the host can target with ``--tag``."""
    trust: tuple[str, ...] = ()
    """Paths of pinned host public keys (``host.pub`` from ``hostctl keys init``)."""
    trusted_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """The keys of `trust`, loaded at start-up: key id → Ed25519 public key."""
    allow_unsigned: bool = False
    """Development mode: accept unsigned jobs (logged loudly, announced in the device info)."""
    cache_dir: str = ""
    """Where models, partial downloads, the outbox and job records live."""
    cache_quota_mb: int = DEFAULT_CACHE_QUOTA_MB
    """Size limit of the model cache; least recently used models are evicted to fit."""
    username: str | None = None
    """Broker user name."""
    password: str | None = field(default=None, repr=False)
    """Broker password (from EDGEPROF_PASSWORD or a password file); never logged."""
    ca_cert: str | None = None
    """CA bundle that signs the broker's certificate (mqtts://); default: the system store."""
    client_cert: str | None = None
    """TLS client certificate (needs `client_key`)."""
    client_key: str | None = None
    """TLS client private key."""
    insecure: bool = False
    """Do not verify the broker's TLS certificate (testing only; logged loudly)."""
    max_memory_mb: float | None = None
    """Memory limit of each profiling worker, in MiB; None: a share of the memory
    available when the job starts (profiler.limits). A job may ask for less."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""

    @property
    def broker_settings(self) -> BrokerSettings:
        """The broker address and TLS settings (validated at start-up)."""
        return broker_settings(
            self.broker,
            ca_cert=self.ca_cert,
            client_cert=self.client_cert,
            client_key=self.client_key,
            insecure=self.insecure,
        )

    @property
    def address(self) -> BrokerAddress:
        return self.broker_settings.address

    @property
    def host(self) -> str:
        return self.address.host

    @property
    def port(self) -> int:
        return self.address.port

    @property
    def tls(self) -> bool:
        return self.address.tls

    @property
    def cache_quota_bytes(self) -> int:
        return self.cache_quota_mb * 1024 * 1024

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict fit for logs: the password is replaced."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trusted_keys"}
        if out.get("password"):
            out["password"] = "***"
        out["broker"] = str(self.address)  # a password in the URL stays out of the log
        out["trusted_key_ids"] = sorted(self.trusted_keys)
        return out


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={value!r}: expected true or false")


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings given by ``EDGEPROF_*`` environment variables."""
    out: dict[str, Any] = {}
    for var, name in ENV_VARS.items():
        if var not in env:
            continue
        raw = env[var]
        if name in _LIST_FIELDS:
            out[name] = _split_list(raw)
        elif name in _BOOL_FIELDS:
            out[name] = _parse_bool(var, raw)
        elif name in _SIZE_FIELDS:
            out[name] = _memory_size(var, raw)
        elif name in _INT_FIELDS:
            try:
                out[name] = int(raw)
            except ValueError:
                raise ConfigError(f"{var}={raw!r}: expected a whole number") from None
        elif raw != "":
            out[name] = raw
    return out


def from_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings of a TOML config file (keys as in ENV_VARS' values)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    # A [agent] table is accepted so the file can be shared with other tools.
    if isinstance(data.get("agent"), dict):
        data = data["agent"]
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_FILE_KEYS))})"
        )
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name in _LIST_FIELDS:
            if isinstance(value, str):
                value = _split_list(value)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"config file {path}: {name} must be a list of strings")
        elif name in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise ConfigError(f"config file {path}: {name} must be true or false")
        elif name in _INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"config file {path}: {name} must be a whole number")
        elif name in _SIZE_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ConfigError(f'config file {path}: {name} must be a size such as "2G"')
            value = _memory_size(f"config file {path}: {name}", str(value))
        elif not isinstance(value, str):
            raise ConfigError(f"config file {path}: {name} must be a string")
        out[name] = value
    return out


def load_settings(
    cli: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> AgentSettings:
    """Merge CLI values (None = not given) > environment > config file > defaults,
    then validate. Raises ConfigError."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(from_file(config_file))
    merged.update(from_env(env))
    merged.update({k: v for k, v in cli.items() if v is not None and v != [] and v != ()})
    # A password file given at a higher precedence than a plain password wins,
    # and vice versa; both at the same level: the file.
    password_file = merged.pop("password_file", None)
    if password_file and not cli.get("password"):
        merged["password"] = _read_secret(password_file)
    return _validate(merged)


def _memory_size(where: str, text: str) -> float:
    try:
        return parse_memory_size(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _read_secret(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read password file {path}: {exc.strerror}") from None


def _validate(values: dict[str, Any]) -> AgentSettings:
    broker = values.get("broker")
    if not broker:
        raise ConfigError("no broker: pass --broker mqtt://HOST[:PORT] or set EDGEPROF_BROKER")
    insecure = bool(values.get("insecure", False))
    try:
        broker_config = broker_settings(
            str(broker),
            ca_cert=values.get("ca_cert"),
            client_cert=values.get("client_cert"),
            client_key=values.get("client_key"),
            insecure=insecure,
        )
        if broker_config.tls is not None:
            broker_config.tls.context()  # a PEM file that does not load fails now, not later
    except ProtocolError as exc:
        raise ConfigError(str(exc)) from None
    address = broker_config.address
    device_id = values.get("device_id")
    if not device_id:
        raise ConfigError("no device id: pass --device-id ID or set EDGEPROF_DEVICE_ID")
    try:
        check_device_id(str(device_id))
    except ProtocolError as exc:
        raise ConfigError(str(exc)) from None
    trust = tuple(str(p) for p in values.get("trust", ()))
    allow_unsigned = bool(values.get("allow_unsigned", False))
    if not trust and not allow_unsigned:
        raise ConfigError(
            "no trusted host key: pass --trust host.pub (from `hostctl keys init`) "
            "or --allow-unsigned for development"
        )
    trusted: dict[str, bytes] = {}
    for path in trust:
        try:
            public = load_public_key(path)
        except ProtocolError as exc:
            raise ConfigError(f"--trust: {exc}") from None
        trusted[key_id(public)] = public
    quota = values.get("cache_quota_mb", DEFAULT_CACHE_QUOTA_MB)
    if isinstance(quota, bool) or not isinstance(quota, int) or quota < 1:
        raise ConfigError(f"cache quota {quota!r} MB: expected a positive whole number")
    level = str(values.get("log_level", "INFO")).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"log level {level!r}: expected one of {', '.join(LOG_LEVELS)}")
    max_memory = values.get("max_memory")
    if isinstance(max_memory, str):  # from the command line; the other sources are parsed
        max_memory = _memory_size("--max-memory", max_memory)
    tags = tuple(dict.fromkeys(str(t) for t in values.get("tags", ())))
    return AgentSettings(
        broker=str(broker),
        device_id=str(device_id),
        tags=tags,
        trust=trust,
        trusted_keys=trusted,
        allow_unsigned=allow_unsigned,
        cache_dir=str(values.get("cache_dir") or _default_cache_dir()),
        cache_quota_mb=quota,
        username=values.get("username") or address.username,
        password=values.get("password") or address.password,
        ca_cert=values.get("ca_cert"),
        client_cert=values.get("client_cert"),
        client_key=values.get("client_key"),
        insecure=insecure,
        max_memory_mb=float(max_memory) if max_memory is not None else None,
        log_level=level,
    )
