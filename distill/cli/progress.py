"""Following a background job in the terminal: a line per event until it ends, Ctrl-C (or
SIGTERM, or SIGHUP when the terminal closes) for a graceful stop. Shared by `distill train`,
`distill resume` and `distill train-vocoder`."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Callable

from distill.jobs import BackgroundJob, Cancelled, EpochFinished, Failed, Finished, PreviewWritten, Started, Warning


def eta(event: EpochFinished) -> str:
    seconds = (event.total_epochs - event.epoch) * event.seconds
    return f"ETA {int(seconds // 60)}:{int(seconds % 60):02d}"


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


def follow(job: BackgroundJob, epoch_line: Callable[[EpochFinished], str], resume_command: str,
           finished_note: str = "", what: str = "training") -> int:
    """Print the job's events until it ends; `epoch_line` words an epoch. Ctrl-C, SIGTERM or
    SIGHUP asks for a graceful stop (the job finishes its batch and checkpoints); a second
    one quits at once. Returns the exit code: 0 done, 1 failed, 128 + the signal's number
    when a signal stopped it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
    seen, stopping = 0, False
    with StopSignals() as stop:
        while True:
            try:
                for event in job.events(start=seen):
                    seen += 1
                    _print_event(event, epoch_line, finished_note)
                break
            except KeyboardInterrupt:
                if stopping:
                    raise
                stopping = True
                print(f"\n{stop.first().name}: stopping after the current batch (Ctrl-C again to quit at once)…",
                      flush=True)
                job.cancel()
        job.join()  # let the thread finish its clean-up: a live torch thread at exit aborts Python
    outcome = job.outcome
    if isinstance(outcome, Failed):
        print(f"error: {what} failed: {outcome.message}", file=sys.stderr)
        return 1
    if isinstance(outcome, Cancelled):
        print(f"stopped. Resume with: {resume_command}", flush=True)
        return stop.exit_code if stopping else 0
    return 0


def _print_event(event, epoch_line: Callable[[EpochFinished], str], finished_note: str) -> None:
    if isinstance(event, Started):
        start = f" from epoch {event.start_epoch}" if event.start_epoch else ""
        print(f"training on {event.device}{start}: {event.message}", flush=True)
    elif isinstance(event, EpochFinished):
        print(epoch_line(event), flush=True)
    elif isinstance(event, PreviewWritten):
        print(f"      previews for epoch {event.epoch}: {len(event.paths)} files", flush=True)
    elif isinstance(event, Warning):
        print(f"warning: {event.message}", flush=True)
    elif isinstance(event, Finished):
        print(f"finished after epoch {event.epoch}{finished_note}", flush=True)
    elif isinstance(event, Cancelled):
        print(f"stopped at epoch {event.epoch}; checkpoint {event.checkpoint}", flush=True)
