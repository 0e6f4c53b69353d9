"""Progress of jobs on the fleet, for people: one line per job on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hostctl.fleet import Job

_STATE_TEXT = {
    "sent": "sent",
    "queued": "queued",
    "accepted": "accepted",
    "downloading": "downloading",
    "verifying": "verifying",
    "running": "running",
    "succeeded": "[green]done[/green]",
    "failed": "[red]failed[/red]",
    "rejected": "[red]rejected[/red]",
    "timed_out": "[red]timed out[/red]",
    "canceled": "[yellow]canceled[/yellow]",
}


class PushProgress:
    """Per-job progress lines on stderr: state, transfer %, run phase."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.fields[job]}", markup=False),
            BarColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            disable=not enabled,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def add(self, jobs: list[Job]) -> None:
        for job in jobs:
            name = f"{job.device_id} · {job.model_name}"
            point = _setting(job.manifest.settings)
            if point:
                name += f" · {point}"
            self.tasks[job.job_id] = self.progress.add_task("sent", total=100, job=name)

    def update(self, job: Job) -> None:
        task = self.tasks.get(job.job_id)
        if task is None:
            return
        from rich.markup import escape

        text = _STATE_TEXT.get(job.state, escape(job.state))
        completed: float | None = None
        if job.state == "downloading":
            received, total = job.progress.get("received"), job.progress.get("total")
            if isinstance(received, int) and isinstance(total, int) and total > 0:
                completed = 50.0 * received / total
                text = f"downloading {100 * received // total}%"
        elif job.state in ("verifying", "running"):
            completed = 50.0 if job.state == "verifying" else 60.0
            phase = job.progress.get("phase")
            if phase:
                text = f"running: {escape(str(phase))}"
        elif job.done:
            completed = 100.0
            if not job.ok and job.reason:
                text = f"{text}: {escape(job.reason)}"
        if job.progress.get("device") == "offline" and not job.done:
            text += " (device offline)"
        self.progress.update(task, description=text, completed=completed)

    def __enter__(self) -> PushProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _setting(settings: dict[str, Any]) -> str:
    """Threads and input shapes of a job, to tell a sweep's jobs apart."""
    parts = []
    if isinstance(settings.get("threads"), int):
        parts.append(f"{settings['threads']} thr")
    shapes = settings.get("shapes")
    if isinstance(shapes, dict):
        for name, dims in shapes.items():
            if isinstance(dims, list):
                parts.append(f"{name}={'x'.join(str(d) for d in dims)}")
    return ", ".join(parts)


class RoundProgress:
    """A live check's progress: one line per device, runs done of the round's runs."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.fields[device]}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}", markup=False),
            console=Console(stderr=True),
            disable=not enabled,
            transient=True,
        )
        self.round = 0
        self.pairs = 0
        self.tasks: dict[str, Any] = {}
        self.jobs: dict[str, str] = {}
        self.done: set[str] = set()

    def start_round(self, number: int, pairs: int) -> None:
        for task in self.tasks.values():
            self.progress.remove_task(task)
        self.tasks.clear()
        self.jobs.clear()
        self.done.clear()
        self.round = number
        self.pairs = pairs

    def add(self, jobs: list[Job]) -> None:
        counts: dict[str, int] = {}
        for job in jobs:
            self.jobs[job.job_id] = job.device_id
            counts[job.device_id] = counts.get(job.device_id, 0) + 1
        what = (
            "warm-up: the models' transfer and one run of each"
            if self.round == 0
            else f"runs, round {self.round} ({self.pairs} ABBA pairs)"
        )
        for device_id, n in counts.items():
            self.tasks[device_id] = self.progress.add_task(what, total=n, device=device_id)

    def update(self, job: Job) -> None:
        if job.done and job.job_id not in self.done and job.job_id in self.jobs:
            self.done.add(job.job_id)
            self.progress.update(self.tasks[self.jobs[job.job_id]], advance=1)

    def __enter__(self) -> RoundProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
