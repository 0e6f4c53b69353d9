"""Broker URL parsing and the persistent client id."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostctl.errors import HostctlError
from hostctl.mqtt import SessionLock, host_client_id, parse_broker_url


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://broker.local", "broker.local", 1883, False),
        ("mqtt://10.0.0.2:1884", "10.0.0.2", 1884, False),
        ("mqtts://iot.example.com", "iot.example.com", 8883, True),
        ("MQTTS://iot.example.com:443/", "iot.example.com", 443, True),
        ("pi.local:1999", "pi.local", 1999, False),
        ("mqtt://[::1]:1883", "::1", 1883, False),
    ],
)
def test_valid_urls(url: str, host: str, port: int, tls: bool) -> None:
    address = parse_broker_url(url)
    assert (address.host, address.port, address.tls) == (host, port, tls)


def test_credentials_in_the_url_are_decoded() -> None:
    address = parse_broker_url("mqtt://user:p%40ss@host")
    assert (address.username, address.password) == ("user", "p@ss")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://host", "mqtt:// or mqtts://"),
        ("mqtt://host:notaport", "port"),
        ("mqtt://host:70000", "port"),
        ("mqtt://", "no host"),
        ("mqtt://host/topic", "no path"),
    ],
)
def test_invalid_urls_say_what_is_expected(url: str, message: str) -> None:
    with pytest.raises(HostctlError, match=message):
        parse_broker_url(url)


def test_client_id_is_stable_per_store_and_differs_between_stores(tmp_path: Path) -> None:
    a, b = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    assert host_client_id(a) == host_client_id(a)
    assert host_client_id(a) != host_client_id(b)
    assert host_client_id(a).startswith("hostctl-") and len(host_client_id(a)) == 20


def test_only_one_hostctl_at_a_time_holds_a_stores_persistent_session(tmp_path: Path) -> None:
    first, second = SessionLock(tmp_path / "r.sqlite"), SessionLock(tmp_path / "r.sqlite")
    assert first.acquire()
    assert not second.acquire()  # it would use a clean session instead
    first.release()
    assert second.acquire()
    second.release()
