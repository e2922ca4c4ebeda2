"""The Training tab: settings, Train / Stop / Resume, the live loss chart, status line and
newest previews, the experiments and Save model.

The job never lives in a handler: `start_training` puts it on its own thread. The Train and
Resume handlers are generators that follow the job's events (and end quietly when their tab
closes); a `gr.Timer` in every open page rebuilds the same view from disk (`training_view`),
which is what makes a reloaded page, a second tab or a job started by the CLI show up.
Updates that would not change anything are skipped, so players keep playing.

Stop asks whichever run trains in the workspace to stop (`distill.stopping.request_stop`),
also one the CLI started; "Stopping after the current batch…" is part of the status line,
so it goes when the run ends. The settings form shows what the experiment on view was
trained with, and changes only when another experiment comes on view. Gradio's own
"processing" timer is hidden wherever the status line says what is going on.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import gradio as gr

from distill import DistillError
from distill.export import export_model
from distill.model import PRESETS
from distill.modelfile import ModelExistsError
from distill.stopping import request_stop
from distill.experiments import experiments_table, list_experiments
from distill.train import TrainingJob, resume_training, start_training
from distill.train_config import TrainConfig
from distill.workspace import Workspace
from ui.common import follow_job, handle_errors, job_toast
from ui.dataset_tab import dataset_names
from ui.loss_chart import loss_chart_svg
from ui.training_view import (SAMPLE_SLOTS, WEB_APP, TrainingView, checkpoint_choices, experiments_frame,
                              live_experiment, loss_frame, training_view)

DEVICES = ["auto", "cpu", "cuda"]  # what TrainConfig accepts (resolve_device)
POLL_SECONDS = 1.5
# The settings form, in the order of config_from_form's arguments (the name is left as typed).
FORM_FIELDS = ["dataset", "preset", "epochs", "batch_size", "learning_rate", "latent_dim", "preview_every", "device"]


def train_defaults() -> dict[str, Any]:
    """TrainConfig's own defaults: the only place they are written."""
    return {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}


def _whole(value: Any, label: str, minimum: int = 0) -> int:
    if value is None or value == "":
        raise DistillError(f"{label} is empty")
    number = int(round(float(value)))
    if number < minimum:
        raise DistillError(f"{label} must be at least {minimum}")
    return number


def config_from_form(dataset: str | None, preset: str, epochs: Any, batch_size: Any, learning_rate: Any,
                     latent_dim: Any, preview_every: Any, device: str, name: str | None) -> TrainConfig:
    if not dataset:
        raise DistillError("pick a dataset to train on (make one in the Dataset tab)")
    if learning_rate is None or learning_rate == "":
        raise DistillError("learning rate is empty")
    latent = _whole(latent_dim, "latent size") if latent_dim not in (None, "") else 0
    return TrainConfig(dataset=dataset, name=(name or "").strip() or None, preset=preset,
                       epochs=_whole(epochs or 0, "epochs") or None, batch_size=_whole(batch_size, "batch size", 1),
                       learning_rate=float(learning_rate), latent_dim=latent or None,
                       preview_every=_whole(preview_every, "preview interval"), device=device)


def form_values(ws: Workspace, config: dict[str, Any]) -> list[Any]:
    """The settings form (FORM_FIELDS order) showing `config`: an experiment's, or the defaults
    with the first dataset when there is none."""
    values = {**train_defaults(), **config}
    names = dataset_names(ws)
    dataset = values.get("dataset") or (names[0] if names else None)
    # The form's "0" means the preset's latent size, as None does in the config.
    # and its "0" epochs the automatic choice (None: 13, fewer for a large dataset)
    shown = {**values, "latent_dim": values.get("latent_dim") or 0, "epochs": values.get("epochs") or 0}
    return [gr.update(choices=names, value=dataset)] + [shown[name] for name in FORM_FIELDS[1:]]


# -- rendering a view into the outputs, skipping what did not change ------------------------

