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
from distill.stopping import StopRequest, running_experiment, stop_request
from distill.experiments import experiments_table, get_experiment, list_experiments
from distill.train import TrainingJob, current_job
from distill.workspace import Workspace
from ui.common import clock, number

LOSS_COLUMNS = ["epoch", "loss", "curve"]
WEB_APP = "the web app"  # how the page's Stop signs its requests
# The newest epoch's previews, in fixed places: two random samples, then the first
# reconstruction pair, original beside decoded (a decoded clip alone says nothing).
SAMPLE_SLOTS = 2
PREVIEW_SLOTS = SAMPLE_SLOTS + 2
STOPPING = "Stopping after the current batch…"


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
    previews: list[tuple[str, Path] | None] = field(default_factory=lambda: [None] * PREVIEW_SLOTS)  # (label, path)
    preview_note: str = ""
    stop: StopRequest | None = None  # asked to stop (here or elsewhere), not stopped yet
    config: dict = field(default_factory=dict)  # what the experiment was trained with (TrainConfig.to_dict)

    @property
    def stopping(self) -> bool:
        return self.running and self.stop is not None


def live_experiment(ws: Workspace) -> tuple[str | None, TrainingJob | None]:
    """The experiment that trains now, in any process (its id, and its job when this process
    runs it)."""
    experiment_id = running_experiment(ws)
    job = current_job(ws)
    return experiment_id, (job if job is not None and job.experiment_id == experiment_id else None)


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


def newest_previews(folder: Path) -> tuple[int | None, list[tuple[str, Path] | None]]:
    """The newest epoch's previews in PREVIEW_SLOTS fixed places (None: nothing there): its
    first SAMPLE_SLOTS random samples, then its first reconstruction's original and decoded."""
    slots: list[tuple[str, Path] | None] = [None] * PREVIEW_SLOTS
    previews = list_previews(folder)
    if not previews:
        return None, slots
    epoch = previews[-1].epoch
    newest = [p for p in previews if p.epoch == epoch]
    samples = [p for p in newest if p.kind == "sample" and "audio" in p.paths][:SAMPLE_SLOTS]
    for index, p in enumerate(samples):
        slots[index] = (f"Random sample {p.item} · epoch {epoch}", p.paths["audio"])
    pair = next((p for p in newest if p.kind == "reconstruction" and {"original", "decoded"} <= set(p.paths)), None)
    if pair is not None:
        slots[SAMPLE_SLOTS] = (f"Original {pair.item} (a validation clip)", pair.paths["original"])
        slots[SAMPLE_SLOTS + 1] = (f"Decoded {pair.item} · epoch {epoch} (that clip through the model)",
                                   pair.paths["decoded"])
    return epoch, slots


def preview_note(view: "TrainingView") -> str:
    """The line above the preview players: what they are, or why there are none."""
    if view.preview_epoch is not None:
        return (f"**Newest previews**, epoch {view.preview_epoch}: random samples, and a validation clip beside "
                "the model's version of it (all of them, epoch by epoch, are in **Previews**).")
    every = int(view.config.get("preview_every") or 0)
    if not view.experiment_id:
        return ""
    if not every:
        return "No previews: this run was started with previews off (Preview every 0)."
    return "No previews yet: they are written every " + (f"{every} epochs." if every != 1 else "epoch.")


def _status_line(record: dict, rows: list[dict], view: TrainingView) -> str:
    total = (record.get("config") or {}).get("epochs") or 0
    done = view.epochs_done
    name = f"`{record['id']}`"
    best = (record.get("best_metric") or {}).get("val_loss")
    best_text = f"best val loss {number(best)} (epoch {record.get('best_epoch')})" if best is not None else ""
    if view.running:
        recent = [float(r["seconds"]) for r in rows[-5:] if isinstance(r.get("seconds"), (int, float))]
        head = f"**{STOPPING}**" if view.stopping else "**running**"
        per_epoch = sum(recent) / len(recent) if recent else None
        if view.job is not None:
            elapsed = time.time() - view.job.started_at
            device = str(view.job.device)
        else:
            elapsed = sum(float(r.get("seconds") or 0) for r in rows)
            device = str(record.get("device") or (record.get("config") or {}).get("device", "?"))
        parts = [f"{head} · epoch **{done} / {total}**", f"elapsed {clock(elapsed)}"]
        if rows:
            parts.append(f"loss {number(rows[-1].get('train_loss'))} / val {number(rows[-1].get('val_loss'))}")
        if per_epoch is not None:
            parts += [f"{per_epoch:.1f} s / epoch", f"ETA {clock(per_epoch * max(0, total - done))}"]
        elif not view.stopping:
            parts.append("preparing the data and the first epoch…")
        if view.stopping and not view.stop.by.startswith(WEB_APP):  # say who, when it was not this page's kind
            parts.append(f"asked by {view.stop.by}")
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
                        total_epochs=int((record.get("config") or {}).get("epochs") or 0),
                        config=dict(record.get("config") or {}))
    if view.running:
        view.status = "running"
        view.stop = stop_request(ws, wanted)
    view.preview_epoch, view.previews = newest_previews(folder)
    view.preview_note = preview_note(view)
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
