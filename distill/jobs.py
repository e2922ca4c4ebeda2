"""A job on a background thread that publishes typed events.

Any number of consumers follow a job with `job.events()`: each gets every event from the
first one (or from an index), in order, and the iterator ends after the terminal event
(`Finished`, `Cancelled` or `Failed`). The UI's generator, the CLI's progress bar and the
tests all read the same stream. The VAE trainer and the vocoder trainer are both jobs.

A job stops gracefully when `cancel()` is called in its own process, or, when it has a
`stop_file`, when that file appears: that is how another process (`distill stop`, the web
app's Stop on a run the CLI started) asks it to stop. The job polls the file between units
of work: one failed `open` a batch while nobody asks (microseconds).
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from distill import user_message
from distill.atomic import atomic_write_json


@dataclass(frozen=True)
class Event:
    time: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Started(Event):
    experiment_id: str
    start_epoch: int  # epochs already done (0 for a fresh run)
    total_epochs: int
    device: str
    message: str = ""


@dataclass(frozen=True)
class EpochFinished(Event):
    epoch: int
    total_epochs: int
    metrics: dict[str, Any]  # at least train_loss and val_loss
    seconds: float

    @property
    def train_loss(self) -> float:
        return self.metrics["train_loss"]

    @property
    def val_loss(self) -> float | None:
        return self.metrics.get("val_loss")


@dataclass(frozen=True)
class PreviewWritten(Event):
    epoch: int
    paths: tuple[str, ...]


@dataclass(frozen=True)
class CheckpointWritten(Event):
    epoch: int
    path: str
    size_bytes: int


@dataclass(frozen=True)
class Warning(Event):  # noqa: A001 - the event's name is what users read
    message: str


@dataclass(frozen=True)
class StopRequested(Event):
    """Another process asked the job to stop (its `stop_file` appeared); it stops after the
    current unit of work and ends `Cancelled` as after `cancel()`."""

    by: str  # who asked, in words: "distill stop (process 4242)"


@dataclass(frozen=True)
class Finished(Event):
    epoch: int


@dataclass(frozen=True)
class Cancelled(Event):
    epoch: int
    checkpoint: str | None


@dataclass(frozen=True)
class Failed(Event):
    message: str
    epoch: int | None = None


TERMINAL = (Finished, Cancelled, Failed)

# The status a job's record gets when the user stopped it. Older records said "cancelled";
# people read "stopped" everywhere, so old records are read through `status_word`.
STOPPED = "stopped"
_OLD_STATUS_WORDS = {"cancelled": STOPPED}
# A run in one of these states continues from its last checkpoint when resumed.
RESUMABLE = (STOPPED, "failed", "interrupted")


def status_word(status: str) -> str:
    """A stored job status as people read it (an old record's "cancelled" reads "stopped")."""
    return _OLD_STATUS_WORDS.get(status, status)


# -- stop requests between processes -----------------------------------------------------------

STOP_REQUEST_FILE = "stop-request.json"  # in the run's folder, beside its record


def write_stop_request(path: Path, by: str) -> None:
    """Ask the job whose `stop_file` is `path` to stop. Written whole (atomically), so the job
    never reads half a request."""
    atomic_write_json(path, {"by": by, "pid": os.getpid(), "time": time.time()})


def read_stop_request(path: Path) -> dict[str, Any] | None:
    """The request at `path` (who asked, when), or None when there is none."""
    try:
        request = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"by": "another program"}  # unreadable, but there: still a request
    return request if isinstance(request, dict) else {"by": "another program"}


class BackgroundJob:
    """Subclasses implement `run()`, calling `publish()` as they go and checking
    `cancel_requested` between units of work. An exception escaping `run()` becomes a
    `Failed` event after `on_failure()` had its chance to record it."""

    name = "job"
    # Where another process asks this job to stop (see write_stop_request); None: only cancel().
    # A request left over from an earlier run is removed at start(), and the job's own at its end.
    stop_file: Path | None = None

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._changed = threading.Condition()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "BackgroundJob":
        if self._thread is not None:
            raise RuntimeError("a job starts once")
        self._remove_stop_file()
        # A daemon thread: the job outlives any UI handler or browser tab, not the process.
        self._thread = threading.Thread(target=self._run_guarded, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _run_guarded(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - the thread must always end with an event
            # an OS error as the user reads it (the file and the reason), anything else as it is
            message = user_message(exc) if isinstance(exc, OSError) else str(exc) or type(exc).__name__
            try:
                self.on_failure(message, traceback.format_exc())
            finally:
                self.publish(Failed(message=message))
        finally:
            self._remove_stop_file()
            if not self.done:
                self.publish(Failed(message="the job ended without saying how"))

    def run(self) -> None:
        raise NotImplementedError

    def on_failure(self, message: str, details: str) -> None:
        """Record a failure (e.g. in experiment.json). Called on the job's thread."""

    def cancel(self) -> None:
        """Ask the job to stop after the current unit of work; it ends as `Cancelled`."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        """Whether to stop now: cancel() was called, or (checked here, on the job's thread,
        between units of work) a stop request appeared; the latter is published once."""
        if self._cancel.is_set():
            return True
        request = read_stop_request(self.stop_file) if self.stop_file is not None else None
        if request is None:
            return False
        self._cancel.set()
        self.publish(StopRequested(by=str(request.get("by") or "another program")))
        return True

    def _remove_stop_file(self) -> None:
        if self.stop_file is not None:
            try:
                self.stop_file.unlink(missing_ok=True)
            except OSError:  # a read-only folder must not fail the job: the next start retries
                pass

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- events --------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    @property
    def history(self) -> list[Event]:
        with self._changed:
            return list(self._events)

    @property
    def done(self) -> bool:
        with self._changed:
            return bool(self._events) and isinstance(self._events[-1], TERMINAL)

    @property
    def outcome(self) -> Event | None:
        """The terminal event, once there is one."""
        with self._changed:
            return self._events[-1] if self._events and isinstance(self._events[-1], TERMINAL) else None

    def events(self, start: int = 0, timeout: float | None = None) -> Iterator[Event]:
        """Every event from index `start`, blocking for new ones, until the terminal event.
        With `timeout`, stops quietly when nothing new arrives for that many seconds."""
        index = start
        while True:
            with self._changed:
                if index >= len(self._events):
                    if self._events and isinstance(self._events[-1], TERMINAL):
                        return
                    if not self._changed.wait_for(lambda: index < len(self._events), timeout):
                        return
                batch = self._events[index:]
            for event in batch:
                index += 1
                yield event
                if isinstance(event, TERMINAL):
                    return
