"""The regression gate on this machine: false FAILs of live A/A checks, detection of
a candidate whose true slowdown is measured in the same run, time to a verdict.

A model pair made in code (``modelkit.onnx_build.build_onnx_matmul_chain``: the
latency grows with the layer count), baseline 20 layers, candidate 23 (15 % more
work), width 128, batch 64: every weight is reused 64 times, so the chain is bound
by arithmetic (one inference ~0.2 ms on one thread here) and 15 % more work is
about 15 % more time. (With batch 1 the chain reads every weight once per
inference; at width 512 its 20 MB outgrow the caches, the candidate measures
~1.3x, and every other process's memory traffic moves the runs.)

1. **True slowdown** — a bare ``onnxruntime.InferenceSession`` loop in this process,
   both models loaded once, timed in alternating blocks (ABBA); per round the ratio
   of the two blocks' medians; figure = median over rounds with a distribution-free
   95 % CI (sign test, ``profiler.compare.median_interval``). Half the rounds are
   run before the checks, half after, so a change of load during the run shows.
2. **Checks** — a private Mosquitto, one real ``python -m agent`` process and, per
   check, ``hostctl check --baseline A --candidate B --device D --json`` as a
   subprocess (ABBA interleaved rounds on the agent, doubling while INCONCLUSIVE
   within ``--budget``). A/A checks (the baseline file on both sides) and A/B checks
   (the slower candidate) alternate. Counted per check: the verdict (FAIL, PASS,
   INCONCLUSIVE), the wall time from start to exit, rounds and pairs, runs excluded
   and the methods of the comparisons.

Goals (issue 8): ≤ 1 of 20 A/A checks FAIL; ≥ 19 of 20 A/B checks FAIL.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    add_common_args,
    command_line,
    machine_info,
    machine_line,
    median,
    progress,
    threads_arg,
    usage_line,
    verdict,
)
from bench.fleet_common import (
    agent_process,
    child_env,
    host_keys,
    mosquitto,
    wait_online,
    workspace,
)

DEVICE = "bench-gate"
AA_FAIL_GOAL = 1 / 20
AB_FAIL_GOAL = 19 / 20


# --------------------------------------------------------------------------- true slowdown


def true_slowdown(
    models: Mapping[str, Path], rounds: int, block: int, threads: int | None
) -> list[float]:
    """Per-round ratios candidate / baseline of block medians, bare ORT loop, ABBA."""
    import numpy as np
    import onnxruntime as ort

    sessions: dict[str, Any] = {}
    feeds: dict[str, dict[str, Any]] = {}
    for side, path in models.items():
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        rng = np.random.default_rng(0)
        feeds[side] = {
            i.name: rng.standard_normal(size=tuple(i.shape), dtype=np.float32)
            for i in session.get_inputs()
        }
        sessions[side] = session
        for _ in range(max(20, block // 5)):  # warm-up
            session.run(None, feeds[side])

    def block_median(side: str) -> float:
        run, feed = sessions[side].run, feeds[side]
        clock = time.perf_counter_ns
        samples = []
        for _ in range(block):
            t0 = clock()
            run(None, feed)
            samples.append(clock() - t0)
        return median(samples)

    ratios = []
    for r in range(rounds):
        order = ("baseline", "candidate") if r % 2 == 0 else ("candidate", "baseline")
        got = {side: block_median(side) for side in order}
        ratios.append(got["candidate"] / got["baseline"])
    return ratios


def ratio_summary(ratios: Sequence[float]) -> dict[str, Any]:
    from profiler.compare import median_interval

    ci = median_interval(ratios)
    return {
        "rounds": len(ratios),
        "median": median(ratios),
        "ci95": [ci.low, ci.high] if ci else None,
        "min": min(ratios),
        "max": max(ratios),
    }


# --------------------------------------------------------------------------- checks


def one_check(
    base: list[str], baseline: Path, candidate: Path, flags: Sequence[str], timeout: float
) -> dict[str, Any]:
    argv = [*base, "check", "--baseline", str(baseline), "--candidate", str(candidate),
            "--device", DEVICE, "--json", *flags]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(
        argv, capture_output=True, text=True, env=child_env(), timeout=timeout, check=False
    )
    seconds = time.monotonic() - start
    try:
        data = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        data = {}
    comps = data.get("comparisons") or []
    live = data.get("live") or {}
    runs = data.get("runs") or {}
    return {
        "exit": done.returncode,
        "verdict": data.get("verdict") or f"ERROR (exit {done.returncode})",
        "seconds": round(seconds, 1),
        "comparisons": [
            {
                "metric": c.get("metric"),
                "estimate": c.get("estimate"),
                "ci95": c.get("ci95"),
                "verdict": c.get("verdict"),
                "method": c.get("method"),
                "n": [c.get("n_baseline"), c.get("n_candidate")],
                "excluded": c.get("excluded"),
            }
            for c in comps
        ],
        "live": {k: v for k, v in live.items() if k not in ("jobs",)},
        "runs": {side: len(v) for side, v in runs.items() if isinstance(v, list)},
        "excluded": data.get("excluded"),
        "stderr_tail": done.stderr.strip().splitlines()[-3:] if not data else [],
    }


def tally(checks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts = Counter(c["verdict"] for c in checks)
    n = len(checks)
    seconds = [c["seconds"] for c in checks]
    return {
        "checks": n,
        "FAIL": counts.get("FAIL", 0),
        "PASS": counts.get("PASS", 0),
        "INCONCLUSIVE": counts.get("INCONCLUSIVE", 0),
        "other": n - sum(counts.get(v, 0) for v in ("FAIL", "PASS", "INCONCLUSIVE")),
        "inconclusive_rate": counts.get("INCONCLUSIVE", 0) / n if n else None,
        "median_seconds": median(seconds) if seconds else None,
        "max_seconds": max(seconds) if seconds else None,
        "methods": dict(Counter(c2["method"] for c in checks for c2 in c["comparisons"])),
        "p50_estimates": [
            next((x["estimate"] for x in c["comparisons"] if x["metric"] == "latency_p50"), None)
            for c in checks
        ],
    }


# --------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> dict[str, Any]:
    from modelkit.onnx_build import build_onnx_matmul_chain

    threads = threads_arg(args.threads)
    before = machine_info()
    report: dict[str, Any] = {
        "benchmark": "gate",
        "models": {
            "baseline_layers": args.layers[0],
            "candidate_layers": args.layers[1],
            "width": args.width,
            "batch": args.batch,
        },
        "max_regression": args.max_regression,
    }
    with workspace("edgeprof-bench-gate-") as work:
        models = {}
        for side, layers in zip(("baseline", "candidate"), args.layers, strict=True):
            path = work / f"chain{layers}x{args.width}.onnx"
            path.write_bytes(build_onnx_matmul_chain(layers, args.width, batch=args.batch))
            models[side] = path
        half = max(3, args.true_rounds // 2)
        progress(f"true slowdown: {half} ABBA rounds of {args.block} inferences (before)")
        ratios_before = true_slowdown(models, half, args.block, threads)
        early = ratio_summary(ratios_before)
        progress(f"true slowdown (before): {early['median']:.3f}x {_ci(early)}")
        key, pub = host_keys(work)
        db = work / "results.sqlite"
        flags = ["--max-regression", args.max_regression, "--budget", args.budget,
                 *args.profile.split()]  # fmt: skip
        if threads is not None:
            flags += ["--threads", str(threads)]
        report["check_flags"] = flags
        aa: list[dict[str, Any]] = []
        ab: list[dict[str, Any]] = []
        with mosquitto(work) as port:
            url = f"mqtt://127.0.0.1:{port}"
            with agent_process(url, DEVICE, work, pub):
                wait_online(port, [DEVICE])
                base = [sys.executable, "-m", "hostctl", "--broker", url, "--key", str(key),
                        "--db", str(db)]  # fmt: skip
                for i in range(args.checks):
                    pairs = [("A/A", models["baseline"], aa), ("A/B", models["candidate"], ab)]
                    if i % 2:
                        pairs.reverse()
                    for name, candidate, into in pairs:
                        got = one_check(base, models["baseline"], candidate, flags, args.timeout)
                        into.append(got)
                        p50 = next((c for c in got["comparisons"]
                                    if c["metric"] == "latency_p50"), {})  # fmt: skip
                        progress(
                            f"{name} check {i + 1}/{args.checks}: {got['verdict']} in "
                            f"{got['seconds']:.0f} s (p50 {p50.get('estimate')} "
                            f"{p50.get('ci95')}, pairs {got['live'].get('pairs_per_device')})"
                        )
        progress(f"true slowdown: {half} ABBA rounds of {args.block} inferences (after)")
        ratios_after = true_slowdown(models, half, args.block, threads)
    report["true_slowdown"] = {
        **ratio_summary(ratios_before + ratios_after),
        "before": ratio_summary(ratios_before),
        "after": ratio_summary(ratios_after),
    }
    report["aa"] = tally(aa)
    report["ab"] = tally(ab)
    report["aa_checks"] = aa
    report["ab_checks"] = ab
    n = args.checks
    report["verdicts"] = {
        "aa_false_fail": verdict(report["aa"]["FAIL"] / n, AA_FAIL_GOAL),
        "ab_detection": verdict(report["ab"]["FAIL"] / n, AB_FAIL_GOAL, at_most=False),
    }
    report["machine_before"] = before
    report["machine_after"] = machine_info()
    return report


def _ci(s: Mapping[str, Any]) -> str:
    ci = s.get("ci95")
    return f"[{ci[0]:.3f}–{ci[1]:.3f}]" if ci else "[n/a]"


def render(report: Mapping[str, Any]) -> str:
    m, t = report["models"], report["true_slowdown"]
    lines = [
        f"gate: MatMul chains {m['baseline_layers']} vs {m['candidate_layers']} layers, width "
        f"{m['width']}, batch {m.get('batch', 1)}; max regression {report['max_regression']}",
        f"machine: {machine_line(report['machine_before'])}",
        f"check flags: {' '.join(report['check_flags'])}",
        "",
        f"true slowdown (bare ORT loop, ABBA, {t['rounds']} rounds): {t['median']:.3f}× "
        f"{_ci(t)}; before the checks {t['before']['median']:.3f}× {_ci(t['before'])}, after "
        f"{t['after']['median']:.3f}× {_ci(t['after'])}",
        "",
        f"{'checks':<24} {'n':>3} {'FAIL':>5} {'PASS':>5} {'INCONCL':>8} {'other':>6} "
        f"{'median s':>9} {'max s':>7}",
    ]
    for key, name in (("aa", "A/A (same file)"), ("ab", "A/B (slower candidate)")):
        s = report[key]
        lines.append(
            f"{name:<24} {s['checks']:>3} {s['FAIL']:>5} {s['PASS']:>5} {s['INCONCLUSIVE']:>8} "
            f"{s['other']:>6} {s['median_seconds'] or 0:>9.1f} {s['max_seconds'] or 0:>7.1f}"
        )
    for key, name in (("aa", "A/A"), ("ab", "A/B")):
        s = report[key]
        est = ", ".join(f"{e:.3f}" if isinstance(e, float) else "-" for e in s["p50_estimates"])
        lines.append(f"{name} p50 estimates: {est}")
        lines.append(f"{name} methods: {s['methods']}")
    lines += [
        "",
        "verdicts: " + ", ".join(f"{k} {v}" for k, v in report["verdicts"].items()),
        f"after: {machine_line(report['machine_after'])}",
        usage_line(report["machine_before"], report["machine_after"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_args(parser)
    parser.add_argument("--checks", type=int, default=20,
                        help="live checks of each kind, A/A and A/B (default 20)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="3 checks of each kind (smoke run)")
    parser.add_argument("--budget", default="90s", help="hostctl check --budget (default 90s)")
    parser.add_argument("--max-regression", default="5%", help="δ (default 5%%)")
    parser.add_argument(
        "--profile",
        default="--runs 30 --warmup 3 --warmup-seconds 0 --min-seconds 0.3",
        help="profile options of each check (default: %(default)s)",
    )
    parser.add_argument("--layers", default="20,23", help="baseline,candidate layers (20,23)")
    parser.add_argument("--width", type=int, default=128, help="chain width (default 128)")
    parser.add_argument("--batch", type=int, default=64, help="chain batch (default 64)")
    parser.add_argument("--true-rounds", type=int, default=40,
                        help="ABBA rounds of the bare loop, half before, half after (40)")  # fmt: skip
    parser.add_argument("--block", type=int, default=300,
                        help="inferences per block of the bare loop (300)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one hostctl check may take (600)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.checks = 3
        args.true_rounds = min(args.true_rounds, 12)
    try:
        args.layers = [int(x) for x in args.layers.split(",")]
        if len(args.layers) != 2 or min(args.layers) < 1:
            raise ValueError
    except ValueError:
        parser.error(f"--layers {args.layers!r}: give two positive integers, e.g. 20,23")
    if args.checks < 1:
        parser.error(f"--checks {args.checks}: give at least 1")
    try:
        report = run(args)
    except BenchError as exc:
        progress(f"error: {exc}")
        return 1
    report["command"] = command_line("bench.gate", argv)
    line = json.dumps(report)  # one line, the checks' details included
    sys.stdout.write((line if args.json else render(report) + "\n" + line) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
