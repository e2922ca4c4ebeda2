"""How far a sound is from a reference, by the numbers audio papers report.

The definitions follow the reference scorer kept beside the project
(`shared/quality/eval_audio.py`), so figures can be cross-checked:

- `mrstft`: multi-resolution STFT distance (Parallel WaveGAN convention): FFT 512/1024/2048,
  hop FFT/4, periodic Hann, unnormalised; magnitude sqrt(max(|X|², 1e-7)); spectral
  convergence ‖|Y|−|X|‖/‖|Y|‖ plus mean |log|Y| − log|X||, each averaged over resolutions.
- `lsd_active`: log-spectral distance in dB (FFT 2048, hop 512, scaled by 1/Σwindow, power
  floored at −100 dB), averaged over the frames within 60 dB of the reference's loudest:
  silence must not flatter a quiet estimate.
- `mel_distance`: multi-resolution log-mel L1, as vocoder papers report "mel distance"
  (HiFi-GAN's log-mel L1; DAC/BigVGAN over several resolutions): FFT 512/1024/2048 with
  40/80/128 Slaney mel bands over 0..Nyquist, hop FFT/4, natural log of the mel-weighted
  magnitude floored at 1e-5, mean |difference| averaged over resolutions. It compares the
  spectral envelope and ignores phase, so it fits noise (drums), where MR-STFT's spectral
  convergence mostly measures a phase no renderer can know.
- `level_error_db`: RMS level of the estimate minus that of the reference. Nothing is
  normalised anywhere: a level a system loses is an error here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torchaudio

from distill.audio import levels

MR_SIZES = (512, 1024, 2048)
LSD_FFT, LSD_HOP, LSD_FLOOR_DB, ACTIVE_DB = 2048, 512, -100.0, 60.0


def _stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, dtype=torch.float64)
    x = x.double()
    if x.shape[-1] <= n_fft // 2:  # reflect padding needs more samples than half a window
        x = torch.nn.functional.pad(x, (0, n_fft // 2 + 1 - x.shape[-1]))
    return torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)


def spectral_distances(reference: torch.Tensor, estimate: torch.Tensor) -> tuple[float, float]:
    """(spectral convergence, log-magnitude L1), each averaged over FFT 512/1024/2048."""
    convergence = log_magnitude = 0.0
    for n in MR_SIZES:
        ref = _stft(reference, n, n // 4).abs().pow(2).clamp(min=1e-7).sqrt()
        est = _stft(estimate, n, n // 4).abs().pow(2).clamp(min=1e-7).sqrt()
        convergence += float(torch.linalg.vector_norm(ref - est) / torch.linalg.vector_norm(ref))
        log_magnitude += float((ref.log() - est.log()).abs().mean())
    return convergence / len(MR_SIZES), log_magnitude / len(MR_SIZES)


def lsd_active(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    window_sum = float(torch.hann_window(LSD_FFT, dtype=torch.float64).sum())
    power = lambda x: (_stft(x, LSD_FFT, LSD_HOP).abs() / window_sum).pow(2)  # noqa: E731
    ref, est = power(reference), power(estimate)
    floor = 10 ** (LSD_FLOOR_DB / 10)
    per_frame = (10 * ref.clamp(min=floor).log10() - 10 * est.clamp(min=floor).log10()).pow(2).mean(dim=0).sqrt()
    energy = ref.sum(dim=0)
    active = energy >= energy.max() * 10 ** (-ACTIVE_DB / 10)
    return float(per_frame[active].mean()) if bool(active.any()) else math.nan


MEL_SIZES = ((512, 40), (1024, 80), (2048, 128))  # (FFT, mel bands)
MEL_FLOOR = 1e-5
_mel_banks: dict[tuple[int, int, int], torch.Tensor] = {}


def _mel_bank(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    key = (n_fft, n_mels, sample_rate)
    if key not in _mel_banks:
        _mel_banks[key] = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate, norm="slaney", mel_scale="slaney").double()
    return _mel_banks[key]


def mel_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Multi-resolution log-mel L1 (see the module docstring)."""
    total = 0.0
    for n_fft, n_mels in MEL_SIZES:
        bank = _mel_bank(n_fft, n_mels, sample_rate)
        log_mel = lambda x: (_stft(x, n_fft, n_fft // 4).abs().transpose(-1, -2) @ bank).clamp(min=MEL_FLOOR).log()  # noqa: E731,E501
        total += float((log_mel(reference) - log_mel(estimate)).abs().mean())
    return total / len(MEL_SIZES)


PRE_ECHO_SECONDS, ATTACK_SECONDS, ONSET_SHARE = 0.02, 0.1, 0.1


def pre_echo_db(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float:
    """Energy of `estimate` in the 20 ms before the reference's attack (its first sample above
    a tenth of its peak), in dB relative to the reference's first 100 ms from the attack: how
    much of the onset a renderer smears backwards in time (a mel frame's window reaches 23 ms
    before its centre). The reference's own figure is the floor."""
    magnitude = reference.abs()
    onset = int(torch.argmax((magnitude > ONSET_SHARE * float(magnitude.max())).to(torch.uint8)))
    before = estimate[max(0, onset - round(PRE_ECHO_SECONDS * sample_rate)):onset].double()
    attack = reference[onset:onset + round(ATTACK_SECONDS * sample_rate)].double()
    energy = lambda x: float(x.pow(2).mean()) if x.numel() else 0.0  # noqa: E731
    return 10 * math.log10(max(energy(before), 1e-24) / max(energy(attack), 1e-24))


# The level given to silence (an RMS of 1e-12), so a level error stays a finite number.
SILENCE_DB = -240.0


def rms_db(x: torch.Tensor) -> float:
    return max(levels(x)[1], SILENCE_DB)


@dataclass(frozen=True)
class Distance:
    mrstft: float  # convergence + log_magnitude
    convergence: float
    log_magnitude: float
    lsd_active: float  # dB
    level_error_db: float  # estimate's RMS level minus the reference's
    mel_distance: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int = 22050) -> Distance:
    """Both (samples,) at `sample_rate`; cropped to the shorter."""
    n = min(reference.shape[-1], estimate.shape[-1])
    reference, estimate = reference[..., :n].cpu(), estimate[..., :n].cpu()
    convergence, log_magnitude = spectral_distances(reference, estimate)
    return Distance(convergence + log_magnitude, convergence, log_magnitude, lsd_active(reference, estimate),
                    rms_db(estimate) - rms_db(reference), mel_distance(reference, estimate, sample_rate))
