"""A per-model neural vocoder: log-mel → waveform, trained on the model's own clips.

    config.py          VocoderConfig and its presets ("tiny", "default")
    network.py         the generator (ConvNeXt + inverse-STFT head with magnitude and phase
                       priors), its model-file slot, load_vocoder
    discriminators.py  multi-period + multi-resolution discriminators (training only)
    losses.py          training losses and the benchmark's distances
    data.py            the model's clips as (log-mel, waveform) pairs
    train.py           VocoderTrainingJob, start_vocoder_training
    listen.py          previews, A/B pairs against Griffin-Lim
"""

from distill.vocoder.config import PRESETS, VocoderConfig, vocoder_preset
from distill.vocoder.network import Vocoder, load_vocoder, vocoder_slot
from distill.vocoder.train import (VocoderTrainingJob, current_vocoder_job, read_run, read_vocoder_metrics,
                                   remove_vocoder, start_vocoder_training, vocoder_run_dir)
from distill.vocoder.listen import VocoderPreview, ab_pair, list_vocoder_previews  # noqa: E402 (needs train)

__all__ = [
    "PRESETS", "VocoderConfig", "vocoder_preset", "Vocoder", "load_vocoder", "vocoder_slot", "VocoderTrainingJob",
    "current_vocoder_job", "read_run", "read_vocoder_metrics", "remove_vocoder", "start_vocoder_training", "vocoder_run_dir",
    "VocoderPreview", "ab_pair", "list_vocoder_previews",
]