def render(ws: Workspace, view: TrainingView, seen: dict | None, select: str | None = None) -> tuple:
    """Values for OUTPUT order: status, chart, previews note, PREVIEW_SLOTS players, table,
    experiment pick, train, stop, the FORM_FIELDS, seen. `seen` holds what this page shows
    already; unchanged parts are gr.skip()."""
    seen = dict(seen or {})
    out: list[Any] = []

    def part(key: str, signature: Any, make: Callable[[], Any]) -> Any:
        if seen.get(key) == signature:
            return gr.skip()
        seen[key] = signature
        return make()

    out.append(part("status", view.status_line, lambda: view.status_line))
    empty = "no epochs yet" if view.experiment_id else "no training yet"
    out.append(part("chart", (view.experiment_id, view.total_epochs, view.losses.to_json()),
                    lambda: loss_chart_svg(view.losses, view.total_epochs, empty)))
    out.append(part("preview_note", view.preview_note, lambda: view.preview_note))
    for index, slot in enumerate(view.previews):
        signature = (view.experiment_id, str(slot[1]) if slot else None)
        out.append(part(f"preview{index}", signature, lambda slot=slot: gr.update(
            value=str(slot[1]), label=slot[0], visible=True) if slot else gr.update(value=None, visible=False)))
    table = experiments_frame(ws)
    out.append(part("table", table.to_json(), lambda: table))
    ids = list(table["id"])
    live = view.experiment_id if view.running else None
    # The pick follows a job that starts (here or elsewhere) once; otherwise it is the user's.
    value = select or (live if live and seen.get("live") != live else None)
    seen["live"] = live
    out.append(part("pick", (tuple(ids), value), lambda: gr.update(choices=ids, value=value) if value
                    else gr.update(choices=ids)))
    out.append(part("train", view.running, lambda: gr.update(interactive=not view.running)))
    can_stop = view.running and not view.stopping
    out.append(part("stop", can_stop, lambda: gr.update(interactive=can_stop)))
    # The form follows the experiment on view, once each time another one comes on view: the
    # user's edits for a new run are never overwritten while they look at the same one.
    if seen.get("form") == view.experiment_id:
        out += [gr.skip()] * len(FORM_FIELDS)
    else:
        seen["form"] = view.experiment_id
        out += form_values(ws, view.config)
    out.append(seen)
    return tuple(out)


def follow(ws: Workspace, job: TrainingJob, seen: dict | None) -> Iterator[tuple]:
    """A fresh view at each of the job's events until it ends; its end and warnings as toasts."""
    draw = lambda state: render(ws, training_view(ws, job.experiment_id), state)  # noqa: E731
    first = render(ws, training_view(ws, job.experiment_id), seen, select=job.experiment_id)
    toast = lambda event: job_toast(event, "Training", "Training finished: {epochs} epochs.")  # noqa: E731
    yield from follow_job(job, first, draw, toast)


# -- the tab --------------------------------------------------------------------------------

@dataclass
class TrainingTab:
    dataset: gr.Dropdown
    experiment: gr.Dropdown
    load_outputs: list[Any]
    load: Callable


