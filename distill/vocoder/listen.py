"""Listening to a vocoder: its training previews, and A/B pairs against Griffin-Lim.

    vocoder_runs/<model>/previews/epoch-0005/clip-01-original.wav      a held-out clip
                                             clip-01-griffin-lim.wav   its log-mel, Griffin-Lim
                                             clip-01-vocoder.wav       its log-mel, the vocoder
    generated/<model>/ab/seed-7-griffin-lim.wav, seed-7-vocoder.wav    one generated latent, both ways
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from distill import DistillError
from distill.audio import resolve_device, write_wav
from distill.modelfile import load_model_file, resolve_model
from distill.vocoder.train import vocoder_run_dir
from distill.workspace import Workspace, sanitize_filename

PREVIEWS_DIR = "previews"
_EPOCH_DIR = re.compile(r"^epoch-(\d+)$")
_CLIP = re.compile(r"^clip-(\d+)-(original|griffin-lim|vocoder)\.wav$")
PREVIEW_KINDS = ("original", "griffin-lim", "vocoder")


@dataclass(frozen=True)
class VocoderPreview:
    epoch: int
    item: int  # 1-based: the same held-out clip at every epoch
    paths: dict[str, Path] = field(default_factory=dict)  # "original", "griffin-lim", "vocoder"


def preview_dir(ws: Workspace, model_name: str, epoch: int) -> Path:
    return vocoder_run_dir(ws, model_name) / PREVIEWS_DIR / f"epoch-{epoch:04d}"


def list_vocoder_previews(ws: Workspace, model_name: str) -> list[VocoderPreview]:
    """Every preview of a model's vocoder training, by epoch, then clip."""
    root = vocoder_run_dir(ws, model_name) / PREVIEWS_DIR
    found: dict[tuple[int, int], dict[str, Path]] = {}
    if root.is_dir():
        for folder in root.iterdir():
            match = _EPOCH_DIR.match(folder.name)
            if not match or not folder.is_dir():
                continue
            for path in folder.iterdir():
                if clip := _CLIP.match(path.name):
                    found.setdefault((int(match.group(1)), int(clip.group(1))), {})[clip.group(2)] = path
    return [VocoderPreview(epoch, item, paths) for (epoch, item), paths in sorted(found.items())]


def ab_pair(model_path: str | Path, seed: int, ws: Workspace | None = None, duration: float | None = None,
            device: str = "auto") -> tuple[Path, Path]:
    """The same generated sound (one seed: one latent walk, one log-mel) decoded by
    Griffin-Lim and by the model's vocoder: (griffin_lim_wav, vocoder_wav), written to
    `<workspace>/generated/<model>/ab/`. The workspace defaults to the one whose models
    folder holds the file."""
    from distill.generate import generated_dir, render

    path = Path(model_path)
    if ws is None:
        if not path.is_file():
            raise DistillError(f"no model file at {path}")
        ws = Workspace.open(path.resolve().parent.parent)
    path = resolve_model(ws, model_path)
    model_file = load_model_file(path)
    if model_file.vocoder is None:
        raise DistillError(f"model {path.stem!r} has no vocoder yet: train one with `distill train-vocoder {path.stem}`")
    torch_device = resolve_device(device)
    vae = model_file.build_model(torch_device)
    folder = generated_dir(ws, path.stem) / "ab"
    settings = model_file.audio_settings
    written = []
    for label, use_griffin_lim in (("griffin-lim", True), ("vocoder", False)):
        wave, _ = render(model_file, vae, int(seed), duration, griffin_lim=use_griffin_lim, device=torch_device)
        name = sanitize_filename(f"seed-{int(seed)}{f'-{duration:g}s' if duration else ''}-{label}.wav")
        written.append(write_wav(folder / name, wave, settings.sample_rate))
    return written[0], written[1]
