"""A clip's features, cached: the log-mels (mid and side for a stereo model) the model learns
from, at any playback speed, and where a one-shot starts.

On disk::

    cache/features/<key>.pt    one clip's features, key = sha256(clip bytes + AudioSettings + speed)
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch

from distill.audio import AudioSettings, features, read_audio, resample
from distill.datasets import load_dataset
from distill.atomic import WriteError, atomic_file
from distill.workspace import Workspace

# Bump when distill.audio's decoding or features change their output. 2: full band, channels.
FEATURE_CACHE_VERSION = 2
# Leading silence quieter than this far below a clip's loudest frame is trimmed from training
# windows, so one-shots line up at their onset (a couple of frames before it are kept).
ONSET_THRESHOLD_DB = 60.0
ONSET_LEAD_FRAMES = 2


def feature_cache_path(ws: Workspace, clip_sha256: str, settings: AudioSettings, speed: float = 1.0) -> Path:
    """Where one clip's log-mel lives: keyed by the clip's bytes, every audio setting and the
    playback speed (augmentation), so a changed clip or setting misses the cache and nothing
    else does."""
    key = {"clip": clip_sha256, "audio": settings.to_dict(), "version": FEATURE_CACHE_VERSION}
    if speed != 1.0:
        key["speed"] = round(float(speed), 6)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return ws.cache_dir / "features" / f"{digest}.pt"


def _load_cached(path: Path, settings: AudioSettings) -> torch.Tensor | None:
    try:
        mel = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing, truncated, garbage: recompute
        return None
    if (not isinstance(mel, torch.Tensor) or mel.dim() != 2 or mel.shape[0] != settings.feature_rows
            or mel.shape[1] < 1 or mel.dtype != torch.float32 or not torch.isfinite(mel).all()):
        return None
    return mel


def change_speed(wave: torch.Tensor, speed: float, sample_rate: int) -> torch.Tensor:
    """Play `wave` `speed` times faster: shorter and higher by the same ratio, as a tape or
    a sampler does. The honest variation a small set of one-shots can give.

    The speed is rounded to a 2 % grid (the source rate a multiple of sample_rate / 50):
    resampling costs grow with the rates' reduced ratio: 19624 → 22050 Hz (gcd 2) took 3.5 s
    for a 3 s clip, where 26460 → 22050 Hz (gcd 4410) takes milliseconds."""
    step = max(1, sample_rate // 50)
    source_rate = max(step, round(sample_rate * speed / step) * step)
    return wave if source_rate == sample_rate else resample(wave, source_rate, sample_rate)


def cached_log_mel(ws: Workspace, path: Path, clip_sha256: str, settings: AudioSettings,
                   speed: float = 1.0) -> tuple[torch.Tensor, bool]:
    """(log-mel (n_mels, frames), whether it was computed now rather than read from the cache)."""
    cache = feature_cache_path(ws, clip_sha256, settings, speed)
    mel = _load_cached(cache, settings) if cache.exists() else None
    if mel is not None:
        return mel, False
    wave = change_speed(read_audio(path, settings.sample_rate, settings.channels), speed, settings.sample_rate)
    mel = features(wave, settings).float().contiguous()
    try:
        with atomic_file(cache) as handle:
            torch.save(mel.clone(), handle)
    except (WriteError, OSError):  # a full disk costs the cache, not the training
        pass
    return mel, True


def trim_onset(mel: torch.Tensor, threshold_db: float = ONSET_THRESHOLD_DB,
               lead_frames: int = ONSET_LEAD_FRAMES) -> torch.Tensor:
    """(n_mels, frames) without the leading frames more than `threshold_db` below the
    loudest frame (keeping `lead_frames` before the onset): one-shots start where they start."""
    energy = torch.logsumexp(2 * mel, dim=0) / 2  # log magnitude of each frame
    loud = (energy >= energy.max() - threshold_db * math.log(10) / 20).nonzero()
    first = int(loud[0]) if loud.numel() else 0
    return mel[:, max(0, first - lead_frames):]


def clip_log_mel(ws: Workspace, dataset: str, clip_name: str, settings: AudioSettings) -> torch.Tensor:
    """The full log-mel of one clip of a dataset (cached), for previews and analysis."""
    ds = load_dataset(ws, dataset)
    clip = ds.clip(clip_name)
    return cached_log_mel(ws, ds.clip_path(clip.name), clip.sha256, settings)[0]
