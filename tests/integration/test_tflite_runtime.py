"""The classic tflite-runtime 2.14 for real, from the second venv scripts/test builds
(NumPy < 2, no LiteRT): an agent whose only TFLite runtime it is, beside an agent
with LiteRT. What each device can load shows in `hostctl devices`; `push --runtime`
runs where that runtime is and is refused elsewhere before any download; model
analysis there reads files as it does with LiteRT's schema."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from profiler.analysis import analyze
from profiler.models import demo_model
from protocol.signing import write_key_pair
from tests.integration.fleet_support import REPO, TINY, Agent, Host, Watcher, subprocess_env
from tests.support.broker import MosquittoBroker

PYTHON_VAR = "EDGEPROF_TFLITE_RUNTIME_PYTHON"
CLASSIC, MODERN = "pi-classic", "pi-litert"
LITERT = importlib.metadata.version("ai-edge-litert")
DEMO_PARAMS = 3978


def tflite_runtime_python() -> str:
    """The interpreter of .venv-tflite-runtime (scripts/test builds it and names it in
    EDGEPROF_TFLITE_RUNTIME_PYTHON; a bare pytest finds it in the checkout)."""
    named = os.environ.get(PYTHON_VAR)
    if named:
        assert os.access(named, os.X_OK), f"{PYTHON_VAR}={named} is not an interpreter"
        return named
    default = REPO / ".venv-tflite-runtime" / "bin" / "python"
    if not default.exists():
        pytest.skip("no .venv-tflite-runtime: `bash scripts/test` builds it")
    return str(default)


@dataclass
class Fleet:
    broker: MosquittoBroker
    host: Host
    workdir: Path


_ANALYZE_ALL = (
    "import json, sys\n"
    "from profiler.analysis import analyze\n"
    "print(json.dumps({p: analyze(p) for p in sys.argv[1:]}))\n"
)


def test_analysis_beside_tflite_runtime_reads_every_tflite_fixture_as_with_litert(
    model_files: dict[str, Path],
) -> None:
    paths = sorted(str(p) for name, p in model_files.items() if name.endswith(".tflite"))
    done = subprocess.run(
        [tflite_runtime_python(), "-c", _ANALYZE_ALL, *paths],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    assert len(there) == len(paths) >= 10
    for path in paths:
        assert there[path] == analyze(path), Path(path).name


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("runtimes")
    broker = MosquittoBroker(workdir / "broker")
    broker.start()
    key, pub = write_key_pair(workdir / "keys")
    agents = [
        Agent(CLASSIC, broker.url, pub, workdir, python=tflite_runtime_python()).start(),
        Agent(MODERN, broker.url, pub, workdir).start(),
    ]
    host = Host(broker.url, key, workdir / "results.sqlite")
    try:
        # Runtimes are announced once each agent's probe is done.
        host.wait_for(
            lambda devs: all(
                devs.get(d, {}).get("info", {}).get("runtimes") for d in (CLASSIC, MODERN)
            ),
            "both devices' runtimes",
        )
        yield Fleet(broker, host, workdir)
    finally:
        for agent in agents:
            agent.stop()
        broker.stop()


def _fresh_model(fleet: Fleet, name: str) -> Path:
    """The demo CNN under a new name and hash (no device has it cached yet)."""
    path = fleet.workdir / name
    # Trailing bytes after the flatbuffer change the hash, not the model.
    path.write_bytes(demo_model("tflite").read_bytes() + name.encode().ljust(64, b"\0"))
    return path


def _push(fleet: Fleet, *args: str) -> tuple[int, list[dict[str, object]], str]:
    done = fleet.host.run(
        "push", *args, "--device", CLASSIC, "--device", MODERN, *TINY, "--timeout", "90", "--json"
    )
    return done.returncode, json.loads(done.stdout or "[]"), done.stderr


def _error_lines(stderr: str) -> list[str]:
    """The lines hostctl prints per failed target (not the progress display)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.broker
@pytest.mark.slow
def test_devices_show_every_runtime_each_agent_can_load(fleet: Fleet) -> None:
    devices = fleet.host.devices()
    classic = devices[CLASSIC]["info"]["runtimes"]
    modern = devices[MODERN]["info"]["runtimes"]
    assert classic["tflite_runtime"] == {"version": "2.14.0"}
    assert "litert" not in classic
    assert modern["litert"] == {"version": LITERT}
    assert "tflite_runtime" not in modern
    for runtimes in (classic, modern):
        assert "CPUExecutionProvider" in runtimes["onnxruntime"]["providers"]

    table = fleet.host.run("devices")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[1]: line for line in table.stdout.splitlines() if "pi-" in line}
    assert "tflite-runtime 2.14.0" in rows[CLASSIC] and "litert" not in rows[CLASSIC]
    assert f"litert {LITERT}" in rows[MODERN] and "tflite-runtime" not in rows[MODERN]


