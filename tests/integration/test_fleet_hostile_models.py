"""Hostile models and data files through the fleet (hostctl push to a real agent on a
real broker, every file made in code by modelkit.hostile): each fails with its own
one-line reason in a stored error result, the agent stays up, nothing is read
that the job did not bring, and the next model runs as usual."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelkit import hostile
from profiler.models import demo_model
from tests.integration.fleet_support import TINY, online_fleet
from tests.support.broker import MosquittoBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_hostile_models_fail_alone_and_the_agent_goes_on(
    fresh_mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    models = tmp_path / "hostile"
    models.mkdir()
    hog = models / "hog.onnx"
    hog.write_bytes(hostile.build_onnx_memory_hog())  # 4 GiB per inference
    # Names the agent's own cache index beside the model cache: must not be read.
    thief = models / "thief.onnx"
    thief.write_bytes(hostile.build_onnx_external_data("../models/index.json"))
    sibling = models / "sibling.onnx"
    sibling.write_bytes(hostile.build_onnx_external_data("index.json"))
    bomb = hostile.write_npz_bomb(models / "bomb.npz", 2 * 1024**3)  # ~9 MB, declares 2 GiB
    assert bomb.stat().st_size < 20 * 1024**2

    with online_fleet(tmp_path, {"pi-1": []}, broker=fresh_mosquitto) as fleet:
        host, agent = fleet.host, fleet.agent
        cache = agent.cache_dir
        pushed = host.run(
            "push", str(hog), str(thief), str(sibling), "--device", "pi-1",
            *TINY, "--max-memory", "400M", "--json", timeout=300,
        )  # fmt: skip
        assert pushed.returncode == 1, pushed.stderr  # every one failed, and said so
        assert "Traceback" not in pushed.stderr
        by_model = {r["model"]["name"]: r for r in json.loads(pushed.stdout)}
        assert by_model["hog.onnx"]["error"]["code"] == "out_of_memory"
        assert "400 MiB" in by_model["hog.onnx"]["error"]["message"]
        for name in ("thief.onnx", "sibling.onnx"):
            error = by_model[name]["error"]
            assert error["code"] == "bad_model" and "external data" in error["message"], error
            assert error["message"].startswith(name) and "model.onnx" not in error["message"]
        # The agent's files are as they were, and no job directory is left behind.
        assert json.loads((cache / "models" / "index.json").read_text())
        assert not any((cache / "run").iterdir()) if (cache / "run").exists() else True

        # A zip bomb as --eval data: refused from its header, before a byte is inflated.
        model = demo_model("onnx")
        bombed = host.run("push", str(model), "--device", "pi-1", *TINY,
                          "--max-memory", "400M", "--eval", str(bomb), "--json", timeout=300)  # fmt: skip
        assert bombed.returncode == 1 and "Traceback" not in bombed.stderr
        (result,) = json.loads(bombed.stdout)
        assert result["error"]["code"] == "out_of_memory"
        assert "declares 2.1 GB" in result["error"]["message"]
        assert "nothing was read" in result["error"]["message"]

        # The agent is still up and measures the next model as usual.
        assert agent.proc is not None and agent.proc.poll() is None
        done = host.run("push", str(model), "--device", "pi-1", *TINY, "--json", timeout=300)
        assert done.returncode == 0, done.stderr
        assert [r["status"] for r in json.loads(done.stdout)] == ["ok"]
        stored = json.loads(host.run("results", "--no-collect", "--json").stdout)
        assert len(stored) == 5  # every error result is kept too
