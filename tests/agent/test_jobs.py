"""Replay guard and the FIFO runner."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from agent.jobs import JobRecords, JobRunner


def test_finished_job_is_a_replay_even_after_restart(tmp_path: Path) -> None:
    records = JobRecords(tmp_path / "jobs.json")
    expires = time.time() + 60
    records.set("job-1", "running", expires)
    assert records.is_active("job-1") and not records.is_replay("job-1")
    records.set("job-1", "succeeded", expires)
    assert records.is_replay("job-1")
    assert JobRecords(tmp_path / "jobs.json").is_replay("job-1")


def test_unfinished_jobs_are_forgotten_on_restart(tmp_path: Path) -> None:
    records = JobRecords(tmp_path / "jobs.json")
    records.set("done", "failed", time.time() + 60)
    records.set("queued", "queued", time.time() + 60)
    reopened = JobRecords(tmp_path / "jobs.json")
    assert reopened.get("queued") is None  # the host may re-send it and it runs
    assert reopened.is_replay("done")


def test_old_records_are_pruned(tmp_path: Path) -> None:
    records = JobRecords(tmp_path / "jobs.json")
    records.set("old", "succeeded", time.time() - 10 * 3600)
    records.set("new", "succeeded", time.time() + 60)
    records.prune()
    assert records.get("old") is None and records.is_replay("new")
    assert JobRecords(tmp_path / "jobs.json").get("old") is None


def test_runner_runs_one_at_a_time_in_order_and_survives_errors() -> None:
    order: list[int] = []
    running = 0
    overlap = False
    done = threading.Event()
    lock = threading.Lock()

    def execute(n: int) -> None:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap = overlap or running > 1
        try:
            order.append(n)
            if n == 2:
                raise RuntimeError("a broken job")
            if n == 5:
                done.set()
        finally:
            with lock:
                running -= 1

    runner: JobRunner[int] = JobRunner(execute)
    runner.start()
    for n in range(6):
        runner.submit(n)
    assert done.wait(10)
    runner.stop(timeout=10)
    assert order == [0, 1, 2, 3, 4, 5]
    assert not overlap
