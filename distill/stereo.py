"""Stereo as mid and side: how a stereo model's features become two coherent channels.

A stereo clip's features are the log-mel of its mid, M = (L + R) / 2, and below it the side,
S = (L − R) / 2, in 16 bands (`distill.audio.features`), and the model carries both in one
latent trajectory. Synthesis voices the mid like a mono sound (vocoder or Griffin-Lim), then
makes the side *from the mid*: the mid's spectrum turned a quarter cycle (−90°, a Hilbert
transform) and scaled, band by band and frame by frame, to the side's level.

Why not voice the side on its own, or left and right apart: a vocoder is deterministic, so a
side mel shaped like the mid's comes back as a scaled copy of the mid (the image collapses to
a pan), and two independent Griffin-Lim passes decorrelate the channels at random (measured
on real drums: correlation off by 0.17 from the original's). A quarter-cycle turn makes the
side orthogonal to the mid in every bin, so their cross term vanishes: the side-to-mid energy
ratio is the one the side's mel asks for and the left/right correlation follows from it,
(M² − S²) / (M² + S²), with the mid's attacks and pitch shared by both channels. This is
parametric stereo's recipe (a mono signal and a decorrelated copy shaped per band), with the
quadrature copy as the decorrelator. What it cannot hold is a source panned to one side with
no width of its own: its side is in phase with its mid, and here it comes back centred and
wide instead (the level difference between the channels is lost). And the side's level is a sum
of band magnitudes: right when the side has the mid's character (as a recorded instrument's
does: the dev corpora's stereo clips keep their side-to-mid ratio within 0.1 dB, voiced from
their own features), up to ~3 dB loud when a noise-like side lies under a tonal mid. (Band
power instead held that case within 1.6 dB but cost the model's mid: dev-pitched level −2.3 dB
and MR-STFT 0.687 against −0.1 dB and 0.637.)
"""

from __future__ import annotations

import functools
import math

import torch

from distill.audio import LOG_MEL_FLOOR, AudioSettings, log_mel, side_pool
from distill.vocoder.network import mel_bin_weights

# The most the side may be raised above the turned mid in one band (nats: +20 dB). A side far
# louder than its mid is out-of-phase content the mid cannot carry; beyond this the turned
# mid's own noise floor would be what is amplified.
SIDE_GAIN_LIMIT = 20 * math.log(10) / 20
# Passes of measure-and-scale: a scaled spectrum is not quite the spectrum of its inverse, so
# one pass leaves part of each correction undone (two bring the side within ~0.5 dB).
SIDE_MATCH_PASSES = 2


def left_right(mid: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """(mid, side) → (2, samples) left/right: `distill.audio.mid_side` undone."""
    return torch.stack([mid + side, mid - side])


def _window(settings: AudioSettings, device: torch.device) -> torch.Tensor:
    return torch.hann_window(settings.n_fft, device=device)


@functools.lru_cache(maxsize=8)
def _bin_weights(settings: AudioSettings, device: torch.device) -> torch.Tensor:
    # the vocoder's own spread of band gains to bins; made once (it took 6 % of a short sound)
    return mel_bin_weights(settings.mono).to(device)


def side_from_mid(mid: torch.Tensor, side_features: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """The side for a voiced `mid` (samples,): the mid turned −90° in every bin, scaled per side
    band and frame to `side_features` ((side_bands, frames): `distill.audio.side_pool` of the
    side's log-mel). Deterministic; silence where the side is at the floor."""
    n_fft, hop, device = settings.n_fft, settings.hop_length, mid.device
    window, weights = _window(settings, device), _bin_weights(settings, device)
    length = mid.shape[-1]
    spec = torch.stft(mid, n_fft, hop, window=window, center=True, return_complex=True) * -1j
    frames = min(side_features.shape[-1], spec.shape[-1])
    target = side_features[:, :frames].to(device).clamp(min=LOG_MEL_FLOOR)
    silent = target <= LOG_MEL_FLOOR + 1e-3
    group = settings.n_mels // settings.side_bands
    side = torch.istft(spec, n_fft, hop, window=window, center=True, length=length)  # the turned mid
    for _ in range(SIDE_MATCH_PASSES):
        own = side_pool(log_mel(side, settings), settings)[:, :frames]
        # a band at the floor asks for silence: no gain is small enough to reach it from a loud mid
        gain = torch.where(silent, torch.full_like(target, -50.0), (target - own).clamp(max=SIDE_GAIN_LIMIT))
        scale = torch.exp(weights @ gain.repeat_interleave(group, dim=0))
        spec = torch.cat([spec[:, :frames] * scale, spec[:, frames:] * 0], dim=1)
        side = torch.istft(spec, n_fft, hop, window=window, center=True, length=length)
    return side
