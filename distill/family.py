"""Do generated sounds belong to the family of the clips? Listening by numbers.

Per sound (mono at 22.05 kHz; active frames = within 60 dB of the loudest):
  prominence  dB of the 5 strongest bins of the mean power spectrum over its median bin
              (pitched one-shots sit around 65-75 dB; smeared or noisy sound much lower)
  flatness    median spectral flatness of the active frames (0 tonal ... 1 white noise)
  decay       dB of the second half of the active region against the first (one-shots fall)
  centroid    spectral centroid in Hz
A sound's feature vector is those four plus the means and spreads of 20 MFCCs. Across sets:
  family MMD²  RBF-kernel maximum mean discrepancy between two sets' standardised vectors
               (0 = one distribution), read beside the real clips' split-half floor;
  novelty      median distance from a generated sound to its nearest training clip, over the
               median nearest-neighbour spacing of the training clips (≈1: as far from them
               as they are from each other; ≪1: copies).
The definitions follow `shared/quality/gen_eval.py` (the reference scorer) so the two can be
cross-checked; this is the project's own implementation, in torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from distill.audio import resample

RATE = 22050
N_FFT, HOP = 2048, 512
N_MELS, N_MFCC = 40, 20
ACTIVE_DB = 60.0


@dataclass(frozen=True)
class SoundStats:
    prominence: float
    flatness: float
    decay: float
    centroid: float
    vector: np.ndarray  # 44 values: 20 MFCC means, 20 MFCC spreads, the four above (centroid in kHz)


def _mel_bank() -> torch.Tensor:
    """Triangular mel filters (HTK mel scale) over the rFFT bins, as gen_eval.py builds them."""
    freqs = torch.linspace(0, RATE / 2, N_FFT // 2 + 1, dtype=torch.float64)
    to_mel = lambda hz: 2595 * math.log10(1 + hz / 700)  # noqa: E731
    points = 700 * (10 ** (torch.linspace(0, to_mel(RATE / 2), N_MELS + 2, dtype=torch.float64) / 2595) - 1)
    bank = torch.zeros(N_MELS, freqs.shape[0], dtype=torch.float64)
    for i in range(N_MELS):
        lo, mid, hi = points[i:i + 3]
        bank[i] = torch.minimum((freqs - lo) / (mid - lo + 1e-9), (hi - freqs) / (hi - mid + 1e-9)).clamp(min=0)
    return bank


def _dct_matrix() -> torch.Tensor:
    """Orthonormal DCT-II (N_MFCC × N_MELS)."""
    n = torch.arange(N_MELS, dtype=torch.float64)
    k = torch.arange(N_MFCC, dtype=torch.float64)[:, None]
    matrix = torch.cos(math.pi / N_MELS * (n + 0.5) * k) * math.sqrt(2 / N_MELS)
    matrix[0] /= math.sqrt(2)
    return matrix


MEL_BANK, DCT = _mel_bank(), _dct_matrix()


def sound_stats(wave: torch.Tensor, sample_rate: int) -> SoundStats:
    """The family features of one sound (any level: every feature but MFCC 0 ignores it)."""
    x = wave.detach().double().cpu().reshape(-1)
    if sample_rate != RATE:
        x = resample(x.float(), sample_rate, RATE).double()
    x = torch.nn.functional.pad(x, (0, max(0, N_FFT - x.shape[0])))
    spec = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT, dtype=torch.float64), center=True,
                      return_complex=True)
    # scaled as scipy.signal.stft scales (by the window sum), so MFCC 0 reads as in gen_eval.py
    power = (spec.abs() / torch.hann_window(N_FFT, dtype=torch.float64).sum()).pow(2) + 1e-12
    energy = power.sum(0)
    active = energy > energy.max() * 10 ** (-ACTIVE_DB / 10)
    if int(active.sum()) < 2:
        active[:] = True
    frames = power[:, active]
    mean_spectrum = frames.mean(1)
    prominence = 10 * math.log10(float(mean_spectrum.sort().values[-5:].mean() / mean_spectrum.median()))
    flatness = float((frames.log().mean(0).exp() / frames.mean(0)).median())
    level = 10 * torch.log10(energy[active] / energy.max())
    half = max(1, level.shape[0] // 2)
    decay = float(level[half:].mean() - level[:half].mean())
    freqs = torch.linspace(0, RATE / 2, power.shape[0], dtype=torch.float64)
    centroid = float((freqs[:, None] * frames).sum(0).mean() / frames.sum(0).mean())
    mfcc = DCT @ torch.log(MEL_BANK @ frames + 1e-10)
    vector = torch.cat([mfcc.mean(1), mfcc.std(1, correction=0),
                        torch.tensor([prominence, flatness, decay, centroid / 1000], dtype=torch.float64)])
    return SoundStats(prominence, flatness, decay, centroid, vector.numpy())


def standardise(reference: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Every set scaled by the reference set's mean and spread per feature."""
    mean, spread = reference.mean(0), reference.std(0) + 1e-9
    return [(s - mean) / spread for s in (reference, *others)]


def mmd2(a: np.ndarray, b: np.ndarray) -> float:
    """RBF-kernel MMD² with the median squared distance as bandwidth (as gen_eval.py)."""
    z = np.vstack([a, b])
    d = ((z[:, None] - z[None]) ** 2).sum(-1)
    k = np.exp(-d / np.median(d[d > 0]))
    n = len(a)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def split_half_floor(real: np.ndarray, seed: int = 0) -> float:
    """MMD² between two random halves of the real set: what 'the same family' scores."""
    order = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    return mmd2(real[order[:half]], real[order[half:]])


def _nearest_neighbour_distances(vectors: np.ndarray) -> np.ndarray:
    """Each vector's distance to the nearest other one in its set."""
    between = np.sqrt(((vectors[:, None] - vectors[None]) ** 2).sum(-1))
    np.fill_diagonal(between, np.inf)
    return between.min(1)


def novelty(generated: np.ndarray, training: np.ndarray) -> float:
    """Median nearest-training distance of the generated sounds / median NN spacing of the
    training clips (all vectors standardised alike)."""
    nearest = np.sqrt(((generated[:, None] - training[None]) ** 2).sum(-1)).min(1)
    return float(np.median(nearest) / np.median(_nearest_neighbour_distances(training)))


def closest_pairs(vectors: np.ndarray, spacing_from: np.ndarray) -> tuple[float, float]:
    """(smallest, median) distance between two sounds of one set, in units of the median
    nearest-neighbour spacing of `spacing_from` (the training clips): how near the closest
    two generated sounds are to being the same sound."""
    within = _nearest_neighbour_distances(vectors)
    unit = float(np.median(_nearest_neighbour_distances(spacing_from)))
    return float(within.min()) / unit, float(np.median(within)) / unit
