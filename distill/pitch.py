"""The pitch of a one-shot: YIN on its sustained part, with a confidence.

Why YIN (de Cheveigné & Kawahara, 2002) written here rather than torchaudio's
`detect_pitch_frequency`: YIN's cumulative-mean-normalised difference takes the first dip
under a threshold, which is what keeps it off the octave below (the classic autocorrelation
error on plucked and struck notes, whose second harmonic is often louder than the first), and
the depth of that dip is a confidence for free: how periodic the frame is. torchaudio's picks
the highest normalised cross-correlation peak, with no confidence, and was measured on the
dev-pitched corpus at a lower share within 50 cents (`benchmarks/bench_instrument.py`).

A note's pitch is the median over its voiced frames (aperiodicity under `THRESHOLD`) from
the end of its attack, where it is loudest and steadiest, to where it has fallen 30 dB: an
attack's noise and a tail's beating both mislead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RATE = 22050  # analysed at this rate: enough for fundamentals up to ~2 kHz (MIDI 95), twice as fast
FRAME = 2048  # 93 ms at 22.05 kHz: two periods of 21.5 Hz
HOP = 256
LOWEST_HZ, HIGHEST_HZ = 30.0, 2000.0
THRESHOLD = 0.15  # a dip of the normalised difference under this is a period (YIN's absolute threshold)
SPAN_DB = 30.0  # frames within this of the loudest are the sustained part that is read


@dataclass(frozen=True)
class Pitch:
    """hz: the note's fundamental, or None when it is not pitched; confidence 0..1: the share
    of its frames that were voiced times how periodic they were (1 - their median dip)."""

    hz: float | None
    confidence: float

    @property
    def midi(self) -> float | None:
        return None if self.hz is None else 69.0 + 12.0 * math.log2(self.hz / 440.0)


def _difference(frames: np.ndarray, max_lag: int) -> np.ndarray:
    """(n, max_lag) YIN's difference function d(τ) of each frame, through the FFT."""
    n = frames.shape[1]
    window = n - max_lag
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(frames, size)
    correlation = np.fft.irfft(spectrum[:, :] * np.conj(np.fft.rfft(frames[:, :window], size)), size)[:, :max_lag]
    energy = np.cumsum(frames ** 2, axis=1)
    head = energy[:, window - 1][:, None]
    shifted = energy[:, window - 1:window - 1 + max_lag] - np.concatenate(
        [np.zeros((frames.shape[0], 1)), energy[:, :max_lag - 1]], axis=1)
    return head + shifted - 2 * correlation


def _normalised(d: np.ndarray) -> np.ndarray:
    """YIN's cumulative-mean-normalised difference d'(τ) (d'(0) = 1)."""
    out = np.ones_like(d)
    cumulative = np.cumsum(d[:, 1:], axis=1)
    lags = np.arange(1, d.shape[1])
    out[:, 1:] = d[:, 1:] * lags / np.maximum(cumulative, 1e-12)
    return out


def detect_pitch(wave: np.ndarray, sample_rate: int) -> Pitch:
    """The pitch of a one-shot (float samples, mono or (channels, samples))."""
    import torch

    from distill.audio import resample

    mono = np.asarray(wave, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if sample_rate != RATE:
        mono = resample(torch.from_numpy(np.ascontiguousarray(mono)), sample_rate, RATE).numpy()
    if mono.shape[0] < FRAME + HOP:
        mono = np.pad(mono, (0, FRAME + HOP - mono.shape[0]))
    count = 1 + (mono.shape[0] - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(mono, FRAME)[::HOP][:count].astype(np.float64)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-20)
    peak = int(np.argmax(level))
    sustained = np.arange(count) >= peak
    sustained &= level >= level[peak] - SPAN_DB
    frames = frames[sustained]
    if not frames.shape[0] or level[peak] < -100:
        return Pitch(None, 0.0)
    min_lag, max_lag = int(RATE / HIGHEST_HZ), int(RATE / LOWEST_HZ) + 2
    dips = _normalised(_difference(frames, max_lag))
    periods, depths = [], []
    for row in dips:
        under = np.nonzero(row[min_lag:max_lag - 1] < THRESHOLD)[0]
        if not under.size:
            continue
        lag = min_lag + int(under[0])
        while lag + 1 < max_lag - 1 and row[lag + 1] < row[lag]:  # down to the bottom of this dip
            lag += 1
        a, b, c = row[lag - 1], row[lag], row[lag + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) > 0 else 0.0
        periods.append(lag + float(np.clip(shift, -0.5, 0.5)))
        depths.append(b)
    if not periods:
        return Pitch(None, 0.0)
    voiced = len(periods) / frames.shape[0]
    hz = RATE / float(np.median(periods))
    return Pitch(hz, round(float(voiced * (1 - np.median(depths))), 3))
