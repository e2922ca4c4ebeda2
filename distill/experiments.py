"""Experiments in a workspace: the one-trainer lock, their records with live status, and which
experiment a name, id or prefix means."""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from distill import DistillError
from distill.checkpoints import now_iso, read_experiment
from distill.jobs import RESUMABLE, status_word
from distill.workspace import Workspace, sanitize_filename

# -- one trainer per workspace -------------------------------------------------------------

class WorkspaceLock:
    """An exclusive `flock` on `<workspace>/training.lock`, held while a job trains. The
    kernel drops it when the process dies (even by kill -9), which is how a `running`
    experiment with no live trainer is recognised as interrupted."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, experiment_id: str) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.holder(self.path) or {}
            raise DistillError(f"a training is already running in this workspace (experiment "
                               f"{holder.get('experiment_id', '?')}, process {holder.get('pid', '?')}); "
                               "stop it or wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"experiment_id": experiment_id, "pid": os.getpid(), "since": now_iso()}).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def holder(path: Path) -> dict[str, Any] | None:
        """Who trains now, or None when nobody does."""
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    return json.loads(os.pread(fd, 4096, 0) or b"{}")
                except ValueError:
                    return {}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


# -- experiments ---------------------------------------------------------------------------

def new_experiment_id(ws: Workspace, name: str) -> str:
    stem = re.sub(r"[^\w.-]+", "-", sanitize_filename(name, "experiment")).strip("-") or "experiment"
    base = f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"
    candidate, counter = base, 2
    while ws.experiment_dir(candidate).exists():
        candidate, counter = f"{base}-{counter}", counter + 1
    return candidate


def experiment_status(ws: Workspace, record: dict[str, Any]) -> str:
    """The stored status in today's words, except that `running` with no live trainer reads
    `interrupted`."""
    status = status_word(record.get("status", "unknown"))
    if status == "running":
        holder = WorkspaceLock.holder(ws.lock_path)
        if not holder or holder.get("experiment_id") != record.get("id"):
            return "interrupted"
    return status


def list_experiments(ws: Workspace) -> list[dict[str, Any]]:
    """Every experiment record, newest first, with its live status."""
    records = []
    for folder in ws.experiments_dir.iterdir():
        if (folder / "experiment.json").exists():
            try:
                record = read_experiment(folder)
            except DistillError:
                continue
            records.append({**record, "status": experiment_status(ws, record)})
    return sorted(records, key=lambda r: r.get("created", ""), reverse=True)


@dataclass(frozen=True)
class ExperimentMatch:
    """What `resolve_experiment` found: the record, and (when a name was taken by several
    experiments) a sentence saying which one was picked and why."""

    record: dict[str, Any]
    note: str | None = None

    @property
    def id(self) -> str:
        return self.record["id"]


def resolve_experiment(ws: Workspace, reference: str) -> ExperimentMatch:
    """The experiment `reference` means, tried in this order: its id; its name, when exactly
    one experiment has it; a name taken several times: the newest one still running or
    resumable (said in `note`); a prefix of exactly one id. Anything else (no match, or
    several with no way to choose) is a DistillError naming the candidates."""
    folder = ws.experiment_dir(reference)
    if (folder / "experiment.json").exists():
        record = read_experiment(folder)
        return ExperimentMatch({**record, "status": experiment_status(ws, record)})
    experiments = list_experiments(ws)  # newest first
    named = [r for r in experiments if r.get("name") == reference]
    if len(named) == 1:
        return ExperimentMatch(named[0])
    if named:
        return _newest_open(reference, named)
    prefixed = [r for r in experiments if r["id"].startswith(reference)]
    if len(prefixed) == 1:
        return ExperimentMatch(prefixed[0])
    if prefixed:
        raise DistillError(f"{reference!r} starts {len(prefixed)} experiment ids; use one of: "
                           + _candidates(prefixed))
    known = ", ".join(r["id"] for r in experiments[:10]) or "none yet"
    raise DistillError(f"no experiment {reference!r} (have: {known})")


def _newest_open(name: str, named: list[dict[str, Any]]) -> ExperimentMatch:
    """Of several experiments called `name` (newest first), the newest one a person would
    mean to continue: running, or stopped, failed or interrupted."""
    open_ones = [r for r in named if r["status"] in ("running", *RESUMABLE)]
    if not open_ones:
        raise DistillError(f"{len(named)} experiments are named {name!r} and none is running or resumable; "
                           "use an id: " + _candidates(named))
    chosen = open_ones[0]
    return ExperimentMatch(chosen, note=f"{len(named)} experiments are named {name!r}: using {chosen['id']}, "
                                        f"the newest {chosen['status']} one")


def _candidates(records: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['id']} ({r['status']})" for r in records)


def get_experiment(ws: Workspace, experiment: str) -> dict[str, Any]:
    """The record (with its live status) of the experiment `experiment` means: an id, a name
    or an id prefix (see `resolve_experiment`)."""
    return resolve_experiment(ws, experiment).record


def experiments_table(ws: Workspace) -> pd.DataFrame:
    rows = [{
        "id": r["id"], "name": r.get("name"), "dataset": r.get("dataset"), "status": r["status"],
        "epoch": r.get("epoch", 0), "epochs": r.get("config", {}).get("epochs"),
        "best val loss": (r.get("best_metric") or {}).get("val_loss"),
        "best": ((r.get("checkpoints") or {}).get("best") or {}).get("epoch"),
        "checkpoints (MB)": r.get("checkpoint_total_mb", 0.0), "updated": r.get("updated", ""),
    } for r in list_experiments(ws)]
    columns = ["id", "name", "dataset", "status", "epoch", "epochs", "best val loss", "best", "checkpoints (MB)",
               "updated"]
    return pd.DataFrame(rows, columns=columns)
