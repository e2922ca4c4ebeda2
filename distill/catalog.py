"""The model catalog: every `.distillgan` in `<workspace>/models`, indexed in `catalog.json`.

The files are the truth; the index is a cache of what they say. Each index row carries the
file's size, mtime_ns and inode; a listing stats every file and re-reads only the ones that
were added or changed, drops rows for files that are gone, and rebuilds the whole index if
it is missing or unreadable. Files that are not valid models are kept in the index as
problems (with their message) so they are not re-read on every listing; old `.distill`
files are not looked at at all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from distill import DistillError
from distill.audio import AudioSettings
from distill.directions import directions_of
from distill.modelfile import (SUFFIX, ModelExistsError, ModelFile, free_name, load_model_file, model_path,
                               resolve_model, save_model_file, target_path, validate_model_file)
from distill.synthesis import VOCODER, Synthesizer
from distill.atomic import WriteError, atomic_copy, atomic_write_json, ensure_space
from distill.workspace import Workspace, read_json

__all__ = ["ModelEntry", "list_models", "models_table", "model_details", "problems", "import_model",
           "delete_model", "rename_model", "resolve_model", "refresh", "get_entry", "TABLE_COLUMNS",
           "vocoder_label"]

INDEX_NAME = "catalog.json"
INDEX_FORMAT = "distill_catalog"
# 2: model format 2. An index written before it lists format-1 files as models; they are
# problems now, so such an index is rebuilt rather than trusted.
# 3: every row says which vocoder its model decodes with (before, None meant Griffin-Lim).
INDEX_VERSION = 4  # 4: channels
TABLE_COLUMNS = ["Name", "Dataset", "Clips", "Epochs", "Val loss", "Audio", "Created", "Size (MB)", "Vocoder"]


@dataclass(frozen=True)
class ModelEntry:
    """One model as the catalog shows it (all JSON-plain)."""

    name: str  # the file's stem: the name commands use
    file: str
    id: str
    created: str
    dataset: str | None
    clips: int | None
    dataset_seconds: float | None
    experiment: str | None
    checkpoint_epoch: int | None
    epochs: int | None
    train_loss: float | None
    val_loss: float | None
    sample_rate: int
    channels: int  # 1 mono, 2 stereo
    n_mels: int
    latent_dim: int
    segment_seconds: float
    size_bytes: int
    vocoder: dict[str, Any]  # {"kind": "fine-tuned" | "own" | "pretrained" | "griffin-lim", ...its figures}

    @property
    def size_mb(self) -> float:
        return round(self.size_bytes / 1e6, 2)

    @property
    def audio_label(self) -> str:
        """`44.1 kHz stereo`."""
        return AudioSettings(sample_rate=self.sample_rate, channels=self.channels).describe()

    @property
    def vocoder_label(self) -> str:
        return vocoder_label(self.vocoder)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelEntry":
        return cls(**{f.name: values.get(f.name) for f in fields(cls)})


def vocoder_label(stats: dict[str, Any] | None) -> str:
    """What a model decodes with, in a few words: `fine-tuned · epoch 6/10 · MR-STFT 0.43
    vs GL 0.57`, `own · 30 ep · MR-STFT 0.32`, `pretrained` or `Griffin-Lim`."""
    stats = stats or {"kind": "griffin-lim"}
    kind = stats.get("kind")
    if kind == "pretrained":
        return "pretrained"
    if kind == "griffin-lim":
        return "Griffin-Lim"
    parts = ["fine-tuned" if kind == "fine-tuned" else "own"]
    if kind == "fine-tuned" and stats.get("best_epoch") is not None:
        parts.append(f"epoch {stats['best_epoch']}/{stats.get('epochs')}")
    elif stats.get("epochs") is not None:
        parts.append(f"{stats['epochs']} ep")
    loss, reference = _number(stats.get("final_loss")), _number(stats.get("griffin_lim_loss"))
    if loss is not None:
        parts.append(f"MR-STFT {loss:.2f}" + (f" vs GL {reference:.2f}" if reference is not None else ""))
    return " · ".join(parts)


def vocoder_stats(model_file: ModelFile) -> dict[str, Any]:
    """Which vocoder `model_file` decodes with (as `distill.synthesis.Synthesizer` decides),
    with its held-out figures when it is the model's own."""
    synthesize = Synthesizer.for_model(model_file)  # decides, without loading anything
    if synthesize.kind != VOCODER:  # PRETRAINED or GRIFFIN_LIM: the kind names are the catalog's too
        return {"kind": synthesize.kind, **({"why": synthesize.fallback} if synthesize.fallback else {})}
    training = model_file.vocoder.get("training") or {}
    return {"kind": "fine-tuned" if training.get("kind") == "fine-tuned" else "own",
            "epochs": training.get("epochs"), "best_epoch": training.get("best_epoch"),
            "final_loss": _number(training.get("final_loss")),
            "griffin_lim_loss": _number(training.get("griffin_lim_loss")),
            "start_loss": _number(training.get("start_loss")), "trained_at": training.get("trained_at")}


