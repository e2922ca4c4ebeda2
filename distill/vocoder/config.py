"""`VocoderConfig`: the vocoder's architecture and its training recipe, in one plain object.
These defaults are the only ones: the CLI, the UI and the tests read them from here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from distill import DistillError

# The fields that decide the generator's layers and what it computes; stored in the model
# file with the weights. Everything else only shapes training.
ARCHITECTURE_FIELDS = ("dim", "intermediate_dim", "num_layers", "kernel_size", "feature_mean", "feature_std",
                       "phase_mode", "projections", "refiner_channels", "refiner_kernel", "mel_matching",
                       "mel_matching_momentum", "attack_guard")


@dataclass(frozen=True)
class VocoderConfig:
    # -- generator (see network.py) --------------------------------------------------------
    dim: int = 128  # ConvNeXt channel width
    intermediate_dim: int = 384  # the pointwise MLP's hidden width
    num_layers: int = 4
    kernel_size: int = 7  # depthwise convolution, in frames
    feature_mean: float = -5.0  # fixed input normalisation of log-mels (the floor is -11.5)
    feature_std: float = 3.0
    # "integrated": the head predicts each bin's phase advance per hop on top of a
    # phase-gradient estimate from the magnitudes, and phase is the running sum over frames;
    # "direct": Vocos's head, one free phase per bin and frame (kept for comparison).
    phase_mode: str = "integrated"
    # Consistency projections after the head, trained through: keep the predicted
    # magnitudes, take the phase the overlap-added signal actually has.
    projections: int = 2
    # A small 2-D convolution over (frequency, time) of the linear-frequency log-magnitude
    # that refines it (0 channels: none). Local in frequency, it learns "sharpen a partial
    # from its neighbours" once for every pitch, which a few clips can teach.
    refiner_channels: int = 0
    refiner_kernel: tuple[int, int] = (7, 3)  # (bins, frames), both odd
    # Steps that put the output's mel bands back at the levels the input mel asks for
    # (`Vocoder.match_mel`), after the projections. A slot written before this existed has 0.
    # Each step costs ~15 % of a decode and converges a little further: 3 keeps the shipped
    # vocoder above 100x real time on 2 CPU cores (4 did not).
    mel_matching: int = 3
    # Each step after the first goes on past its result by this share of its change (fast
    # Griffin-Lim's extrapolation, Perraudin et al. 2013): 3 steps at 0.9 match as closely as 6
    # plain ones at the cost of 3. A slot written before this existed has 0.
    mel_matching_momentum: float = 0.9
    # Last, turn down what the output holds before an attack beyond what the input mel's frames
    # allow (`distill.vocoder.envelope`). Parameter-free; a slot written before it existed has it off.
    attack_guard: bool = True
    # -- discriminators (training only, never in the model file) ---------------------------
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (16, 64, 128, 128)  # HiFi-GAN: (32, 128, 512, 1024, 1024)
    mrd_fft_sizes: tuple[int, ...] = (512, 1024, 2048)
    mrd_channels: int = 16  # UnivNet / Vocos: 32
    # The critics see only this many segments of each batch: on a CPU they cost far more
    # than the generator (a GAN step on all 16 takes ~19x a reconstruction step).
    gan_batch_size: int = 4
    # -- training --------------------------------------------------------------------------
    # Where the weights start: "scratch" (the priors alone, zero-initialised corrections) or
    # "pretrained" (the vocoder Distill ships, `distill.vocoder.shipped`: a fine-tune).
    init: str = "scratch"
    epochs: int = 30  # the run's length unless asked otherwise (epochs of `steps_per_epoch` steps)
    segment_frames: int = 32  # 32 frames × hop 256 = 8192 samples (0.37 s) per item
    batch_size: int = 16
    # A vocoder epoch is this many optimiser steps on random segments (datasets range from a
    # few clips to hundreds, so a pass over the data is no useful unit).
    steps_per_epoch: int = 100
    learning_rate: float = 5e-4
    lr_decay: float = 0.97  # per epoch (ExponentialLR): needs no total, so a run can be extended
    adam_betas: tuple[float, float] = (0.8, 0.99)
    grad_clip: float = 100.0
    skip_silence: bool = True  # redraw a segment that is pure silence (a few tries)
    # Pitch-shift augmentation (resampling, then log_mel of the result: still an exact pair):
    # this share of segments is shifted by up to ± this many semitones. With a few clips a
    # vocoder otherwise learns the partials of the pitches it has heard and no others.
    pitch_augment_share: float = 0.0
    pitch_augment_semitones: float = 3.0
    gain_augment_db: float = 3.0  # a gain is exact for a vocoder: wave × g ⇔ log-mel + log g
    # Loss weights. Spectral and phase terms compare the head's complex spectrum with the
    # target's STFT; mel and MR-STFT terms compare the output waveform with the target.
    spectral_weight: float = 1.0  # spectral convergence + log-magnitude L1 (at the head's STFT)
    phase_weight: float = 1.0  # anti-wrapped group-delay + instantaneous-frequency error, magnitude-weighted
    mel_weight: float = 1.0  # L1 between log_mel(output) and log_mel(target)
    stft_weight: float = 1.0  # multi-resolution STFT loss on the output
    adv_weight: float = 1.0  # least-squares GAN (multi-period + multi-resolution discriminators)
    fm_weight: float = 2.0  # feature matching
    # Reconstruction-only warm-up: the GAN joins after this many steps (0: from the start).
    gan_start_step: int = 2000
    # Fine-tuning on the VAE's own reconstructions: from this epoch on (0 = never) a share of
    # the segments feed the VAE's reconstructed mel while the target stays the real audio.
    vae_finetune_from_epoch: int = 0
    vae_mel_share: float = 0.5
    # -- bookkeeping -----------------------------------------------------------------------
    preview_every: int = 5  # epochs between previews (the last epoch always writes one; 0: never)
    preview_clips: int = 3
    preview_seconds: float = 4.0
    val_clips: int = 8  # held-out clips measured each epoch (MR-STFT distance, LSD) ...
    val_seconds: float = 10.0  # ... each cut to this length
    keep_recent: int = 2  # checkpoints kept: the newest N ...
    keep_best: int = 1  # ... plus the best N by held-out MR-STFT distance
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("mpd_periods", "mpd_channels", "mrd_fft_sizes", "adam_betas", "refiner_kernel"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        checks = [
            (self.kernel_size % 2 == 1, f"vocoder kernel_size must be odd, not {self.kernel_size}"),
            (self.init in ("scratch", "pretrained"), f"vocoder init must be 'scratch' or 'pretrained', not {self.init!r}"),
            (self.epochs >= 1, "a vocoder run needs at least one epoch"),
            (self.phase_mode in ("integrated", "direct"),
             f"vocoder phase_mode must be 'integrated' or 'direct', not {self.phase_mode!r}"),
            (self.num_layers >= 1 and self.dim >= 1 and self.intermediate_dim >= 1,
             "the vocoder needs at least one layer of positive width"),
            (self.projections >= 0 and self.mel_matching >= 0, "projections and mel_matching cannot be negative"),
            (0.0 <= self.mel_matching_momentum < 2.0, "mel_matching_momentum must be in [0, 2)"),
            (self.refiner_channels >= 0 and len(self.refiner_kernel) == 2 and all(k % 2 for k in self.refiner_kernel),
             "refiner_channels cannot be negative; refiner_kernel is two odd sizes"),
            (self.segment_frames >= 4, "segment_frames must be at least 4"),
            (min(self.batch_size, self.gan_batch_size, self.steps_per_epoch) >= 1,
             "batch sizes and steps per epoch must be at least 1"),
            (self.learning_rate > 0 and 0 < self.lr_decay <= 1, "learning rate must be positive, lr_decay in (0, 1]"),
            (0.0 <= self.vae_mel_share <= 1.0 and 0.0 <= self.pitch_augment_share <= 1.0,
             "vae_mel_share and pitch_augment_share must be between 0 and 1"),
            (min(self.preview_every, self.preview_clips, self.val_clips) >= 0, "preview and validation counts cannot be negative"),
            (self.keep_recent >= 1 and self.keep_best >= 0, "keep at least the newest checkpoint"),
        ]
        for ok, message in checks:
            if not ok:
                raise DistillError(message)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def architecture(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ARCHITECTURE_FIELDS}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "VocoderConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def replace(self, **changes: Any) -> "VocoderConfig":
        return replace(self, **changes)


# GAN steps off: on a CPU the critics cost several reconstruction steps each.
NEVER = 10**9

PRESETS: dict[str, VocoderConfig] = {
    # A fine-tune of the shipped pretrained vocoder on the model's clips, real mels and the
    # model's own reconstructions half and half: 500 steps, about 3 min on 2 CPU cores
    # (benchmarks/bench_vocoder.py). Reconstruction losses only (the critics would cost several
    # steps each) and a learning rate a tenth of pretraining's: at 2e-4 the held-out clips of
    # dev-drums got 3 % worse while the model's own held-out split improved 5 %; at 5e-5, 1 %
    # and 2 %. A check on the held-out clips every 50 steps (the mean of their true-mel and
    # end-to-end MR-STFT): the run bundles its best epoch, or the pretrained weights when no
    # epoch beat them. At full band, with the 10,500-step weights, it did not earn its minutes on
    # the dev corpora (benchmarks/bench_vocoder.py): dev-pitched kept the pretrained weights,
    # dev-drums gained 0.5 % end to end.
    "default": VocoderConfig(init="pretrained", epochs=10, steps_per_epoch=50, learning_rate=5e-5, lr_decay=0.95,
                             gan_start_step=NEVER, vae_finetune_from_epoch=1, vae_mel_share=0.5, preview_every=5),
    # From the priors alone, with the critics from step 2,000: 30 epochs, 24-28 min on 2 CPU
    # cores. For mel settings the pretrained vocoder was not made for.
    "scratch": VocoderConfig(),
    # For tests: each step takes milliseconds; previews and checks every epoch.
    "tiny": VocoderConfig(dim=16, intermediate_dim=32, num_layers=1, projections=1, mpd_periods=(2, 3),
                          mpd_channels=(4, 8), mrd_fft_sizes=(512,), mrd_channels=4, epochs=2, segment_frames=8,
                          batch_size=2, steps_per_epoch=2, gan_start_step=2, preview_every=1, preview_clips=1,
                          preview_seconds=0.5, val_clips=1, val_seconds=0.5),
}


def vocoder_preset(name: str) -> VocoderConfig:
    if name not in PRESETS:
        raise DistillError(f"unknown vocoder preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
