"""The Previews tab: an experiment's preview audio, epoch by epoch (newest first): the
random samples, and each reconstruction pair with its original and decoded audio side by
side, both as players and as spectrograms drawn from their log-mels (with time and frequency
axes, at the width of their column; `ui.spectrogram`)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from distill.previews import Preview, list_previews
from distill.experiments import list_experiments
from distill.workspace import Workspace
from ui.common import handle_errors
from ui.spectrogram import spectrogram_svg

SAMPLE_SLOTS = 4
PAIR_SLOTS = 2


def preview_epochs(ws: Workspace, experiment_id: str | None) -> list[int]:
    """Epochs that have previews, newest first."""
    if not experiment_id:
        return []
    return sorted({p.epoch for p in list_previews(ws.experiment_dir(experiment_id))}, reverse=True)


def epoch_previews(ws: Workspace, experiment_id: str, epoch: int) -> tuple[list[Preview], list[Preview]]:
    previews = [p for p in list_previews(ws.experiment_dir(experiment_id)) if p.epoch == epoch]
    return ([p for p in previews if p.kind == "sample"],
            [p for p in previews if p.kind == "reconstruction"])


def spectrogram_figure(path: str | Path, title: str) -> str:
    """The log-mel picture of `path` with its caption, for a gr.HTML."""
    return f'<figure class="log-mel"><figcaption>{html.escape(title)}</figcaption>{spectrogram_svg(path, title=title)}</figure>'


@dataclass
class PreviewsTab:
    experiment: gr.Dropdown
    load_outputs: list[Any]
    load: Callable


def build(ws: Workspace) -> PreviewsTab:
    with gr.Row(elem_classes=["bottom-aligned"]):
        experiment = gr.Dropdown(label="Experiment", choices=[], allow_custom_value=True, scale=3, elem_id="previews-experiment")
        epoch = gr.Dropdown(label="Epoch (newest first)", choices=[], allow_custom_value=True, scale=1, elem_id="previews-epoch")
        refresh_button = gr.Button("↻ Refresh", scale=0, min_width=110, size="md")
    summary = gr.Markdown(elem_id="previews-summary")
    gr.Markdown("#### Random samples")
    with gr.Row():
        samples = [gr.Audio(label=f"Sample {i + 1}", type="filepath", interactive=False, visible=False,
                            buttons=["download"], elem_id=f"preview-sample-{i}", min_width=220)
                   for i in range(SAMPLE_SLOTS)]
    gr.Markdown("#### Reconstructions: original ↔ decoded")
    pair_groups, pair_parts = [], []
    for i in range(PAIR_SLOTS):
        with gr.Group(visible=False) as group:
            with gr.Row():
                with gr.Column():
                    original = gr.Audio(label=f"Original {i + 1}", type="filepath", interactive=False,
                                        buttons=["download"], elem_id=f"preview-original-{i}")
                    original_image = gr.HTML(elem_id=f"preview-original-image-{i}", padding=False)
                with gr.Column():
                    decoded = gr.Audio(label=f"Decoded {i + 1}", type="filepath", interactive=False,
                                       buttons=["download"], elem_id=f"preview-decoded-{i}")
                    decoded_image = gr.HTML(elem_id=f"preview-decoded-image-{i}", padding=False)
        pair_groups.append(group)
        pair_parts.append((original, original_image, decoded, decoded_image))

    shown = [summary, *samples, *pair_groups, *[c for part in pair_parts for c in part]]

    def show(experiment_id: str | None, chosen: Any) -> tuple:
        values: list[Any] = []
        if not experiment_id or chosen in (None, ""):
            message = "No previews yet." if experiment_id else "Pick an experiment."
            return tuple([message] + [gr.update(value=None, visible=False)] * SAMPLE_SLOTS
                         + [gr.update(visible=False)] * PAIR_SLOTS + [None, "", None, ""] * PAIR_SLOTS)
        sample_list, pairs = epoch_previews(ws, experiment_id, int(chosen))
        values.append(f"Epoch **{int(chosen)}**: {len(sample_list)} random sample(s), "
                      f"{len(pairs)} reconstruction pair(s).")
        for i in range(SAMPLE_SLOTS):
            p = sample_list[i] if i < len(sample_list) else None
            values.append(gr.update(value=str(p.paths["audio"]), visible=True) if p
                          else gr.update(value=None, visible=False))
        values += [gr.update(visible=i < len(pairs)) for i in range(PAIR_SLOTS)]
        for i in range(PAIR_SLOTS):
            p = pairs[i] if i < len(pairs) else None
            if p is None:
                values += [None, "", None, ""]
                continue
            for key, title in (("original", f"Original {i + 1}"), ("decoded", f"Decoded {i + 1}")):
                path = p.paths.get(key)
                values += [str(path), spectrogram_figure(path, f"{title} · log-mel")] if path else [None, ""]
        return tuple(values)

    def epochs_update(experiment_id: str | None, keep: Any = None) -> tuple[Any, Any]:
        epochs = preview_epochs(ws, experiment_id)
        value = keep if keep in epochs else (epochs[0] if epochs else None)
        return gr.update(choices=epochs, value=value), value

    @handle_errors
    def pick_experiment(experiment_id: str | None):
        update, value = epochs_update(experiment_id)
        return (update,) + show(experiment_id, value)

    @handle_errors
    def pick_epoch(experiment_id: str | None, chosen: Any):
        return show(experiment_id, chosen)

    @handle_errors
    def load(experiment_id: str | None = None, chosen: Any = None):
        ids = [r["id"] for r in list_experiments(ws)]
        if experiment_id not in ids:
            experiment_id, chosen = (ids[0] if ids else None), None
        update, value = epochs_update(experiment_id, chosen)
        return (gr.update(choices=ids, value=experiment_id), update) + show(experiment_id, value)

    experiment.input(pick_experiment, [experiment], [epoch] + shown, api_name="show_previews")
    epoch.input(pick_epoch, [experiment, epoch], shown, api_visibility="private")
    load_outputs = [experiment, epoch] + shown
    refresh_button.click(load, [experiment, epoch], load_outputs, api_visibility="private")
    return PreviewsTab(experiment=experiment, load_outputs=load_outputs, load=load)
