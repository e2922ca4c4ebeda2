"""The vocoder's critics, as the literature does it: a multi-period discriminator (HiFi-GAN)
looks at the waveform folded by periods 2, 3, 5, 7, 11; a multi-resolution discriminator
(UnivNet, used by Vocos) looks at magnitude spectrograms at several FFT sizes. Channel widths
are cut down from the papers' (for a CPU budget); they are training-only and never stored in
the model file."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from distill.vocoder.config import VocoderConfig

# (score map, feature maps) per sub-discriminator
Judgement = tuple[torch.Tensor, list[torch.Tensor]]


def _judge(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> Judgement:
    """A critic's conv stack (leaky ReLU after each) and its last layer: the scores, flattened,
    and every layer's output for feature matching."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels: tuple[int, ...]):
        super().__init__()
        self.period = period
        layers, previous = [], 1
        for index, width in enumerate(channels):
            stride = (1, 1) if index == len(channels) - 1 else (3, 1)
            layers.append(weight_norm(nn.Conv2d(previous, width, (5, 1), stride, padding=(2, 0))))
            previous = width
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(previous, 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> Judgement:  # (B, samples)
        batch, length = wave.shape
        if length % self.period:
            wave = F.pad(wave, (0, self.period - length % self.period), mode="reflect")
        x = wave.view(batch, 1, -1, self.period)
        return _judge(self.convs, self.post, x)


class ResolutionDiscriminator(nn.Module):
    def __init__(self, n_fft: int, channels: int):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c = channels
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, c, (3, 9), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4))),
            weight_norm(nn.Conv2d(c, c, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, wave: torch.Tensor) -> Judgement:
        spec = torch.stft(wave, self.n_fft, self.n_fft // 4, window=self.window, center=True, return_complex=True)
        # (B, 1, frames, bins); log1p compresses the magnitude range the way ears do.
        x = torch.log1p(spec.abs()).transpose(1, 2).unsqueeze(1)
        return _judge(self.convs, self.post, x)


class Discriminators(nn.Module):
    """All sub-discriminators together; `forward` returns one judgement per sub-discriminator."""

    def __init__(self, config: VocoderConfig):
        super().__init__()
        self.subs = nn.ModuleList(
            [PeriodDiscriminator(p, config.mpd_channels) for p in config.mpd_periods]
            + [ResolutionDiscriminator(n, config.mrd_channels) for n in config.mrd_fft_sizes]
        )

    def forward(self, wave: torch.Tensor) -> list[Judgement]:
        return [sub(wave) for sub in self.subs]
