"""The Dataset tab: pick or create a dataset, drop clips on it, see what was kept and why
anything was refused, play and remove clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from distill import DistillError
from distill.datasets import (ImportFailed, ImportReport, add_clips, clip_path, create_dataset, list_datasets,
                              load_dataset, remove_clips)
from distill.sources import NamedFile
from distill.workspace import Workspace
from ui.common import clock, handle_errors

CLIP_COLUMNS = ["Clip", "Duration (s)", "Rate (Hz)", "Channels", "Status", "Note"]
RESULT_COLUMNS = ["File", "Result", "Details"]


# -- plain functions: engine results → component values -------------------------------------

def dataset_names(ws: Workspace) -> list[str]:
    return [d.name for d in list_datasets(ws)]


def clips_frame(ws: Workspace, name: str | None) -> pd.DataFrame:
    """The clips in a dataset (a missing file shows as rejected, with the reason)."""
    if not name:
        return pd.DataFrame(columns=CLIP_COLUMNS)
    clips = [c for c in load_dataset(ws, name).to_dict()["clips"] if c["in_dataset"]]
    rows = [[c["name"], round(float(c["duration"]), 2), c["sample_rate"], c["channels"], c["status"], c["reason"]]
            for c in clips]
    return pd.DataFrame(rows, columns=CLIP_COLUMNS)


def totals_markdown(ws: Workspace, name: str | None) -> str:
    if not name:
        return "No dataset yet: type a name under **New dataset** and drop some clips."
    summary = load_dataset(ws, name).summary()
    line = (f"**{summary.clips} clip{'s' if summary.clips != 1 else ''}** in *{summary.name}*, "
            f"{summary.usable} usable · **{clock(summary.total_duration)}** of usable audio")
    if summary.usable:
        line += f" · shortest {summary.shortest:.2f} s · longest {summary.longest:.2f} s"
    return line + "".join(f"\n- ⚠ {w}" for w in summary.warnings)


# Problems first: with many files, the ones that need attention must not hide below the fold.
_RESULT_ORDER = {"rejected": 0, "skipped": 1, "kept (with a warning)": 2, "kept": 3}


def report_frame(report: ImportReport) -> pd.DataFrame:
    """One row per uploaded file, the engine's verdict as it is (the CLI prints the same)."""
    rows = [[v.file, v.result, v.details] for v in report.verdicts()]
    rows.sort(key=lambda row: _RESULT_ORDER.get(row[1], len(_RESULT_ORDER)))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def report_markdown(report: ImportReport) -> str:
    verb = "Created" if report.created else "Added to"
    return f"{verb} *{report.dataset_name}*: **{report.counts()}**"


def uploaded_files(payload: list[dict[str, Any]] | None) -> list[NamedFile]:
    """Gradio's raw file data (the upload event runs with preprocess=False) → each file with the
    name it had on the user's disk. Gradio keeps its copy under a changed name (`..\\evil.wav`
    becomes `..evil.wav`): judged by that name, an upload could get another verdict than the
    same file through the CLI. Gradio has checked by now that every path is one of its uploads."""
    files = []
    for item in payload or []:
        path = Path(item["path"])
        files.append(NamedFile(path, str(item.get("orig_name") or path.name)))
    return files


def import_files(ws: Workspace, selected: str | None, new_name: str | None,
                 files: list[str | NamedFile] | None) -> tuple[ImportReport, str | None]:
    """Create `new_name` from the files, or add them to `selected`. Returns the report and a
    warning to show (None when every file was kept). A file that fails never stops the others."""
    paths = [f if isinstance(f, NamedFile) else str(f) for f in (files or [])]
    if not paths:
        raise DistillError("drop one or more audio files to upload")
    new_name = (new_name or "").strip()
    try:
        if new_name:
            report = create_dataset(ws, new_name, paths)
        elif selected:
            report = add_clips(ws, selected, paths)
        else:
            raise DistillError("pick a dataset, or type a name under New dataset, before uploading")
    except ImportFailed as failed:
        return failed.report, str(failed)
    warning = None
    if len(report.kept) < len(report.entries):
        warning = f"Of {len(report.entries)} files: {report.counts()} (the upload results say why)"
    return report, warning


# -- the tab --------------------------------------------------------------------------------

@dataclass
class DatasetTab:
    dataset: gr.Dropdown
    refresh_outputs: list[Any]
    refresh: Any  # callable() -> values for refresh_outputs


