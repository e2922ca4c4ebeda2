"""The autoencoder: log-mels ⇄ a latent sequence that runs along time, and its loss.

Why this shape (measured on real instrument clips, see benchmarks/bench_quality.py): one
global latent per segment cannot hold a note's attack, pitch and decay at once, so the old
ConvVAE smeared them. Here the encoder is a 1-D convolution stack over time (mel bands as
channels) that keeps one latent frame per `time_stride` mel frames; the decoder mirrors it.
Being fully convolutional, it takes clips of any length, and with no normalisation across
time a frame's output depends only on its neighbourhood (`receptive_field`), so a long input
decoded in overlapping chunks equals the whole decoded at once (see `reconstruct`).

The network works on normalised log-mels internally ((x - mean) / std, with the dataset's
statistics stored in its config) and speaks plain log-mels outside, so its output lives on
the feature scale with no squashing non-linearity; `decode(..., clamp=True)` keeps
inference output inside the range the features can take.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, AudioSettings

# The log-variance the encoder starts from: a posterior std of e^-3 ≈ 0.05, so the sampling
# noise does not drown the latents while the encoder is still learning to use them.
LOGVAR_OFFSET = -6.0


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a ConvVAE. Every layer is built in `__init__` from this alone, so a
    state dict always loads into a fresh model made from the same config."""

    n_mels: int = AudioSettings().n_mels  # feature rows: a stereo model has twice the mel bands (mid, side)
    segment_frames: int = 64  # length of a training window; inference takes any length
    channels: tuple[int, ...] = (64, 128, 128)  # per time resolution: full, /2, /4, ...
    # Channels of the latent sequence: a stereo full-band frame (128 mid + 16 side rows) × 4 frames
    # in 96 numbers, 6x smaller than the mels (what 48 was at 80 mono bands). 48 at full band left
    # dev-pitched held-out at 1.79x the Griffin-Lim ceiling in MR-STFT; 96 (with the lower
    # learning rate) 1.55x (benchmarks/bench_quality.py).
    latent_dim: int = 96
    feature_mean: float = -5.0
    feature_std: float = 3.0
    feature_max: float = 6.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if not self.channels or min(self.channels) < 1:
            raise DistillError("channels must list at least one positive width")
        if self.segment_frames % self.time_stride:
            raise DistillError(f"segment_frames={self.segment_frames} must be divisible by the time stride "
                               f"{self.time_stride}")
        if self.latent_dim < 1:
            raise DistillError("latent size must be at least 1")

    @property
    def time_stride(self) -> int:
        """Mel frames per latent frame."""
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["channels"] = list(self.channels)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        known["channels"] = tuple(known.get("channels", cls.channels))
        return cls(**known)

    def with_feature_stats(self, mean: float, std: float, maximum: float) -> "ModelConfig":
        return replace(self, feature_mean=float(mean), feature_std=float(max(std, 1e-3)),
                       feature_max=float(maximum))


PRESETS: dict[str, ModelConfig] = {
    # For tests and quick looks: an epoch of the example corpus in a second or two on a CPU.
    "tiny": ModelConfig(segment_frames=32, channels=(16, 32, 32), latent_dim=8),
    # For real use.
    "default": ModelConfig(),
}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise DistillError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


