"""Settings precedence (flags > env > TOML file > defaults) and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, load_settings
from protocol.signing import write_key_pair


@pytest.fixture
def pub(tmp_path: Path) -> str:
    return str(write_key_pair(tmp_path / "keys")[1])


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path, pub: str) -> None:
    config = _toml(
        tmp_path,
        f"""
broker = "mqtt://file-host:1883"
device_id = "from-file"
tags = ["file-tag"]
trust = ["{pub}"]
cache_quota_mb = 100
username = "file-user"
""",
    )
    env = {
        "EDGEPROF_DEVICE_ID": "from-env",
        "EDGEPROF_TAGS": "a, b",
        "EDGEPROF_CACHE_QUOTA_MB": "200",
    }
    settings = load_settings({"tags": ["flag-tag"]}, env, config)
    assert settings.broker == "mqtt://file-host:1883"  # only in the file
    assert settings.device_id == "from-env"  # env over file
    assert settings.tags == ("flag-tag",)  # flag over env
    assert settings.cache_quota_mb == 200
    assert settings.username == "file-user"
    assert settings.log_level == "INFO"  # default
    assert (settings.host, settings.port, settings.tls) == ("file-host", 1883, False)
    assert len(settings.trusted_keys) == 1
    flags = load_settings({"device_id": "from-flag", "cache_quota_mb": 300}, env, config)
    assert flags.device_id == "from-flag" and flags.cache_quota_mb == 300


def test_env_only(pub: str, tmp_path: Path) -> None:
    settings = load_settings(
        {},
        {
            "EDGEPROF_BROKER": "mqtts://broker.example",
            "EDGEPROF_DEVICE_ID": "pi-1",
            "EDGEPROF_TRUST": pub,
            "EDGEPROF_CACHE_DIR": str(tmp_path / "c"),
            "EDGEPROF_PASSWORD": "s3cret",
        },
    )
    assert settings.port == 8883 and settings.tls
    assert settings.cache_dir == str(tmp_path / "c")
    assert settings.password == "s3cret"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.redacted())


def test_password_file(tmp_path: Path, pub: str) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    settings = load_settings(
        {"broker": "mqtt://h", "device_id": "d", "trust": [pub], "password_file": str(secret)}, {}
    )
    assert settings.password == "from-file"


@pytest.mark.parametrize(
    ("cli", "env", "message"),
    [
        ({"device_id": "d"}, {}, "no broker"),
        ({"broker": "http://h", "device_id": "d"}, {}, "mqtt://HOST"),
        ({"broker": "mqtt://h"}, {}, "no device id"),
        ({"broker": "mqtt://h", "device_id": "a/b"}, {}, "invalid device id"),
        ({"broker": "mqtt://h", "device_id": "d", "trust": []}, {}, "--trust host.pub"),
        (
            {"broker": "mqtt://h", "device_id": "d", "trust": ["/nonexistent.pub"]},
            {},
            "does not exist",
        ),
        (
            {"broker": "mqtt://h", "device_id": "d", "allow_unsigned": True, "cache_quota_mb": 0},
            {},
            "quota",
        ),
        (
            {"broker": "mqtt://h", "device_id": "d", "allow_unsigned": True},
            {"EDGEPROF_CACHE_QUOTA_MB": "lots"},
            "whole number",
        ),
        (
            {"broker": "mqtt://h", "device_id": "d", "allow_unsigned": True, "log_level": "loud"},
            {},
            "log level",
        ),
        (
            {"broker": "mqtt://h", "device_id": "d", "allow_unsigned": True, "client_cert": "/x"},
            {},
            "go together",
        ),
    ],
)
def test_bad_settings_give_one_readable_line(
    cli: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")) as info:
        load_settings(cli, env)
    assert "\n" not in str(info.value)


def test_bad_toml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, {}, _toml(tmp_path, "broker = "))
    with pytest.raises(ConfigError, match="unknown key 'brokr'"):
        load_settings({}, {}, _toml(tmp_path, 'brokr = "mqtt://h"'))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, {}, tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cache_quota_mb must be a whole number"):
        load_settings({}, {}, _toml(tmp_path, 'cache_quota_mb = "big"'))


def test_allow_unsigned_from_env(tmp_path: Path) -> None:
    settings = load_settings(
        {"broker": "mqtt://h", "device_id": "d"}, {"EDGEPROF_ALLOW_UNSIGNED": "true"}
    )
    assert settings.allow_unsigned and not settings.trusted_keys
