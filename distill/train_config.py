"""`TrainConfig`: everything a training run is made of, with the only defaults there are (the
CLI and the page read them from here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from distill import DistillError
from distill.checkpoints import Retention
from distill.model import KLSchedule, ModelConfig, preset

_KL = KLSchedule()
# Training clips the previews' random sounds are made from (encoded whole at each preview: few is cheap).


# The default run: 13 epochs (the default preset on 32 clips of ~2 s: ~90 s on 2 CPU cores) ...
DEFAULT_EPOCHS = 13
# ... or, for a large dataset, as many as fit this many optimiser steps: at STEP_SECONDS the
# budget is ~9 min of training, and a 500-clip corpus (~20 min of audio, ~1,100 steps an epoch)
# ends within 15 min with its data preparation. Up to ~8 minutes of audio keeps all 13 epochs.
DEFAULT_STEP_BUDGET = 6000
# A step of the default preset on 2 CPU cores (dev-pitched: 67 steps an epoch in 6.3 s).
STEP_SECONDS = 0.09
MIN_DEFAULT_EPOCHS = 2


def default_epochs(steps_per_epoch: int) -> int:
    """The epochs of a default run whose epoch takes `steps_per_epoch` optimiser steps."""
    return max(MIN_DEFAULT_EPOCHS, min(DEFAULT_EPOCHS, DEFAULT_STEP_BUDGET // max(1, steps_per_epoch)))


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run is made of. These defaults are the only ones: the CLI and
    the UI read them from here."""

    dataset: str
    name: str | None = None  # the experiment's display name; defaults to the dataset's
    preset: str = "default"  # "tiny" (tests, quick looks) or "default"
    # None: DEFAULT_EPOCHS, or fewer for a large dataset (`default_epochs`), decided when it starts
    epochs: int | None = None
    batch_size: int = 16
    # Low, because training starts from the PCA of the data (`ConvVAE.fit_linear_path`), not
    # from noise, and larger steps first undo much of that start. Measured at full band on
    # dev-pitched (latent 96, 13 epochs; MR-STFT over the Griffin-Lim ceiling, training /
    # held-out clips): 6e-4 2.04x / 1.91x, 3e-4 1.59x / 1.69x, 1.5e-4 1.37x / 1.55x, 7.5e-5
    # 1.37x / 1.55x.
    learning_rate: float = 1.5e-4
    lr_decay: float = 0.98  # per epoch (ExponentialLR): needs no total, so a run can be extended
    latent_dim: int | None = None  # None: the preset's
    beta: float = _KL.beta
    kl_warmup_epochs: int = _KL.warmup_epochs
    free_bits: float = _KL.free_bits
    val_fraction: float = 0.15
    preview_every: int = 5  # 0: no previews
    preview_samples: int = 2
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    keep_recent: int = 3  # checkpoints kept: the newest N (0 keeps all) ...
    keep_best: int = 1  # ... plus the best N by validation loss
    grad_clip: float = 5.0
    gain_augment_db: float = 10.0  # each training segment is played up to ± this much louder or softer
    # Each training clip is also played at these speeds (pitch and length change together,
    # -4.7 to +4.5 semitones; measured on dev-pitched, 0.84–1.18 left held-out notes 2 dB quiet);
    # computed once and cached. () turns it off.
    speed_augment: tuple[float, ...] = (0.76, 0.88, 1.14, 1.3)
    spectral_weight: float = 2.0  # of the linear-magnitude terms (convergence, envelope) beside log-mel L1

    def __post_init__(self) -> None:
        preset(self.preset)
        checks = [
            (self.epochs is None or self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (self.learning_rate > 0, "learning rate must be positive"),
            (0 < self.lr_decay <= 1, "lr_decay must be in (0, 1]"),
            (self.latent_dim is None or self.latent_dim >= 1, "latent size must be at least 1"),
            (self.beta >= 0 and self.free_bits >= 0, "beta and free bits cannot be negative"),
            (0 < self.val_fraction < 1, "validation fraction must be between 0 and 1"),
            (self.preview_every >= 0 and self.preview_samples >= 0, "preview settings cannot be negative"),
            (self.device in ("auto", "cpu", "cuda"), f"unknown device {self.device!r}: use auto, cpu or cuda"),
            (all(0.25 <= float(v) <= 4.0 for v in self.speed_augment), "augmentation speeds must lie in [0.25, 4]"),
            (self.spectral_weight >= 0 and self.gain_augment_db >= 0, "weights cannot be negative"),
        ]
        for ok, message in checks:
            if not ok:
                raise DistillError(message)
        Retention(self.keep_recent, self.keep_best)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["speed_augment"] = list(self.speed_augment)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in values.items() if k in names}
        if "speed_augment" in known:
            known["speed_augment"] = tuple(float(v) for v in known["speed_augment"])
        return cls(**known)

    def model_config(self) -> ModelConfig:
        base = preset(self.preset)
        return replace(base, latent_dim=self.latent_dim) if self.latent_dim else base

    @property
    def kl_schedule(self) -> KLSchedule:
        return KLSchedule(self.beta, self.kl_warmup_epochs, self.free_bits)

    @property
    def retention(self) -> Retention:
        return Retention(self.keep_recent, self.keep_best)


