"""End to end on both stores: a real Mosquitto, a real agent, hostctl as a
subprocess with ``--db`` a SQLite file or a real PostgreSQL database. The push
journals its job, stores the result, and `results` reads it back alike."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hostctl.store import ResultStore
from profiler.models import demo_model
from tests.integration.fleet_support import TINY, Fleet, Host, online_fleet

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture(scope="module")
def one_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with online_fleet(tmp_path_factory.mktemp("store-e2e"), {"pi-store": []}) as fleet:
        yield fleet


def test_a_push_is_journaled_stored_and_read_back(one_device: Fleet, store_db: str) -> None:
    host = Host(one_device.broker.url, one_device.host.key, store_db)
    model = demo_model("onnx")
    done = host.run(
        "push",
        str(model),
        "--device",
        "pi-store",
        "--label",
        "e2e",
        *TINY,
        "--json",
        "--timeout",
        "90",
    )
    assert done.returncode == 0, done.stderr
    (pushed,) = json.loads(done.stdout)
    assert pushed["status"] == "ok" and pushed["device"]["id"] == "pi-store"

    listed = host.run("results", "--no-collect", "--json", "--label", "e2e")
    assert listed.returncode == 0, listed.stderr
    assert [r["job_id"] for r in json.loads(listed.stdout)] == [pushed["job_id"]]

    with ResultStore(store_db) as store:
        assert store.get(pushed["job_id"], "pi-store") == pushed
        entry = store.get_job(pushed["job_id"], "pi-store")
        assert entry is not None and store.sent_to(pushed["job_id"], "pi-store")
        assert (entry.model_name, entry.label, entry.state) == (model.name, "e2e", "succeeded")
        assert entry.sha256 == pushed["model"]["sha256"]
        assert entry.sent_at <= entry.updated_at