def build(ws: Workspace) -> TrainingTab:
    defaults = train_defaults()
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True, elem_id="train-dataset")
            preset = gr.Radio(label="Preset", choices=list(PRESETS), value=defaults["preset"],
                              info="tiny: a quick look in minutes; default: the real thing", elem_id="train-preset")
            with gr.Row():
                train_button = gr.Button("Train", variant="primary", elem_id="train-start")
                stop_button = gr.Button("Stop", variant="stop", interactive=False, elem_id="train-stop")
            with gr.Accordion("Settings", open=True):
                with gr.Row():
                    epochs = gr.Number(label="Epochs", value=defaults["epochs"] or 0, precision=0, minimum=0,
                                       info="0: 13, fewer for a large dataset (≤ 15 min)", elem_id="train-epochs")
                    batch_size = gr.Number(label="Batch size", value=defaults["batch_size"], precision=0,
                                           minimum=1, elem_id="train-batch-size")
                with gr.Row():
                    learning_rate = gr.Number(label="Learning rate", value=defaults["learning_rate"], step=0.0001,
                                              elem_id="train-learning-rate")
                    latent_dim = gr.Number(label="Latent size", value=defaults["latent_dim"] or 0,
                                           precision=0, minimum=0, elem_id="train-latent-size")
                with gr.Row():
                    preview_every = gr.Number(label="Preview every", value=defaults["preview_every"],
                                              precision=0, minimum=0, elem_id="train-preview-every")
                    device = gr.Dropdown(label="Device", choices=DEVICES, value=defaults["device"],
                                         elem_id="train-device")
                gr.Markdown("<small>The settings of the experiment on view; change them and press Train for a "
                            "new run. Latent size 0 uses the preset's. Previews are written every N epochs "
                            "(0: none).</small>")
                name = gr.Textbox(label="Experiment name (optional)", placeholder="defaults to the dataset's name")
        with gr.Column(scale=2, min_width=480):
            status = gr.Markdown("Loading…", elem_id="train-status")
            chart = gr.HTML(loss_chart_svg(loss_frame([]), 0, "no training yet"), elem_id="loss-chart")
            preview_note = gr.Markdown(elem_id="train-previews-note")
            players = []
            # Two rows of two: the random samples, then the reconstruction pair (original | decoded).
            for first in (0, SAMPLE_SLOTS):
                with gr.Row():
                    players += [gr.Audio(label="Preview", type="filepath", interactive=False, visible=False,
                                         elem_id=f"train-preview-{i}", buttons=["download"], min_width=200)
                                for i in range(first, first + 2)]
    gr.Markdown("### Experiments")
    table = gr.Dataframe(label="Experiments (click a row to pick it)", interactive=False, wrap=True, max_height=260,
                         elem_id="experiments")
    with gr.Row(elem_classes=["bottom-aligned"]):
        experiment = gr.Dropdown(label="Experiment", choices=[], allow_custom_value=True, scale=3, elem_id="experiment-pick")
        resume_epochs = gr.Number(label="Train to epoch", value=0, precision=0, minimum=0, scale=1,
                                  info="0: as planned", elem_id="resume-epochs")
        resume_button = gr.Button("Resume", scale=1, elem_id="train-resume", size="md")
    with gr.Row(elem_classes=["bottom-aligned"]):
        checkpoint = gr.Dropdown(label="Checkpoint", choices=["best", "last"], allow_custom_value=True, value="best", scale=1,
                                 elem_id="save-checkpoint")
        model_name = gr.Textbox(label="Model name", placeholder="defaults to the experiment's name", scale=2,
                                elem_id="save-name")
        overwrite = gr.Checkbox(label="Overwrite a model of that name", value=False, scale=1)
        save_button = gr.Button("Save model", variant="primary", scale=1, elem_id="save-model", size="md")
    save_result = gr.Markdown(elem_id="save-result")
    seen = gr.State({})
    timer = gr.Timer(POLL_SECONDS)

    settings = [dataset, preset, epochs, batch_size, learning_rate, latent_dim, preview_every, device]  # FORM_FIELDS
    outputs = [status, chart, preview_note, *players, table, experiment, train_button, stop_button, *settings, seen]
    form = settings + [name]

    @handle_errors
    def train(*values: Any):
        *fields, page_seen = values
        job = start_training(ws, config_from_form(*fields))
        gr.Info(f"Training started: {job.experiment_id}")
        yield from follow(ws, job, page_seen)

    @handle_errors
    def stop(page_seen: dict):
        """Whatever trains in the workspace, started here or not; the status line says it is
        stopping until it has stopped."""
        request = request_stop(ws, None, by=f"{WEB_APP} (process {os.getpid()})")
        return render(ws, training_view(ws, request.experiment_id), page_seen, select=request.experiment_id)

    @handle_errors
    def resume(experiment_id: str | None, to_epoch: Any, page_seen: dict):
        if not experiment_id:
            raise DistillError("pick an experiment to resume")
        epochs = _whole(to_epoch or 0, "train to epoch") or None  # 0: as planned
        job = resume_training(ws, experiment_id, epochs=epochs)
        gr.Info(f"Resuming {experiment_id}")
        yield from follow(ws, job, page_seen)

    @handle_errors
    def poll(experiment_id: str | None, page_seen: dict):
        return render(ws, training_view(ws, experiment_id), page_seen)

    def save_defaults(experiment_id: str | None) -> tuple:
        # The Model name is left as the user typed it (empty: the experiment's name, said by its placeholder).
        return (gr.update(choices=checkpoint_choices(ws, experiment_id), value="best"),)

    @handle_errors
    def pick_experiment(experiment_id: str | None, page_seen: dict):
        return render(ws, training_view(ws, experiment_id), page_seen, select=experiment_id) + save_defaults(experiment_id)

    @handle_errors
    def save_model(experiment_id: str | None, which: str | None, name_value: str | None, replace: bool):
        if not experiment_id:
            raise DistillError("pick an experiment to save a model from")
        try:
            path = export_model(ws, experiment_id, (name_value or "").strip() or None, which or "best",
                                overwrite=bool(replace))
        except ModelExistsError as exc:
            raise DistillError(f"a model named {exc.name!r} already exists: pick another name (e.g. "
                               f"{exc.suggestion!r}) or tick Overwrite") from None
        gr.Info(f"Saved model {path.stem}")
        return f"Saved **{path.stem}** ({which or 'best'} checkpoint of `{experiment_id}`): it is in the Catalog."

    @handle_errors
    def load():
        live_id, _ = live_experiment(ws)
        experiments = list_experiments(ws)
        pick = live_id or (experiments[0]["id"] if experiments else None)
        return render(ws, training_view(ws, pick), {}, select=pick) + save_defaults(pick)

    # Handlers that redraw the status line hide Gradio's own "processing | 3.4 s" timer: the
    # status line says what is going on.
    quiet = dict(show_progress="hidden", concurrency_limit=None)
    train_button.click(train, form + [seen], outputs, api_name="train", **quiet)
    resume_button.click(resume, [experiment, resume_epochs, seen], outputs, api_name="resume", **quiet)
    stop_button.click(stop, [seen], outputs, api_name="stop", **quiet)
    timer.tick(poll, [experiment, seen], outputs, api_visibility="private", **quiet)
    experiment.input(pick_experiment, [experiment, seen], outputs + [checkpoint], api_name="show_experiment", **quiet)

    def pick_row(event: gr.SelectData) -> str | None:
        return (event.row_value or [None])[0]

    table.select(pick_row, None, [experiment], api_visibility="private", show_progress="hidden").then(
        pick_experiment, [experiment, seen], outputs + [checkpoint], api_visibility="private", **quiet)
    checkpoint.focus(lambda experiment_id, which: gr.update(choices=checkpoint_choices(ws, experiment_id),
                                                            value=which),
                     [experiment, checkpoint], [checkpoint], api_visibility="private", show_progress="hidden")
    save_button.click(save_model, [experiment, checkpoint, model_name, overwrite], [save_result],
                      api_name="save_model")

    def experiments_api() -> list[dict]:
        """Every experiment, newest first: id, name, dataset, live status, epochs, best val
        loss, checkpoint sizes (the rows of the Experiments table)."""
        return experiments_table(ws).astype(object).where(lambda t: t.notna(), None).to_dict(orient="records")

    gr.api(experiments_api, api_name="list_experiments")
    return TrainingTab(dataset=dataset, experiment=experiment, load_outputs=outputs + [checkpoint], load=load)

