"""New sounds from a saved model.

Latents are drawn where the training data lives (the model file's `analysis`: per-dimension
mean and spread of the posterior means), never from N(0, I): with a small β the two are far
apart. A sound longer than one training segment is a smooth walk through that region:
anchor latents every `ANCHOR_SECONDS`, blended with cos/sin weights (which keeps the spread
of the blend equal to that of the anchors), one latent per chunk, chunks half-overlapped.
The chunks are overlap-added IN THE MEL DOMAIN with a Hann window and the whole mel is
inverted once (the model's vocoder, or Griffin-Lim): waveform cross-fades of separately
inverted chunks click at the joins, this does not.

Sound `i` of a batch uses seed `seed + i`, so any one sound can be made again on its own.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distill import DistillError
from distill.audio import griffin_lim as invert_griffin_lim
from distill.audio import normalize_peak, resolve_device, write_wav
from distill.model import ConvVAE
from distill.modelfile import ModelFile, load_model_file, resolve_model
from distill.workspace import Workspace, sanitize_filename, unique_path

# A new anchor latent every this many seconds of a long sound: the pace of the walk.
ANCHOR_SECONDS = 2.0
MAX_SECONDS = 600.0
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


def levels(wave: np.ndarray) -> tuple[float, float]:
    """(peak dBFS, RMS dBFS) of a float waveform; -inf for silence."""
    wave = np.asarray(wave, dtype=np.float64)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    rms = float(np.sqrt(np.mean(wave**2))) if wave.size else 0.0
    as_db = lambda x: 20 * math.log10(x) if x > 0 else -math.inf  # noqa: E731
    return as_db(peak), as_db(rms)


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


def latent_walk(analysis: dict, n_chunks: int, chunks_per_anchor: int, generator: torch.Generator,
                temperature: float = 1.0, offset: torch.Tensor | None = None) -> torch.Tensor:
    """(n_chunks, D) latents: a smooth path through where the training latents are. The first
    chunk sits on the first anchor, so a one-chunk sound is the walk's starting point."""
    mean, spread = analysis["latent_mean"].float(), analysis["latent_std"].float()
    n_anchors = (n_chunks - 1) // chunks_per_anchor + 2
    # One draw per anchor, in order: anchor j is the same for any length of sound.
    anchors = torch.stack([torch.randn(mean.shape, generator=generator) for _ in range(n_anchors)])
    position = torch.arange(n_chunks, dtype=torch.float32) / chunks_per_anchor
    index = position.floor().long()
    t = (position - index).unsqueeze(1) * (math.pi / 2)
    unit = torch.cos(t) * anchors[index] + torch.sin(t) * anchors[index + 1]
    latents = mean + temperature * spread * unit
    return latents if offset is None else latents + offset


def chunk_window(frames: int) -> torch.Tensor:
    """sin² (Hann) over one chunk; at a hop of frames/2 the windows sum to one."""
    n = torch.arange(frames, dtype=torch.float32)
    return torch.sin(math.pi * (n + 0.5) / frames) ** 2


@torch.no_grad()
def decode_walk(model: ConvVAE, latents: torch.Tensor, hop: int, total_frames: int) -> torch.Tensor:
    """Decode each latent into a chunk of log-mels and overlap-add them (hop `hop` frames),
    normalised by the summed window: (n_mels, total_frames)."""
    device = next(model.parameters()).device
    chunks = model.decode(latents.to(device), clamp=True).float().cpu()  # (C, n_mels, F)
    count, n_mels, frames = chunks.shape
    length = (count - 1) * hop + frames
    window = chunk_window(frames)
    mel, weight = torch.zeros(n_mels, length), torch.zeros(length)
    for c in range(count):
        start = c * hop
        mel[:, start:start + frames] += chunks[c] * window
        weight[start:start + frames] += window
    return (mel / weight.clamp(min=1e-8))[:, :total_frames]


# -- the whole sound ----------------------------------------------------------------------

