"""The windows a model trains on: clips split by name into training and validation, their
cached features onset-trimmed and cut into fixed-length windows.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.nn.functional as F

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, AudioSettings
from distill.clips import Clip, _plural
from distill.datasets import dataset_channels, load_dataset, refresh_changed
from distill.features import cached_log_mel, trim_onset
from distill.workspace import Workspace

# Training windows start every segment_frames / 4: each moment of a clip is seen at four
# positions in the window, which matters with small datasets (validation windows do not overlap).
TRAIN_WINDOW_OVERLAP = 3


def split_clips(names: Iterable[str], val_fraction: float = 0.15, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, val) by clip, never a clip on both sides: sort, shuffle with `seed`, take
    round(n·val_fraction) for validation, at least one and never all."""
    ordered = sorted(set(names))
    if len(ordered) < 2:
        raise DistillError(f"a train/validation split needs at least 2 usable clips, got {len(ordered)}")
    if not 0.0 < val_fraction < 1.0:
        raise DistillError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    random.Random(seed).shuffle(ordered)
    n_val = min(len(ordered) - 1, max(1, round(len(ordered) * val_fraction)))
    return sorted(ordered[n_val:]), sorted(ordered[:n_val])


def segment_log_mel(mel: torch.Tensor, segment_frames: int, hop_frames: int,
                    drop_silent: bool = True) -> torch.Tensor:
    """(n_mels, frames) → (windows, n_mels, segment_frames). The end is padded with
    LOG_MEL_FLOOR (silence) up to the last window, so a short clip gives one padded window.
    Windows that are pure silence are dropped, unless that would leave none."""
    frames = mel.shape[1]
    count = 1 if frames <= segment_frames else 1 + -(-(frames - segment_frames) // hop_frames)
    needed = (count - 1) * hop_frames + segment_frames
    if needed > frames:
        mel = F.pad(mel, (0, needed - frames), value=LOG_MEL_FLOOR)
    windows = mel.unfold(1, segment_frames, hop_frames).permute(1, 0, 2)
    if drop_silent:
        loud = windows.amax(dim=(1, 2)) >= LOG_MEL_FLOOR + 1.0
        # index_select, not windows[loud]: boolean-mask indexing costs ~15 ms a call here.
        windows = windows.index_select(0, loud.nonzero().squeeze(1)) if bool(loud.any()) else windows[:1]
    return windows.contiguous()


def dataset_fingerprint(clips: Iterable[Clip], settings: AudioSettings, segment_frames: int) -> str:
    payload = {"clips": sorted([c.name, c.sha256] for c in clips), "audio": settings.to_dict(),
               "segment_frames": int(segment_frames)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class TrainingData:
    train: torch.Tensor  # (N, n_mels, segment_frames) float32 log-mels, onset-trimmed, speed-augmented
    val: torch.Tensor  # (M, n_mels, segment_frames), onset-trimmed, as recorded
    train_clips: list[str]
    val_clips: list[str]
    fingerprint: str  # sha256 over the sorted (clip name, clip sha256) pairs + audio settings + segment_frames
    preparation_seconds: float
    computed_clips: int  # how many clips' features were computed now (0 when all came from the cache)
    clip_features: dict[str, torch.Tensor]  # name → full-clip log-mel (n_mels, frames), for previews/analysis
    speeds: tuple[float, ...] = ()  # the playback speeds the training clips were also played at


def _stack(mels: list[torch.Tensor], n_mels: int, segment_frames: int, hop_frames: int) -> torch.Tensor:
    parts = [segment_log_mel(trim_onset(m), segment_frames, hop_frames) for m in mels]
    return torch.cat(parts) if parts else torch.empty(0, n_mels, segment_frames)


def prepare_training_data(ws: Workspace, dataset: str, settings: AudioSettings, segment_frames: int,
                          val_fraction: float = 0.15, seed: int = 0,
                          speeds: Iterable[float] = ()) -> TrainingData:
    """Everything the trainer needs from a dataset: cached log-mels of its usable clips, split
    by clip, onset-trimmed and cut into windows (training windows overlap, validation ones do
    not). Training clips are also played at each of `speeds` (cached like the originals, so
    augmentation costs once per dataset, not per step or per run)."""
    started = time.perf_counter()
    if int(segment_frames) < 1:
        raise DistillError(f"segment_frames must be at least 1, got {segment_frames}")
    segment_frames = int(segment_frames)
    speeds = tuple(float(v) for v in speeds if float(v) != 1.0)
    if any(not 0.25 <= v <= 4.0 for v in speeds):
        raise DistillError(f"playback speeds must lie between 0.25 and 4, got {speeds}")
    ds = refresh_changed(ws, load_dataset(ws, dataset))
    usable = sorted(ds.usable_clips, key=lambda c: c.name)
    if len(usable) < 2:
        raise DistillError(f"dataset {ds.name!r} has {_plural(len(usable), 'usable clip')}; training needs "
                           f"at least 2 (one to learn from, one to check against): add more with "
                           f"`distill dataset add {ds.name} PATH...`")
    train_names, val_names = split_clips([c.name for c in usable], val_fraction, seed)
    features: dict[str, torch.Tensor] = {}
    augmented: list[torch.Tensor] = []
    computed = 0
    for clip in usable:
        features[clip.name], fresh = cached_log_mel(ws, ds.clip_path(clip.name), clip.sha256, settings)
        computed += fresh
        if clip.name in train_names:
            for speed in speeds:
                mel, fresh = cached_log_mel(ws, ds.clip_path(clip.name), clip.sha256, settings, speed)
                augmented.append(mel)
                computed += fresh
    hop = max(1, segment_frames // TRAIN_WINDOW_OVERLAP)
    return TrainingData(
        train=_stack([features[n] for n in train_names] + augmented, settings.feature_rows, segment_frames, hop),
        val=_stack([features[n] for n in val_names], settings.feature_rows, segment_frames, segment_frames),
        train_clips=train_names, val_clips=val_names,
        fingerprint=dataset_fingerprint(usable, settings, segment_frames),
        preparation_seconds=time.perf_counter() - started, computed_clips=computed, clip_features=features,
        speeds=speeds)


def dataset_settings(ws: Workspace, dataset: str) -> AudioSettings:
    """The audio settings a new model of `dataset` trains at: full band, and stereo when any of
    its clips is (`distill.datasets.dataset_channels`)."""
    return AudioSettings(channels=dataset_channels(load_dataset(ws, dataset)))


def estimate_train_windows(ws: Workspace, dataset: str, segment_frames: int, val_fraction: float, seed: int,
                           speeds: Iterable[float]) -> int:
    """About how many training windows `prepare_training_data` will cut, from the clips'
    durations alone (no audio read): for sizing a run before its features exist."""
    settings = AudioSettings()
    usable = load_dataset(ws, dataset).usable_clips
    train, _ = split_clips([c.name for c in usable], val_fraction, seed)
    durations = {c.name: c.duration for c in usable}
    hop = max(1, segment_frames // TRAIN_WINDOW_OVERLAP)
    total = 0
    for name in train:
        for speed in (1.0, *(float(v) for v in speeds if float(v) != 1.0)):
            frames = durations[name] / speed * settings.sample_rate / settings.hop_length + 1
            total += 1 + max(0, -(-(int(frames) - segment_frames) // hop))
    return total
