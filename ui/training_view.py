"""What the Training tab shows about one experiment, rebuilt from disk every time.

Everything here reads files (experiment.json, metrics.jsonl, the previews folder) plus the
in-process job when there is one, so a reloaded page, a second tab and a job started by the
CLI in another process all look the same. Nothing here holds state between calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from distill import DistillError
from distill.checkpoints import list_checkpoints, read_metrics
from distill.jobs import RESUMABLE
from distill.previews import list_previews
from distill.train import (TrainingJob, WorkspaceLock, current_job, experiments_table, get_experiment,
                           list_experiments)
from distill.workspace import Workspace
from ui.common import clock, number

LOSS_COLUMNS = ["epoch", "loss", "curve"]
PREVIEW_SLOTS = 3  # the newest epoch's first two samples and first decoded reconstruction


@dataclass
class TrainingView:
    experiment_id: str | None = None
    status: str = "none"
    running: bool = False  # trains now, in this process or another
    job: TrainingJob | None = None  # the job, when it runs in this process
    status_line: str = "No training yet: pick a dataset and press **Train**."
    losses: pd.DataFrame = field(default_factory=lambda: loss_frame([]))
    epochs_done: int = 0
    total_epochs: int = 0
    preview_epoch: int | None = None
    previews: list[tuple[str, Path]] = field(default_factory=list)  # (label, path)


def live_experiment(ws: Workspace) -> tuple[str | None, TrainingJob | None]:
    """The experiment that trains now (its id, and its job when this process runs it)."""
    job = current_job(ws)
    if job is not None and not job.done:
        return job.experiment_id, job
    holder = WorkspaceLock.holder(ws.lock_path)
    # The lock may be held by another kind of job (a vocoder run): only an experiment counts here.
    if holder and holder.get("experiment_id") and (ws.experiment_dir(str(holder["experiment_id"])) / "experiment.json").exists():
        # Our own job has published its end but not yet let go of the lock: it is over.
        if job is not None and job.experiment_id == holder["experiment_id"]:
            return None, None
        return str(holder["experiment_id"]), None
    return None, None


def loss_frame(rows: list[dict]) -> pd.DataFrame:
    """metrics.jsonl rows → a long table (epoch, loss, curve) for one line per curve."""
    points = []
    for row in rows:
        for key, curve in (("train_loss", "train"), ("val_loss", "validation")):
            value = row.get(key)
            if isinstance(value, (int, float)) and value == value:
                points.append((int(row["epoch"]), float(value), curve))
    # Typed columns even when empty: the chart takes its axis types (numbers) from the first frame.
    frame = pd.DataFrame(points, columns=LOSS_COLUMNS)
    return frame.astype({"epoch": "int64", "loss": "float64", "curve": "str"})


def loss_caption(view: "TrainingView") -> str:
    """`epoch 3: train 1.532 · validation 1.701`, or a note that no epoch has ended yet."""
    frame = view.losses
    if frame.empty:
        return "no epoch has finished yet" if view.experiment_id else "no training yet"
    last = int(frame["epoch"].max())
    values = dict(zip(frame[frame["epoch"] == last]["curve"], frame[frame["epoch"] == last]["loss"]))
    parts = [f"{curve} {number(values[curve])}" for curve in ("train", "validation") if curve in values]
    return f"epoch {last}: " + " · ".join(parts)


def newest_previews(folder: Path) -> tuple[int | None, list[tuple[str, Path]]]:
    previews = list_previews(folder)
    if not previews:
        return None, []
    epoch = previews[-1].epoch
    slots: list[tuple[str, Path]] = []
    for p in previews:
        if p.epoch == epoch and p.kind == "sample" and "audio" in p.paths:
            slots.append((f"Sample {p.item} · epoch {epoch}", p.paths["audio"]))
    slots = slots[:PREVIEW_SLOTS - 1]
    for p in previews:
        if p.epoch == epoch and p.kind == "reconstruction" and "decoded" in p.paths:
            slots.append((f"Decoded {p.item} · epoch {epoch}", p.paths["decoded"]))
            break
    return epoch, slots[:PREVIEW_SLOTS]


def _status_line(record: dict, rows: list[dict], view: TrainingView) -> str:
    total = (record.get("config") or {}).get("epochs") or 0
    done = view.epochs_done
    name = f"`{record['id']}`"
    best = (record.get("best_metric") or {}).get("val_loss")
    best_text = f"best val loss {number(best)} (epoch {record.get('best_epoch')})" if best is not None else ""
    if view.running:
        recent = [float(r["seconds"]) for r in rows[-5:] if isinstance(r.get("seconds"), (int, float))]
        per_epoch = sum(recent) / len(recent) if recent else None
        if view.job is not None:
            elapsed = time.time() - view.job.started_at
            device = str(view.job.device)
        else:
            elapsed = sum(float(r.get("seconds") or 0) for r in rows)
            device = str(record.get("device") or (record.get("config") or {}).get("device", "?"))
        parts = [f"**running** · epoch **{done} / {total}**", f"elapsed {clock(elapsed)}"]
        if rows:
            parts.append(f"loss {number(rows[-1].get('train_loss'))} / val {number(rows[-1].get('val_loss'))}")
        if per_epoch is not None:
            parts += [f"{per_epoch:.1f} s / epoch", f"ETA {clock(per_epoch * max(0, total - done))}"]
        else:
            parts.append("preparing the data and the first epoch…")
        parts += [f"device {device}", name]
        return " · ".join(parts)
    status = view.status
    parts = [f"**{status}** · {done} / {total} epochs"]
    if best_text:
        parts.append(best_text)
    if status == "failed" and record.get("error"):
        parts.append(f"error: {record['error']}")
    if status in RESUMABLE:
        parts.append("**Resume** continues it")
    parts.append(name)
    return " · ".join(parts)


def training_view(ws: Workspace, experiment_id: str | None) -> TrainingView:
    """The view of `experiment_id`, or of the live experiment, or of the newest one."""
    live_id, live_job = live_experiment(ws)
    wanted = experiment_id or live_id
    if not wanted:
        experiments = list_experiments(ws)
        if not experiments:
            return TrainingView()
        wanted = experiments[0]["id"]
    try:
        record = get_experiment(ws, wanted)
    except DistillError:
        return TrainingView(status_line=f"Experiment `{wanted}` is gone.")
    wanted = record["id"]  # a name or id prefix (from the API) resolved to the folder's id
    folder = ws.experiment_dir(wanted)
    rows = read_metrics(folder)
    view = TrainingView(experiment_id=wanted, status=record["status"], running=wanted == live_id,
                        job=live_job if wanted == live_id else None, losses=loss_frame(rows),
                        epochs_done=int(rows[-1]["epoch"]) if rows else int(record.get("epoch") or 0),
                        total_epochs=int((record.get("config") or {}).get("epochs") or 0))
    if view.running:
        view.status = "running"
    view.preview_epoch, view.previews = newest_previews(folder)
    view.status_line = _status_line(record, rows, view)
    return view


def checkpoint_choices(ws: Workspace, experiment_id: str | None) -> list[str]:
    """`best`, `last`, then `epoch:N` for every whole-epoch checkpoint kept, newest first."""
    if not experiment_id:
        return ["best", "last"]
    infos = list_checkpoints(ws.experiment_dir(experiment_id) / "checkpoints")
    epochs = sorted({i.epoch for i in infos if i.batch_in_epoch == 0}, reverse=True)
    return ["best", "last"] + [f"epoch:{e}" for e in epochs]


def experiments_frame(ws: Workspace) -> "pd.DataFrame":
    """The engine's experiments table, made readable: short losses and times."""
    table = experiments_table(ws)
    table["best val loss"] = table["best val loss"].map(lambda v: number(v))
    table["updated"] = table["updated"].map(lambda v: str(v or "")[:16].replace("T", " "))
    return table
