"""Audio in and out, and the one function that turns audio into log-mels (and back).

Everything that needs mels (training, previews, generation, the vocoder) calls `log_mel`
with the model's `AudioSettings`, so the scaling can never drift between them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
import torchaudio.transforms as T

from distill import DistillError
from distill.griffin_lim import griffin_lim as fast_griffin_lim
from distill.workspace import atomic_path

# log(1e-5): the floor of every log-mel; silence sits here.
LOG_MEL_FLOOR = math.log(1e-5)
# The longest sound Distill makes (generate) or takes in (transform) in one piece: ten
# minutes bounds the memory one whole-sound decode and inversion needs.
MAX_SECONDS = 600.0


@dataclass(frozen=True)
class AudioSettings:
    """How audio becomes features. Stored in every checkpoint and model file."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 11025.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "AudioSettings":
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})

    def frames_to_seconds(self, frames: int) -> float:
        return frames * self.hop_length / self.sample_rate

    def seconds_to_frames(self, seconds: float) -> int:
        return max(1, round(seconds * self.sample_rate / self.hop_length))


def read_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Decode any file soundfile reads, downmix to mono, resample: a 1-D float32 tensor."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise DistillError(f"{Path(path).name}: not readable as audio ({exc})") from exc
    wave = torch.from_numpy(data.mean(axis=1))
    return resample(wave, rate, sample_rate)


def resample(wave: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    if from_rate == to_rate:
        return wave
    return AF.resample(wave, from_rate, to_rate)


@functools.lru_cache(maxsize=8)
def _mel_transform(settings: AudioSettings, device: str) -> T.MelSpectrogram:
    return T.MelSpectrogram(
        sample_rate=settings.sample_rate,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        n_mels=settings.n_mels,
        f_min=settings.f_min,
        f_max=settings.f_max,
        power=1.0,
        center=True,
    ).to(device)


def log_mel(wave: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """(..., samples) → (..., n_mels, frames): natural log of the magnitude mel, floored at 1e-5."""
    mel = _mel_transform(settings, str(wave.device))(wave)
    return torch.log(torch.clamp(mel, min=math.exp(LOG_MEL_FLOOR)))


@functools.lru_cache(maxsize=8)
def _inverse_mel(settings: AudioSettings, device: str) -> T.InverseMelScale:
    inverse_mel = T.InverseMelScale(
        n_stft=settings.n_fft // 2 + 1,
        n_mels=settings.n_mels,
        sample_rate=settings.sample_rate,
        f_min=settings.f_min,
        f_max=settings.f_max,
    ).to(device)
    return inverse_mel


def griffin_lim(log_mels: torch.Tensor, settings: AudioSettings, n_iter: int = 32) -> torch.Tensor:
    """(..., n_mels, frames) log-mel → (..., samples) waveform: InverseMelScale, then
    Griffin-Lim from zero phase (`distill.griffin_lim`: the same mel always gives the same
    audio, which seeded generation relies on)."""
    inverse_mel = _inverse_mel(settings, str(log_mels.device))
    magnitude = torch.exp(log_mels.float().clamp(min=LOG_MEL_FLOOR, max=12.0))
    with torch.no_grad():
        return fast_griffin_lim(inverse_mel(magnitude), settings.n_fft, settings.hop_length, n_iter)


def normalize_peak(wave: np.ndarray | torch.Tensor, peak: float = 0.89, max_gain_db: float = 30.0) -> np.ndarray:
    """Scale to `peak`, but never amplify by more than `max_gain_db`: near-silence stays quiet
    instead of being blown up into noise."""
    wave = np.asarray(wave.detach().cpu() if isinstance(wave, torch.Tensor) else wave, dtype=np.float32)
    wave = np.nan_to_num(wave)
    current = float(np.max(np.abs(wave))) if wave.size else 0.0
    if current <= 0.0:
        return wave
    gain = min(peak / current, 10 ** (max_gain_db / 20))
    return (wave * gain).astype(np.float32)


def levels(wave: np.ndarray | torch.Tensor) -> tuple[float, float]:
    """(peak dBFS, RMS dBFS) of a float waveform; -inf for silence."""
    wave = np.asarray(wave.detach().cpu() if isinstance(wave, torch.Tensor) else wave, dtype=np.float64)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    rms = float(np.sqrt(np.mean(wave**2))) if wave.size else 0.0
    return to_dbfs(peak), to_dbfs(rms)


def to_dbfs(amplitude: float) -> float:
    return 20 * math.log10(amplitude) if amplitude > 0 else -math.inf


def sound_end(wave: np.ndarray, tail_db: float) -> int:
    """The index just after the last sample within `tail_db` dB of the wave's peak: where a
    sound has died away (0 for silence). Packs and the vocoder corpus trim tails here."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak <= 0:
        return 0
    return int(np.flatnonzero(np.abs(wave) >= peak * 10 ** (tail_db / 20))[-1]) + 1


def loudness_lufs(wave: torch.Tensor, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770, K-weighted and gated) of a mono wave, in LUFS.
    A sound shorter than one 400 ms gating block is measured padded with silence (the gate
    leaves the padding out); one that the gate finds silent throughout reads as its RMS in
    dBFS, so a quiet sound still has a level to match."""
    wave = wave.detach().float().cpu().reshape(-1)
    block = math.ceil(0.4 * sample_rate)
    padded = F.pad(wave, (0, max(0, block - wave.shape[0])))
    value = float(AF.loudness(padded[None], sample_rate))
    if math.isfinite(value):
        return value
    return levels(wave)[1] if wave.abs().max() > 0 else -math.inf


WAV_SUBTYPES = {16: "PCM_16", 24: "PCM_24"}


def write_wav(path: str | Path, wave: np.ndarray | torch.Tensor, sample_rate: int, bits: int = 16,
              normalize: bool = True) -> Path:
    """Write a mono WAV (16- or 24-bit), peak-normalised, atomically."""
    if bits not in WAV_SUBTYPES:
        raise DistillError(f"WAV bit depth must be 16 or 24, not {bits}")
    data = normalize_peak(wave) if normalize else np.clip(np.asarray(wave, dtype=np.float32), -1, 1)
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=WAV_SUBTYPES[bits], format="WAV")
    return path


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` → CUDA when present, else CPU. Asking for CUDA without one is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DistillError("--device cuda was asked for, but no CUDA GPU is available (use auto or cpu)")
    if device not in ("cpu", "cuda"):
        raise DistillError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)
