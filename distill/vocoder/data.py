"""What a vocoder trains on: the model's own clips, as (log-mel, waveform) pairs.

The clips are the ones the model was trained on (its file's metadata names the dataset and
the experiment, whose config gives the split); the held-out clips are the model's own
validation clips, so previews and the per-epoch check play audio neither network learned
from. Log-mels come from `distill.audio.log_mel` (via the dataset's feature cache, which
stores exactly its output) over the WHOLE clip, and training segments are slices of them:
the vocoder sees precisely what it will be fed at inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, AudioSettings, features, log_mel, read_audio, resample
from distill.checkpoints import read_experiment
from distill.datasets import clip_path
from distill.segments import prepare_training_data
from distill.modelfile import ModelFile
from distill.vocoder.config import VocoderConfig
from distill.workspace import Workspace


@dataclass
class ClipPair:
    name: str
    wave: torch.Tensor  # (samples,) float32
    mel: torch.Tensor  # (n_mels, samples // hop + 1): log_mel(wave)
    # The model's own features of the clip where they are more than `mel` (a stereo model's mid
    # and side): what `vae_reconstructions` feeds the model.
    features: torch.Tensor | None = None


@dataclass
class VocoderData:
    dataset: str
    train: list[ClipPair]
    val: list[ClipPair]
    fingerprint: str  # the dataset's, as `distill.segments` computes it


def training_split(ws: Workspace, model_file: ModelFile) -> tuple[str, float, int]:
    """(dataset name, val_fraction, seed) the model was trained with."""
    meta = model_file.metadata
    dataset = (meta.get("dataset") or {}).get("name")
    if not dataset:
        raise DistillError(f"model {model_file.name!r} does not say which dataset it was trained on, so "
                           "there are no clips to train its vocoder on")
    if not ws.dataset_dir(dataset).is_dir():
        raise DistillError(f"model {model_file.name!r} was trained on dataset {dataset!r}, which is not in this "
                           "workspace: a vocoder trains on the model's own clips")
    val_fraction, seed = 0.15, 0
    experiment_id = (meta.get("experiment") or {}).get("id")
    if experiment_id and (ws.experiment_dir(experiment_id) / "experiment.json").is_file():
        try:
            config = read_experiment(ws.experiment_dir(experiment_id)).get("config") or {}
            val_fraction, seed = float(config.get("val_fraction", 0.15)), int(config.get("seed", 0))
        except (DistillError, TypeError, ValueError):
            pass
    return dataset, val_fraction, seed


def load_vocoder_data(ws: Workspace, model_file: ModelFile) -> VocoderData:
    """The model's clips as the vocoder learns them: the mid (a mono clip's only channel) and its
    log-mel; a stereo model's pairs also carry the clip's full features."""
    settings = model_file.audio_settings
    dataset, val_fraction, seed = training_split(ws, model_file)
    data = prepare_training_data(ws, dataset, settings, model_file.model_config.segment_frames, val_fraction, seed)

    def pair(name: str) -> ClipPair:
        wave = read_audio(clip_path(ws, dataset, name), settings.sample_rate).float()  # the mono downmix is the mid
        full = data.clip_features.get(name)
        if full is None or full.shape[-1] != wave.shape[0] // settings.hop_length + 1:
            full = features(read_audio(clip_path(ws, dataset, name), settings.sample_rate, settings.channels), settings)
        mel = full[:settings.n_mels]
        return ClipPair(name, wave, mel.float(), full.float() if settings.channels > 1 else None)

    return VocoderData(dataset, [pair(n) for n in data.train_clips], [pair(n) for n in data.val_clips],
                       data.fingerprint)


def sample_batch(clips: list[ClipPair], config: VocoderConfig, settings: AudioSettings,
                 generator: torch.Generator, mels: dict[str, torch.Tensor] | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of (log-mel (B, n_mels, F), waveform (B, F·hop)) slices of random clips
    (weighted by length), avoiding silent stretches, at a random gain. `mels` replaces a
    clip's real log-mel (for the VAE fine-tuning: its reconstruction)."""
    frames, hop = config.segment_frames, settings.hop_length
    lengths = torch.tensor([float(c.mel.shape[-1]) for c in clips])
    picks = torch.multinomial(lengths, config.batch_size, replacement=True, generator=generator)
    batch_mels, batch_waves = [], []
    for index in picks.tolist():
        clip = clips[index]
        source = clip.mel if mels is None else mels.get(clip.name, clip.mel)
        span = max(1, clip.mel.shape[-1] - frames + 1)
        for _ in range(4 if config.skip_silence else 1):  # a few tries for a stretch that is not silence
            start = int(torch.randint(span, (1,), generator=generator))
            if clip.mel[:, start:start + frames].max() > LOG_MEL_FLOOR + 1.0:
                break
        shift = float(torch.rand((), generator=generator)) * 2 - 1  # drawn always: the stream stays aligned
        if mels is None and float(torch.rand((), generator=generator)) < config.pitch_augment_share:
            mel, wave = _pitch_shifted(clip, start, frames, shift * config.pitch_augment_semitones, settings)
        else:
            mel = source[:, start:start + frames]
            wave = clip.wave[start * hop:(start + frames) * hop]
        mel = torch.nn.functional.pad(mel, (0, frames - mel.shape[-1]), value=LOG_MEL_FLOOR)
        wave = torch.nn.functional.pad(wave, (0, frames * hop - wave.shape[0]))
        # A gain is exact for a vocoder (log-mel is linear in magnitude): wave·g ⇔ mel + ln g.
        # Louder only as far as the peak stays below full scale.
        gain_db = (float(torch.rand((), generator=generator)) * 2 - 1) * config.gain_augment_db
        peak = float(wave.abs().max())
        if peak > 0:
            gain_db = min(gain_db, 20 * math.log10(0.99 / peak))
        gain = 10 ** (gain_db / 20)
        batch_mels.append((mel + math.log(gain)).clamp(min=LOG_MEL_FLOOR))
        batch_waves.append(wave * gain)
    return torch.stack(batch_mels), torch.stack(batch_waves)


