"""What a sound's decoded features say about it, as the named sliders (`distill.directions`)
measure it: brightness (spectral centroid), attack (the steepest rise of the onset), tail (how
long it sounds after its peak), noise (spectral flatness), pitch (the register of its lowest
strong partial), width (side against mid) and level. Read off (feature rows, frames) log-mels,
so a search can decode hundreds of sounds without voicing them; the benchmark reads the same
off a rendered wave's features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from distill.audio import AudioSettings, side_pool

ACTIVE_DB = 40.0  # a frame within this of the clip's peak describes it
PITCH_STRONG_DB = 15.0  # the lowest band within this of a frame's strongest is its pitch
ATTACK_LATENTS = 2  # an attack is the first latent frames (46 ms at the default stride); the third fades
UNITS = {"brightness": "Hz", "attack": "dB/frame", "tail": "s", "noise": "dB flatness", "pitch": "semitones",
         "width": "dB side/mid"}


@dataclass(frozen=True)
class Describer:
    """Reads the descriptors and the family features off decoded features (rows, frames)."""

    settings: AudioSettings
    stride: int

    def __post_init__(self) -> None:
        bank = torchaudio.functional.melscale_fbanks(self.settings.n_fft // 2 + 1, self.settings.f_min,
                                                     self.settings.f_max, self.settings.n_mels,
                                                     self.settings.sample_rate)
        freqs = torch.linspace(0, self.settings.sample_rate / 2, bank.shape[0])
        centres = (freqs[:, None] * bank).sum(0) / bank.sum(0).clamp(min=1e-12)
        object.__setattr__(self, "centres", centres.clamp(min=20.0))
        n = self.settings.n_mels
        k = torch.arange(20, dtype=torch.float32)[:, None]
        object.__setattr__(self, "dct", torch.cos(math.pi / n * (torch.arange(n) + 0.5) * k))

    def frame_values(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per mel frame: level (dB), brightness (log2 of the centroid in Hz), noise (flatness in dB), pitch (semitones from A440) and width (dB
        side/mid, stereo)."""
        mid = feats[: self.settings.n_mels].float()
        power = torch.exp(2 * mid)
        level = torch.logsumexp(2 * mid, dim=0) * (10 / math.log(10))
        centroid = (self.centres[:, None] * power).sum(0) / power.sum(0)
        floor = power.amax(0, keepdim=True) * 1e-8
        clipped = torch.maximum(power, floor)
        flatness = clipped.log().mean(0).exp() / clipped.mean(0)
        strong = mid >= mid.amax(0, keepdim=True) - PITCH_STRONG_DB * math.log(10) / 20
        lowest = strong.float().argmax(0)
        pitch = self.centres[lowest]
        values = {"level": level, "brightness": centroid.log2(), "noise": 10 * flatness.log10(),
                  "pitch": 12 * torch.log2(pitch / 440.0)}
        if self.settings.channels == 2:
            side = feats[self.settings.n_mels:].float()
            pooled = side_pool(mid, self.settings)
            values["width"] = (torch.logsumexp(side, 0) - torch.logsumexp(pooled, 0)) * (20 / math.log(10))
        return values

    def clip_values(self, feats: torch.Tensor) -> dict[str, float]:
        """A decoded sound's descriptors: each frame value weighted by power over the active
        frames; level, their mean power in dB (held still, not a slider); attack, the steepest rise in the first latent frames; tail, seconds from the
        peak to the last active frame."""
        frames = self.frame_values(feats)
        level = frames["level"]
        peak = int(level.argmax())
        active = level >= level.max() - ACTIVE_DB
        weight = torch.where(active, torch.exp((level - level.max()) * (math.log(10) / 10)), torch.zeros_like(level))
        out = {}
        for name in ("brightness", "noise", "pitch", "width"):
            if name in frames:
                out[name] = float((frames[name] * weight).sum() / weight.sum())
        out["brightness"] = 2 ** out["brightness"]
        out["level"] = float(torch.logsumexp(level[active] * (math.log(10) / 10), 0) * (10 / math.log(10))
                             - 10 * math.log10(int(active.sum())))
        onset = level[: self.stride * ATTACK_LATENTS + 1]
        out["attack"] = float((onset[1:] - onset[:-1]).max()) if onset.shape[0] > 1 else 0.0
        last = int(active.nonzero().max())
        out["tail"] = self.settings.frames_to_seconds(max(0, last - peak))
        return out

    def family_vector(self, feats: torch.Tensor) -> np.ndarray:
        """The family features (`distill.family`: 20 cepstral means and spreads, prominence,
        flatness, decay, centroid in kHz), read from the decoded mel of the mid."""
        mid = feats[: self.settings.n_mels].float()
        frames = self.frame_values(feats)
        level = frames["level"]
        active = level >= level.max() - 60.0
        if int(active.sum()) < 2:
            active[:] = True
        cepstrum = self.dct @ (2 * mid[:, active])
        spectrum = torch.exp(2 * mid[:, active]).mean(1)
        prominence = 10 * math.log10(float(spectrum.sort().values[-5:].mean() / spectrum.median().clamp(min=1e-20)))
        lv = level[active]
        half = max(1, lv.shape[0] // 2)
        power = torch.exp(2 * mid[:, active])
        centroid = float((self.centres[:, None] * power).sum() / power.sum()) / 1000
        flatness = 10 ** (float(frames["noise"][active].median()) / 10)
        return torch.cat([cepstrum.mean(1), cepstrum.std(1, correction=0),
                          torch.tensor([prominence, flatness,
                                        float(lv[half:].mean() - lv[:half].mean()), centroid])]).double().numpy()


def prominence(feats: torch.Tensor, settings: AudioSettings) -> float:
    """dB of a sound's 5 strongest mel bands (its mean spectrum) over its median band: pitched
    one-shots stand far out, noises and drums less."""
    spectrum = torch.exp(2 * feats[: settings.n_mels].float()).mean(1)
    return 10 * math.log10(float(spectrum.sort().values[-5:].mean() / spectrum.median().clamp(min=1e-20)))
