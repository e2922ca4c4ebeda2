"""The attack guard: no more energy before an attack than the mel's own frames allow.

A mel frame's window reaches 23 ms before its centre (n_fft 2048 at 44.1 kHz), and a
renderer whose phase does not place an onset late enough in that window spreads the attack
backwards over it: pre-echo, a softened attack. Griffin-Lim does it too (on the dev corpora the
20 ms before an attack carry -15 dB of the attack's energy where the clip has -34 dB).

The frames bound it. A frame's windowed energy E_t = Σ_n w²(n − c_t)·x²(n) is a sum of
non-negative terms, so no single stretch of the signal can hold more than E_t / w²(n − c_t):
a frame that is nearly silent at its centre says the signal is nearly silent there, whatever
its neighbours hold. The guard takes each sample's tightest bound over the frames that cover
it (the frames' energies as the INPUT mel says they are) and turns down, never up, the
stretches of the output whose short-time energy exceeds it. The mel gives band magnitudes,
not the frame energy itself, so the target's E_t is the output's own exact windowed energy
times the ratio of the two mels' energy estimates (a band's magnitude squared over its
filter's weight): the estimate's own bias cancels.

Parameter-free; gradients pass through the output, the gain counts as fixed. It cannot place
the onset within the last hop before it (the frames do not resolve that), only clear what
lies a hop or more earlier: the measured effect is in `benchmarks/bench_vocoder.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Headroom over the bound (dB): the two mels' energy estimates are estimates.
MARGIN_DB = 3.0
# The guard works on blocks of a sixteenth of a hop (32 samples, 0.7 ms at 44.1 kHz with hop
# 512), and its gain is interpolated between them: finer than any attack, and far cheaper than
# per sample. Tied to the hop, so the time constants below are the same at any rate.
BLOCKS_PER_HOP = 16
# Blocks over which the output's short-time energy is measured (4: 2.9 ms) and over which the
# gain is spread (5): short enough to follow an attack, long enough not to ring.
ENERGY_BLOCKS, GAIN_BLOCKS = 4, 5
# Window weights below this do not bound anything (a window's edge says little of its frame).
WINDOW_FLOOR = 1e-3


def energy_estimate(log_mels: torch.Tensor, band_weight: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, T) log-mels → (B, T): each frame's energy as its mel bands imply it (a
    band's magnitude squared over its filter's total weight: exact for a flat spectrum)."""
    return (torch.exp(2 * log_mels) / band_weight.view(1, -1, 1)).sum(dim=1)


def guard_attacks(wave: torch.Tensor, target_log_mels: torch.Tensor, output_log_mels: torch.Tensor,
                  band_weight: torch.Tensor, window: torch.Tensor, hop: int, margin_db: float = MARGIN_DB,
                  blocks_per_hop: int = BLOCKS_PER_HOP, energy_blocks: int = ENERGY_BLOCKS,
                  gain_blocks: int = GAIN_BLOCKS, window_floor: float = WINDOW_FLOOR) -> torch.Tensor:
    """(B, frames·hop) `wave` (frame t centred on sample t·hop, `output_log_mels` its own
    log-mels) turned down wherever its short-time energy exceeds what `target_log_mels`'
    frames allow. Unchanged when the window is not a whole number of hops, or a hop of blocks.
    (The constants come in as defaults so that `torch.jit.script` compiles it: `distill.live`.)"""
    n_fft, block = window.shape[0], max(1, hop // blocks_per_hop)
    batch, frames, length = wave.shape[0], target_log_mels.shape[-1], wave.shape[-1]
    if n_fft % hop != 0 or hop % block != 0 or length != frames * hop:
        return wave
    overlap, per_hop, per_window = n_fft // hop, hop // block, n_fft // block
    energy = wave.pow(2).view(batch, 1, -1, block).mean(-1)  # (B, 1, blocks)
    w2 = window.pow(2).view(per_window, block)
    # each frame's windowed energy in the output, from its blocks ...
    padded = F.pad(energy, (per_window // 2, per_window // 2))
    windowed = F.conv1d(padded, (w2.mean(-1) * block).view(1, 1, -1), stride=per_hop)[:, 0, :frames]
    # ... and what the input mel says it should be
    ratio = energy_estimate(target_log_mels, band_weight) / energy_estimate(output_log_mels, band_weight).clamp(min=1e-30)
    # the most each block a frame covers may hold: its windowed energy over the block's window weight
    allowed = (ratio * windowed).unsqueeze(-1) / (w2.amax(-1) * block).clamp(min=window_floor * block)  # (B, T, per_window)
    # Frame t's window covers hops t - overlap/2 ... t + overlap/2 - 1: each block takes its
    # tightest bound over the `overlap` frames that cover it.
    parts = allowed.view(batch, frames, overlap, per_hop)
    bound = torch.full((batch, frames + overlap, per_hop), float("inf"), dtype=wave.dtype, device=wave.device)
    for part in range(overlap):
        bound = torch.minimum(bound, F.pad(parts[:, :, part], (0, 0, part, overlap - part), value=float("inf")))
    bound = bound[:, overlap // 2:overlap // 2 + frames].reshape(batch, 1, -1)
    short_time = F.avg_pool1d(energy, energy_blocks, 1, energy_blocks // 2, count_include_pad=False)[..., :bound.shape[-1]]
    gain = (10 ** (margin_db / 10) * bound / short_time.clamp(min=1e-20)).clamp(1e-12, 1.0).sqrt()
    # the smallest gain nearby, then smoothed and interpolated: a gain that jumps would click
    gain = -F.max_pool1d(-gain, gain_blocks, 1, gain_blocks // 2)
    gain = F.avg_pool1d(gain, gain_blocks, 1, gain_blocks // 2, count_include_pad=False)
    gain = F.interpolate(gain, size=length, mode="linear", align_corners=False)[:, 0]
    # Trained through as a fixed gain: its slope over a near-silent stretch (a ratio of tiny
    # energies) is unbounded, and there is nothing in it for the network to learn.
    return wave * gain.detach()