def _number(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def entry_from_file(model_file: ModelFile, size_bytes: int) -> ModelEntry:
    meta = model_file.metadata
    dataset = meta.get("dataset") or {}
    experiment = meta.get("experiment") or {}
    settings = model_file.audio_settings
    return ModelEntry(
        name=model_file.path.stem, file=model_file.path.name, id=str(meta.get("id", "")),
        created=str(meta.get("created", "")), dataset=dataset.get("name"), clips=dataset.get("clips"),
        dataset_seconds=_number(dataset.get("total_seconds")), experiment=experiment.get("id"),
        checkpoint_epoch=experiment.get("checkpoint_epoch"), epochs=meta.get("epochs_trained"),
        train_loss=_number(meta.get("train_loss")), val_loss=_number(meta.get("val_loss")),
        sample_rate=settings.sample_rate, channels=settings.channels, n_mels=settings.n_mels, latent_dim=model_file.model_config.latent_dim,
        segment_seconds=round(settings.frames_to_seconds(model_file.model_config.segment_frames), 3),
        size_bytes=size_bytes, vocoder=vocoder_stats(model_file))


# -- the index ----------------------------------------------------------------------------

def index_path(ws: Workspace) -> Path:
    return ws.models_dir / INDEX_NAME


def _signature(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ino": stat.st_ino}


def _read_index(ws: Workspace) -> dict[str, dict[str, Any]]:
    """file name → row; {} when the index is missing, corrupt or of another version."""
    try:
        index = read_json(index_path(ws))
        if index.get("format") != INDEX_FORMAT or index.get("version") != INDEX_VERSION:
            return {}
        rows = index["models"]
        return {row["file"]: row for row in rows if isinstance(row, dict) and isinstance(row.get("file"), str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _read_row(path: Path, signature: dict[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = {"file": path.name, **signature}
    try:
        row["entry"] = entry_from_file(load_model_file(path, mmap=True), signature["size"]).to_dict()
    except DistillError as exc:
        row["error"] = str(exc)
    return row


def refresh(ws: Workspace) -> list[dict[str, Any]]:
    """Bring the index in line with the files (re-reading only what changed) and return its
    rows. Writes the index, atomically, only when something changed."""
    old = _read_index(ws)
    rows, changed = [], False
    for path in sorted(ws.models_dir.glob(f"*{SUFFIX}")):
        if path.name.startswith(".") or not path.is_file():
            continue  # temporary files of an atomic write in progress
        try:
            signature = _signature(path)
        except FileNotFoundError:
            continue  # deleted while we looked
        cached = old.get(path.name)
        if cached and all(cached.get(k) == v for k, v in signature.items()) and ("entry" in cached or "error" in cached):
            rows.append(cached)
        else:
            rows.append(_read_row(path, signature))
            changed = True
    if changed or len(rows) != len(old) or not index_path(ws).exists():
        try:
            atomic_write_json(index_path(ws), {"format": INDEX_FORMAT, "version": INDEX_VERSION, "models": rows})
        except WriteError:  # the index is a cache of the files: listing must work on a full disk
            pass
    return rows


def list_models(ws: Workspace, search: str = "") -> list[ModelEntry]:
    """Every valid model, newest first; `search` keeps those whose name or dataset contains
    it (case-insensitive)."""
    entries = [ModelEntry.from_dict(row["entry"]) for row in refresh(ws) if "entry" in row]
    needle = search.strip().casefold()
    if needle:
        entries = [e for e in entries if needle in e.name.casefold() or needle in (e.dataset or "").casefold()]
    return sorted(entries, key=lambda e: (e.created, e.name), reverse=True)


def problems(ws: Workspace) -> dict[str, str]:
    """`.distillgan` files in the models folder that are not usable models: file → why."""
    return {row["file"]: row["error"] for row in refresh(ws) if "error" in row}


def get_entry(ws: Workspace, name: str) -> ModelEntry:
    path = resolve_model(ws, name)
    for entry in list_models(ws):
        if path.parent == ws.models_dir and entry.file == path.name:
            return entry
    return entry_from_file(load_model_file(path, mmap=True), path.stat().st_size)


def models_table(ws: Workspace, search: str = "") -> pd.DataFrame:
    """The catalog as a table (columns: TABLE_COLUMNS), newest first."""
    rows = [[e.name, e.dataset or "", e.clips, e.epochs, None if e.val_loss is None else round(e.val_loss, 4),
             e.audio_label,
             e.created[:16].replace("T", " "), e.size_mb, e.vocoder_label] for e in list_models(ws, search)]
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.astype({"Clips": "Int64", "Epochs": "Int64", "Val loss": "Float64"})


def model_details(ws: Workspace, name_or_path: str | Path) -> dict[str, Any]:
    """Everything a model file says, JSON-plain: metadata, architecture, audio settings,
    analysis summary, vocoder training stats (not the weights)."""
    path = resolve_model(ws, name_or_path)
    model_file = load_model_file(path, mmap=True)
    analysis = model_file.analysis
    ratio = analysis.get("explained_variance_ratio")
    vocoder = None
    if model_file.vocoder is not None:
        vocoder = {"config": model_file.vocoder.get("config"), "training": model_file.vocoder.get("training")}
    return {
        "name": path.stem,
        "path": str(path),
        "size_mb": round(path.stat().st_size / 1e6, 2),
        "synthesis": {**(stats := vocoder_stats(model_file)), "label": vocoder_label(stats)},
        "metadata": model_file.metadata,
        "model_config": model_file.model_config.to_dict(),
        "parameters": int(sum(t.numel() for t in model_file.state.values())),
        "audio_settings": model_file.audio_settings.to_dict(),
        "analysis": {
            "segments": analysis.get("n_segments"),
            "latent_frames": analysis.get("n_frames"),
            "latent_dim": model_file.model_config.latent_dim,
            "time_stride": model_file.model_config.time_stride,
            "latent_frames_per_second": round(model_file.audio_settings.sample_rate
                                              / (model_file.audio_settings.hop_length
                                                 * model_file.model_config.time_stride), 2),
            "directions": 0 if ratio is None else int(len(ratio)),
            "explained_variance_top": [] if ratio is None else [round(float(r), 4) for r in ratio[:8]],
            "matches_training_data": analysis.get("matches_training_data"),
            **_generation_summary(analysis.get("trajectories")),
        },
        "vocoder": vocoder,
        **_directions_summary(model_file),
    }


def _directions_summary(model_file: Any) -> dict[str, Any]:
    """directions: the named directions (`distill.directions`), shown or not and why, or None
    with directions_problem saying why there are none (a file without clip trajectories, or
    one whose directions cannot be found now: its details still show)."""
    if not isinstance(model_file.analysis.get("trajectories"), dict):
        return {"directions": None, "directions_problem": "export it again to have them (this file has no clip "
                                                           "trajectories)"}
    try:
        found = directions_of(model_file, Synthesizer.for_model(model_file))
    except DistillError as exc:
        return {"directions": None, "directions_problem": str(exc)}
    return {"directions": [d.describe() for d in found.items], "directions_problem": None}


def _generation_summary(trajectories: Any) -> dict[str, Any]:
    """What new sounds start from: the clip count, their median length and loudness (None
    for a file exported before whole-sound generation)."""
    if not isinstance(trajectories, dict):
        return {"generation_clips": None, "default_seconds": None, "loudness_lufs": None}
    return {"generation_clips": len(trajectories.get("names") or []),
            "default_seconds": round(float(trajectories.get("median_seconds", 0.0)), 3),
            "loudness_lufs": round(float(trajectories.get("loudness_lufs", 0.0)), 2)}


# -- changing the catalog -----------------------------------------------------------------

def import_model(ws: Workspace, source: str | Path, name: str | None = None, overwrite: bool = False) -> ModelEntry:
    """Validate a `.distillgan` from elsewhere (weights put into a model and all), then copy
    it in as `name` (default: its file name). A clash raises ModelExistsError unless `overwrite`."""
    source = Path(source).expanduser()
    model_file = validate_model_file(source)
    path = target_path(ws, (name or source.stem).strip(), overwrite)
    if source.resolve() == path.resolve():
        raise DistillError(f"{source.name} is already in the catalog")
    ensure_space(ws.models_dir, source.stat().st_size, path.name)
    if model_file.metadata.get("name") == path.stem:
        atomic_copy(source, path)
    else:  # the name inside the file follows the catalog name
        model_file.metadata = {**model_file.metadata, "name": path.stem}
        save_model_file(path, model_file)
    refresh(ws)
    return get_entry(ws, path.stem)


def delete_model(ws: Workspace, name: str) -> Path:
    """Delete a catalog model (its file and its index row). Returns the deleted path."""
    path = resolve_model(ws, name)
    if path.parent != ws.models_dir:
        raise DistillError(f"{path} is not in this workspace's catalog; only catalog models can be deleted")
    path.unlink()
    refresh(ws)
    return path


def rename_model(ws: Workspace, old: str, new: str, overwrite: bool = False) -> ModelEntry:
    """Rename a catalog model: the file and the name inside it. The new file is written whole
    before the old one is removed, so a crash leaves at worst two copies, never none."""
    source = resolve_model(ws, old)
    if source.parent != ws.models_dir:
        raise DistillError(f"{source} is not in this workspace's catalog (import it first)")
    new = new.strip()
    if new == source.stem:
        return get_entry(ws, new)
    path = model_path(ws, new)
    # A case-only rename on a case-insensitive disk finds "itself" at the new name: no clash.
    if path.exists() and not overwrite and not path.samefile(source):
        raise ModelExistsError(path.stem, free_name(ws, path.stem))
    model_file = load_model_file(source)
    model_file.metadata = {**model_file.metadata, "name": path.stem}
    save_model_file(path, model_file)
    if not path.samefile(source):
        source.unlink()
    refresh(ws)
    return get_entry(ws, path.stem)

