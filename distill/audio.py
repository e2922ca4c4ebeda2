"""Audio in and out, and the one function that turns audio into log-mels (and back).

Everything that needs mels (training, previews, generation, the vocoder) calls `log_mel`
with the model's `AudioSettings`, so the scaling can never drift between them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
import torchaudio.transforms as T

from distill import DistillError
from distill.griffin_lim import griffin_lim as fast_griffin_lim
from distill.atomic import OutputSet, atomic_file

# log(1e-5): the floor of every log-mel; silence sits here.
LOG_MEL_FLOOR = math.log(1e-5)
# The longest sound Distill makes (generate) or takes in (transform) in one piece: ten
# minutes bounds the memory one whole-sound decode and inversion needs.
MAX_SECONDS = 600.0


@dataclass(frozen=True)
class AudioSettings:
    """How audio becomes features. Stored in every checkpoint and model file."""

    # Full band at 44.1 kHz: 128 mel bands up to Nyquist, n_fft 2048 and hop 512 (the full-band
    # vocoders' settings: BigVGAN v2 44 kHz, NSF-HiFiGAN). The same ~86 frames a second as
    # 22,050 Hz with hop 256, so a second of audio costs the autoencoder the same. No mel filter
    # is empty at n_fft 2048 (one, the lowest, spans a single FFT bin). 48 kHz clips run at
    # 44.1 kHz too: one rate lets one shipped vocoder serve every model, and 22.05-24 kHz is
    # above hearing; exports resample to 48 kHz when asked.
    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float = 22050.0
    # 1: mono. 2: stereo, as mid and side (`distill.stereo`): a clip's features are the mid's
    # log-mel with the side's below it, one latent trajectory carries both, and synthesis voices
    # the mid and shapes the side from it, so the image comes back coherent.
    channels: int = 1
    # A stereo clip's side, in this many bands (each the sum of n_mels / side_bands neighbouring
    # mel bands): parametric stereo's resolution (HE-AAC v2 uses 10 to 34 bands). Measured on
    # dev-pitched, the side at the mid's full 128 bands took half the model's rows and cost the
    # mid's reconstruction (held-out MR-STFT 0.727 against 0.628 mono).
    side_bands: int = 16

    def __post_init__(self) -> None:
        if self.channels not in (1, 2):
            raise DistillError(f"audio channels must be 1 (mono) or 2 (stereo), not {self.channels}")
        if self.side_bands < 1 or self.n_mels % self.side_bands:
            raise DistillError(f"side_bands ({self.side_bands}) must divide n_mels ({self.n_mels})")

    @property
    def side_rows(self) -> int:
        """Feature rows of the side, below the mid's n_mels: side_bands for stereo, none for mono."""
        return self.side_bands if self.channels == 2 else 0

    @property
    def feature_rows(self) -> int:
        """Rows of a clip's features: n_mels (the mid's), and the side's below them."""
        return self.n_mels + self.side_rows

    @property
    def mono(self) -> "AudioSettings":
        """The same mel settings for one channel: what a vocoder (which voices the mid) is made for."""
        return replace(self, channels=1)

    def describe(self) -> str:
        """`44.1 kHz stereo`: the sound a model makes, in words."""
        return f"{self.sample_rate / 1000:g} kHz {'stereo' if self.channels == 2 else 'mono'}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "AudioSettings":
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})

    def frames_to_seconds(self, frames: int) -> float:
        return frames * self.hop_length / self.sample_rate

    def seconds_to_frames(self, seconds: float) -> int:
        return max(1, round(seconds * self.sample_rate / self.hop_length))


def read_audio(path: str | Path, sample_rate: int, channels: int = 1) -> torch.Tensor:
    """Decode any file soundfile reads and resample it. `channels=1`: downmixed to mono, a 1-D
    float32 tensor. `channels=2`: (2, samples), left and right (a mono file on both sides; of
    more than two channels, the first two)."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise DistillError(f"{Path(path).name}: not readable as audio ({exc})") from exc
    if channels == 1:
        wave = torch.from_numpy(data.mean(axis=1))
    else:
        wave = torch.from_numpy(np.ascontiguousarray(data[:, [0, min(1, data.shape[1] - 1)]].T))
    return resample(wave, rate, sample_rate)


def resample(wave: torch.Tensor | np.ndarray, from_rate: int, to_rate: int) -> torch.Tensor | np.ndarray:
    """`wave` at `to_rate`, along its last axis; a numpy array comes back as one."""
    if from_rate == to_rate:
        return wave
    if isinstance(wave, np.ndarray):
        return AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), from_rate, to_rate).numpy()
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
    """(..., samples) → (..., n_mels, frames): natural log of the magnitude mel, floored at 1e-5.
    One channel's (or a batch of mono waves'); `features` makes a clip's, in its channels."""
    mel = _mel_transform(settings.mono, str(wave.device))(wave)
    return torch.log(torch.clamp(mel, min=math.exp(LOG_MEL_FLOOR)))


