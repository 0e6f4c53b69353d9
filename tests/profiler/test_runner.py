"""profile() end to end: real worker processes, real runtimes, real faults."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelkit import fixtures
from profiler.errors import (
    BAD_INPUT,
    BAD_MODEL,
    CRASHED,
    CUSTOM_OP,
    DYNAMIC_SHAPE,
    NOT_FOUND,
    OUT_OF_MEMORY,
    TIMEOUT,
    UNSUPPORTED_FORMAT,
    ProfilerError,
)
from profiler.result import MEMORY_KEYS, RESULT_KEYS
from profiler.runner import ChildOutcome, outcome_error, profile
from profiler.settings import ProfileSettings
from protocol.result import RESULT_SCHEMA, decode_samples

FAULT_WORKER = str(Path(__file__).with_name("fault_worker.py"))
TINY = ProfileSettings(runs=5, warmup=1, min_seconds=0, warmup_seconds=0)


def _tiny(**changes: Any) -> ProfileSettings:
    return ProfileSettings.from_dict({**TINY.to_dict(), **changes})


@pytest.fixture(scope="module")
def models(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("models")
    paths = {
        "cnn.tflite": model_files["cnn_fp32.tflite"],
        "cnn.onnx": model_files["cnn_fp32.onnx"],
        **{
            name: model_files[name]
            for name in (
                "cnn_dynamic.onnx",
                "cnn_dynamic.tflite",
                "tiny.onnx",
                "dtypes.onnx",
                "custom_op.tflite",
                "custom_op.onnx",
            )
        },
    }
    files = {name: path.read_bytes() for name, path in paths.items()}
    (out / "truncated.tflite").write_bytes(files["cnn.tflite"][:300])
    (out / "truncated.onnx").write_bytes(files["cnn.onnx"][:300])
    (out / "garbage.onnx").write_bytes(b"\xffgarbage" * 50)
    (out / "model.pb").write_bytes(files["cnn.onnx"])
    (out / "noise.bin").write_bytes(bytes(range(256)) * 4)
    for name in ("truncated.tflite", "truncated.onnx", "garbage.onnx", "model.pb", "noise.bin"):
        paths[name] = out / name
    return paths


def _assert_error(result: dict[str, Any], code: str) -> str:
    assert set(RESULT_KEYS) <= set(result)
    assert result["status"] == "error"
    assert result["error"]["code"] == code, result["error"]
    message: str = result["error"]["message"]
    assert "Traceback" not in message and "\n" not in message
    return message


@pytest.mark.parametrize("name", ["cnn.tflite", "cnn.onnx"])
def test_both_formats_give_a_complete_result(models: dict[str, Path], name: str) -> None:
    phases: list[str] = []
    path = models[name]
    result = profile(path, TINY, label="lbl", job_id="job-1", tags=["lab"], on_phase=phases.append)
    assert set(RESULT_KEYS) <= set(result)
    assert result["schema"] == RESULT_SCHEMA
    assert result["status"] == "ok", result["error"]
    assert (result["job_id"], result["label"]) == ("job-1", "lbl")
    assert result["created_at"].endswith("Z")
    assert result["device"]["tags"] == ["lab"]
    model = result["model"]
    assert model["name"] == path.name
    assert model["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model["size_bytes"] == path.stat().st_size
    assert model["format"] == path.suffix[1:]
    # From profiler.analysis, run in a child of its own.
    assert (model["params"], model["macs"]) == (
        fixtures.CnnSpec().params(),
        fixtures.CnnSpec().macs(),
    )
    latency = result["latency_ms"]
    assert latency["n"] >= 5 and 0 < latency["min"] <= latency["mean"] <= latency["max"]
    assert result["init_ms"] > 0 and result["first_inference_ms"] > 0
    assert all(result["memory_mb"][k] is not None for k in MEMORY_KEYS)
    assert result["memory_mb"]["peak_rss"] >= result["memory_mb"]["rss_after_load"] > 0
    steady = result["phases"]["steady"]
    assert steady["runs"] == latency["n"] and steady["capped"] is False
    assert result["phases"]["warmup"]["runs"] >= 1
    assert len(decode_samples(result["samples"])) == latency["n"]
    assert result["settings"]["runs"] == 5
    assert result["settings"]["inputs"]["source"] == "generated"
    assert result["accuracy"] is None and result["error"] is None
    assert phases.index("loading") < phases.index("first_inference") < phases.index("steady")
    json.dumps(result, allow_nan=False)  # travels as JSON


def test_the_drift_test_is_in_the_result(models: dict[str, Path]) -> None:
    from profiler.stats import detect_drift

    result = profile(models["tiny.onnx"], _tiny(runs=60), analyze=False)
    assert result["status"] == "ok", result["error"]
    drift = result["latency_ms"]["drift"]
    assert set(drift) == {"drift", "change_pct", "p_value", "method", "blocks"}
    assert drift["blocks"] == min(20, result["latency_ms"]["n"] // 5)
    assert 0 <= drift["p_value"] <= 1
    # the figures are those of the recorded samples, and the flag follows them
    samples = decode_samples(result)  # a whole result document is accepted
    assert samples == decode_samples(result["samples"])
    assert detect_drift(samples) == drift
    assert ("drift" in result["flags"]) == drift["drift"]


def test_decode_samples_of_a_result_without_samples(models: dict[str, Path]) -> None:
    result = profile(models["custom_op.onnx"], TINY, analyze=False)
    with pytest.raises(ValueError, match="no samples"):
        decode_samples(result)


def test_runtime_section_reports_what_ran(models: dict[str, Path]) -> None:
    tfl = profile(models["cnn.tflite"], _tiny(threads=2, xnnpack=False), analyze=False)
    assert tfl["runtime"]["name"] == "litert"
    assert tfl["runtime"]["delegate_or_provider"] == "none"
    assert tfl["runtime"]["threads"] == 2
    assert tfl["settings"]["xnnpack"] is False
    ort = profile(models["cnn.onnx"], _tiny(threads=1), analyze=False)
    assert ort["runtime"]["name"] == "onnxruntime"
    assert ort["runtime"]["delegate_or_provider"] == "CPUExecutionProvider"
    assert ort["runtime"]["threads"] == 1


def test_max_seconds_caps_the_steady_state(models: dict[str, Path]) -> None:
    result = profile(models["tiny.onnx"], _tiny(runs=10**9, max_seconds=0.2), analyze=False)
    assert result["status"] == "ok"
    assert result["phases"]["steady"]["capped"] is True
    assert result["latency_ms"]["n"] < 10**9


def test_every_input_dtype_runs(models: dict[str, Path]) -> None:
    result = profile(models["dtypes.onnx"], TINY, analyze=False)
    assert result["status"] == "ok", result["error"]
    dtypes = {t["dtype"] for t in result["settings"]["inputs"]["tensors"]}
    assert dtypes == {"float32", "float16", "int8", "uint8", "int32", "int64", "bool"}


def test_supplied_npy_and_npz_inputs(models: dict[str, Path], tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((1, 4), np.float32))
    np.savez(tmp_path / "x.npz", input=np.ones((1, 4), np.float32))
    for name in ("x.npy", "x.npz"):
        result = profile(
            models["tiny.onnx"], _tiny(inputs_path=str(tmp_path / name)), analyze=False
        )
        assert result["status"] == "ok", result["error"]
        assert result["settings"]["inputs"]["source"] == "file"
        assert result["settings"]["inputs"]["file"] == name
    np.save(tmp_path / "bad.npy", np.ones((1, 4), np.float64))
    bad = profile(models["tiny.onnx"], _tiny(inputs_path=str(tmp_path / "bad.npy")), analyze=False)
    assert "float32" in _assert_error(bad, BAD_INPUT)


@pytest.mark.parametrize(
    ("name", "shape", "dims", "template"),
    [
        ("cnn_dynamic.onnx", [2, 3, 16, 16], "input[N?, 3, 16, 16] (N)", "input=<N>,3,16,16"),
        ("cnn_dynamic.tflite", [2, 16, 16, 3], "input[?, 16, 16, 3] (d0)", "input=<d0>,16,16,3"),
    ],
)
def test_dynamic_shapes(
    models: dict[str, Path], name: str, shape: list[int], dims: str, template: str
) -> None:
    missing = profile(models[name], TINY, analyze=False)
    message = _assert_error(missing, DYNAMIC_SHAPE)
    assert dims in message and f"--shape {template}" in message
    assert "input=1," not in message  # no made-up size for the dynamic dim
    assert missing["settings"]["input_shapes"] is None  # never known
    result = profile(models[name], _tiny(shapes={"input": shape}), analyze=False)
    assert result["status"] == "ok", result["error"]
    assert result["settings"]["inputs"]["tensors"][0]["shape"] == shape
    assert result["settings"]["input_shapes"] == {"input": shape}


def test_input_shapes_are_in_every_result(models: dict[str, Path], tmp_path: Path) -> None:
    generated = profile(models["dtypes.onnx"], TINY, analyze=False)
    assert generated["status"] == "ok", generated["error"]
    assert generated["settings"]["input_shapes"] == {
        f"x_{dtype}": [1, 4]
        for dtype in ("float32", "float16", "int8", "uint8", "int32", "int64", "bool")
    }
    np.save(tmp_path / "x.npy", np.ones((3, 3, 16, 16), np.float32))
    supplied = profile(
        models["cnn_dynamic.onnx"], _tiny(inputs_path=str(tmp_path / "x.npy")), analyze=False
    )
    assert supplied["status"] == "ok", supplied["error"]
    assert supplied["settings"]["input_shapes"] == {"input": [3, 3, 16, 16]}


def test_random_control_input_fails_and_the_line_says_how_to_set_it(
    model_files: dict[str, Path],
) -> None:
    model = model_files["sample_rate.onnx"]
    failed = profile(model, TINY, analyze=False)
    message = _assert_error(failed, "runtime_error")
    assert "inputs generated randomly: audio (float32 normal(0, 1)), sr (int64 in [0, 9])" in (
        message
    )
    assert "--input-value NAME=V or --input-range NAME=LO,HI" in message
    # The shapes were known before the runtime failed: the error result has them.
    assert failed["settings"]["input_shapes"] == {"audio": [1, 160], "sr": []}

    ok = profile(model, _tiny(input_values={"sr": fixtures.SAMPLE_RATE}), analyze=False)
    assert ok["status"] == "ok", ok["error"]
    tensors = {t["name"]: t for t in ok["settings"]["inputs"]["tensors"]}
    assert tensors["sr"]["fill"] == "value" and tensors["sr"]["value"] == 16000
    assert tensors["audio"]["fill"] == "random"
    assert ok["settings"]["input_values"] == {"sr": 16000}
    ranged = profile(model, _tiny(input_ranges={"sr": [8000, 16000]}), analyze=False)
    assert ranged["status"] == "ok", ranged["error"]
    assert ranged["settings"]["input_ranges"] == {"sr": [8000, 16000]}


def test_fill_of_an_unknown_input_is_a_bad_input(model_files: dict[str, Path]) -> None:
    result = profile(model_files["sample_rate.onnx"], _tiny(input_values={"rate": 1}))
    message = _assert_error(result, BAD_INPUT)
    assert "--input-value rate=1: the model has no input 'rate'; its inputs are audio, sr" in (
        message
    )


@pytest.mark.parametrize("name", ["custom_op.tflite", "custom_op.onnx"])
def test_custom_op_result_names_the_op(models: dict[str, Path], name: str) -> None:
    result = profile(models[name], TINY, analyze=False)
    assert fixtures.CUSTOM_OP_NAME in _assert_error(result, CUSTOM_OP)
    assert result["model"]["sha256"] is not None  # an error result still names the model
    assert result["runtime"]["name"] in ("litert", "onnxruntime")  # and what refused it


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("truncated.tflite", BAD_MODEL),
        ("truncated.onnx", BAD_MODEL),
        ("garbage.onnx", BAD_MODEL),
        ("noise.bin", UNSUPPORTED_FORMAT),
        ("absent.onnx", NOT_FOUND),
    ],
)
def test_bad_files_give_a_clean_error(models: dict[str, Path], name: str, code: str) -> None:
    path = models.get(name, next(iter(models.values())).parent / name)
    result = profile(path, TINY, analyze=False)
    _assert_error(result, code)
    assert result["model"]["name"] == name
    assert result["settings"]["runs"] == 5


def test_the_content_decides_the_format_as_in_inspect(
    models: dict[str, Path], tmp_path: Path
) -> None:
    from profiler.analysis import analyze

    # an ONNX model under another extension is profiled, as inspect analyses it
    result = profile(models["model.pb"], TINY, analyze=False)
    assert result["status"] == "ok", result["error"]
    assert result["model"]["format"] == "onnx"
    assert analyze(models["model.pb"])["model"]["format"] == "onnx"
    # a model behind the other format's extension: the same rename advice from both
    for source, name, advice in (
        ("cnn.onnx", "swap.tflite", "rename it to swap.onnx"),
        ("cnn.tflite", "swap.onnx", "rename it to swap.tflite"),
    ):
        swapped = tmp_path / name
        swapped.write_bytes(models[source].read_bytes())
        message = _assert_error(profile(swapped, TINY, analyze=False), UNSUPPORTED_FORMAT)
        assert advice in message
        with pytest.raises(ProfilerError) as err:
            analyze(swapped)
        assert err.value.message == message


def test_unknown_provider_lists_the_available(models: dict[str, Path]) -> None:
    result = profile(models["tiny.onnx"], _tiny(provider="CUDAExecutionProviderX"), analyze=False)
    assert "CPUExecutionProvider" in _assert_error(result, BAD_INPUT)


# ----------------------------------------------------------------- faults (real children)


def _fault(models: dict[str, Path], *args: str, **settings: Any) -> dict[str, Any]:
    return profile(
        models["tiny.onnx"],
        _tiny(**settings),
        analyze=False,
        worker_cmd=[sys.executable, FAULT_WORKER, *args],
    )


def test_segfault_becomes_crashed(models: dict[str, Path]) -> None:
    result = _fault(models, "segv")
    message = _assert_error(result, CRASHED)
    assert "SIGSEGV" in message and "while loading tiny.onnx" in message
    assert result["memory_mb"]["peak_rss"] > 0  # the kernel's figure survives the crash
    assert "--no-xnnpack" not in message  # an ONNX model: XNNPACK is a TFLite delegate


def test_huge_generated_inputs_are_refused_before_allocating(models: dict[str, Path]) -> None:
    # 3 TB of float32: refused from the sizes alone, not after minutes of swapping
    result = profile(
        models["cnn_dynamic.onnx"], _tiny(shapes={"input": [10**9, 3, 16, 16]}), analyze=False
    )
    message = _assert_error(result, BAD_INPUT)
    assert "inputs of 3072.0 GB do not fit in" in message and "lower --shape" in message
    assert result["memory_mb"]["peak_rss"] < 1000


def test_running_out_of_memory_is_a_user_error(models: dict[str, Path]) -> None:
    # A real worker whose address space is capped at 800 MB (far below this
    # machine's memory, so the up-front check lets 1.2 GB of inputs through).
    worker = f"ulimit -v 800000; exec {sys.executable} -m profiler.worker"
    result = profile(
        models["cnn_dynamic.onnx"],
        _tiny(shapes={"input": [400_000, 3, 16, 16]}),
        analyze=False,
        worker_cmd=["sh", "-c", worker],
    )
    message = _assert_error(result, OUT_OF_MEMORY)
    assert "out of memory while preparing inputs for cnn_dynamic.onnx" in message


@pytest.mark.parametrize(
    ("peak_mb", "fmt", "code", "words"),
    [
        (7_500.0, "onnx", OUT_OF_MEMORY, "most likely out of memory (peak 7.3 GB of 7.8 GB)"),
        (300.0, "onnx", CRASHED, "try another --runtime or --provider"),
        (300.0, "tflite", CRASHED, "--no-xnnpack"),
    ],
)
def test_a_sigkill_near_the_memory_limit_reads_as_out_of_memory(
    peak_mb: float, fmt: str, code: str, words: str
) -> None:
    outcome = ChildOutcome(phase="steady", peak_rss_mb=peak_mb, exit_status=-9)
    err = outcome_error(outcome, "big.onnx", 60, fmt=fmt, memory_limit_mb=8_000.0)
    assert err is not None
    assert err.code == code
    assert words in err.message and "while running big.onnx" in err.message


def test_abort_while_running_names_signal_and_phase(models: dict[str, Path]) -> None:
    message = _assert_error(_fault(models, "kill", "SIGABRT"), CRASHED)
    assert "SIGABRT" in message and "while running tiny.onnx" in message


def test_hang_becomes_timeout(models: dict[str, Path]) -> None:
    message = _assert_error(_fault(models, "hang", timeout_s=1.0), TIMEOUT)
    assert "first inference" in message and "--timeout" in message


def test_exit_without_reply_is_crashed(models: dict[str, Path]) -> None:
    assert "code 3" in _assert_error(_fault(models, "exit", "3"), CRASHED)


def test_peak_rss_comes_from_the_kernel(models: dict[str, Path]) -> None:
    result = _fault(models, "alloc", "300")
    assert result["status"] == "ok", result["error"]
    assert result["memory_mb"]["peak_rss"] >= 300


def test_chatty_worker_does_not_block(models: dict[str, Path]) -> None:
    assert _fault(models, "noisy", timeout_s=60)["status"] == "ok"


def test_parent_process_imports_no_runtime(models: dict[str, Path]) -> None:
    script = (
        "import sys, json\n"
        "from profiler.runner import profile\n"
        "from profiler.runtimes import probe_runtimes\n"
        "from profiler.settings import ProfileSettings\n"
        "s = ProfileSettings(runs=5, warmup=1, min_seconds=0, warmup_seconds=0)\n"
        f"r = profile({str(models['cnn.onnx'])!r}, s)\n"
        "heavy = [m for m in ('numpy', 'onnx', 'onnxruntime', 'ai_edge_litert',\n"
        "         'tflite_runtime', 'tensorflow') if m in sys.modules]\n"
        "print(json.dumps({'status': r['status'], 'heavy': heavy,\n"
        "                  'runtimes': probe_runtimes()}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == "ok"
    assert report["heavy"] == []
    runtimes = report["runtimes"]
    assert runtimes["litert"]["version"]
    assert "CPUExecutionProvider" in runtimes["onnxruntime"]["providers"]


def test_peak_rss_excludes_a_large_caller(models: dict[str, Path]) -> None:
    # Linux hands the spawning process's RSS high-water mark to the child's ru_maxrss
    # (fork + exec): a 400 MB caller must not make a tiny model look 400 MB big.
    script = (
        "import json\n"
        "from profiler.runner import profile\n"
        "from profiler.settings import ProfileSettings\n"
        "ballast = bytearray(400 * 1024 * 1024)\n"
        "for i in range(0, len(ballast), 4096): ballast[i] = 1\n"
        "s = ProfileSettings(runs=5, warmup=1, min_seconds=0, warmup_seconds=0)\n"
        f"print(json.dumps(profile({str(models['tiny.onnx'])!r}, s, analyze=False)['memory_mb']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    memory = json.loads(proc.stdout.strip().splitlines()[-1])
    assert memory["peak_rss"] < 300
    assert memory["peak_rss"] >= memory["rss_end"]


def test_results_keep_at_most_max_kept_samples_in_time_order() -> None:
    from profiler.runner import MAX_KEPT_SAMPLES, _kept_samples
    from protocol.result import decode_samples

    samples = list(range(50_000))
    doc = _kept_samples(samples)
    kept = decode_samples(doc)
    assert len(kept) <= MAX_KEPT_SAMPLES
    assert doc["total"] == 50_000 and kept == samples[:: doc["stride"]]
    assert _kept_samples([5, 6, 7])["stride"] == 1


def test_model_name_replaces_the_file_name_in_reports(tmp_path: Path) -> None:
    from modelkit.fixtures import build_tflite_custom_op

    cached = tmp_path / ("ab" * 32 + ".tflite")
    cached.write_bytes(build_tflite_custom_op())
    doc = profile(
        cached,
        ProfileSettings(runs=1, warmup=0, min_seconds=0, warmup_seconds=0),
        analyze=False,
        model_name="detector_int8.tflite",
    )
    assert doc["status"] == "error"
    assert doc["model"]["name"] == "detector_int8.tflite"
    assert "detector_int8.tflite uses custom op EdgeprofTestOp" in doc["error"]["message"]
    assert "abab" not in doc["error"]["message"]


def test_timed_loop_keeps_a_bounded_evenly_spread_sample() -> None:
    from profiler.worker import _timed_loop

    calls: list[int] = []
    outcome = _timed_loop(lambda: calls.append(1), 10_000, 0, 10**12, max_samples=64)
    assert outcome.runs == len(calls) == 10_000
    assert 32 <= len(outcome.samples) <= 64
    assert outcome.stride in (256, 512)  # 10 000 runs / 64 slots, rounded to a power of two
    assert all(s > 0 for s in outcome.samples)
    short = _timed_loop(lambda: None, 50, 0, 10**12, max_samples=64)
    assert short.stride == 1 and len(short.samples) == short.runs == 50


def test_a_stopping_daemon_can_kill_its_running_worker(models: dict[str, Path]) -> None:
    import threading
    import time

    from profiler.runner import kill_running_workers

    results: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: results.append(_fault(models, "hang", timeout_s=120)))
    thread.start()
    deadline = time.monotonic() + 30
    killed = 0
    while not killed and time.monotonic() < deadline:
        time.sleep(0.1)
        killed = kill_running_workers()
    thread.join(timeout=30)
    assert killed == 1 and not thread.is_alive()
    assert "SIGKILL" in _assert_error(results[0], CRASHED)
    assert kill_running_workers() == 0


def test_display_names_are_used_where_messages_are_made(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """The agent runs hash-named cache files: the result and every message must name
    them as the host did, and never mention the cache's paths."""
    import json

    import numpy as np

    cache = tmp_path / "cache"
    cache.mkdir()
    model = cache / ("ab" * 32)
    model.write_bytes(models["cnn.onnx"].read_bytes())
    bad_eval = cache / ("cd" * 32)
    np.savez(bad_eval.with_suffix(".npz"), x=np.zeros((4, 3), np.float32))  # no y
    bad_eval.with_suffix(".npz").rename(bad_eval)
    settings = _tiny(eval_path=str(bad_eval))
    result = profile(model, settings, model_name="net.onnx", names={str(bad_eval): "val.npz"})
    text = json.dumps(result)
    assert result["model"]["name"] == "net.onnx" and result["model"]["format"] == "onnx"
    assert "val.npz" in result["error"]["message"], result["error"]
    assert result["settings"]["eval_path"] == result["settings"]["eval"] == "val.npz"
    assert str(cache) not in text and "abab" not in text and "cdcd" not in text

    corrupt = cache / ("ef" * 32)
    corrupt.write_bytes(models["cnn.tflite"].read_bytes()[:300])
    broken = profile(corrupt, TINY, model_name="net.tflite")
    assert "net.tflite" in broken["error"]["message"] and "efef" not in json.dumps(broken)
