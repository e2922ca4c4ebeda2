"""Stopping a training from anywhere: `request_stop` asks the run that trains in a workspace to
stop after its current batch, whichever process runs it (this one, a `distill train` in a
terminal, another web app); `StopSignals` turns SIGTERM and SIGHUP into the same graceful stop
as Ctrl-C; `stop_jobs_here` stops this process's own jobs before it exits.

A request is a file in the experiment's folder (`distill.jobs.STOP_REQUEST_FILE`) that the job
polls between batches; the job ends as `stopped`, with a checkpoint, and removes the file. The
web app's Stop button and `distill stop` both call `request_stop`.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from distill import DistillError
from distill.jobs import (STOP_REQUEST_FILE, BackgroundJob, Cancelled, Failed, Finished, read_stop_request,
                          write_stop_request)
from distill.experiments import WorkspaceLock, get_experiment, resolve_experiment
from distill.train import current_job
from distill.workspace import Workspace


def running_experiment(ws: Workspace) -> str | None:
    """The id of the experiment that trains in `ws` now, in any process; None when none does
    (a vocoder run holds the same lock, but is no experiment)."""
    job = current_job(ws)
    holder = WorkspaceLock.holder(ws.lock_path) or {}
    experiment_id = str(holder.get("experiment_id") or "")
    if not experiment_id or not (ws.experiment_dir(experiment_id) / "experiment.json").exists():
        return None
    if job is not None and job.experiment_id == experiment_id and job.done:
        return None  # our own job has ended and is letting go of the lock
    return experiment_id


@dataclass(frozen=True)
class StopRequest:
    experiment_id: str
    by: str  # who asked, in words
    time: float  # when (seconds since the epoch)


def stop_request(ws: Workspace, experiment_id: str) -> StopRequest | None:
    """The stop request the experiment has not acted on yet, if any."""
    request = read_stop_request(ws.experiment_dir(experiment_id) / STOP_REQUEST_FILE)
    if request is None:
        return None
    return StopRequest(experiment_id, str(request.get("by") or "another program"),
                       float(request.get("time") or 0.0))


def request_stop(ws: Workspace, experiment: str | None = None, by: str = "") -> StopRequest:
    """Ask the running training `experiment` (an id, a name or an id prefix; None: whichever
    trains now) to stop after its current batch, in whatever process it runs. Returns at once;
    the run then checkpoints and ends as `stopped` (see `wait_until_stopped`). A DistillError
    when nothing, or another experiment, is training."""
    live = running_experiment(ws)
    if experiment is None:
        if live is None:
            raise DistillError("nothing is training")
        experiment_id = live
    else:
        match = resolve_experiment(ws, experiment)
        experiment_id = match.id
        if experiment_id != live:
            raise DistillError(f"experiment {experiment_id} is not training (it is {match.record['status']})")
    by = by or f"process {os.getpid()}"
    write_stop_request(ws.experiment_dir(experiment_id) / STOP_REQUEST_FILE, by)
    job = current_job(ws)
    if job is not None and job.experiment_id == experiment_id:
        job.cancel()  # ours: no need to wait for it to poll the file
    return StopRequest(experiment_id, by, time.time())


def wait_until_stopped(ws: Workspace, experiment_id: str, timeout: float = 600.0,
                       every: float = 0.2) -> dict[str, Any]:
    """Wait until the experiment no longer trains; returns its record (status `stopped`, or
    whatever it ended as). A DistillError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while running_experiment(ws) == experiment_id:
        if time.monotonic() > deadline:
            raise DistillError(f"experiment {experiment_id} is still training after {timeout:.0f} s; it was asked "
                               "to stop and will once its current batch is done")
        time.sleep(every)
    return get_experiment(ws, experiment_id)


def stop_jobs_here(ws: Workspace, timeout: float = 300.0) -> list[str]:
    """Stop this process's own running jobs in `ws` (a training, a vocoder training) and wait
    for each to checkpoint and end: what a process does before it exits. Returns a line per
    job stopped."""
    from distill.vocoder import current_vocoder_job  # the vocoder's package is only needed here

    lines = []
    for job in (current_job(ws), current_vocoder_job(ws)):
        if job is not None and not job.done:
            job.cancel()
            job.join(timeout)
            lines.append(_ended(job))
    return lines


def _ended(job: BackgroundJob) -> str:
    """`cut-20261203-101500: stopped at epoch 3, checkpoint …/epoch-0003.pt`, or how else it ended."""
    what = getattr(job, "experiment_id", None) or f"the vocoder of {getattr(job, 'model_name', '?')}"
    outcome = job.outcome
    if isinstance(outcome, Cancelled):
        return f"{what}: stopped at epoch {outcome.epoch}, checkpoint {outcome.checkpoint}"
    if isinstance(outcome, Finished):
        return f"{what}: finished at epoch {outcome.epoch}"
    if isinstance(outcome, Failed):
        return f"{what}: failed: {outcome.message}"
    return f"{what}: still stopping, no checkpoint written in time"


class StopSignals:
    """While active, SIGTERM and SIGHUP raise KeyboardInterrupt like Ctrl-C does, so a
    `kill`, a service manager or a closed terminal stops a training as gracefully as Ctrl-C.
    `signum` is the signal that asked first (SIGINT when it was Ctrl-C)."""

    # SIGHUP does not exist on Windows.
    NAMES = ("SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
            for name in self.NAMES:
                if hasattr(signal, name):
                    number = getattr(signal, name)
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        raise KeyboardInterrupt

    def first(self) -> signal.Signals:
        """The signal that asked to stop first; a KeyboardInterrupt our handler did not raise
        was Ctrl-C."""
        if self.signum is None:
            self.signum = signal.SIGINT
        return signal.Signals(self.signum)

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal's number (130 for Ctrl-C)."""
        return 128 + int(self.first())
