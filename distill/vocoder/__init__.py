"""A per-model neural vocoder: log-mel → waveform, trained on the model's own clips.

Why this architecture (figures: benchmarks/bench_vocoder.py, this 2-core CPU, decoding 10 s):

    generator                     params   GMAC/s audio   1 thread   2 threads
    this one (Vocos-style, K=2)   0.67 M   0.08           120x       194x
    Vocos-sized (512 x 8)        13.7 M    1.19            28x        37x
    HiFi-GAN V2                   0.93 M   1.66            16x        25x
    HiFi-GAN V3                   1.46 M   1.94             8x        18x
    Griffin-Lim, 32 iterations    -        -               22x        49x

HiFi-GAN runs its residual stacks at the sample rate and misses the 50x-real-time target on
this CPU even at V3 size; a Vocos-style network runs at the frame rate and ends in an
inverse STFT. Sized down for 5-500 clips (4 ConvNeXt blocks of 128), and given two fixed
priors (the mel filterbank's least-squares inverse for magnitude, a phase-gradient estimate
for phase, with zero-initialised corrections) so an untrained vocoder already renders the
clip, and minutes of CPU training improve on that instead of starting from noise.

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