def _synthesize(model_file: ModelFile, log_mel: torch.Tensor, device: torch.device, force_griffin_lim: bool,
                cache: dict) -> torch.Tensor:
    if model_file.vocoder is not None and not force_griffin_lim:
        if "vocoder" not in cache:
            from distill.vocoder import load_vocoder

            cache["vocoder"] = load_vocoder(model_file.vocoder, device)
        with torch.no_grad():
            return cache["vocoder"].synthesize(log_mel.to(device)).float().cpu()
    return invert_griffin_lim(log_mel.to(device), model_file.audio_settings).float().cpu()


def _fade(wave: np.ndarray, samples: int) -> np.ndarray:
    samples = min(samples, wave.shape[0] // 2)
    if samples > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(samples) / samples)).astype(np.float32)
        wave[:samples] *= ramp
        wave[-samples:] *= ramp[::-1]
    return wave


def render(model_file: ModelFile, model: ConvVAE, seed: int, duration: float | None = None,
           temperature: float = 1.0, offsets: dict[int, float] | None = None, griffin_lim: bool = False,
           device: torch.device | None = None, cache: dict | None = None) -> tuple[np.ndarray, torch.Tensor]:
    """One sound: (waveform float32, the log-mel it was made from). `duration` None → one
    training segment."""
    config, settings = model_file.model_config, model_file.audio_settings
    device = device or next(model.parameters()).device
    segment = config.segment_frames
    seconds = settings.frames_to_seconds(segment) if duration is None else float(duration)
    n_samples = round(seconds * settings.sample_rate)
    # center=True framing: frames-1 hops of audio, so one frame more than the length needs.
    total_frames = math.ceil(n_samples / settings.hop_length) + 1
    hop = max(1, segment // 2)
    n_chunks = 1 + math.ceil(max(0, total_frames - segment) / hop)
    chunks_per_anchor = max(1, round(settings.seconds_to_frames(ANCHOR_SECONDS) / hop))
    generator = torch.Generator().manual_seed(int(seed))
    offset = offset_vector(model_file.analysis, offsets, config.latent_dim)
    latents = latent_walk(model_file.analysis, n_chunks, chunks_per_anchor, generator, temperature, offset)
    log_mel = decode_walk(model, latents, hop, total_frames)
    wave = _synthesize(model_file, log_mel, device, griffin_lim, {} if cache is None else cache).numpy()
    wave = np.nan_to_num(wave[:n_samples]).astype(np.float32)
    if wave.shape[0] < n_samples:  # a vocoder may frame differently
        wave = np.pad(wave, (0, n_samples - wave.shape[0]))
    return _fade(wave, round(FADE_SECONDS * settings.sample_rate)), log_mel


def _check_out_dir(ws: Workspace, out_dir: Path) -> Path:
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.is_relative_to(ws.datasets_dir.resolve()):
        raise DistillError(f"{out_dir} is inside the datasets folder: generated sounds there would be "
                           "taken for training data. Choose another folder.")
    return out_dir


def _file_name(model_name: str, seed: int, duration: float | None, temperature: float,
               offsets: dict[int, float] | None) -> str:
    parts = [sanitize_filename(model_name, "model"), f"seed{seed}"]
    if temperature != 1.0:
        parts.append(f"t{temperature:g}")
    parts += [f"pc{k}{v:+g}" for k, v in sorted((offsets or {}).items()) if v]
    if duration is not None:
        parts.append(f"{duration:g}s")
    return re.sub(r"[^\w.+-]", "_", "-".join(parts)) + ".wav"


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
    path = resolve_model(ws, model)
    model_file = load_model_file(path)
    torch_device = resolve_device(device)
    vae = model_file.build_model(torch_device)
    folder = _check_out_dir(ws, Path(out_dir) if out_dir else generated_dir(ws, path.stem))
    folder.mkdir(parents=True, exist_ok=True)
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    settings, cache, sounds = model_file.audio_settings, {}, []
    for i in range(n):
        wave, _ = render(model_file, vae, seed + i, duration, temperature, offsets, griffin_lim, torch_device, cache)
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
