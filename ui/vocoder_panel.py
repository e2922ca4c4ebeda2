"""The Catalog tab's Vocoder panel: fine-tune the pretrained vocoder on the selected model's
clips, or train one from scratch (Train / Stop / Resume, a status line, the loss chart, the
newest previews), and compare what the model decodes with against Griffin-Lim.

As in the Training tab, the job runs on its own thread (`start_vocoder_training`); the Train
and Resume handlers follow its events, and a `gr.Timer` in every open page rebuilds the same
view from disk (`vocoder_runs/<model>/`) plus `current_vocoder_job`, so a reloaded page or a
second tab sees the run too. When a run completes, the models table and details are redrawn
(they then show the vocoder's stats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr

from distill import DistillError
from distill.catalog import model_details, models_table
from distill.experiments import WorkspaceLock
from distill.generate import ab_pair
from distill.jobs import RESUMABLE, status_word
from distill.vocoder import (VocoderTrainingJob, current_vocoder_job, list_vocoder_previews, read_run,
                             read_vocoder_metrics, start_vocoder_training, vocoder_preset)
from distill.vocoder.config import PRESETS
from distill.workspace import Workspace
from ui.common import clock, follow_job, handle_errors, job_toast, number
from ui.loss_chart import loss_chart_svg
from ui.training_tab import DEVICES, POLL_SECONDS, _whole
from ui.training_view import TrainingView, loss_frame

LOCK_PREFIX = "vocoder:"  # how a vocoder run names itself in the workspace lock
PREVIEW_KINDS = (("original", "Original"), ("griffin-lim", "Griffin-Lim"), ("vocoder", "Vocoder"))
DEFAULT_PRESET = "default"  # what start_vocoder_training uses without a config


def live_vocoder(ws: Workspace) -> tuple[str | None, VocoderTrainingJob | None]:
    """The model whose vocoder trains now (and its job when this process runs it)."""
    job = current_vocoder_job(ws)
    if job is not None and not job.done:
        return job.model_name, job
    holder = str((WorkspaceLock.holder(ws.lock_path) or {}).get("experiment_id") or "")
    if holder.startswith(LOCK_PREFIX):
        name = holder[len(LOCK_PREFIX):]
        if job is not None and job.model_name == name:  # ours: ended, lock not yet let go
            return None, None
        return name, None
    return None, None


@dataclass
class VocoderView:
    model: str | None = None
    status_line: str = "Pick a model to train its vocoder."
    running: bool = False
    has_vocoder: bool = False  # a vocoder of its own
    can_compare: bool = False  # decodes with a vocoder (its own or the pretrained one)
    run_key: tuple = ()  # changes when a run ends: the catalog is redrawn then
    chart: TrainingView = field(default_factory=TrainingView)
    previews: list[tuple[str, Path]] = field(default_factory=list)


def _status_line(name: str, record: dict | None, rows: list[dict], running: bool, live: str | None,
                 synthesis: dict) -> str:
    if record is None:
        if synthesis.get("kind") in ("fine-tuned", "own"):
            text = (f"**{name}** carries a vocoder of its own ({synthesis['label']}); its training run is not in "
                    "this workspace.")
        elif synthesis.get("kind") == "pretrained":
            text = (f"**{name}** decodes with the pretrained vocoder. **Train vocoder** fine-tunes it on this "
                    "model's clips (preset default, a few minutes).")
        else:
            text = (f"**{name}** decodes with Griffin-Lim ({synthesis.get('why', 'no vocoder')}): train one "
                    "from scratch (preset scratch).")
        return text + (f" · the vocoder of **{live}** is training now" if live and live != name else "")
    total = int(record.get("epochs") or 0)
    done = int(rows[-1]["epoch"]) if rows else int(record.get("epoch") or 0)
    reference = record.get("griffin_lim") or {}
    last = rows[-1] if rows else {}
    start = record.get("start") or {}
    before = f"pretrained {number(start.get('val_loss'))}, " if start else ""
    held_out = (f"held-out MR-STFT {number(last.get('val_loss', record.get('val_loss')))} "
                f"({before}Griffin-Lim {number(reference.get('mrstft'))}) · LSD "
                f"{number(last.get('val_lsd', record.get('val_lsd')), 3)} dB "
                f"(Griffin-Lim {number(reference.get('lsd'), 3)})")
    if running:
        times = [float(r["seconds"]) for r in rows[-5:] if isinstance(r.get("seconds"), (int, float))]
        per_epoch = sum(times) / len(times) if times else None
        parts = [f"**training** · epoch **{done} / {total}**"]
        if rows:
            parts += [f"loss {number(last.get('train_loss'))}", held_out]
        if per_epoch is not None:
            parts += [f"{per_epoch:.1f} s / epoch", f"ETA {clock(per_epoch * max(0, total - done))}"]
        else:
            parts.append("preparing the clips and the first epoch…")
        parts.append(f"device {record.get('device', '?')}")
        return " · ".join(parts)
    status = status_word(record.get("status") or "?")
    if status == "running":  # the record says so, but nothing holds the workspace: it died
        status = "interrupted"
    parts = [f"**{status}** · {done} / {total} epochs"]
    if rows or record.get("val_loss") is not None:
        parts.append(held_out)
    if record.get("training_seconds") is not None:
        parts.append(f"trained {clock(float(record['training_seconds']))}")
    if status == "completed" and record.get("best_epoch") is not None:
        best = record.get("best") or {}
        parts.append(f"bundled: epoch {record['best_epoch']}"
                     + (" (the pretrained weights: no epoch beat them)" if record["best_epoch"] == 0 else "")
                     + f", held-out MR-STFT {number(best.get('val_loss'))}")
    if status == "failed" and record.get("error"):
        parts.append(f"error: {record['error']}")
    if status in RESUMABLE:
        parts.append("**Resume** continues it")
    if live and live != name:
        parts.append(f"the vocoder of **{live}** is training now")
    return " · ".join(parts)


def vocoder_view(ws: Workspace, name: str | None) -> VocoderView:
    """What the panel shows for model `name`, rebuilt from disk."""
    if not name:
        return VocoderView()
    live, _ = live_vocoder(ws)
    record = read_run(ws, name)
    rows = read_vocoder_metrics(ws, name) if record is not None else []
    running = live == name
    synthesis = model_details(ws, name)["synthesis"]
    view = VocoderView(model=name, running=running, has_vocoder=synthesis["kind"] in ("fine-tuned", "own"),
                       can_compare=synthesis["kind"] != "griffin-lim",
                       run_key=(name, (record or {}).get("status"), (record or {}).get("updated") if not running
                                else "running"))
    view.status_line = _status_line(name, record, rows, running, live, synthesis)
    total = int((record or {}).get("epochs") or 0)
    view.chart = TrainingView(experiment_id=f"{LOCK_PREFIX}{name}" if record else None, losses=loss_frame(rows),
                              total_epochs=total)
    previews = list_vocoder_previews(ws, name)
    if previews:
        newest = [p for p in previews if p.epoch == previews[-1].epoch][0]
        view.previews = [(f"{label} · epoch {newest.epoch}", newest.paths[kind])
                         for kind, label in PREVIEW_KINDS if kind in newest.paths]
    return view


@dataclass
class VocoderPanel:
    outputs: list[Any]


def build(ws: Workspace, model: gr.Dropdown, search: gr.Textbox, table: gr.Dataframe, details: gr.Markdown,
          details_json: gr.JSON, details_markdown: Callable[[dict], str]) -> VocoderPanel:
    """The panel's components (call inside the Vocoder accordion) and their events."""
    gr.Markdown("<small>Every model decodes with the vocoder Distill ships, pretrained on a broad set of "
                "instruments. Fine-tuning it on this model's clips takes a few minutes; the epoch that does best "
                "on held-out clips goes into the model file and everything made with the model uses it.</small>")
    with gr.Row():
        preset = gr.Radio(label="Preset", choices=list(PRESETS), value=DEFAULT_PRESET,
                          info="default: fine-tune the pretrained vocoder (2-4 min); scratch: train from nothing "
                               "(~25 min, for other mel settings); tiny: a quick check", elem_id="voc-preset")
        device = gr.Dropdown(label="Device", choices=DEVICES, value="auto", min_width=100, elem_id="voc-device")
    with gr.Row(elem_classes=["bottom-aligned"]):
        epochs = gr.Number(label="Epochs", value=0, precision=0, minimum=0, info="0: the default (Resume: as planned)",
                           elem_id="voc-epochs")
        replace = gr.Checkbox(label="Replace the existing vocoder / start over", value=False,
                              elem_id="voc-replace")
    with gr.Row():
        train_button = gr.Button("Train vocoder", variant="primary", size="md", min_width=80, elem_id="voc-train")
        stop_button = gr.Button("Stop", variant="stop", size="md", min_width=80, interactive=False, elem_id="voc-stop")
        resume_button = gr.Button("Resume", size="md", min_width=80, elem_id="voc-resume")
    status = gr.Markdown("Pick a model to train its vocoder.", elem_id="voc-status")
    chart = gr.HTML(loss_chart_svg(loss_frame([]), 0, "no vocoder training yet"), elem_id="voc-chart")
    # The held-out clip on its own row, its two decodings side by side below it (three in a row do not fit).
    players = []
    for kinds in (PREVIEW_KINDS[:1], PREVIEW_KINDS[1:]):
        with gr.Row():
            players += [gr.Audio(label=label, type="filepath", interactive=False, visible=False, min_width=150,
                                 elem_id=f"voc-preview-{kind}") for kind, label in kinds]
    gr.Markdown("**A/B** · one generated sound, decoded both ways")
    with gr.Row(elem_classes=["bottom-aligned"]):
        ab_seed = gr.Number(label="Seed", value=0, precision=0, elem_id="voc-ab-seed")
        ab_button = gr.Button("Compare", size="md", interactive=False, elem_id="voc-ab")
    ab_note = gr.Markdown(elem_id="voc-ab-note")
    with gr.Row():
        ab_griffin = gr.Audio(label="Griffin-Lim", type="filepath", interactive=False, min_width=150,
                              elem_id="voc-ab-griffin-lim")
        ab_vocoder = gr.Audio(label="Vocoder", type="filepath", interactive=False, min_width=150,
                              elem_id="voc-ab-vocoder")
    seen = gr.State({})
    timer = gr.Timer(POLL_SECONDS)

    outputs = [status, chart, *players, train_button, stop_button, ab_button, ab_note, table, details, details_json,
               seen]

    def render(view: VocoderView, seen_before: dict | None, text: str) -> tuple:
        """Values in `outputs` order; what this page shows already is gr.skip()."""
        page = dict(seen_before or {})

        def part(key: str, signature: Any, make: Callable[[], Any]) -> Any:
            if page.get(key) == signature:
                return gr.skip()
            page[key] = signature
            return make()

        out: list[Any] = [part("status", view.status_line, lambda: view.status_line), part("chart", (view.chart.experiment_id, view.chart.total_epochs, view.chart.losses.to_json()),
                                lambda: loss_chart_svg(view.chart.losses, view.chart.total_epochs))]
        for index in range(len(PREVIEW_KINDS)):
            slot = view.previews[index] if index < len(view.previews) else None
            out.append(part(f"preview{index}", (view.model, str(slot[1]) if slot else None), lambda slot=slot: (
                gr.update(value=str(slot[1]), label=slot[0], visible=True) if slot
                else gr.update(value=None, visible=False))))
        out.append(part("train", view.running, lambda: gr.update(interactive=not view.running)))
        out.append(part("stop", view.running, lambda: gr.update(interactive=view.running)))
        out.append(part("ab_button", view.can_compare, lambda: gr.update(interactive=view.can_compare)))
        out.append(part("ab", (view.model, view.can_compare), lambda: "" if view.can_compare or not view.model else
                        f"<small>**{view.model}** decodes with Griffin-Lim only: train a vocoder first, "
                        "then compare.</small>"))
        # A run that ends changes the model file: redraw the table and details (once).
        if view.model and page.get("run") != view.run_key:
            page["run"] = view.run_key
            info = model_details(ws, view.model)
            out += [models_table(ws, text or ""), details_markdown(info), info]
        else:
            out += [gr.skip()] * 3
        out.append(page)
        return tuple(out)

    def follow(job: VocoderTrainingJob, page: dict | None, text: str) -> Iterator[tuple]:
        draw = lambda state: render(vocoder_view(ws, job.model_name), state, text)  # noqa: E731
        toast = lambda event: job_toast(event, "Vocoder training",  # noqa: E731
                                        f"Vocoder trained ({{epochs}} epochs): it is in {job.model_name}'s file now.")
        yield from follow_job(job, draw(page), draw, toast)

    def epochs_or_none(value: Any) -> int | None:
        return _whole(value if value not in (None, "") else 0, "epochs") or None

    @handle_errors
    def train(name: str | None, preset_name: str, epochs_value: Any, device_name: str, confirmed: bool,
              page: dict, text: str):
        if not name:
            raise DistillError("pick a model to train its vocoder")
        synthesis = model_details(ws, name)["synthesis"]
        if synthesis["kind"] in ("fine-tuned", "own") and not confirmed:
            raise DistillError(f"{name} already has a vocoder of its own ({synthesis['label']}): tick “Replace the "
                               "existing vocoder” to train a new one in its place")
        try:
            job = start_vocoder_training(ws, name, vocoder_preset(preset_name or DEFAULT_PRESET),
                                         epochs=epochs_or_none(epochs_value), force=bool(confirmed),
                                         device=device_name or "auto")
        except DistillError as exc:
            raise DistillError(ui_wording(str(exc))) from None
        gr.Info(f"Training the vocoder of {name}")
        yield from follow(job, page, text)

    @handle_errors
    def resume(name: str | None, epochs_value: Any, device_name: str, confirmed: bool, page: dict, text: str):
        if not name:
            raise DistillError("pick a model to resume its vocoder training")
        if read_run(ws, name) is None:
            raise DistillError(f"{name} has no vocoder training to resume: press Train vocoder")
        try:
            job = start_vocoder_training(ws, name, epochs=epochs_or_none(epochs_value), force=bool(confirmed),
                                         resume=True, device=device_name or "auto")
        except DistillError as exc:
            raise DistillError(ui_wording(str(exc))) from None
        gr.Info(f"Resuming the vocoder of {name}")
        yield from follow(job, page, text)

    @handle_errors
    def stop():
        job = current_vocoder_job(ws)
        if job is not None and not job.done:
            job.cancel()
            gr.Info(f"Stopping the vocoder of {job.model_name} after the current step…")
            return f"Stopping the vocoder of **{job.model_name}** after the current step…"
        live, _ = live_vocoder(ws)
        if live:
            raise DistillError(f"the vocoder of {live} is training in another program (the command line?): "
                               "stop it there")
        raise DistillError("no vocoder is training")

    @handle_errors
    def poll(name: str | None, page: dict, text: str):
        return render(vocoder_view(ws, name), page, text)

    @handle_errors
    def compare(name: str | None, seed_value: Any):
        if not name:
            raise DistillError("pick a model to compare")
        synthesis = model_details(ws, name)["synthesis"]
        seed_number = int(seed_value) if seed_value not in (None, "") else 0
        griffin, vocoder = ab_pair(name, seed_number, ws=ws)  # refuses a model that decodes with Griffin-Lim only
        return (gr.update(value=str(griffin), label=f"Griffin-Lim · seed {seed_number}"),
                gr.update(value=str(vocoder), label=f"Vocoder ({synthesis['kind']}) · seed {seed_number}"))

    follow_options = dict(show_progress="hidden", concurrency_limit=None)
    train_button.click(train, [model, preset, epochs, device, replace, seen, search], outputs,
                       api_name="train_vocoder", **follow_options)
    resume_button.click(resume, [model, epochs, device, replace, seen, search], outputs, api_name="resume_vocoder",
                        **follow_options)
    stop_button.click(stop, None, [status], api_name="stop_vocoder", concurrency_limit=None, show_progress="hidden")
    timer.tick(poll, [model, seen, search], outputs, api_visibility="private", show_progress="hidden",
               concurrency_limit=None)
    @handle_errors
    def show(name: str | None, text: str):
        view = vocoder_view(ws, name)
        return render(view, {"run": view.run_key}, text)  # the catalog's own handlers redraw the details

    model.change(show, [model, search], outputs, api_name="show_vocoder", show_progress="hidden")
    ab_button.click(compare, [model, ab_seed], [ab_griffin, ab_vocoder], api_name="vocoder_ab")
    return VocoderPanel(outputs=outputs)


def ui_wording(message: str) -> str:
    """The engine speaks the command line's options; the panel has a button and a checkbox."""
    return (message.replace("use --resume", "press **Resume**").replace("--resume", "**Resume**")
            .replace("use --force (or confirm in the UI)", "tick “Replace the existing vocoder”")
            .replace("with --force", "by ticking “Replace the existing vocoder / start over”")
            .replace("--force", "“Replace the existing vocoder / start over”")
            .replace("pass more --epochs", "set more Epochs"))
