"""The Catalog tab: the saved models (search, details), generation (`ui/generate_panel.py`),
transforming your own clips (`ui/transform_panel.py`), the vocoder (`ui/vocoder_panel.py`), import and delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr
import pandas as pd

from distill import DistillError
from distill.catalog import TABLE_COLUMNS, delete_model, import_model, list_models, model_details, models_table
from distill.modelfile import ModelExistsError
from distill.workspace import Workspace
from ui import generate_panel, history_panel, live_panel, transform_panel, vocoder_panel
from ui.common import handle_errors, log, number, user_message
from ui.generate_panel import DIRECTION_SLOTS


VOCODER_WORDS = {"pretrained": "the one Distill ships: ", "fine-tuned": "its own, ",
                 "own": "its own, trained from scratch: ", "griffin-lim": "none, so sounds are made with "}


def details_markdown(details: dict[str, Any]) -> str:
    meta = details.get("metadata") or {}
    dataset = meta.get("dataset") or {}
    experiment = meta.get("experiment") or {}
    audio = details.get("audio_settings") or {}
    analysis = details.get("analysis") or {}
    synthesis = details.get("synthesis") or {}
    lines = [
        f"### {details['name']}",
        f"- **Trained on** *{dataset.get('name', '?')}* ({dataset.get('clips', '?')} clips, "
        f"{number(dataset.get('total_seconds'), 3)} s) · experiment `{experiment.get('id', '?')}`, "
        f"{experiment.get('checkpoint', '?')} checkpoint (epoch {experiment.get('checkpoint_epoch', '?')})",
        f"- **Losses** train {number(meta.get('train_loss'))} · validation {number(meta.get('val_loss'))}",
        f"- **Audio** {audio.get('sample_rate', '?')} Hz {'stereo' if audio.get('channels', 1) == 2 else 'mono'} · "
        f"{audio.get('n_mels', '?')} mels · latent "
        f"{analysis.get('latent_dim', '?')} channels × {number(analysis.get('latent_frames_per_second'), 3)} frames a "
        f"second · {details.get('parameters', 0):,} parameters · {details.get('size_mb', '?')} MB",
        f"- **Created** {str(meta.get('created', '?'))[:19].replace('T', ' ')}",
        f"- **New sounds** from its {analysis['generation_clips']} training clips, "
        f"{number(analysis.get('default_seconds'), 3)} s long by default"
        if analysis.get("generation_clips") is not None else
        "- **New sounds** ⚠ exported before whole-sound generation: export it again from its experiment",
    ]
    if analysis.get("matches_training_data") is False:
        lines.append("- ⚠ the dataset has changed since training: the latent statistics describe it as it is now")
    named = details.get("directions")
    if named is None and details.get("directions_problem"):
        lines.append(f"- **Directions** none: {details['directions_problem']}")
    if named is not None:
        shown = [d["name"] for d in named if d["shown"]]
        hidden = [f"{d['name']} ({d['reason']})" for d in named if not d["shown"]]
        lines.append(f"- **Directions** {', '.join(shown) or 'none reliable'}"
                     + (f" · not shown: {'; '.join(hidden)}" if hidden else ""))
    lines.append(f"- **Vocoder** {VOCODER_WORDS.get(synthesis.get('kind'), '')}{synthesis.get('label', '?')}"
                 + (f" · trained {str(synthesis['trained_at'])[:19].replace('T', ' ')}" if synthesis.get("trained_at") else "")
                 + (f" ({synthesis['why']})" if synthesis.get("why") else ""))
    return "\n".join(lines)


def import_refusal(exc: BaseException) -> str:
    """The one message a refused import gets, shown beside the import box."""
    if isinstance(exc, ModelExistsError):
        reason = (f"a model named {exc.name!r} is already in the catalog: delete or rename that one first, "
                  f"or rename the file (e.g. to {exc.suggestion}.distillgan)")
    else:
        if not isinstance(exc, DistillError):
            log.exception("import failed")
        reason = user_message(exc)
    return f"⚠ **Not imported**: {reason}"


@dataclass
class CatalogTab:
    search: gr.Textbox
    model: gr.Dropdown
    load_outputs: list[Any]
    load: Callable
    transform: transform_panel.TransformPanel


def build(ws: Workspace) -> CatalogTab:
    with gr.Row(elem_classes=["bottom-aligned"]):
        search = gr.Textbox(label="Search", placeholder="name or dataset", scale=3, elem_id="catalog-search")
        refresh_button = gr.Button("↻ Refresh", scale=0, min_width=110, size="md")
    table = gr.Dataframe(value=pd.DataFrame(columns=TABLE_COLUMNS), label="Models (click a row to pick it)",
                         interactive=False, wrap=True, max_height=240, elem_id="models-table")
    with gr.Row():
        with gr.Column(scale=2, min_width=360):
            model = gr.Dropdown(label="Model", choices=[], allow_custom_value=True, elem_id="catalog-model")
            details = gr.Markdown("Pick a model to see its details.", elem_id="model-details")
            with gr.Accordion("Everything the file says", open=False):
                details_json = gr.JSON(label="Model details")
            with gr.Accordion("Vocoder", open=False, elem_id="vocoder-panel"):
                vocoder_panel.build(ws, model, search, table, details, details_json, details_markdown)
            with gr.Accordion("Play it live (Max, Pd, SuperCollider)", open=False, elem_id="live-panel"):
                live_panel.build(ws, model)
            with gr.Accordion("Import or delete", open=False):
                upload = gr.File(label="Import a .distillgan file", file_types=[".distillgan", ".distill"],
                                 height=110, elem_id="model-import")
                import_result = gr.Markdown(elem_id="import-result")
                delete_button = gr.Button("Delete this model…", variant="stop", size="md", elem_id="model-delete")
                with gr.Row(visible=False) as confirm_row:
                    confirm_text = gr.Markdown()
                    confirm_button = gr.Button("Yes, delete it", variant="stop", size="md",
                                               elem_id="model-delete-confirm")
                    cancel_button = gr.Button("Keep it", size="md")
        with gr.Column(scale=3, min_width=480):
            with gr.Tabs() as making:
                with gr.Tab("Generate", id="generate", elem_id="generate-panel"):
                    generate = generate_panel.build(ws, model)
                    directions = [*generate.directions, *generate.named]

                with gr.Tab("Transform your clips", id="transform", elem_id="transform-panel"):
                    transform = transform_panel.build(ws, model)
            with gr.Column(elem_id="history-panel"):
                labels = {mode: label for label, mode in generate_panel.MODES.items()}
                history = history_panel.build(ws, model, generate.mode, generate.clip, generate.upload,
                                              generate.morph_a, making, labels["variation"], labels["morph"])
            for made in (generate.made, transform.made):  # a new sound shows in the history at once
                made.then(history.refresh, history.inputs, history.outputs, api_visibility="private",
                          show_progress="hidden")

    def model_names(text: str = "") -> list[str]:
        return [e.name for e in list_models(ws, text or "")]

    def describe(name: str | None) -> tuple:
        if not name:
            return ("Pick a model to see its details.", None, *[gr.update(visible=True)] * DIRECTION_SLOTS,
                    *[gr.update(visible=False, value=0.0)] * len(generate_panel.NAMED))
        info = model_details(ws, name)
        available = int((info.get("analysis") or {}).get("directions") or 0)
        sliders = [gr.update(visible=k < available, value=0.0) for k in range(DIRECTION_SLOTS)]
        shown = {d["name"] for d in info.get("directions") or () if d["shown"]}
        named = [gr.update(visible=n in shown, value=0.0) for n in generate_panel.NAMED]
        return (details_markdown(info), info, *sliders, *named)

    view_outputs = [table, model, details, details_json, *directions]

    def views(text: str, name: str | None) -> tuple:
        names = model_names(text)
        if name not in names:
            name = names[0] if names else None
        return (models_table(ws, text or ""), gr.update(choices=names, value=name)) + describe(name)

    @handle_errors
    def load(text: str = "", name: str | None = None):
        return views(text, name)

    @handle_errors
    def pick(name: str | None):
        return describe(name)

    @handle_errors
    def pick_row(event: gr.SelectData):
        row = event.row_value or []
        name = row[0] if row else None
        return (gr.update(value=name),) + describe(name)

    @handle_errors
    def import_upload(path: str | None, text: str):
        if not path:
            return (gr.skip(), "") + tuple(gr.skip() for _ in view_outputs)
        try:
            entry = import_model(ws, path)
        except Exception as exc:  # noqa: BLE001 - a refusal is one message; the rest of the tab stays as it was
            # Returned, not raised: a raised error puts an Error badge on every output (the table, the
            # picker, the details) and leaves the refused file in the box, offered for download.
            return (None, import_refusal(exc)) + tuple(gr.skip() for _ in view_outputs)
        gr.Info(f"Imported {entry.name}")
        return (None, f"Imported **{entry.name}**.") + views(text, entry.name)

    @handle_errors
    def ask_delete(name: str | None):
        if not name:
            raise DistillError("pick a model to delete")
        return gr.update(visible=True), f"Delete **{name}** for good?"

    @handle_errors
    def confirm_delete(name: str | None, text: str):
        if not name:
            raise DistillError("pick a model to delete")
        delete_model(ws, name)
        gr.Info(f"Deleted {name}")
        return (gr.update(visible=False),) + views(text, None)

    search.input(load, [search, model], view_outputs, api_name="search_models", show_progress="hidden")
    refresh_button.click(load, [search, model], view_outputs, api_visibility="private")
    model.input(pick, [model], view_outputs[2:], api_name="model_details")
    table.select(pick_row, None, view_outputs[1:], api_visibility="private")
    upload.upload(import_upload, [upload, search], [upload, import_result] + view_outputs, api_name="import_model",
                  show_progress_on=[upload])
    delete_button.click(ask_delete, [model], [confirm_row, confirm_text], api_visibility="private")
    cancel_button.click(lambda: gr.update(visible=False), None, [confirm_row], api_visibility="private")
    confirm_button.click(confirm_delete, [model, search], [confirm_row] + view_outputs, api_name="delete_model")

    def models_api(search_text: str = "") -> list[dict]:
        """Every model in the catalog (newest first), optionally filtered by name or dataset."""
        return [e.to_dict() for e in list_models(ws, search_text)]

    gr.api(models_api, api_name="list_models")
    return CatalogTab(search=search, model=model, load_outputs=view_outputs, load=load, transform=transform)