class ResidualBlock(nn.Module):
    """x + conv1x1(act(dilated conv3(act(x)))): no normalisation, so frames stay independent
    of the input's length."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, padding_mode="replicate")
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.leaky_relu(self.conv(F.leaky_relu(x, 0.2)), 0.2))


def _zero(layer: nn.Conv1d) -> nn.Conv1d:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _level(channels: int) -> list[nn.Module]:
    return [ResidualBlock(channels, 1), ResidualBlock(channels, 3)]


class ConvVAE(nn.Module):
    """Two paths from log-mels to latents and back, added together:

    - a linear path: each `time_stride` frames (a patch of n_mels × stride values) map to a
      latent frame by one matrix, and back by another. `fit_linear_path` sets them to the
      whitened principal components of the training patches, so training starts from the
      best linear code there is (PCA), not from noise: on 2 CPU cores a run has ~1,100
      steps, far too few for a deep network to learn pitch from scratch.
    - a deep path (residual conv stacks, dilated, one level per time resolution) whose last
      layers start at zero and learn what the linear code cannot: sharp harmonics, attacks.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        ch, patch = config.channels, config.n_mels * config.time_stride
        self.patch_in = nn.Conv1d(patch, 2 * config.latent_dim, 1)
        self.patch_out = nn.Conv1d(config.latent_dim, patch, 1)
        encoder: list[nn.Module] = [nn.Conv1d(config.n_mels, ch[0], 5, padding=2, padding_mode="replicate")]
        for i, width in enumerate(ch):
            encoder += _level(width)
            if i + 1 < len(ch):
                encoder.append(nn.Conv1d(width, ch[i + 1], 4, stride=2, padding=1, padding_mode="replicate"))
        encoder += [nn.LeakyReLU(0.2), _zero(nn.Conv1d(ch[-1], 2 * config.latent_dim, 3, padding=1,
                                                       padding_mode="replicate"))]
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = [nn.Conv1d(config.latent_dim, ch[-1], 3, padding=1, padding_mode="replicate")]
        for i in reversed(range(len(ch))):
            decoder += _level(ch[i])
            if i > 0:
                decoder += [nn.Upsample(scale_factor=2.0, mode="nearest"),
                            nn.Conv1d(ch[i], ch[i - 1], 3, padding=1, padding_mode="replicate")]
        decoder += [nn.LeakyReLU(0.2), _zero(nn.Conv1d(ch[0], config.n_mels, 5, padding=2,
                                                       padding_mode="replicate"))]
        self.decoder = nn.Sequential(*decoder)
        # Until fitted, the linear path is zero too: the model starts at the mean feature.
        for layer in (self.patch_in, self.patch_out):
            _zero(layer)

    @torch.no_grad()
    def fit_linear_path(self, segments: torch.Tensor) -> None:
        """Set the linear path to the whitened PCA of the (B, n_mels, frames) training
        windows' patches. Deterministic (an eigendecomposition of their covariance)."""
        d = self.config.latent_dim
        x = self._patches(self._normalise(segments.float()))  # (B, patch, L)
        x = x.permute(0, 2, 1).reshape(-1, x.shape[1]).double()
        mean = x.mean(dim=0)
        covariance = (x - mean).T @ (x - mean) / max(1, x.shape[0] - 1)
        values, vectors = torch.linalg.eigh(covariance)
        order = values.argsort(descending=True)[:d]
        scale = values[order].clamp(min=1e-6).sqrt()
        basis = vectors[:, order]  # (patch, d), unit columns
        basis = basis * torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))  # fixed signs
        encode = (basis / scale).T  # (d, patch): unit-variance latents, like the prior's
        self.patch_in.weight.zero_()
        self.patch_in.bias.zero_()
        self.patch_in.weight[:d, :, 0] = encode.float()
        self.patch_in.bias[:d] = (-encode @ mean).float()
        self.patch_out.weight[:, :, 0] = (basis * scale).float()
        self.patch_out.bias.copy_(mean.float())

    def _normalise(self, log_mels: torch.Tensor) -> torch.Tensor:
        return (log_mels - self.config.feature_mean) / self.config.feature_std

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, L·stride) → (B, n_mels·stride, L): each latent frame's mel frames."""
        b, n, frames = x.shape
        stride = self.config.time_stride
        return x.reshape(b, n, frames // stride, stride).permute(0, 1, 3, 2).reshape(b, n * stride, frames // stride)

    def _unpatch(self, x: torch.Tensor) -> torch.Tensor:
        b, _, length = x.shape
        stride, n = self.config.time_stride, self.config.n_mels
        return x.reshape(b, n, stride, length).permute(0, 1, 3, 2).reshape(b, n, length * stride)

    @property
    def receptive_field(self) -> int:
        """Mel frames on each side that can influence one output frame (an upper bound)."""
        levels = len(self.config.channels)
        # Per level: two residual blocks (dilations 1 and 3) reach 4 frames at that level's rate.
        encoder = 2 + sum(4 * 2**i + 2**i for i in range(levels)) + 2**levels
        return 2 * encoder + 4

    def encode(self, log_mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n_mels, frames) log-mels → posterior mean and log-variance, each
        (B, latent_dim, ceil(frames / time_stride)). The end is padded with silence."""
        stride = self.config.time_stride
        frames = log_mels.shape[-1]
        if frames % stride:
            log_mels = F.pad(log_mels, (0, stride - frames % stride), value=LOG_MEL_FLOOR)
        x = self._normalise(log_mels)
        mu, logvar = (self.patch_in(self._patches(x)) + self.encoder(x)).chunk(2, dim=1)
        return mu, (logvar + LOGVAR_OFFSET).clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor, clamp: bool = False) -> torch.Tensor:
        """(B, latent_dim, latent frames) → (B, n_mels, latent frames · time_stride) log-mels;
        `clamp` for inference output."""
        x = self._unpatch(self.patch_out(z)) + self.decoder(z)
        log_mels = x * self.config.feature_std + self.config.feature_mean
        if clamp:
            log_mels = log_mels.clamp(LOG_MEL_FLOOR, self.config.feature_max)
        return log_mels

    def forward(self, log_mels: torch.Tensor, generator: torch.Generator | None = None):
        mu, logvar = self.encode(log_mels)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + noise * torch.exp(0.5 * logvar)
        return self.decode(z)[..., : log_mels.shape[-1]], mu, logvar

    @torch.no_grad()
    def encode_long(self, log_mel: torch.Tensor, chunk_frames: int = 4096) -> torch.Tensor:
        """(n_mels, frames) of any length → posterior means (latent_dim, ceil(frames / stride)),
        in overlapping chunks whose margins cover the receptive field, so the result equals
        encoding the whole at once, with memory bounded by the chunk."""
        stride = self.config.time_stride
        margin = -(-self.receptive_field // stride) * stride
        chunk = max(stride, chunk_frames // stride * stride)
        frames = log_mel.shape[-1]
        parts = []
        for start in range(0, frames, chunk):
            lo, hi = max(0, start - margin), min(frames, start + chunk + margin)
            mu, _ = self.encode(log_mel[None, :, lo:hi])
            first = (start - lo) // stride
            parts.append(mu[0, :, first:first + -(-(min(frames, start + chunk) - start) // stride)])
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def decode_long(self, z: torch.Tensor, frames: int | None = None, chunk_latents: int = 1024) -> torch.Tensor:
        """(latent_dim, latent frames) → (n_mels, frames) clamped log-mels, in overlapping
        chunks like `encode_long`; `frames` crops the end (default: all)."""
        stride = self.config.time_stride
        margin = -(-self.receptive_field // stride)
        total = z.shape[-1]
        parts = []
        for start in range(0, total, chunk_latents):
            lo, hi = max(0, start - margin), min(total, start + chunk_latents + margin)
            mel = self.decode(z[None, :, lo:hi], clamp=True)[0]
            first = (start - lo) * stride
            parts.append(mel[:, first:first + (min(total, start + chunk_latents) - start) * stride])
        mel = torch.cat(parts, dim=1)
        return mel if frames is None else mel[:, :frames]

    @torch.no_grad()
    def reconstruct(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(n_mels, frames) → the same shape through the latent (posterior means): what
        `distill transform`, the previews and the benchmarks hear."""
        return self.decode_long(self.encode_long(log_mel), log_mel.shape[-1])


class LossTerms(NamedTuple):
    total: torch.Tensor  # what is optimised: recon + beta * free-bits KL
    recon: torch.Tensor  # the reconstruction loss: log_l1 + spectral_weight · (convergence + envelope)
    kl: torch.Tensor  # KL(q(z|x) || N(0, I)) per latent frame, summed over channels, no free bits
    log_l1: torch.Tensor  # mean L1 between log-mels (nats)
    convergence: torch.Tensor  # spectral convergence of the linear mels, at 1, 2 and 4 frames' pooling
    envelope: torch.Tensor  # mean L1 between the frames' log energies (nats of magnitude)


@dataclass(frozen=True)
class KLSchedule:
    """β ramps linearly from 0 to `beta` over `warmup_epochs`; KL below `free_bits` nats per
    dimension costs nothing, so the encoder can use a little capacity without penalty."""

    beta: float = 0.002
    warmup_epochs: int = 10
    free_bits: float = 0.05

    def beta_at(self, epoch: int) -> float:
        """`epoch` counts from 1."""
        if self.warmup_epochs <= 0:
            return self.beta
        return self.beta * min(1.0, epoch / self.warmup_epochs)


def reconstruction_terms(target: torch.Tensor, decoded: torch.Tensor,
                         feature_max: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log L1, spectral convergence, envelope L1) between (B, n_mels, frames) log-mels.

    L1 on log-mels alone predicts the median in the log domain; once harmonics blur, that
    lies far below the mean energy and the sound comes back quiet. Spectral convergence on
    linear magnitudes weights the loud peaks as the ear and MR-STFT do, and the envelope term
    holds each frame's energy, so level and decay are kept."""
    log_l1 = (decoded - target).abs().mean()
    x, y = target.exp(), decoded.clamp(max=feature_max).exp()
    convergence = target.new_zeros(())
    for pool in (1, 2, 4):
        xp, yp = (F.avg_pool1d(x, pool), F.avg_pool1d(y, pool)) if pool > 1 else (x, y)
        norm = torch.linalg.vector_norm(xp.flatten(1), dim=1).clamp(min=1e-4)
        convergence = convergence + (torch.linalg.vector_norm((xp - yp).flatten(1), dim=1) / norm).mean()
    energy_x = torch.logsumexp(2 * target, dim=1) / 2
    energy_y = torch.logsumexp(2 * decoded.clamp(max=feature_max), dim=1) / 2
    envelope = (energy_x - energy_y).abs().mean()
    return log_l1, convergence / 3, envelope


def vae_loss(target: torch.Tensor, decoded: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float, free_bits: float, feature_max: float, spectral_weight: float = 1.0) -> LossTerms:
    log_l1, convergence, envelope = reconstruction_terms(target, decoded, feature_max)
    recon = log_l1 + spectral_weight * (convergence + envelope)
    # KL per latent frame: (B, D, T) → mean over batch and time, per channel.
    kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(dim=(0, 2))
    kl = kl_per_dim.sum()
    kl_budgeted = kl_per_dim.clamp(min=free_bits).sum()
    return LossTerms(recon + beta * kl_budgeted, recon, kl, log_l1, convergence, envelope)


def latent_frames(frames: int, config: ModelConfig) -> int:
    return math.ceil(frames / config.time_stride)
