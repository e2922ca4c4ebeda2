"""The networks of a live model (`distill.live`), in TorchScript: features, the autoencoder's
two halves and the vocoder, each a function of a window of frames with no state of its own.

They compute what `distill.audio.features`, `ConvVAE.encode` / `decode` and
`Vocoder.forward` (with `distill.stereo.side_from_mid`) compute, in the layout a host gives
((batch, channels, time)), with every setting a plain number so that `torch.jit.script`
compiles them. The vocoder is split where its phase is summed along time: `parts` is local
(a frame depends on its neighbours), the running sum is the stage's state (`distill.live`),
and `render` is local again.
"""

from __future__ import annotations

import copy
import math
from typing import Tuple

import torch
from torch import nn

from distill.audio import LOG_MEL_FLOOR, AudioSettings, _mel_transform, pool_bands
from distill.model import ConvVAE
from distill.stereo import SIDE_GAIN_LIMIT, SIDE_MATCH_PASSES
from distill.stft import istft as fast_istft
from distill.vocoder.envelope import guard_attacks
from distill.vocoder.network import MEL_MATCH_LIMIT, Vocoder

TWO_PI = 2 * math.pi


class LiveFeatures(nn.Module):
    """(B, channels, n_fft + (frames - 1)·hop) audio → (B, feature_rows, frames) features, the
    frames uncentred (frame t covers samples t·hop … t·hop + n_fft): a window of a stream."""

    def __init__(self, settings: AudioSettings):
        super().__init__()
        self.n_fft, self.hop, self.stereo = settings.n_fft, settings.hop_length, settings.channels == 2
        self.side_group = settings.n_mels // settings.side_bands
        self.floor = LOG_MEL_FLOOR
        self.register_buffer("window", torch.hann_window(settings.n_fft))
        self.register_buffer("mel_fb", _mel_transform(settings.mono, "cpu").mel_scale.fb.detach().clone().float())

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        mel = torch.matmul(spec.abs().transpose(-1, -2), self.mel_fb).transpose(-1, -2)
        return torch.log(mel.clamp(min=math.exp(self.floor)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if not self.stereo:
            return self.log_mel(audio.mean(dim=1))
        mid, side = (audio[:, 0] + audio[:, 1]) / 2, (audio[:, 0] - audio[:, 1]) / 2
        return torch.cat([self.log_mel(mid), pool_bands(self.log_mel(side), self.side_group, self.floor)], dim=1)


class LiveAutoencoder(nn.Module):
    """`ConvVAE.encode` (the posterior mean only) and `decode(clamp=True)` on windows whose
    length is a whole number of latent frames."""

    def __init__(self, model: ConvVAE):
        super().__init__()
        cfg = model.config
        self.patch_in, self.patch_out = copy.deepcopy(model.patch_in), copy.deepcopy(model.patch_out)
        self.encoder, self.decoder = copy.deepcopy(model.encoder), copy.deepcopy(model.decoder)
        self.stride, self.rows, self.latent_dim = cfg.time_stride, cfg.n_mels, cfg.latent_dim
        self.mean, self.std, self.top = float(cfg.feature_mean), float(cfg.feature_std), float(cfg.feature_max)
        self.floor = LOG_MEL_FLOOR

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """(B, rows, L·stride) → (B, latent_dim, L)."""
        x = (features - self.mean) / self.std
        b, n, frames = x.shape
        patches = x.reshape(b, n, frames // self.stride, self.stride).permute(0, 1, 3, 2)
        patches = patches.reshape(b, n * self.stride, frames // self.stride)
        return (self.patch_in(patches) + self.encoder(x))[:, :self.latent_dim]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim, L) → (B, rows, L·stride) features, clamped to what features can be."""
        linear = self.patch_out(z)
        b, _, length = linear.shape
        linear = linear.reshape(b, self.rows, self.stride, length).permute(0, 1, 3, 2).reshape(b, self.rows, -1)
        x = (linear + self.decoder(z)) * self.std + self.mean
        return x.clamp(self.floor, self.top)


class LiveVocoder(nn.Module):
    """`Vocoder.forward` for a window of (B, feature_rows, T) features, in two halves around
    the phase sum, and a stereo model's side made from the voiced mid (`side_from_mid`)."""

    def __init__(self, vocoder: Vocoder, settings: AudioSettings):
        super().__init__()
        cfg = vocoder.config
        self.embed, self.norm = copy.deepcopy(vocoder.embed), copy.deepcopy(vocoder.norm)
        self.blocks, self.final_norm = copy.deepcopy(vocoder.blocks), copy.deepcopy(vocoder.final_norm)
        self.head = copy.deepcopy(vocoder.head)
        self.has_refiner = vocoder.refiner is not None
        self.refiner = copy.deepcopy(vocoder.refiner) if vocoder.refiner is not None else nn.Sequential()
        self.integrated = cfg.phase_mode == "integrated"
        self.feature_mean, self.feature_std = float(cfg.feature_mean), float(cfg.feature_std)
        self.projections, self.mel_matching = int(cfg.projections), int(cfg.mel_matching)
        self.momentum, self.attack_guard = float(cfg.mel_matching_momentum), bool(cfg.attack_guard)
        self.n_fft, self.hop, self.n_bins = settings.n_fft, settings.hop_length, settings.n_fft // 2 + 1
        self.n_mels, self.stereo = settings.n_mels, settings.channels == 2
        self.side_group = settings.n_mels // settings.side_bands
        self.advance_per_bin = float(vocoder.advance_per_bin)
        self.max_log_mag = math.log(settings.n_fft / 2)
        self.floor, self.match_limit, self.side_limit = LOG_MEL_FLOOR, MEL_MATCH_LIMIT, SIDE_GAIN_LIMIT
        self.side_passes = SIDE_MATCH_PASSES
        for name in ("window", "mel_interp", "mel_pinv", "mel_fb", "mel_bin_weights", "band_weight",
                     "centre_advance", "centre_offset"):
            self.register_buffer(name, getattr(vocoder, name).detach().clone())

    def parts(self, log_mels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, n_mels, T) → the log-magnitude, each frame's phase advance (or, in direct mode,
        its phase) and a phase offset, each (B, bins, T): `Vocoder.spectrum` up to its cumsum."""
        log_mels = log_mels.clamp(self.floor, 12.0)
        x = (log_mels - self.feature_mean) / self.feature_std
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2)
        parts = list(x.split(self.n_bins, dim=1))
        mel = torch.exp(log_mels)
        sharp = torch.relu(torch.einsum("kb,nbt->nkt", self.mel_pinv, mel))
        smooth = torch.einsum("kb,nbt->nkt", self.mel_interp, mel)
        log_prior = torch.log(torch.maximum(sharp, 0.1 * smooth).clamp(min=math.exp(self.floor)))
        log_mag = parts[0] + log_prior
        if self.has_refiner:
            scaled = torch.stack([(log_prior - self.feature_mean) / self.feature_std,
                                  (log_mag - self.feature_mean) / self.feature_std], dim=1)
            refined = self.refiner(scaled)
            log_mag = log_mag + refined[:, 0]
            if self.integrated:
                parts[1] = parts[1] + refined[:, 1]
        log_mag = log_mag.clamp(max=self.max_log_mag)
        if not self.integrated:
            return log_mag, parts[1], torch.zeros_like(log_mag)
        slope = torch.zeros_like(log_mag)
        slope[:, 1:-1] = (log_mag[:, 2:] - log_mag[:, :-2]) / 2
        offset_bins = (slope / (2 * math.pi * 0.25645)).clamp(-1.5, 1.5)
        advance = self.centre_advance + self.advance_per_bin * offset_bins + parts[1]
        return log_mag, advance, parts[2] + self.centre_offset

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.stft(wave, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        if self.n_fft % self.hop != 0:
            return torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=length)
        return fast_istft(spec.transpose(1, 2), self.window, self.n_fft, self.hop, length, None)

    def log_mel_of(self, spec: torch.Tensor) -> torch.Tensor:
        magnitude = (spec.real.square() + spec.imag.square() + 1e-14).sqrt()
        return torch.log(torch.einsum("kb,nkt->nbt", self.mel_fb, magnitude).clamp(min=math.exp(self.floor)))

    def render(self, log_mag: torch.Tensor, phase: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The spectrum (B, bins, T) and the features asked for → (B, channels, T·hop) audio:
        `Vocoder.waveform`, then for stereo the side from the mid."""
        frames = log_mag.shape[-1]
        length = frames * self.hop
        spec = torch.polar(torch.exp(log_mag), phase)
        magnitude = spec.abs()
        for _ in range(self.projections):
            actual = self.stft(self.istft(spec, length))[..., :frames]
            size = (actual.real.square() + actual.imag.square() + 1e-14).sqrt().clamp(min=1e-7)
            spec = actual * (magnitude / size)
        wave = self.istft(spec, length)
        target = features[:, :self.n_mels].clamp(self.floor, 12.0)
        previous = torch.zeros_like(wave)
        for step in range(self.mel_matching):
            spec = self.stft(wave)[..., :frames]
            gain = (target - self.log_mel_of(spec)).clamp(-self.match_limit, self.match_limit)
            matched = self.istft(spec * torch.exp(torch.einsum("kb,nbt->nkt", self.mel_bin_weights, gain)), length)
            wave = matched if step == 0 else matched + self.momentum * (matched - previous)
            previous = matched
        if self.attack_guard:
            own = self.log_mel_of(self.stft(wave)[..., :frames])
            wave = guard_attacks(wave, target, own, self.band_weight, self.window, self.hop)
        if not self.stereo:
            return torch.nan_to_num(wave, 0.0, 0.0, 0.0).unsqueeze(1)
        side = self.side_from_mid(wave, features[:, self.n_mels:])
        return torch.nan_to_num(torch.stack([wave + side, wave - side], dim=1), 0.0, 0.0, 0.0)

    def side_from_mid(self, mid: torch.Tensor, side_features: torch.Tensor) -> torch.Tensor:
        """`distill.stereo.side_from_mid` for a batch: (B, samples) mid, (B, side_bands, T)."""
        length = mid.shape[-1]
        spec = self.stft(mid)
        spec = torch.complex(spec.imag, -spec.real)  # × −j: a quarter cycle back
        frames = min(side_features.shape[-1], spec.shape[-1])
        target = side_features[..., :frames].clamp(min=self.floor)
        silent = target <= self.floor + 1e-3
        side = self.istft(spec, length)
        for _ in range(self.side_passes):
            measured = self.stft(side)
            magnitude = torch.matmul(measured.abs().transpose(-1, -2), self.mel_fb).transpose(-1, -2)
            own = pool_bands(torch.log(magnitude.clamp(min=math.exp(self.floor))), self.side_group, self.floor)[..., :frames]
            gain = torch.where(silent, torch.full_like(target, -50.0), (target - own).clamp(max=self.side_limit))
            scale = torch.exp(torch.matmul(self.mel_bin_weights, gain.repeat_interleave(self.side_group, dim=1)))
            spec = torch.cat([spec[..., :frames] * scale, spec[..., frames:] * 0], dim=-1)
            side = self.istft(spec, length)
        return side
