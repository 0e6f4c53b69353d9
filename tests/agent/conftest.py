"""Fixtures of the agent tests: a trusted key pair and real agent processes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protocol.signing import SigningKey, load_signing_key, write_key_pair
from tests.agent.fleet_host import AgentProcess
from tests.support.broker import MosquittoBroker

StartAgent = Callable[..., AgentProcess]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[SigningKey, Path]:
    """The host's signing key and the public key file the agents trust."""
    secret, public = write_key_pair(tmp_path / "keys")
    return load_signing_key(secret), public


@pytest.fixture
def start_agent(tmp_path: Path, keys: tuple[SigningKey, Path]) -> Iterator[StartAgent]:
    """Start `python -m agent` for a device (tag "test"); all are stopped afterwards."""
    started: list[AgentProcess] = []

    def start(broker: MosquittoBroker, device: str, *extra: str) -> AgentProcess:
        args = [
            "--broker", broker.url,
            "--device-id", device,
            "--tag", "test",
            "--cache-dir", str(tmp_path / f"cache-{device}"),
            "--trust", str(keys[1]),
            "--log-level", "DEBUG",
            *extra,
        ]  # fmt: skip
        agent = AgentProcess(args, tmp_path / f"agent-{device}.log")
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def new_device_id() -> str:
    """A device id no other test uses (the session broker is shared)."""
    return f"dev-{uuid.uuid4().hex[:8]}"
