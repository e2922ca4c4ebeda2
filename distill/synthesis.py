"""log-mel → audio: a model's own vocoder, else the pretrained one Distill ships, else
Griffin-Lim.

Generation, transforms, the training previews and the A/B pairs all turn log-mels into audio
here, so they all hear the same thing for the same mel. This module sits low on purpose: it
imports only `distill.audio` and the vocoder's network and shipped weights, never
generation or training, so everything above can import it without an import circle.

A `Synthesizer` is made once per model (or per training run) and called per sound: the
vocoder is loaded on the first call and kept. Its output is not clamped or normalised: the
level is what the mel says, and callers that write files decide what to do with a peak
above full scale (transform reports it; generate normalises).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F

from distill import DistillError
from distill.audio import AudioSettings, griffin_lim
from distill.stereo import left_right, side_from_mid
from distill.vocoder.network import Vocoder, load_vocoder
from distill.vocoder.shipped import shipped_slot, why_not_pretrained

GRIFFIN_LIM = "griffin-lim"
VOCODER = "vocoder"  # the model's own (fine-tuned, or trained from scratch)
PRETRAINED = "pretrained"  # the one Distill ships (`distill.vocoder.shipped`)


class HasVocoderSlot(Protocol):
    """What `Synthesizer.for_model` needs of a model file (`distill.modelfile.ModelFile`)."""

    audio_settings: AudioSettings
    vocoder: dict[str, Any] | None


class Synthesizer:
    """(feature_rows, frames) features → a float32 waveform on the CPU: (samples,) for a mono
    model, (2, samples) left/right for a stereo one (the mid voiced, the side made from it by
    `distill.stereo.side_from_mid`).

    Decodes with the vocoder in `vocoder_slot` (a model file's slot); without one, with the
    shipped pretrained vocoder when it suits `settings` (and its weights are installed: else
    a warning, once); else, or when `griffin_lim` is set, with Griffin-Lim
    (`distill.audio.griffin_lim`, deterministic). The output has `frames · hop` samples
    (vocoder) or `(frames - 1) · hop` (Griffin-Lim); cut it to the length you need with
    `fit_length`."""

    def __init__(self, settings: AudioSettings, vocoder_slot: dict[str, Any] | None = None,
                 device: torch.device | str = "cpu", griffin_lim: bool = False):
        self.settings = settings
        self.device = torch.device(device)
        self._slot: dict[str, Any] | None
        self.kind: str  # VOCODER, PRETRAINED or GRIFFIN_LIM: what this decodes with
        self.fallback: str | None = None  # why Griffin-Lim stands in for the pretrained vocoder
        if griffin_lim:
            self._slot, self.kind = None, GRIFFIN_LIM
        elif vocoder_slot is not None:
            self._slot, self.kind = vocoder_slot, VOCODER
        else:
            self.fallback = why_not_pretrained(settings.mono)
            self._slot = None if self.fallback else shipped_slot()
            self.kind = GRIFFIN_LIM if self._slot is None else PRETRAINED
        self._vocoder: Vocoder | None = None

    @classmethod
    def for_model(cls, model_file: HasVocoderSlot, device: torch.device | str = "cpu",
                  griffin_lim: bool = False) -> "Synthesizer":
        """The synthesizer a model file asks for: its own vocoder if it has one, else the
        pretrained one."""
        return cls(model_file.audio_settings, model_file.vocoder, device, griffin_lim)

    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(feature_rows, frames) features → (samples,) mono or (2, samples) left/right."""
        rows, n_mels = self.settings.feature_rows, self.settings.n_mels
        if log_mel.dim() != 2 or log_mel.shape[0] != rows:
            raise DistillError(f"synthesis takes one ({rows} feature rows, frames) log-mel, "
                               f"got shape {tuple(log_mel.shape)}")
        mel = log_mel.detach().to(device=self.device, dtype=torch.float32)
        wave = self._voice(mel[:n_mels])
        if self.settings.channels == 2:
            wave = left_right(wave, side_from_mid(wave, mel[n_mels:], self.settings))
        return torch.nan_to_num(wave.float().cpu(), nan=0.0, posinf=0.0, neginf=0.0)

    def _voice(self, mel: torch.Tensor) -> torch.Tensor:
        """One channel's (the mid's) log-mel → audio."""
        if self._slot is None:
            return griffin_lim(mel, self.settings)
        return self._loaded().synthesize(mel, clamp=False)

    def load(self) -> "Synthesizer":
        """Load the vocoder now (else the first call does): a damaged or mismatched slot is
        then an error before any sound is made, not one per sound."""
        if self._slot is not None:
            self._loaded()
        return self

    def _loaded(self) -> Vocoder:
        if self._vocoder is None:
            # `settings`: a vocoder made for other mel settings is refused, not fed a scaling
            # it never learned (it would sound broken).
            self._vocoder = load_vocoder(self._slot, self.device, settings=self.settings.mono)
        return self._vocoder


def fit_length(wave: torch.Tensor, samples: int) -> torch.Tensor:
    """`wave` cropped or zero-padded at the end to exactly `samples`: the vocoder and
    Griffin-Lim frame the same mel into slightly different lengths."""
    if wave.shape[-1] >= samples:
        return wave[..., :samples]
    return F.pad(wave, (0, samples - wave.shape[-1]))
