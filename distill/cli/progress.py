"""Following a background job in the terminal: a line per event until it ends, Ctrl-C (or
SIGTERM, or SIGHUP when the terminal closes) for a graceful stop, and a stop asked for from
elsewhere (`distill stop`, the web app's Stop) said as such. Shared by `distill train`,
`distill resume` and `distill train-vocoder`."""

from __future__ import annotations

import sys
from typing import Callable

from distill.jobs import (BackgroundJob, Cancelled, EpochFinished, Failed, Finished, PreviewWritten, Started,
                          StopRequested, Warning)
from distill.stopping import StopSignals  # noqa: F401 (its home was here; kept importable)

# A run stopped at someone's request (not by a signal to this process) did not do all it was
# asked to: a script must not take it for a finished one.
EXIT_STOP_REQUESTED = 3


def eta(event: EpochFinished) -> str:
    seconds = (event.total_epochs - event.epoch) * event.seconds
    return f"ETA {int(seconds // 60)}:{int(seconds % 60):02d}"


def follow(job: BackgroundJob, epoch_line: Callable[[EpochFinished], str], resume_command: str,
           finished_note: str = "", what: str = "training") -> int:
    """Print the job's events until it ends; `epoch_line` words an epoch. Ctrl-C, SIGTERM or
    SIGHUP asks for a graceful stop (the job finishes its batch and checkpoints); a second
    one quits at once. Returns the exit code: 0 done, 1 failed, 128 + the signal's number
    when a signal stopped it (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), EXIT_STOP_REQUESTED when
    another process asked it to stop."""
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
        if stopping:
            return stop.exit_code
        return EXIT_STOP_REQUESTED if any(isinstance(e, StopRequested) for e in job.history) else 0
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
    elif isinstance(event, StopRequested):
        print(f"stop requested by {event.by}: stopping after the current batch…", flush=True)
    elif isinstance(event, Finished):
        print(f"finished after epoch {event.epoch}{finished_note}", flush=True)
    elif isinstance(event, Cancelled):
        print(f"stopped at epoch {event.epoch}; checkpoint {event.checkpoint}", flush=True)