def features(wave: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """A clip's features, what the model encodes: (feature_rows, frames). Mono settings: the
    log-mel of `wave` (1-D, or (channels, samples) downmixed). Stereo, from a (2, samples) wave
    (a 1-D one is centred: its side is silence): the log-mel of the mid ((L + R) / 2), then the
    side's ((L − R) / 2) in `side_bands` bands (`side_pool`)."""
    if settings.channels == 1:
        return log_mel(wave.mean(dim=0) if wave.dim() == 2 else wave, settings)
    if wave.dim() == 1:
        wave = torch.stack([wave, wave])
    mid, side = mid_side(wave)
    return torch.cat([log_mel(mid, settings), side_pool(log_mel(side, settings), settings)])


def mid_side(wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, samples) left/right → (mid, side), each (samples,): (L + R) / 2, (L − R) / 2."""
    return (wave[0] + wave[1]) / 2, (wave[0] - wave[1]) / 2


def side_pool(log_mels: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """(..., n_mels, frames) log-mel → (..., side_bands, frames): each group of n_mels /
    side_bands neighbouring bands' magnitudes summed (what lies above the floor: silence stays at
    the floor), as a log floored where a band is."""
    return pool_bands(log_mels, settings.n_mels // settings.side_bands, LOG_MEL_FLOOR)


def pool_bands(log_mels: torch.Tensor, group: int, log_floor: float) -> torch.Tensor:
    """`side_pool` with its settings spelt out: (..., bands, frames) log magnitudes → each
    `group` neighbouring bands' magnitudes above `exp(log_floor)` summed, as a floored log.
    TorchScript compiles it too: the live model (`distill.live_nets`) pools with it."""
    floor = math.exp(log_floor)
    magnitude = (log_mels.exp() - floor).clamp(min=0)
    shape = list(magnitude.shape)
    grouped = magnitude.reshape(shape[:-2] + [shape[-2] // group, group, shape[-1]]).sum(dim=-2)
    return torch.log(grouped.clamp(min=floor))


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
    inverse_mel = _inverse_mel(settings.mono, str(log_mels.device))
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
    sound has died away (0 for silence). Packs and the vocoder corpus trim tails here. A
    (channels, samples) wave: along its last axis, the loudest channel deciding."""
    magnitude = np.abs(wave).max(axis=0) if wave.ndim == 2 else np.abs(wave)
    peak = float(np.max(magnitude)) if magnitude.size else 0.0
    if peak <= 0:
        return 0
    return int(np.flatnonzero(magnitude >= peak * 10 ** (tail_db / 20))[-1]) + 1