@pytest.mark.broker
@pytest.mark.slow
def test_push_runtime_runs_where_it_is_and_is_refused_elsewhere_before_any_download(
    fleet: Fleet,
) -> None:
    model = _fresh_model(fleet, "classic.tflite")
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    events = Watcher(fleet.broker.port, f"edgeprof/v1/dev/{MODERN}/job/+/event")
    try:
        code, results, err = _push(fleet, str(model), "--runtime", "tflite-runtime")
        states = [json.loads(p)["state"] for _, p in events.messages]
    finally:
        events.close()
    assert code == 1  # one target refused
    assert len(results) == 1 and results[0]["status"] == "ok", err
    doc = results[0]
    assert doc["device"]["id"] == CLASSIC  # type: ignore[index]
    assert doc["runtime"]["name"] == "tflite_runtime"  # type: ignore[index]
    assert doc["runtime"]["version"] == "2.14.0"  # type: ignore[index]
    # analysed on the device through the tflite package's schema (no LiteRT there)
    assert doc["model"]["params"] == DEMO_PARAMS  # type: ignore[index]

    refusal = [line for line in _error_lines(err) if MODERN in line]
    assert len(refusal) == 1, err
    assert "rejected" in refusal[0] and "[runtime_missing]" in refusal[0]
    assert "runtime tflite-runtime is not installed" in refusal[0]
    assert f"this device has litert {LITERT}" in refusal[0]
    assert "rejected" in states and "downloading" not in states and "running" not in states
    assert sha not in fleet.host.devices()[MODERN]["info"]["cached_models"]

    # Refused by every target: not one chunk is published.
    unwanted = _fresh_model(fleet, "nowhere.tflite")
    chunks = Watcher(fleet.broker.port, "edgeprof/v1/blob/#")
    try:
        code, results, err = _push(fleet, str(unwanted), "--runtime", "tensorflow")
    finally:
        chunks.close()
    assert code == 1 and results == []
    refused = [line for line in _error_lines(err) if "runtime tensorflow is not installed" in line]
    assert len(refused) == 2, err
    assert chunks.topics() == []


@pytest.mark.broker
@pytest.mark.slow
def test_the_same_model_on_two_runtimes_gives_two_distinct_sides(fleet: Fleet) -> None:
    model = _fresh_model(fleet, "sides.tflite")
    code, results, err = _push(fleet, str(model), "--label", "runtimes")
    assert code == 0, err
    sides = {
        r["device"]["id"]: (r["runtime"]["name"], r["runtime"]["version"])  # type: ignore[index]
        for r in results
    }
    assert sides == {CLASSIC: ("tflite_runtime", "2.14.0"), MODERN: ("litert", LITERT)}
    stored = fleet.host.run("results", "--no-collect", "--json", "--label", "runtimes")
    assert stored.returncode == 0, stored.stderr
    kept = {(r["runtime"]["name"], r["model"]["sha256"]) for r in json.loads(stored.stdout)}
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    assert kept == {("tflite_runtime", sha), ("litert", sha)}

    # ... and the gate compares the two runtimes as its two sides (the two agents run
    # on this one machine): the selections name the runtimes, the devices differ too
    pushed = fleet.host.run(
        "push", str(model), "--device", CLASSIC, "--device", MODERN, "--label", "two-sides",
        "--runs", "200", "--warmup", "5", "--warmup-seconds", "0", "--min-seconds", "0",
        "--timeout", "90",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    compared = fleet.host.run(
        "compare", "label=two-sides,runtime=litert", "label=two-sides,runtime=tflite-runtime",
        "--across", "device", "--json",
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    report = json.loads(compared.stdout)
    assert report["unmatched"] == []
    p50 = next(c for c in report["comparisons"] if c["metric"] == "latency_p50")
    assert p50["subject"]["runtime"] == {"baseline": "litert", "candidate": "tflite_runtime"}
    assert p50["subject"]["runtime_version"] == {"baseline": LITERT, "candidate": "2.14.0"}
    # one run a side: blocks inside the runs, unless the run drifted on a loaded runner
    assert p50["method"].startswith("block medians within runs") or p50["excluded"]
    first = next(c for c in report["comparisons"] if c["metric"] == "first_inference_ms")
    assert first["baseline"] > 0 and first["candidate"] > 0  # never left out for drift