# Frames of context on each side of a pitch-shifted segment, so its log-mel has no edges.
_MARGIN = 4


def _pitch_shifted(clip: ClipPair, start: int, frames: int, semitones: float,
                   settings: AudioSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """The segment at `start`, resampled so it plays `semitones` higher (and shorter), and its
    log-mel made by `log_mel` from the result: an exact pair, like every other one."""
    hop = settings.hop_length
    # A ratio of small integers keeps torchaudio's polyphase kernel small.
    original, target = round(100 * 2 ** (semitones / 12)), 100
    needed = (frames + 2 * _MARGIN) * hop
    first = (start - _MARGIN) * hop
    length = math.ceil(needed * original / target) + 64
    piece = clip.wave[max(0, first):max(0, first) + length]
    piece = torch.nn.functional.pad(piece, (max(0, -first), length - piece.shape[0] - max(0, -first)))
    shifted = resample(piece, original, target)[:needed]
    shifted = torch.nn.functional.pad(shifted, (0, needed - shifted.shape[0]))
    mel = log_mel(shifted, settings)[:, _MARGIN:_MARGIN + frames]
    return mel, shifted[_MARGIN * hop:(_MARGIN + frames) * hop]


@torch.no_grad()
def vae_reconstructions(model_file: ModelFile, clips: list[ClipPair], device: torch.device) -> dict[str, torch.Tensor]:
    """Each clip's log-mel as the model's VAE gives it back (`ConvVAE.reconstruct`: posterior
    means, decoded, whole clip at once): what the vocoder is fed at inference."""
    model = model_file.build_model(device)
    n_mels = model_file.audio_settings.n_mels
    return {clip.name: model.reconstruct((clip.mel if clip.features is None else clip.features).to(device))[:n_mels]
            .float().cpu() for clip in clips}