def loudness_lufs(wave: torch.Tensor, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770, K-weighted and gated) of a mono (samples,) or a
    (channels, samples) wave, in LUFS (the channels' powers summed, as BS.1770 does for left and
    right). A sound shorter than one 400 ms gating block is measured padded with silence (the
    gate leaves the padding out); one that the gate finds silent throughout reads as its RMS in
    dBFS, so a quiet sound still has a level to match."""
    wave = wave.detach().float().cpu()
    wave = wave.reshape(1, -1) if wave.dim() < 2 else wave.reshape(-1, wave.shape[-1])
    block = math.ceil(0.4 * sample_rate)
    padded = F.pad(wave, (0, max(0, block - wave.shape[-1])))
    value = float(AF.loudness(padded, sample_rate))
    if math.isfinite(value):
        return value
    return levels(wave)[1] if wave.abs().max() > 0 else -math.inf


def true_peak_dbtp(wave: np.ndarray | torch.Tensor, sample_rate: int) -> float:
    """The true peak of a (samples,) or (channels, samples) wave in dBTP: the largest magnitude
    of the wave 4× oversampled (ITU-R BS.1770-4, annex 2), so the peaks a DAC or a lossy encoder
    makes between samples count. −inf for silence."""
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32)).reshape(-1, np.shape(wave)[-1])
    if x.numel() == 0:
        return -math.inf
    # torchaudio's windowed-sinc polyphase interpolation; the rate only names the ratio
    upsampled = AF.resample(x, sample_rate, 4 * sample_rate)
    return to_dbfs(max(float(upsampled.abs().max()), float(x.abs().max())))


CONTAINERS = ("wav", "flac")
# (container, bits) → soundfile's subtype; 32 is IEEE float (WAV only: FLAC is integer)
SUBTYPES = {("wav", 16): "PCM_16", ("wav", 24): "PCM_24", ("wav", 32): "FLOAT",
            ("flac", 16): "PCM_16", ("flac", 24): "PCM_24"}
EXPORT_RATES = (44100, 48000)


@dataclass(frozen=True)
class OutputFormat:
    """How a finished sound is written for a studio: WAV 16/24-bit or 32-bit float, FLAC 16/24-bit,
    at the model's own rate or resampled to 44.1 or 48 kHz (`sample_rate` None: the model's)."""

    container: str = "wav"
    bits: int = 24
    sample_rate: int | None = None

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS:
            raise DistillError(f"unknown audio format {self.container!r}: choose wav or flac")
        if (self.container, self.bits) not in SUBTYPES:
            allowed = sorted(b for c, b in SUBTYPES if c == self.container)
            raise DistillError(f"{self.container.upper()} takes {', '.join(map(str, allowed))} bits, not {self.bits}"
                               + (" (32-bit float is WAV only)" if self.bits == 32 else ""))
        if self.sample_rate is not None and self.sample_rate not in EXPORT_RATES:
            raise DistillError(f"export sample rate must be 44100 or 48000 Hz, not {self.sample_rate}")

    @property
    def suffix(self) -> str:
        return f".{self.container}"

    def file_name(self, name: str) -> str:
        """`name` with this format's suffix (`kick.wav` → `kick.flac`)."""
        return str(Path(name).with_suffix(self.suffix))

    def rate(self, own_rate: int) -> int:
        return self.sample_rate or own_rate

    @classmethod
    def of_file(cls, path: str | Path, own_rate: int) -> "OutputFormat":
        """The format a sound file was written in (16-bit WAV for one Distill does not write),
        its rate None when it is `own_rate`: so a file made again is written alike."""
        info = sf.info(str(path))
        made = {(container.upper(), subtype): (container, bits) for (container, bits), subtype in SUBTYPES.items()}
        container, bits = made.get((info.format, info.subtype), ("wav", 16))
        return cls(container, bits, None if info.samplerate == own_rate else info.samplerate)

    def describe(self, own_rate: int) -> str:
        """`WAV 24-bit, 48 kHz`, `WAV 32-bit float, 44.1 kHz`."""
        bits = "32-bit float" if self.bits == 32 else f"{self.bits}-bit"
        return f"{self.container.upper()} {bits}, {self.rate(own_rate) / 1000:g} kHz"

    def size_bytes(self, seconds: float, own_rate: int, channels: int) -> int:
        """A file's size at most (FLAC is smaller), for a free-space check before writing."""
        return int(seconds * self.rate(own_rate) * channels * self.bits // 8) + 4096

    def to_dict(self, own_rate: int) -> dict:
        return {"container": self.container, "bits": self.bits, "float": self.bits == 32,
                "sample_rate": self.rate(own_rate)}


def write_sound(path: str | Path, wave: np.ndarray | torch.Tensor, sample_rate: int,
                fmt: OutputFormat = OutputFormat(), normalize: bool = False, outputs: OutputSet | None = None) -> Path:
    """Write a (samples,) or (channels, samples) wave at `sample_rate` to `path` in `fmt`
    (`fmt.file_name` names it), atomically: resampled to `fmt`'s rate if it differs,
    peak-normalised when `normalize`, clipped to full scale for integer formats (a float file
    keeps any level). With `outputs`, the file is one of a set that appears together."""
    wave = np.asarray(wave.detach().cpu() if isinstance(wave, torch.Tensor) else wave, dtype=np.float32)
    rate = fmt.rate(sample_rate)
    wave = resample(wave, sample_rate, rate)
    data = normalize_peak(wave) if normalize else np.nan_to_num(wave)
    if fmt.bits != 32:
        data = np.clip(data, -1, 1)
    if data.ndim == 2:  # (channels, samples) → the (frames, channels) soundfile writes
        data = np.ascontiguousarray(data.T)
    path = Path(path)
    with (outputs.file(path) if outputs else atomic_file(path)) as handle:
        sf.write(handle, data, rate, subtype=SUBTYPES[(fmt.container, fmt.bits)], format=fmt.container.upper())
    return path


def write_wav(path: str | Path, wave: np.ndarray | torch.Tensor, sample_rate: int, bits: int = 16,
              normalize: bool = True) -> Path:
    """Write a 16- or 24-bit WAV at `sample_rate` (`write_sound`), peak-normalised unless told not to."""
    if bits not in (16, 24):
        raise DistillError(f"WAV bit depth must be 16 or 24, not {bits}")
    return write_sound(path, wave, sample_rate, OutputFormat("wav", bits), normalize)


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` → CUDA when present, else CPU. Asking for CUDA without one is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DistillError("--device cuda was asked for, but no CUDA GPU is available (use auto or cpu)")
    if device not in ("cpu", "cuda"):
        raise DistillError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)
