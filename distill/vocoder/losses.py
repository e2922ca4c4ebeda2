"""Losses for training the vocoder, and the distances the benchmark reports.

Training: L1 between log-mels (made by `distill.audio.log_mel`, the same function that makes
the vocoder's input), a multi-resolution STFT loss, least-squares adversarial losses and
feature matching (HiFi-GAN's recipe). Measuring: `mrstft_distance` and
`log_spectral_distance` compare any waveform with the original, Griffin-Lim's or ours.
"""

from __future__ import annotations

import functools
import math

import torch

from distill.audio import AudioSettings, log_mel

# (n_fft, hop) pairs for the MR-STFT loss and distance: short, medium and long windows.
STFT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))


@functools.lru_cache(maxsize=16)
def _window(n_fft: int, device: str) -> torch.Tensor:
    return torch.hann_window(n_fft, device=device)


def _magnitude(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    spec = torch.stft(wave, n_fft, hop, window=_window(n_fft, str(wave.device)), center=True, return_complex=True)
    # The epsilon inside the sqrt keeps the gradient finite where a bin is exactly zero.
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)


def mrstft_loss(output: torch.Tensor, target: torch.Tensor,
                resolutions: tuple[tuple[int, int], ...] = STFT_RESOLUTIONS) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + mean |log magnitude difference|
    (Parallel WaveGAN). Batched: (B, samples) each; 0 for identical signals."""
    total = output.new_zeros(())
    for n_fft, hop in resolutions:
        out, ref = _magnitude(output, n_fft, hop), _magnitude(target, n_fft, hop)
        convergence = torch.linalg.norm(ref - out, dim=(-2, -1)) / torch.linalg.norm(ref, dim=(-2, -1)).clamp(min=1e-5)
        log_mag = (torch.log(ref.clamp(min=1e-5)) - torch.log(out.clamp(min=1e-5))).abs().mean(dim=(-2, -1))
        total = total + (convergence + log_mag).mean()
    return total / len(resolutions)


def spectral_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spectral convergence + mean |log-magnitude difference| between two complex spectra
    (B, bins, T): the head's prediction and the target's STFT."""
    out, ref = predicted.abs(), target.abs()
    convergence = torch.linalg.norm(ref - out, dim=(-2, -1)) / torch.linalg.norm(ref, dim=(-2, -1)).clamp(min=1e-5)
    log_mag = (torch.log(ref.clamp(min=1e-5)) - torch.log(out.clamp(min=1e-5))).abs().mean(dim=(-2, -1))
    return (convergence + log_mag).mean()


def _anti_wrapped(x: torch.Tensor) -> torch.Tensor:
    """|x| after wrapping to (-π, π]: the distance between two angles."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def phase_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """APNet's group-delay and instantaneous-frequency losses (phase differences along
    frequency and along time, anti-wrapped), weighted by the target's magnitude so that
    the phase of silence, which is noise, costs nothing. Differences, not absolute phase:
    where a steady partial starts its phase is arbitrary, how it advances is not."""
    weight = target.abs()
    phase, guess = target.angle(), predicted.angle()

    def weighted(error: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (error * w).sum() / w.sum().clamp(min=1e-8)

    group_delay = weighted(_anti_wrapped(torch.diff(guess, dim=1) - torch.diff(phase, dim=1)),
                           torch.minimum(weight[:, 1:], weight[:, :-1]))
    frequency = weighted(_anti_wrapped(torch.diff(guess, dim=2) - torch.diff(phase, dim=2)),
                         torch.minimum(weight[..., 1:], weight[..., :-1]))
    return group_delay + frequency


def mel_loss(output: torch.Tensor, target_log_mels: torch.Tensor, settings: AudioSettings) -> torch.Tensor:
    """L1 between the output's log-mels and the target's, in nats."""
    return (log_mel(output, settings) - target_log_mels).abs().mean()


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Least-squares GAN: real scores pushed to 1, fake to 0."""
    return sum(((1 - r) ** 2).mean() + (f ** 2).mean() for (r, _), (f, _) in zip(real, fake))


def generator_adversarial_loss(fake: list) -> torch.Tensor:
    return sum(((1 - f) ** 2).mean() for f, _ in fake)


def feature_matching_loss(real: list, fake: list) -> torch.Tensor:
    total = 0.0
    for (_, real_features), (_, fake_features) in zip(real, fake):
        for r, f in zip(real_features, fake_features):
            total = total + (r.detach() - f).abs().mean()
    return total


# -- the benchmark's distances ------------------------------------------------------------

def _aligned(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    length = min(output.shape[-1], target.shape[-1])
    return output[..., :length].float(), target[..., :length].float()


@torch.no_grad()
def mrstft_distance(output: torch.Tensor, target: torch.Tensor) -> float:
    """The MR-STFT loss as a distance (lower is closer; 0 is identical)."""
    output, target = _aligned(output, target)
    return float(mrstft_loss(output.reshape(1, -1), target.reshape(1, -1)))


@torch.no_grad()
def log_spectral_distance(output: torch.Tensor, target: torch.Tensor, n_fft: int = 2048, hop: int = 512,
                          floor: float = 1e-5) -> float:
    """LSD in dB: per frame, the RMS over frequency of the difference of 10·log10 power
    spectra; averaged over frames. Powers are floored at `floor`² (the log-mel floor as a
    magnitude) so bins both signals leave silent do not count."""
    output, target = _aligned(output, target)
    power_out = _magnitude(output.reshape(1, -1), n_fft, hop).pow(2).clamp(min=floor ** 2)
    power_ref = _magnitude(target.reshape(1, -1), n_fft, hop).pow(2).clamp(min=floor ** 2)
    difference = 10 * torch.log10(power_ref) - 10 * torch.log10(power_out)
    return float(difference.pow(2).mean(dim=-2).sqrt().mean())
