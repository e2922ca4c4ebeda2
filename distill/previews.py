"""Preview audio written during training: random samples and reconstruction pairs.

    previews/epoch-0010/sample-01.wav
    previews/epoch-0010/recon-01-original.wav   a whole validation clip, at its own level
    previews/epoch-0010/recon-01-decoded.wav    that clip through the model (`transform_wave`)

The pairs use the same validation clips every time, so the model's progress is audible, and
neither file is normalised: a level the model loses is heard as lost.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from distill.audio import AudioSettings, write_wav
from distill.generate import sound_of
from distill.model import ConvVAE
from distill.modelfile import analyse_latents
from distill.synthesis import Synthesizer
from distill.trajectories import Generator, Trajectory, build_bank
from distill.transform import transform_wave

log = logging.getLogger(__name__)

PREVIEWS_DIR = "previews"
_EPOCH_DIR = re.compile(r"^epoch-(\d+)$")
_SAMPLE = re.compile(r"^sample-(\d+)\.wav$")
_RECON = re.compile(r"^recon-(\d+)-(original|decoded)\.wav$")

Decoder = Callable[[torch.Tensor], torch.Tensor]  # (n_mels, frames) log-mel → (samples,) audio


@dataclass(frozen=True)
class PreviewItem:
    """A fixed validation clip: its name and its real audio (whole, at its own level)."""

    clip: str
    audio: torch.Tensor  # (samples,)


@dataclass(frozen=True)
class Preview:
    epoch: int
    kind: str  # "sample" or "reconstruction"
    item: int  # 1-based
    paths: dict[str, Path] = field(default_factory=dict)  # {"audio"} or {"original", "decoded"}


def preview_dir(experiment_dir: Path, epoch: int) -> Path:
    return experiment_dir / PREVIEWS_DIR / f"epoch-{epoch:04d}"


@torch.no_grad()
def random_sounds(model: ConvVAE, clips: list[tuple[str, torch.Tensor]], segments: torch.Tensor,
                  settings: AudioSettings, count: int, seed: int) -> list[Trajectory]:
    """`count` new sounds as `distill generate` makes them (temperature 1, the clips' median
    length), from these training clips (name, log-mel from onset) and the model as it is now:
    what generation would sound like if training stopped here."""
    if not clips or count < 1:
        return []
    bank = build_bank(model, clips, settings, loudness_lufs=0.0)
    maker = Generator(bank, analyse_latents(model, segments[:512], side_rows=settings.side_rows), settings, model.config.time_stride)
    frames = math.ceil((math.ceil(bank.median_seconds * settings.sample_rate / settings.hop_length) + 1)
                       / model.config.time_stride)
    return [maker.random(1.0, frames, seed + i, torch.Generator().manual_seed(seed + i))[0] for i in range(count)]


@torch.no_grad()
def write_previews(model: ConvVAE, experiment_dir: Path, epoch: int, settings: AudioSettings,
                   items: list[PreviewItem], train_segments: torch.Tensor, n_samples: int = 2, seed: int = 0,
                   decode_audio: Decoder | None = None,
                   sample_clips: list[tuple[str, torch.Tensor]] | None = None) -> tuple[list[Path], list[str]]:
    """Write this epoch's previews: `n_samples` random sounds made from `sample_clips`
    (training clips, name and log-mel from onset; see `random_sounds`) and a pair per item.
    Returns the paths written and one message per preview that failed (each failure is
    skipped, never fatal). The model's train/eval mode is restored afterwards."""
    decode_audio = decode_audio or Synthesizer(settings)
    folder = preview_dir(experiment_dir, epoch)
    folder.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    written: list[Path] = []
    errors: list[str] = []

    def attempt(label: str, action: Callable[[], list[Path]]) -> None:
        try:
            written.extend(action())
        except Exception as exc:  # noqa: BLE001 - one bad preview must not stop training
            log.warning("preview %s at epoch %d failed: %s", label, epoch, exc)
            errors.append(f"preview {label} (epoch {epoch}) failed: {exc}")

    try:
        sounds: list[Trajectory] = []
        try:
            sounds = random_sounds(model, sample_clips or [], train_segments, settings, n_samples, seed)
        except Exception as exc:  # noqa: BLE001 - one bad preview must not stop training
            log.warning("random samples at epoch %d failed: %s", epoch, exc)
            errors.append(f"random samples (epoch {epoch}) failed: {exc}")
        seconds = settings.frames_to_seconds(sounds[0].frames * model.config.time_stride) if sounds else 0.0
        for index, sound in enumerate(sounds, start=1):
            attempt(f"sample {index}", lambda sound=sound, index=index: [
                write_wav(folder / f"sample-{index:02d}.wav", sound_of(model, sound, seconds, settings, decode_audio)[0],
                          settings.sample_rate, normalize=False)])
        for index, item in enumerate(items, start=1):
            def pair(item: PreviewItem = item, index: int = index) -> list[Path]:
                decoded = transform_wave(model, item.audio, settings, decode_audio)
                return [write_wav(folder / f"recon-{index:02d}-original.wav", item.audio, settings.sample_rate,
                                  normalize=False),
                        write_wav(folder / f"recon-{index:02d}-decoded.wav", decoded, settings.sample_rate,
                                  normalize=False)]
            attempt(f"reconstruction {index}", pair)
    finally:
        model.train(was_training)
    return written, errors


def list_previews(experiment_dir: Path) -> list[Preview]:
    """Every preview of an experiment, sorted by epoch, then samples before pairs, then item."""
    root = experiment_dir / PREVIEWS_DIR
    previews: list[Preview] = []
    if not root.is_dir():
        return previews
    for folder in root.iterdir():
        match = _EPOCH_DIR.match(folder.name)
        if not match or not folder.is_dir():
            continue
        epoch = int(match.group(1))
        pairs: dict[int, dict[str, Path]] = {}
        for path in folder.iterdir():
            if sample := _SAMPLE.match(path.name):
                previews.append(Preview(epoch, "sample", int(sample.group(1)), {"audio": path}))
            elif recon := _RECON.match(path.name):
                pairs.setdefault(int(recon.group(1)), {})[recon.group(2)] = path
        previews += [Preview(epoch, "reconstruction", item, paths) for item, paths in pairs.items()]
    order = {"sample": 0, "reconstruction": 1}
    return sorted(previews, key=lambda p: (p.epoch, order[p.kind], p.item))
