"""The convolutional VAE on log-mel segments, and its β-VAE loss.

The network works on normalised log-mels internally ((x - mean) / std, with the dataset's
statistics stored in its config) and speaks plain log-mels outside, so its output lives on
the feature scale with no squashing non-linearity; `decode(..., clamp=True)` keeps
inference output inside the range the features can take.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import torch
from torch import nn

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a ConvVAE. Every layer is built in `__init__` from this alone, so a
    state dict always loads into a fresh model made from the same config."""

    n_mels: int = 80
    segment_frames: int = 64
    channels: tuple[int, ...] = (32, 64, 128, 256)
    latent_dim: int = 32
    feature_mean: float = -5.0
    feature_std: float = 3.0
    feature_max: float = 6.0

    def __post_init__(self) -> None:
        stride = 2 ** len(self.channels)
        for name in ("n_mels", "segment_frames"):
            if getattr(self, name) % stride:
                raise DistillError(f"{name}={getattr(self, name)} must be divisible by {stride} "
                                   f"({len(self.channels)} downsampling layers)")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

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
    # For tests and quick looks: an epoch of the example corpus in a few seconds on a laptop CPU.
    "tiny": ModelConfig(segment_frames=32, channels=(8, 16, 32), latent_dim=8),
    # For real use.
    "default": ModelConfig(segment_frames=64, channels=(32, 64, 128, 256), latent_dim=32),
}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise DistillError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def _groups(channels: int) -> int:
    return max(1, min(8, channels // 4))


class ConvVAE(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        down: list[nn.Module] = []
        in_ch = 1
        for out_ch in ch:
            down += [nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1), nn.GroupNorm(_groups(out_ch), out_ch),
                     nn.LeakyReLU(0.2)]
            in_ch = out_ch
        self.encoder = nn.Sequential(*down)
        factor = 2 ** len(ch)
        self.bottom_shape = (ch[-1], config.n_mels // factor, config.segment_frames // factor)
        flat = ch[-1] * self.bottom_shape[1] * self.bottom_shape[2]
        self.to_latent = nn.Linear(flat, 2 * config.latent_dim)
        self.from_latent = nn.Linear(config.latent_dim, flat)
        up: list[nn.Module] = []
        for out_ch in reversed((ch[0],) + ch[:-1]):
            up += [nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1), nn.GroupNorm(_groups(out_ch), out_ch),
                   nn.LeakyReLU(0.2)]
            in_ch = out_ch
        self.decoder = nn.Sequential(*up)
        # Linear output: the normalised log-mel scale is unbounded in both directions.
        self.to_mel = nn.Conv2d(ch[0], 1, 3, padding=1)

    def encode(self, log_mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n_mels, frames) log-mels → posterior mean and log-variance, each (B, latent_dim)."""
        x = (log_mels - self.config.feature_mean) / self.config.feature_std
        h = self.encoder(x.unsqueeze(1)).flatten(1)
        mu, logvar = self.to_latent(h).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor, clamp: bool = False) -> torch.Tensor:
        """(B, latent_dim) → (B, n_mels, frames) log-mels; `clamp` for inference output."""
        h = self.from_latent(z).view(z.shape[0], *self.bottom_shape)
        x = self.to_mel(self.decoder(h)).squeeze(1)
        log_mels = x * self.config.feature_std + self.config.feature_mean
        if clamp:
            log_mels = log_mels.clamp(LOG_MEL_FLOOR, self.config.feature_max)
        return log_mels

    def forward(self, log_mels: torch.Tensor, generator: torch.Generator | None = None):
        mu, logvar = self.encode(log_mels)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + noise * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               latent_mean: torch.Tensor | None = None, latent_std: torch.Tensor | None = None) -> torch.Tensor:
        """Decode `n` latents drawn around where the training data lives (`latent_mean`,
        `latent_std`), or from N(0, I) when no statistics are given."""
        device = next(self.parameters()).device
        noise = torch.randn((n, self.config.latent_dim), generator=generator, device=generator.device if generator else device)
        noise = noise.to(device)
        mean = torch.zeros(self.config.latent_dim, device=device) if latent_mean is None else latent_mean.to(device)
        std = torch.ones(self.config.latent_dim, device=device) if latent_std is None else latent_std.to(device)
        return self.decode(mean + noise * std * temperature, clamp=True)


class LossTerms(NamedTuple):
    total: torch.Tensor  # what is optimised: recon + beta * free-bits KL
    recon: torch.Tensor  # mean L1 between log-mels (nats of log magnitude)
    kl: torch.Tensor  # KL(q(z|x) || N(0, I)) per item, summed over dimensions, no free bits


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


def vae_loss(target: torch.Tensor, decoded: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float, free_bits: float) -> LossTerms:
    recon = (decoded - target).abs().mean()
    kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(dim=0)
    kl = kl_per_dim.sum()
    kl_budgeted = kl_per_dim.clamp(min=free_bits).sum()
    return LossTerms(recon + beta * kl_budgeted, recon, kl)