def build(ws: Workspace) -> DatasetTab:
    gr.Markdown("Drop your clips (WAV, FLAC, OGG, MP3, AIFF…) onto a dataset. Each file is checked on the way "
                "in; a file that cannot be used is listed with the reason and never blocks the others.")
    with gr.Row(elem_classes=["bottom-aligned"]):
        dataset = gr.Dropdown(label="Dataset", choices=[], value=None, allow_custom_value=True, scale=2, elem_id="dataset-pick")
        new_name = gr.Textbox(label="New dataset", placeholder="type a name, then drop clips to create it",
                              scale=2, elem_id="dataset-new-name")
        refresh_button = gr.Button("↻ Refresh", scale=0, min_width=110, size="md")
    totals = gr.Markdown(elem_id="dataset-totals")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label="Drop clips here (many at once)", file_count="multiple", height=150,
                             elem_id="dataset-upload")
            upload_summary = gr.Markdown(elem_id="upload-summary")
            upload_results = gr.Dataframe(value=pd.DataFrame(columns=RESULT_COLUMNS), label="Upload results",
                                          interactive=False, wrap=True, max_height=260,
                                          column_widths=["30%", "18%", "52%"], elem_id="upload-results")
        with gr.Column(scale=3):
            clips = gr.Dataframe(value=pd.DataFrame(columns=CLIP_COLUMNS), label="Clips (click a row to play it)",
                                 interactive=False, wrap=True, max_height=360, elem_id="clip-table")
            with gr.Row(elem_classes=["bottom-aligned"]):
                selected = gr.Dropdown(label="Selected clips", choices=[], multiselect=True, allow_custom_value=True, scale=3,
                                       elem_id="clip-select")
                remove = gr.Button("Remove selected", variant="stop", scale=1, min_width=140, size="md",
                                   elem_id="clip-remove")
            player = gr.Audio(label="Clip", type="filepath", interactive=False, elem_id="clip-player",
                              buttons=["download"])

    def views(name: str | None) -> tuple:
        names = dataset_names(ws)
        if name not in names:
            name = names[0] if names else None
        clip_names = list(clips_frame(ws, name)["Clip"]) if name else []
        return (gr.update(choices=names, value=name), clips_frame(ws, name), totals_markdown(ws, name),
                gr.update(choices=clip_names, value=[]), None)

    view_outputs = [dataset, clips, totals, selected, player]

    @handle_errors
    def refresh(name: str | None = None):
        return views(name)

    @handle_errors
    def upload_clips(name: str | None, new: str | None, files: list[dict[str, Any]] | None):
        report, warning = import_files(ws, name, new, uploaded_files(files))
        if warning:
            gr.Warning(warning)
        target = report.dataset.name if report.dataset is not None else name
        cleared_name = "" if report.dataset is not None else new
        return (report_frame(report), report_markdown(report), None, cleared_name) + views(target)

    @handle_errors
    def play(name: str | None, chosen: list[str] | None):
        if not name or not chosen:
            return gr.update(value=None, label="Clip")
        return gr.update(value=str(clip_path(ws, name, chosen[-1])), label=chosen[-1])

    @handle_errors
    def pick_row(name: str | None, event: gr.SelectData):
        row = event.row_value or []
        return [row[0]] if row else []

    @handle_errors
    def remove_selected(name: str | None, chosen: list[str] | None):
        if not name:
            raise DistillError("pick a dataset first")
        if not chosen:
            raise DistillError("select one or more clips to remove (click rows in the table or use the list)")
        remove_clips(ws, name, chosen)
        gr.Info(f"Removed {len(chosen)} clip{'s' if len(chosen) != 1 else ''} from {name}")
        return views(name)

    # preprocess=False: the handler needs each upload's original name (see uploaded_files).
    upload.upload(upload_clips, [dataset, new_name, upload],
                  [upload_results, upload_summary, upload, new_name] + view_outputs, api_name="upload_clips",
                  preprocess=False)
    dataset.input(refresh, [dataset], view_outputs, api_name="show_dataset")
    refresh_button.click(refresh, [dataset], view_outputs, api_visibility="private")
    selected.change(play, [dataset, selected], [player], api_visibility="private", show_progress="hidden")
    clips.select(pick_row, [dataset], [selected], api_visibility="private", show_progress="hidden")
    remove.click(remove_selected, [dataset, selected], view_outputs, api_name="remove_clips")
    return DatasetTab(dataset=dataset, refresh_outputs=view_outputs, refresh=refresh)

