"""The centred STFT and its inverse, as `torch.stft` / `torch.istft(center=True)` compute them
and to float rounding the same, in the (batch, frames, frequency) layout and faster on a CPU.

Why not torch.istft: its general overlap-add (a scatter, `unfold_backward`) and the window
envelope it rebuilds on every call cost about twice what `n_fft / hop` shifted adds do
(8.2 against 4.5 ms for 10 s at n_fft 1024, hop 256, on this machine's 2 cores). Griffin-Lim
inverts 33 times per sound and the vocoder 6 times (3 mel-matching steps), so both use these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def overlap_envelope(window: torch.Tensor, frames: int, n_fft: int, hop: int) -> torch.Tensor:
    """Σ window² of the overlapping frames at each output sample (what overlap-add divides by)."""
    overlap = n_fft // hop
    squared = (window ** 2).reshape(overlap, hop)
    total = window.new_zeros(frames + overlap - 1, hop)
    for k in range(overlap):
        total[k:k + frames] += squared[k]
    return total.reshape(-1).clamp(min=1e-11)


def istft(spec: torch.Tensor, window: torch.Tensor, n_fft: int, hop: int, length: int,
          envelope: torch.Tensor | None = None) -> torch.Tensor:
    """(B, frames, freq) complex → (B, length). `n_fft` must be a multiple of `hop`; pass the
    `envelope` when inverting the same number of frames many times."""
    frames = torch.fft.irfft(spec, n=n_fft, dim=-1) * window
    batch, count, _ = frames.shape
    if envelope is None:
        envelope = overlap_envelope(window, count, n_fft, hop)
    overlap = n_fft // hop
    chunks = frames.view(batch, count, overlap, hop)
    out = frames.new_zeros(batch, count + overlap - 1, hop)
    for k in range(overlap):
        out[:, k:k + count] += chunks[:, :, k]
    return (out.view(batch, -1) / envelope)[:, n_fft // 2:n_fft // 2 + length]


def stft(wave: torch.Tensor, window: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(B, samples) → (B, frames, freq) complex, reflect-padded by n_fft/2 at each end."""
    padded = F.pad(wave[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]
    return torch.fft.rfft(padded.unfold(-1, n_fft, hop) * window, dim=-1)
