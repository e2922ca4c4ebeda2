"""New sounds from a saved model.

The model's latent is a sequence along time: one latent frame per `time_stride` mel frames.
A new sound is such a sequence drawn where the training latent frames are (the model file's
`analysis`: per-dimension mean and spread of every non-silent training latent frame), never
from N(0, I): with a small β the two are far apart. It is a smooth walk through that region:
anchor latents every `ANCHOR_SECONDS`, blended with cos/sin weights (which keeps the spread
of the blend equal to that of the anchors), one point per latent frame. The decoder is
convolutional, so the whole sequence is decoded in one `decode_long` call (equal to one pass:
no chunk joins to cross-fade), and the whole mel is inverted once (`distill.synthesis`: the
model's vocoder, or Griffin-Lim), so nothing clicks at a seam.

Sound `i` of a batch uses seed `seed + i`, so any one sound can be made again on its own.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distill import DistillError
from distill.audio import MAX_SECONDS, levels, normalize_peak, write_wav
from distill.model import ConvVAE, latent_frames
from distill.modelfile import ModelFile, open_model
from distill.synthesis import Synthesizer, fit_length
from distill.workspace import Workspace, sanitize_filename, unique_path, wav_name

# A new anchor latent every this many seconds of a long sound: the pace of the walk.
ANCHOR_SECONDS = 2.0
FADE_SECONDS = 0.005  # a raised-cosine fade at both ends, so the file itself starts and ends at 0

@dataclass(frozen=True)
class GeneratedSound:
    path: Path
    seed: int
    seconds: float
    peak_dbfs: float  # of the written (peak-normalised) file
    rms_dbfs: float


def generated_dir(ws: Workspace, model_name: str) -> Path:
    return ws.generated_dir / sanitize_filename(model_name, "model")


# -- latents ------------------------------------------------------------------------------

def offset_vector(analysis: dict, offsets: dict[int, float] | None, latent_dim: int) -> torch.Tensor:
    """Σ offsets[k] · spread_k · direction_k, with k counted from 1 (pc1 = the direction of
    most variance) and each offset in units of the data's spread along that direction."""
    vector = torch.zeros(latent_dim)
    if not offsets:
        return vector
    directions, spreads = analysis["directions"].float(), analysis["direction_std"].float()
    for k, amount in offsets.items():
        if not 1 <= int(k) <= directions.shape[0]:
            raise DistillError(f"pc{k}: this model has principal directions pc1..pc{directions.shape[0]}")
        vector += float(amount) * spreads[int(k) - 1] * directions[int(k) - 1]
    return vector


def latent_walk(analysis: dict, n_frames: int, frames_per_anchor: int, generator: torch.Generator,
                temperature: float = 1.0, offset: torch.Tensor | None = None) -> torch.Tensor:
    """(n_frames, D) latent frames: a smooth path through where the training latent frames
    are. The first frame sits on the first anchor, and anchor j is the same for any length,
    so a sound's start does not depend on how long it is."""
    mean, spread = analysis["latent_mean"].float(), analysis["latent_std"].float()
    n_anchors = (n_frames - 1) // frames_per_anchor + 2
    # One draw per anchor, in order: anchor j is the same for any length of sound.
    anchors = torch.stack([torch.randn(mean.shape, generator=generator) for _ in range(n_anchors)])
    position = torch.arange(n_frames, dtype=torch.float32) / frames_per_anchor
    index = position.floor().long()
    t = (position - index).unsqueeze(1) * (math.pi / 2)
    unit = torch.cos(t) * anchors[index] + torch.sin(t) * anchors[index + 1]
    latents = mean + temperature * spread * unit
    return latents if offset is None else latents + offset


# -- the whole sound ----------------------------------------------------------------------

def _fade(wave: np.ndarray, samples: int) -> np.ndarray:
    samples = min(samples, wave.shape[0] // 2)
    if samples > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(samples) / samples)).astype(np.float32)
        wave[:samples] *= ramp
        wave[-samples:] *= ramp[::-1]
    return wave


def render(model_file: ModelFile, model: ConvVAE, seed: int, duration: float | None = None,
           temperature: float = 1.0, offsets: dict[int, float] | None = None,
           synthesize: Synthesizer | None = None) -> tuple[np.ndarray, torch.Tensor]:
    """One sound: (waveform float32, the log-mel it was made from). `duration` None → one
    training segment. `synthesize` defaults to the model's own (its vocoder if it has one);
    pass one to reuse its loaded vocoder across sounds, or to force Griffin-Lim."""
    config, settings = model_file.model_config, model_file.audio_settings
    device = next(model.parameters()).device
    seconds = settings.frames_to_seconds(config.segment_frames) if duration is None else float(duration)
    n_samples = round(seconds * settings.sample_rate)
    # center=True framing: frames-1 hops of audio, so one frame more than the length needs.
    total_frames = math.ceil(n_samples / settings.hop_length) + 1
    frames_per_anchor = max(1, round(settings.seconds_to_frames(ANCHOR_SECONDS) / config.time_stride))
    generator = torch.Generator().manual_seed(int(seed))
    offset = offset_vector(model_file.analysis, offsets, config.latent_dim)
    walk = latent_walk(model_file.analysis, latent_frames(total_frames, config), frames_per_anchor, generator,
                       temperature, offset)
    log_mel = model.decode_long(walk.T.contiguous().to(device), total_frames).float().cpu()
    synthesize = synthesize or Synthesizer.for_model(model_file, device)
    wave = fit_length(synthesize(log_mel), n_samples).numpy().astype(np.float32)
    return _fade(wave, round(FADE_SECONDS * settings.sample_rate)), log_mel


