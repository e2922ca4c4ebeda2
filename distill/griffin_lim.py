"""Griffin-Lim phase recovery, the same algorithm as `torchaudio.functional.griffinlim` (fast
Griffin-Lim: momentum 0.99, zero-phase start, Hann window, centred frames) and the same
result to float rounding, about twice as fast on a CPU.

Why not torchaudio's: on this machine its loop spends most of its time outside the FFTs
(torch.istft's general overlap-add, complex abs and division over (frequency, time) in the
transposed layout: 90-110 ms for 1.9 s of audio against 40-60 ms here). Here the frames stay
(time, frequency), the overlap-add is `distill.stft`'s shifted adds, and the phase update is
real arithmetic on the (re, im) view (torch.hypot and complex abs are twice as slow as
square + sqrt here). Generation, transform and previews all invert with it.
"""

from __future__ import annotations

import torch

from distill.stft import istft, overlap_envelope, stft


@torch.no_grad()
def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop: int, n_iter: int = 32,
                momentum: float = 0.99) -> torch.Tensor:
    """(..., freq, frames) linear magnitudes → (..., (frames - 1) · hop) waveform."""
    if n_fft % hop:
        raise ValueError(f"n_fft ({n_fft}) must be a multiple of the hop ({hop})")
    lead = magnitude.shape[:-2]
    target = magnitude.reshape(-1, *magnitude.shape[-2:]).transpose(1, 2).contiguous().float()  # (B, T, F)
    window = torch.hann_window(n_fft, device=target.device)
    frames = target.shape[1]
    envelope = overlap_envelope(window, frames, n_fft, hop)
    length = (frames - 1) * hop
    spec = target.to(torch.complex64)  # zero phase to start: the same mel always gives the same audio
    previous = None
    pull = momentum / (1 + momentum)
    for _ in range(n_iter):
        rebuilt = torch.view_as_real(stft(istft(spec, window, n_fft, hop, length, envelope), window, n_fft, hop))
        angles = rebuilt if previous is None else torch.add(rebuilt, previous, alpha=-pull)
        scale = target / (angles[..., 0].square() + angles[..., 1].square()).sqrt_().add_(1e-16)
        spec = torch.view_as_complex(angles * scale.unsqueeze(-1))
        previous = rebuilt
    return istft(spec, window, n_fft, hop, length, envelope).reshape(*lead, length)
