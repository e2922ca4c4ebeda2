"""How far a sound is from a reference, by the numbers audio papers report.

The definitions follow the reference scorer kept beside the project
(`shared/quality/eval_audio.py`), so figures can be cross-checked:

- `mrstft`: multi-resolution STFT distance (Parallel WaveGAN convention): FFT 512/1024/2048,
  hop FFT/4, periodic Hann, unnormalised; magnitude sqrt(max(|X|², 1e-7)); spectral
  convergence ‖|Y|−|X|‖/‖|Y|‖ plus mean |log|Y| − log|X||, each averaged over resolutions.
- `lsd_active`: log-spectral distance in dB (FFT 2048, hop 512, scaled by 1/Σwindow, power
  floored at −100 dB), averaged over the frames within 60 dB of the reference's loudest:
  silence must not flatter a quiet estimate.
- `level_error_db`: RMS level of the estimate minus that of the reference. Nothing is
  normalised anywhere: a level a system loses is an error here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

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

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def distance(reference: torch.Tensor, estimate: torch.Tensor) -> Distance:
    """Both (samples,) at the same rate; cropped to the shorter."""
    n = min(reference.shape[-1], estimate.shape[-1])
    reference, estimate = reference[..., :n].cpu(), estimate[..., :n].cpu()
    convergence, log_magnitude = spectral_distances(reference, estimate)
    return Distance(convergence + log_magnitude, convergence, log_magnitude, lsd_active(reference, estimate),
                    rms_db(estimate) - rms_db(reference))