def _file_name(model_name: str, seed: int, duration: float | None, temperature: float,
               offsets: dict[int, float] | None) -> str:
    parts = [sanitize_filename(model_name, "model"), f"seed{seed}"]
    if temperature != 1.0:
        parts.append(f"t{temperature:g}")
    parts += [f"pc{k}{v:+g}" for k, v in sorted((offsets or {}).items()) if v]
    if duration is not None:
        parts.append(f"{duration:g}s")
    return wav_name(*parts)


def generate_sounds(ws: Workspace, model: str | Path, n: int = 4, seed: int | None = None,
                    duration: float | None = None, temperature: float = 1.0,
                    offsets: dict[int, float] | None = None, griffin_lim: bool = False, bits: int = 16,
                    out_dir: str | Path | None = None, device: str = "auto") -> list[GeneratedSound]:
    """Make `n` sounds with `model` (a catalog name or a path) and write them as WAVs to
    `out_dir` (default `<workspace>/generated/<model>/`). `seed` None picks one; sound i uses
    seed + i. `offsets` maps a principal direction (1 = pc1) to a shift in units of spread."""
    if n < 1:
        raise DistillError("the number of sounds must be at least 1")
    if temperature < 0 or not math.isfinite(temperature):
        raise DistillError("temperature must be 0 or more")
    if duration is not None and not 0 < duration <= MAX_SECONDS:
        raise DistillError(f"duration must be between 0 and {MAX_SECONDS:g} seconds")
    if bits not in (16, 24):
        raise DistillError(f"WAV bit depth must be 16 or 24, not {bits}")
    opened = open_model(ws, model, device)
    path, model_file, vae, torch_device = opened.path, opened.file, opened.network, opened.device
    folder = ws.output_dir(out_dir if out_dir else generated_dir(ws, path.stem))
    folder.mkdir(parents=True, exist_ok=True)
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    settings, sounds = model_file.audio_settings, []
    synthesize = Synthesizer.for_model(model_file, torch_device, griffin_lim)
    for i in range(n):
        wave, _ = render(model_file, vae, seed + i, duration, temperature, offsets, synthesize)
        target = unique_path(folder, _file_name(path.stem, seed + i, duration, temperature, offsets))
        write_wav(target, wave, settings.sample_rate, bits=bits)
        peak, rms = levels(normalize_peak(wave))  # what write_wav wrote
        sounds.append(GeneratedSound(target, seed + i, round(len(wave) / settings.sample_rate, 3), peak, rms))
    return sounds


def generate(ws: Workspace, model: str | Path, n: int = 4, seed: int | None = None, duration: float | None = None,
             temperature: float = 1.0, offsets: dict[int, float] | None = None, griffin_lim: bool = False,
             bits: int = 16, out_dir: str | Path | None = None, device: str = "auto") -> list[Path]:
    """`generate_sounds`, returning only the paths written."""
    return [s.path for s in generate_sounds(ws, model, n, seed, duration, temperature, offsets, griffin_lim, bits,
                                            out_dir, device)]


def ab_pair(model: str | Path, seed: int, ws: Workspace | None = None, duration: float | None = None,
            device: str = "auto") -> tuple[Path, Path]:
    """The same generated sound (one seed: one latent walk, one log-mel) decoded by
    Griffin-Lim and by the model's vocoder: (griffin_lim_wav, vocoder_wav), written to
    `<workspace>/generated/<model>/ab/`. The workspace defaults to the one whose models
    folder holds the file."""
    if ws is None:
        if not Path(model).is_file():
            raise DistillError(f"no model file at {model}")
        ws = Workspace.open(Path(model).resolve().parent.parent)
    opened = open_model(ws, model, device)
    path, model_file, vae, torch_device = opened.path, opened.file, opened.network, opened.device
    if model_file.vocoder is None:
        raise DistillError(f"model {path.stem!r} has no vocoder yet: train one with "
                           f"`distill train-vocoder {path.stem}`")
    folder = generated_dir(ws, path.stem) / "ab"
    written = []
    for label, use_griffin_lim in (("griffin-lim", True), ("vocoder", False)):
        synthesize = Synthesizer.for_model(model_file, torch_device, griffin_lim=use_griffin_lim)
        wave, _ = render(model_file, vae, int(seed), duration, synthesize=synthesize)
        name = sanitize_filename(f"seed-{int(seed)}{f'-{duration:g}s' if duration else ''}-{label}.wav")
        written.append(write_wav(folder / name, wave, model_file.audio_settings.sample_rate))
    return written[0], written[1]
