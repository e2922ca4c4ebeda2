"""The neural vocoder: log-mel → waveform. One is pretrained on a broad corpus and shipped
(`shipped.py`); every model decodes with it unless it carries its own, which `train.py`
makes by fine-tuning the shipped one on the model's clips (or, for mel settings the shipped
one was not made for, by training from scratch).

Why this architecture (figures: benchmarks/bench_vocoder.py, this 2-core CPU, decoding 10 s):

    generator                     params   GMAC/s audio   1 thread   2 threads
    this one (Vocos-style)        0.67 M   0.11            65x        98x
    Vocos-sized (512 x 8)        13.7 M    1.22            27x        48x
    HiFi-GAN V2                   0.93 M   1.66            11x        18x
    HiFi-GAN V3                   1.46 M   1.94             8x        13x
    Griffin-Lim, 32 iterations    -        -               24x        43x

(One run; two more gave this one 137x and 110x on 2 threads, 2.3-2.5x Griffin-Lim's speed in
each. 2 consistency projections, 3 mel-matching steps and the attack guard, 2026-12-03;
before mel matching and the guard existed, the network with its projections ran at 194x.)

HiFi-GAN runs its residual stacks at the sample rate and misses the 50x-real-time target on
this CPU even at V3 size; a Vocos-style network runs at the frame rate and ends in an
inverse STFT. Sized down for 5-500 clips (4 ConvNeXt blocks of 128), and given two fixed
priors (the mel filterbank's least-squares inverse for magnitude, a phase-gradient estimate
for phase, with zero-initialised corrections) so an untrained vocoder already renders the
clip, and minutes of CPU training improve on that instead of starting from noise. After
the inverse STFT, mel matching puts each mel band back at the level the input asks for, and
the attack guard clears what the output holds before an attack beyond what the input's frames
allow (pre-echo: a softened attack).

    config.py          VocoderConfig and its presets ("default": fine-tune, "scratch", "tiny")
    network.py         the generator (ConvNeXt + inverse-STFT head with magnitude and phase
                       priors, mel matching), its model-file slot, load_vocoder
    envelope.py        the attack guard: the bound the mel's frame energies put on the output
    discriminators.py  multi-period + multi-resolution discriminators (training only)
    losses.py          training losses, the distances, held-out scoring
    data.py            the model's clips as (log-mel, waveform) pairs
    train.py           VocoderTrainingJob, start_vocoder_training (fine-tune or from scratch)
    listen.py          the training previews (original, Griffin-Lim, vocoder)
    shipped.py         the pretrained weights in the package (pretrained.pt / .json)
    corpus.py          renders the pretraining corpus (Fluid R3 GM, synthesised sounds)
    pretrain.py        pretrains on it and exports the shipped weights

Decoding goes through `distill.synthesis`; the A/B pair of one generated sound (Griffin-Lim
vs the vocoder a model uses) is `distill.generate.ab_pair`.
"""

import importlib
from typing import Any

# The public names and the module of this package that holds each. They are imported on first
# use (PEP 562), not here: `distill.synthesis` imports `distill.vocoder.network`, which runs
# this file first, and an eager import of `train` from here would pull the training stack
# (and, through it, synthesis itself) into every decode: an import circle.
_EXPORTS = {
    "PRESETS": "config", "VocoderConfig": "config", "vocoder_preset": "config",
    "Vocoder": "network", "load_vocoder": "network", "vocoder_slot": "network",
    "VocoderTrainingJob": "train", "current_vocoder_job": "train", "read_run": "train",
    "read_vocoder_metrics": "train", "remove_vocoder": "train", "start_vocoder_training": "train",
    "vocoder_run_dir": "train",
    "VocoderPreview": "listen", "list_vocoder_previews": "listen",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
