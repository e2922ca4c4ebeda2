"""The Catalog tab's Transform panel: put your own clips (uploaded, or picked from a dataset)
through the selected model, then hear each original beside its transformed version, and
download the results.

The engine does the work (`distill.transform.transform_files`: same length, the model's own
level, WAVs under `<workspace>/transformed/<model>/`); this panel only gathers the inputs
and lays out what came back. A file that could not be transformed is listed with its reason;
the others are still shown.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import gradio as gr

from distill import DistillError
from distill.datasets import clip_path, list_datasets, load_dataset
from distill.audio import OutputFormat
from distill.transfer import DEFAULT_STRENGTH
from distill.transform import TransformResult, transform_files
from distill.workspace import Workspace
from ui.common import format_controls, handle_errors, output_format
from ui.history_panel import remember_transforms

PAIR_SLOTS = 6  # original ↔ transformed pairs shown; every result is in the downloads


def input_paths(ws: Workspace, uploads: list[str] | None, dataset: str | None, clips: list[str] | None) -> list[Path]:
    """The uploaded files, then the picked clips of `dataset`, in that order."""
    paths = [Path(p) for p in uploads or []]
    if clips:
        if not dataset:
            raise DistillError("pick the dataset the clips come from")
        paths += [clip_path(ws, dataset, name) for name in clips]
    if not paths:
        raise DistillError("add clips to transform: upload them, or pick some from a dataset")
    return paths


def transform_inputs(ws: Workspace, model: str, paths: list[Path], griffin_lim: bool,
                     progress: Callable[[float, str], None] | None = None,
                     fmt: OutputFormat = OutputFormat("wav", 16), strength: float = 0.0) -> list[TransformResult]:
    """`transform_files`, one input per call so progress can be shown (the same files, in the
    same order, as one call with them all)."""
    results = []
    for i, path in enumerate(paths):
        if progress:
            progress(i / len(paths), f"clip {i + 1} of {len(paths)}")
        results += transform_files(ws, model, [path], griffin_lim=griffin_lim, fmt=fmt, strength=strength)
    return results


def _db(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "−∞"


def result_line(result: TransformResult) -> str:
    if not result.ok:
        return f"- ✗ {result.error}"
    line = (f"- **{result.input.name}** → `{result.path.name}` · {result.seconds:.2f} s · "
            f"RMS {_db(result.input_rms_dbfs)} → {_db(result.output_rms_dbfs)} dBFS")
    return f"{line} · ⚠ {result.note}" if result.note else line


def summary_markdown(results: list[TransformResult]) -> str:
    done = sum(r.ok for r in results)
    head = f"Transformed **{done} of {len(results)}** clip{'s' if len(results) != 1 else ''}"
    shown = [r for r in results if r.ok][:PAIR_SLOTS]
    if done > len(shown):
        head += f" (the first {len(shown)} are below; all are in the downloads)"
    return "\n".join([head + "."] + [result_line(r) for r in results])


def downloads_html(paths: list[Path]) -> str:
    """A download link per file. Links, not a gr.Files list: that one offers a remove button
    per file, which here would only hide a file that stays on disk."""
    if not paths:
        return ""
    links = [f'<a href="gradio_api/file={quote(str(p))}" download="{html.escape(p.name)}">{html.escape(p.name)}</a>'
             for p in paths]
    return "<div class='transform-downloads'><b>Download</b>: " + " · ".join(links) + "</div>"


def dataset_names(ws: Workspace) -> list[str]:
    return [d.name for d in list_datasets(ws)]


@dataclass
class TransformPanel:
    dataset: gr.Dropdown  # its choices are redrawn when the Catalog tab opens
    made: Any = None  # the Transform click's event (the history follows it)


def build(ws: Workspace, model: gr.Dropdown) -> TransformPanel:
    gr.Markdown("<small>Your own clips through the selected model, at their own length and level. Strength 0 "
                "gives a clip back as the model hears it; 1 plays its rhythm with the model's own sounds (each "
                "onset starts the training clip nearest to it). Files go to the workspace's "
                "<code>transformed/</code> folder, never into a dataset.</small>")
    with gr.Row():
        uploads = gr.File(label="Clips to transform (any audio the datasets take)", file_count="multiple",
                          height=150, elem_id="transform-upload", scale=3)
        with gr.Column(scale=2, min_width=240):
            dataset = gr.Dropdown(label="…or clips from a dataset", choices=dataset_names(ws), value=None,
                                  allow_custom_value=True, elem_id="transform-dataset")
            clips = gr.Dropdown(label="Clips", choices=[], multiselect=True, allow_custom_value=True,
                                elem_id="transform-clips")
    strength = gr.Slider(0, 1, value=DEFAULT_STRENGTH, step=0.05, elem_id="transform-strength",
                         label="Strength: 0 = the clip as the model hears it, 1 = its rhythm played by the model's sounds")
    with gr.Row(elem_classes=["bottom-aligned"]):
        griffin_lim = gr.Checkbox(label="Griffin-Lim instead of the vocoder", value=False, scale=2)
        out_format, out_rate = format_controls("WAV 16-bit")
        run = gr.Button("Transform", variant="primary", elem_id="transform-run", scale=1)
    summary = gr.Markdown(elem_id="transform-summary")
    rows, originals, outputs = [], [], []
    for i in range(PAIR_SLOTS):
        with gr.Row(visible=False) as row:
            originals.append(gr.Audio(label="Original", type="filepath", interactive=False, buttons=["download"],
                                      elem_id=f"transform-original-{i}", min_width=220))
            outputs.append(gr.Audio(label="Transformed", type="filepath", interactive=False, buttons=["download"],
                                    elem_id=f"transform-output-{i}", min_width=220))
        rows.append(row)
    files = gr.HTML(elem_id="transform-files")

    @handle_errors
    def pick_dataset(name: str | None):
        names = [c.name for c in load_dataset(ws, name).usable_clips] if name else []
        return gr.update(choices=names, value=[])

    @handle_errors
    def transform(name: str | None, upload_list: list[str] | None, dataset_name: str | None,
                  clip_names: list[str] | None, griffin: bool, format_label: str, rate_label: str,
                  amount: float = DEFAULT_STRENGTH, progress=gr.Progress()):
        if not name:
            raise DistillError("pick a model first")
        paths = input_paths(ws, upload_list, dataset_name, clip_names)
        results = transform_inputs(ws, name, paths, bool(griffin), progress=lambda f, text: progress(f, desc=text),
                                   fmt=output_format(format_label, rate_label), strength=float(amount))
        remember_transforms(ws, name, results, float(amount), bool(griffin))
        done = [r for r in results if r.ok]
        for failed in (r for r in results if not r.ok):
            gr.Warning(failed.error)
        shown = done[:PAIR_SLOTS]
        row_updates = [gr.update(visible=i < len(shown)) for i in range(PAIR_SLOTS)]
        original_updates = [gr.update(value=str(r.input), label=f"Original · {r.input.name}") for r in shown]
        output_updates = [gr.update(value=str(r.path), label=f"Transformed · {r.path.name}") for r in shown]
        empty = [gr.update(value=None)] * (PAIR_SLOTS - len(shown))
        return (summary_markdown(results), *row_updates, *original_updates, *empty, *output_updates, *empty,
                downloads_html([r.path for r in done]))

    dataset.change(pick_dataset, [dataset], [clips], api_visibility="private", show_progress="hidden")
    made = run.click(transform, [model, uploads, dataset, clips, griffin_lim, out_format, out_rate, strength],
                     [summary, *rows, *originals, *outputs, files], api_name="transform")
    return TransformPanel(dataset=dataset, made=made)


def refresh_datasets(ws: Workspace) -> Callable[[Any], Any]:
    """A handler that redraws the dataset choices (keeping the pick while it exists)."""
    def refresh(current: str | None):
        names = dataset_names(ws)
        return gr.update(choices=names, value=current if current in names else None)
    return refresh
