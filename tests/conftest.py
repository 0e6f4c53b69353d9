"""Session-wide fixtures: a real Mosquitto broker started by the test session, and
every generated model fixture written once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.broker import MosquittoBroker

# Timing-based health checks fail on a loaded 2-core CI machine; what we test
# is behaviour, not speed (speed lives in bench/).
settings.register_profile("edgeprof", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("edgeprof")


@pytest.fixture(autouse=True)
def _private_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test's results store, keys and caches out of the real user dirs
    (platformdirs honours the XDG variables; child processes inherit them)."""
    home = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    for var in ("EDGEPROF_DB", "EDGEPROF_KEY", "EDGEPROF_BROKER"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """One broker for the session (tests that kill it use `fresh_mosquitto`)."""
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker of the test's own, free to stop and restart."""
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


MODELS_DIR_VAR = "EDGEPROF_TEST_MODELS"
"""A directory ``python -m modelkit.fixtures --out DIR --all`` wrote: used instead of
writing the fixtures here, by the tflite-runtime environment of scripts/test, which
has no LiteRT (modelkit writes TFLite files with the schema LiteRT ships)."""


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[str]:
    """The URL of a PostgreSQL database of this test session's own, on the real server
    (see tests/support/postgres.py); skips, saying why, when none is reachable."""
    from tests.support import postgres

    reason = postgres.unavailable()
    if reason is not None:
        pytest.skip(reason)
    with postgres.scratch_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty results store location for each test, on each backend: a
    SQLite path, then this session's PostgreSQL database with its tables dropped."""
    if request.param == "sqlite":
        yield str(tmp_path / "results.sqlite")
        return
    url: str = request.getfixturevalue("postgres_db")
    from tests.support.postgres import reset

    reset(url)
    yield url
    reset(url)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every fixture of :func:`modelkit.fixtures.write_all`, by file name
    (e.g. ``cnn_int8.tflite``, ``dtypes.onnx``, ``labelled.npz``), written once."""
    written = os.environ.get(MODELS_DIR_VAR)
    if written:
        files = {p.name: p for p in Path(written).iterdir() if p.is_file()}
        assert files, f"{MODELS_DIR_VAR}={written} holds no fixtures"
        return files
    from modelkit import fixtures

    return fixtures.write_all(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tflite_cnn(model_files: dict[str, Path]) -> Path:
    """The fp32 CNN as .tflite."""
    return model_files["cnn_fp32.tflite"]


@pytest.fixture(scope="session")
def onnx_cnn(model_files: dict[str, Path]) -> Path:
    """The fp32 CNN as .onnx."""
    return model_files["cnn_fp32.onnx"]
