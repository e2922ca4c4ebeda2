"""Preview audio written during training: random samples and reconstruction pairs.

    previews/epoch-0010/sample-01.wav
    previews/epoch-0010/recon-01-original.wav   a whole validation clip, at its own level
    previews/epoch-0010/recon-01-decoded.wav    that clip through the model (`transform_wave`)

The pairs use the same validation clips every time, so the model's progress is audible, and
neither file is normalised: a level the model loses is heard as lost.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from distill.audio import AudioSettings, write_wav
from distill.model import ConvVAE
from distill.synthesis import Synthesizer
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
def latent_statistics(model: ConvVAE, segments: torch.Tensor, limit: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and spread of the posterior means of (up to `limit`) training windows, per
    channel and latent frame, (D, L): windows start at clip onsets as often as anywhere, so
    the per-frame figures carry an attack-then-decay shape that one global figure would not.
    With a small β the latents do not fill N(0, I), so samples are drawn where the data lives."""
    device = next(model.parameters()).device
    mu, _ = model.encode(segments[:limit].to(device))
    return mu.mean(dim=0), mu.std(dim=0, unbiased=False).clamp(min=1e-3)


@torch.no_grad()
def write_previews(model: ConvVAE, experiment_dir: Path, epoch: int, settings: AudioSettings,
                   items: list[PreviewItem], train_segments: torch.Tensor, n_samples: int = 2, seed: int = 0,
                   decode_audio: Decoder | None = None) -> tuple[list[Path], list[str]]:
    """Write this epoch's previews. Returns the paths written and one message per preview
    that failed (each failure is skipped, never fatal). The model's train/eval mode is
    restored afterwards."""
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
        mean, std = latent_statistics(model, train_segments)
        generator = torch.Generator().manual_seed(seed)
        for index in range(1, n_samples + 1):
            z = mean + torch.randn(mean.shape, generator=generator).to(mean.device) * std
            mel = model.decode_long(z, train_segments.shape[-1]).cpu()
            attempt(f"sample {index}", lambda mel=mel, index=index: [
                write_wav(folder / f"sample-{index:02d}.wav", decode_audio(mel), settings.sample_rate,
                          normalize=False)])
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
