"""From a training experiment to a `.distillgan` model file in the catalog.

`export_model` loads a checkpoint (verified by `distill.checkpoints`), encodes every segment
of the training dataset to describe where its latent frames live (`analyse_latents`), and
writes one self-contained model file. Nothing here trains: it is a snapshot of a checkpoint.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import torch

from distill import DistillError
from distill.audio import AudioSettings, loudness_lufs, read_audio, resolve_device
from distill.model import ConvVAE, ModelConfig
from distill.modelfile import ModelFile, analyse_latents, new_metadata, save_model_file, target_path
from distill.directions import ANALYSIS_KEY, find_directions
from distill.synthesis import Synthesizer
from distill.trajectories import TrajectoryBank, build_bank
from distill.workspace import Workspace


def find_experiment(ws: Workspace, experiment: str) -> Path:
    """An experiment's folder by id, name or id prefix (see `distill.train.resolve_experiment`)."""
    from distill.experiments import resolve_experiment

    return ws.experiment_dir(resolve_experiment(ws, experiment).id)


def dataset_summary(ws: Workspace, dataset: str) -> dict[str, Any]:
    """name, clips, total_seconds of the dataset as it is now."""
    from distill.datasets import load_dataset

    clips = load_dataset(ws, dataset).usable_clips
    return {"name": dataset, "clips": len(clips),
            "total_seconds": round(float(sum(float(c.duration or 0.0) for c in clips)), 3)}


def training_segments(ws: Workspace, dataset: str, settings: AudioSettings, config: ModelConfig,
                      train_config: dict[str, Any]) -> tuple[torch.Tensor, str]:
    """Every segment (train + validation) the experiment was trained on, and the dataset's
    fingerprint now."""
    from distill.segments import prepare_training_data

    data = prepare_training_data(ws, dataset, settings, config.segment_frames,
                                 float(train_config.get("val_fraction", 0.15)), int(train_config.get("seed", 0)))
    parts = [t for t in (data.train, data.val) if t is not None and t.numel()]
    if not parts:
        raise DistillError(f"dataset {dataset!r} has no usable segments to analyse")
    return torch.cat(parts), data.fingerprint


def trajectory_bank(ws: Workspace, dataset: str, model: ConvVAE, settings: AudioSettings) -> TrajectoryBank:
    """Every usable clip of `dataset`, from its onset, encoded whole (what generation builds
    new sounds from), with the clips' median loudness (what a sample pack is matched to)."""
    from distill.datasets import load_dataset
    from distill.features import cached_log_mel, trim_onset

    ds = load_dataset(ws, dataset)
    clips, loudness = [], []
    for clip in ds.usable_clips:
        path = ds.clip_path(clip.name)
        mel, _ = cached_log_mel(ws, path, clip.sha256, settings)
        clips.append((clip.name, trim_onset(mel)))
        loudness.append(loudness_lufs(read_audio(path, settings.sample_rate, settings.channels), settings.sample_rate))
    if not clips:
        raise DistillError(f"dataset {dataset!r} has no usable clips to describe")
    finite = [v for v in loudness if math.isfinite(v)]
    median = statistics.median_high(finite) if finite else -23.0
    return build_bank(model, clips, settings, median)


def export_model(ws: Workspace, experiment: str, name: str | None = None, checkpoint: str = "best",
                 overwrite: bool = False, device: str = "auto") -> Path:
    """Write `<models>/<name>.distillgan` from `experiment`'s `checkpoint` (best | last |
    epoch:N). `name` defaults to the experiment's name. A name already taken raises
    `ModelExistsError` (with a free suggestion) unless `overwrite`."""
    from distill.checkpoints import load_checkpoint, read_experiment, resolve_checkpoint

    folder = find_experiment(ws, experiment)
    record = read_experiment(folder)
    name = (name or record.get("name") or folder.name).strip()
    path = target_path(ws, name, overwrite)  # fail on a clash before the slow part
    ckpt = load_checkpoint(resolve_checkpoint(folder, checkpoint), map_location="cpu")
    config = ModelConfig.from_dict(ckpt["model_config"])
    settings = AudioSettings.from_dict(ckpt["audio_settings"])
    train_config = ckpt.get("train_config") or record.get("config") or {}
    dataset = train_config.get("dataset") or record.get("dataset")
    if not dataset or not ws.dataset_dir(dataset).is_dir():
        raise DistillError(f"the training dataset {dataset!r} is gone: the latent analysis a model file "
                           "carries needs the clips it was trained on")

    model = ConvVAE(config)
    try:
        model.load_state_dict(ckpt["model_state"])
    except RuntimeError:  # a checkpoint of the earlier, global-latent network
        raise DistillError(f"the {checkpoint} checkpoint of experiment {folder.name} was made by an earlier "
                           "version of Distill (its network has another shape); retrain it") from None
    model.to(resolve_device(device)).eval()
    segments, fingerprint = training_segments(ws, dataset, settings, config, train_config)
    analysis = analyse_latents(model, segments, side_rows=settings.side_rows)
    analysis["dataset_fingerprint"] = fingerprint
    analysis["matches_training_data"] = fingerprint == ckpt.get("dataset_fingerprint")
    analysis["trajectories"] = trajectory_bank(ws, dataset, model, settings).to_plain()
    bank = TrajectoryBank.from_plain(analysis["trajectories"])  # as the file keeps it (half precision)

    metrics = ckpt.get("metrics") or {}
    metadata = new_metadata(
        path.stem,
        dataset=dataset_summary(ws, dataset),
        experiment={"id": folder.name, "name": record.get("name"), "checkpoint": checkpoint,
                    "checkpoint_epoch": int(ckpt["epoch"]), "epochs_total": record.get("epoch")},
        epochs_trained=int(ckpt["epoch"]),
        train_loss=metrics.get("train_loss"),
        val_loss=metrics.get("val_loss"),
    )
    model_file = ModelFile(path=path, model_config=config, audio_settings=settings,
                           state={k: v.detach().cpu() for k, v in model.state_dict().items()},
                           analysis=analysis, metadata=metadata, vocoder=None)
    # The sliders' ranges are checked on sounds as the file will voice them (the pretrained vocoder).
    synthesize = Synthesizer.for_model(model_file, next(model.parameters()).device)
    analysis[ANALYSIS_KEY] = find_directions(model, bank, analysis, settings, synthesize).to_plain()
    return save_model_file(path, model_file)
