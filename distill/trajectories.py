"""Whole sounds as latent trajectories: the training clips' own, and new ones made from them.

A clip encodes to a trajectory: one latent frame per `time_stride` mel frames, from its onset
to its end. Its attack, its decay and its sustain are in that sequence. A model file carries
the trajectories of its training clips (`TrajectoryBank`), and new sounds are made from them
rather than from a learned prior: at 15-500 clips an autoregressive or diffusion prior
either copies its clips or drones, while a clip's own trajectory, its decay run a little
faster or slower and moved smoothly along the directions the data varies in, keeps the
clips' envelopes and stays in the family (see `Generator`). Everything here works on
latents; decoding and audio are `distill.generate`'s.

Temperature keeps its meaning: 0 = the most typical clip (the medoid) as it is, higher =
wilder (a freer choice of clip, larger changes of pace and timbre).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, AudioSettings

# A stored trajectory is cut at this many seconds: a model file stays small with 500 long clips.
MAX_TRAJECTORY_SECONDS = 30.0
# Frames quieter than this under the clip's peak count as silent (the corpus' own tail trim).
SILENT_DB = -60.0
# Principal directions a perturbation moves along: the few that carry most of the variance,
# so a perturbed frame stays where frames of real clips are (independent noise in every
# latent dimension leaves that region and decodes as ripple).
PERTURB_DIRECTIONS = 8
# How far temperature 1 moves a sound: this many spreads along each main direction. Measured on
# the dev corpora (24 sounds): 0.35 gave novelty 0.50-0.52 (near copies), 0.7 gave 0.80-0.96.
PERTURB_SCALE = 0.7
SMOOTH_SECONDS = 0.25  # a perturbation changes at this pace: timbre drifts, it does not flutter
SPLICE_FRAMES = 6  # a cross-fade of this many latent frames where a sustained sound continues
MAX_COMPRESSION = 3.0  # a one-shot longer than the sound asked for decays at most this much faster
PACE_SPREAD = 0.2  # temperature 1 plays a decay up to e^0.2 ≈ 1.22 times faster or slower


@dataclass
class Trajectory:
    """(D, L) latent frames from a sound's onset, and each frame's level in dB under the
    sound's peak (L,), which says where it is silent and whether it has decayed by its end."""

    latents: torch.Tensor
    level_db: torch.Tensor

    @property
    def frames(self) -> int:
        return int(self.latents.shape[1])

    @property
    def activity(self) -> torch.Tensor:
        """(L,) how much each frame sounds: 0 at SILENT_DB and below, 1 at the peak. A change
        to the latents is weighted by it, so silence stays silence."""
        return ((self.level_db - SILENT_DB) / -SILENT_DB).clamp(0, 1)

    @property
    def decays(self) -> bool:
        """Whether the sound has died away by its end (a one-shot), rather than been cut."""
        tail = self.level_db[-max(1, self.frames // 10):]
        return bool(tail.max() <= SILENT_DB + 20)


def frame_levels(log_mel: torch.Tensor, stride: int) -> torch.Tensor:
    """dB under the loudest frame of each latent frame's `stride` mel frames (the loudest)."""
    energy = torch.logsumexp(2 * log_mel.float(), dim=0) / 2 * (20 / math.log(10))  # dB of magnitude
    pad = (-energy.shape[0]) % stride
    energy = F.pad(energy, (0, pad), value=float(energy.min()))
    per_frame = energy.unflatten(0, (-1, stride)).amax(dim=1)
    return (per_frame - per_frame.max()).clamp(min=-120.0)


@torch.no_grad()
def encode_trajectory(model: Any, log_mel: torch.Tensor) -> Trajectory:
    """A sound's log-mel (n_mels, frames), from its onset, as a trajectory (on the CPU)."""
    device = next(model.parameters()).device
    latents = model.encode_long(log_mel.to(device)).float().cpu()
    return Trajectory(latents, frame_levels(log_mel.cpu(), model.config.time_stride)[: latents.shape[1]])


@dataclass
class TrajectoryBank:
    """The training clips' trajectories, and what generation needs to know about the clips.

    names: the clips; silence (D,): the latent of digital silence, what a sound that has
    ended continues with; median_seconds: the clips' median length from their onset, the
    default length of a new sound; loudness_lufs: the clips' median loudness, what a sample
    pack is matched to."""

    names: list[str]
    trajectories: list[Trajectory]
    silence: torch.Tensor
    median_seconds: float
    loudness_lufs: float

    def __post_init__(self) -> None:
        if not self.trajectories or len(self.names) != len(self.trajectories):
            raise DistillError("a trajectory bank needs one trajectory per clip, and at least one")

    def __len__(self) -> int:
        return len(self.trajectories)

    def index(self, name: str) -> int:
        if name not in self.names:
            raise DistillError(f"no training clip {name!r} in this model (it has {len(self)}: "
                               f"{', '.join(self.names[:5])}{', …' if len(self) > 5 else ''})")
        return self.names.index(name)

    # -- storage: plain tensors and lists, readable with weights_only=True -----------------

    def to_plain(self) -> dict[str, Any]:
        lengths = [t.frames for t in self.trajectories]
        return {
            "names": list(self.names),
            "lengths": torch.tensor(lengths, dtype=torch.int64),
            # half precision: a 500-clip bank stays a few MB; decoding does not hear the rounding
            "latents": torch.cat([t.latents.T for t in self.trajectories]).half().contiguous(),
            "level_db": torch.cat([t.level_db for t in self.trajectories]).half().contiguous(),
            "silence": self.silence.float().clone(),
            "median_seconds": float(self.median_seconds),
            "loudness_lufs": float(self.loudness_lufs),
        }

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> "TrajectoryBank":
        lengths = [int(n) for n in plain["lengths"]]
        latents = plain["latents"].float().split(lengths)
        levels = plain["level_db"].float().split(lengths)
        return cls(list(plain["names"]), [Trajectory(z.T.contiguous(), lv) for z, lv in zip(latents, levels)],
                   plain["silence"].float(), float(plain["median_seconds"]), float(plain["loudness_lufs"]))


def stored_bank(model_file: Any) -> TrajectoryBank:
    """The training-clip trajectories a model file (`distill.modelfile.ModelFile`) holds, or a
    clear error for a file exported before whole-sound generation."""
    plain = model_file.analysis.get("trajectories")
    if not isinstance(plain, dict):
        raise DistillError(f"{model_file.path.name} was exported before Distill made whole sounds: export it "
                           "again from its experiment (`distill export EXPERIMENT`) to generate with it")
    try:
        return TrajectoryBank.from_plain(plain)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise DistillError(f"{model_file.path.name} is damaged: its clip trajectories do not read ({exc})") from None


@torch.no_grad()
def build_bank(model: Any, clips: list[tuple[str, torch.Tensor]], settings: AudioSettings,
               loudness_lufs: float) -> TrajectoryBank:
    """Encode each (name, log-mel from its onset) clip whole; `loudness_lufs` is measured
    by the caller on the waveforms."""
    cap = settings.seconds_to_frames(MAX_TRAJECTORY_SECONDS)
    stride = model.config.time_stride
    trajectories = [encode_trajectory(model, mel[:, :cap]) for _, mel in clips]
    seconds = [settings.frames_to_seconds(mel.shape[1]) for _, mel in clips]
    silence_mel = torch.full((model.config.n_mels, stride * 8), LOG_MEL_FLOOR)
    silence = encode_trajectory(model, silence_mel).latents[:, 4]  # a frame away from the padded end
    return TrajectoryBank([name for name, _ in clips], trajectories, silence, statistics.median(seconds),
                          loudness_lufs)


# -- making trajectories --------------------------------------------------------------------

def fit_frames(trajectory: Trajectory, frames: int, bank: TrajectoryBank, generator: torch.Generator) -> Trajectory:
    """`trajectory` at exactly `frames` latent frames. Cut when longer; when shorter, a sound
    that has died away goes on in silence, and one that was cut while sounding goes on from
    a similar frame of a training clip (a cross-faded splice, so it sustains, not stops)."""
    if trajectory.frames > frames and trajectory.decays:
        trajectory = compress(trajectory, frames)
    latents, level = trajectory.latents, trajectory.level_db
    while latents.shape[1] < frames:
        if Trajectory(latents, level).decays:
            pad = frames - latents.shape[1]
            latents = torch.cat([latents, bank.silence[:, None].expand(-1, pad)], dim=1)
            level = torch.cat([level, torch.full((pad,), -120.0)])
            break
        latents, level = _splice(latents, level, bank, generator)
    return Trajectory(latents[:, :frames].contiguous(), level[:frames].contiguous())


def retime(trajectory: Trajectory, pace: float, frames: int | None = None) -> Trajectory:
    """The trajectory played `pace` times faster after its attack (up to its loudest frame,
    kept as it is), cut at `frames` in all if given: latent frames are read at that pace with
    linear interpolation between neighbours (which are alike after an attack), so a decay
    runs faster or slower while its timbre stays and its pitch does not move."""
    attack = int(trajectory.level_db.argmax()) + 1
    rest = trajectory.frames - attack
    if abs(pace - 1.0) < 1e-6 or rest < 2:
        return trajectory
    count = int((rest - 1) / pace) + 1
    if frames is not None:
        count = max(1, min(count, frames - attack))
    position = attack + torch.arange(count, dtype=torch.float32) * pace
    low = position.floor().long().clamp(max=trajectory.frames - 1)
    high = (low + 1).clamp(max=trajectory.frames - 1)
    t = position - low
    latents = trajectory.latents[:, low] * (1 - t) + trajectory.latents[:, high] * t
    level = trajectory.level_db[low] * (1 - t) + trajectory.level_db[high] * t
    return Trajectory(torch.cat([trajectory.latents[:, :attack], latents], 1),
                      torch.cat([trajectory.level_db[:attack], level]))


def compress(trajectory: Trajectory, frames: int) -> Trajectory:
    """A one-shot longer than `frames`, its decay sped up (by at most `MAX_COMPRESSION`) so
    that the decay, not a cut, ends it."""
    attack = int(trajectory.level_db.argmax()) + 1
    if frames <= attack + 1:
        return trajectory
    pace = min(MAX_COMPRESSION, (trajectory.frames - attack - 1) / (frames - attack - 1))
    return retime(trajectory, pace, frames) if pace > 1.0 else trajectory


def _splice(latents: torch.Tensor, level: torch.Tensor, bank: TrajectoryBank,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Continue a sounding trajectory: find, among every clip's frames that have at least
    `4 · SPLICE_FRAMES` frames after them, the 5 nearest to the last frame; draw one; cross-
    fade into what follows it."""
    last = latents[:, -1]
    candidates = []
    for t in bank.trajectories:
        usable = t.frames - 4 * SPLICE_FRAMES
        if usable > 0:
            d = (t.latents[:, :usable] - last[:, None]).pow(2).sum(0)
            candidates += [(float(v), t, int(i)) for v, i in zip(*d.topk(min(5, usable), largest=False))]
    if not candidates:  # every clip is shorter than a splice: hold the last frame
        return torch.cat([latents, last[:, None].expand(-1, SPLICE_FRAMES * 4)], 1), \
            torch.cat([level, level[-1:].expand(SPLICE_FRAMES * 4)])
    candidates.sort(key=lambda c: c[0])
    _, source, start = candidates[int(torch.randint(min(5, len(candidates)), (1,), generator=generator))]
    follow = source.latents[:, start + 1:]
    follow_level = source.level_db[start + 1:]
    n = min(SPLICE_FRAMES, follow.shape[1], latents.shape[1])
    w = torch.linspace(0, 1, n + 2)[1:-1]
    joined = latents[:, -n:] * (1 - w) + follow[:, :n] * w
    return (torch.cat([latents[:, :-n], joined, follow[:, n:]], dim=1),
            torch.cat([level[:-n], torch.maximum(level[-n:], follow_level[:n]), follow_level[n:]]))


def blend(trajectories: list[Trajectory], weights: list[float], frames: int, bank: TrajectoryBank,
          generator: torch.Generator) -> Trajectory:
    """The weighted sum of onset-aligned trajectories, each first fitted to `frames`."""
    fitted = [fit_frames(t, frames, bank, generator) for t in trajectories]
    total = sum(weights)
    latents = sum(w / total * t.latents for w, t in zip(weights, fitted))
    level = torch.stack([t.level_db for t in fitted]).amax(dim=0)
    return Trajectory(latents, level)


def smooth_noise(shape: tuple[int, int], frames_per_change: float, generator: torch.Generator) -> torch.Tensor:
    """(K, L) noise of unit spread that changes over about `frames_per_change` frames (a
    Gaussian-smoothed white noise, rescaled so its spread does not depend on the smoothing)."""
    k, length = shape
    sigma = max(frames_per_change / 2, 0.5)
    radius = int(3 * sigma)
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = kernel / kernel.pow(2).sum().sqrt()
    white = torch.randn((k, length + 2 * radius), generator=generator)
    return F.conv1d(white[:, None], kernel[None, None])[:, 0]


def shifted(trajectory: Trajectory, shift: torch.Tensor, onset_frames: int = 0) -> Trajectory:
    """`trajectory` moved by `shift` (D,), each frame as much as it sounds (silence stays
    silence); with `onset_frames`, only its first that many frames and half of the next (an
    attack moved, its ringing left as it was)."""
    weight = trajectory.activity
    if onset_frames:
        mask = torch.zeros(trajectory.frames)
        mask[:onset_frames] = 1.0
        mask[onset_frames:onset_frames + 1] = 0.5
        weight = weight * mask
    return Trajectory(trajectory.latents + shift[:, None] * weight, trajectory.level_db)


def perturb(trajectory: Trajectory, amount: float, analysis: dict[str, Any], frames_per_change: float,
            generator: torch.Generator) -> Trajectory:
    """Move each sounding frame along the top principal directions of the training frames by
    `amount` of their spread, smoothly in time. Silent frames stay put: a perturbation must
    not turn silence into sound. A stereo model's move holds the width (the part of the noise
    that would widen or narrow the sound, `direction_width`, is taken out): the main
    directions also carry the side's level, and moved freely they left random dev-pitched
    sounds 8 dB wider than their clips (median; ±0.7 spreads of the widest direction move the
    side by 9 dB), where width is the `width` slider's to change."""
    directions = analysis["directions"].float()[:PERTURB_DIRECTIONS]
    spreads = analysis["direction_std"].float()[:PERTURB_DIRECTIONS]
    noise = smooth_noise((directions.shape[0], trajectory.frames), frames_per_change, generator)
    if "direction_width" in analysis:  # files exported before it move as they did
        widening = analysis["direction_width"].float()[:PERTURB_DIRECTIONS] * spreads
        if float(widening.norm()) > 0:
            noise = noise - widening[:, None] * (widening @ noise)[None, :] / widening.pow(2).sum()
    shift = (directions.T @ (noise * spreads[:, None])) * trajectory.activity * amount
    return Trajectory(trajectory.latents + shift, trajectory.level_db)


@dataclass(frozen=True)
class Recipe:
    """What one new sound was made of, for people to read (the spec makes it again)."""

    clips: tuple[str, ...]
    weights: tuple[float, ...]
    pace: float = 1.0  # how much faster (> 1) or slower its decay runs than its clip's
    moved: float = 0.0  # how far it was moved, in spreads along the data's main directions

    def describe(self) -> str:
        made = " + ".join(f"{w:.2f}·{c}" if len(self.clips) > 1 else c for c, w in zip(self.clips, self.weights))
        if self.moved:
            made += f", moved {self.moved:.2f}, decay ×{1 / self.pace:.2f}"
        return made


class Generator:
    """New trajectories from a bank: random sounds and variations of a sound.

    Both are one recipe, `vary`: a clip's own trajectory, its decay played a little faster or
    slower, moved smoothly along the data's main directions. Blends of a clip with its near
    neighbours were measured and left out: on pitched one-shots the nearest clips are other
    notes, and a blend of two notes is a smeared chord (spectral peak prominence 8 dB down at
    a 15-35 % share, with no gain in novelty); blends are what `morph` is for."""

    def __init__(self, bank: TrajectoryBank, analysis: dict[str, Any], settings: AudioSettings, stride: int):
        self.bank, self.analysis = bank, analysis
        self.frames_per_change = settings.seconds_to_frames(SMOOTH_SECONDS) / stride
        self.frames_per_second = settings.seconds_to_frames(1.0) / stride
        self._typicality: torch.Tensor | None = None

    def typicality(self) -> torch.Tensor:
        """(N,) each clip's mean squared distance to the others, as onset-aligned trajectories
        over the clips' median length (the shorter padded with silence): low = typical."""
        if self._typicality is None:
            frames = max(1, min(max(t.frames for t in self.bank.trajectories),
                                round(self.bank.median_seconds * self.frames_per_second)))
            rows = []
            for t in self.bank.trajectories:
                z = t.latents[:, :frames]
                rows.append(torch.cat([z, self.bank.silence[:, None].expand(-1, frames - z.shape[1])], 1).flatten())
            stacked = torch.stack(rows)
            self._typicality = (torch.cdist(stacked, stacked).pow(2) / frames).mean(dim=1)
        return self._typicality

    def pick_seed_clip(self, temperature: float, seed: int, generator: torch.Generator) -> int:
        """0 → the medoid; between 0 and 1 → typical clips favoured, every clip possible;
        1 and above → every clip alike, taken in a fixed shuffled order by seed, so that any
        run of consecutive seeds starts from different clips (no near-twins in a batch)."""
        excess = self.typicality() - self.typicality().min()
        if temperature <= 0 or len(self.bank) == 1:
            return int(excess.argmin())
        if temperature >= 1:
            order = torch.randperm(len(self.bank), generator=torch.Generator().manual_seed(len(self.bank)))
            return int(order[seed % len(self.bank)])
        scale = float(excess.median()) or 1.0
        weights = torch.exp(-excess / scale * (1 / temperature - 1))
        return int(torch.multinomial(weights, 1, generator=generator))

    def vary(self, source: Trajectory, distance: float, frames: int,
             generator: torch.Generator) -> tuple[Trajectory, float, float]:
        """(`source` at `frames` with its decay's pace changed and moved, by `distance`; the
        pace; the amount moved). Every draw is made whatever the distance, so one seed means
        the same directions at every distance: a variation grows along one line."""
        pace = math.exp(PACE_SPREAD * distance * (2 * float(torch.rand((), generator=generator)) - 1))
        fitted = fit_frames(retime(source, pace), frames, self.bank, generator)
        amount = PERTURB_SCALE * distance
        return perturb(fitted, amount, self.analysis, self.frames_per_change, generator), pace, amount

    def random(self, temperature: float, frames: int, seed: int,
               generator: torch.Generator) -> tuple[Trajectory, Recipe]:
        clip = self.pick_seed_clip(temperature, seed, generator)
        made, pace, amount = self.vary(self.bank.trajectories[clip], temperature, frames, generator)
        return made, Recipe((self.bank.names[clip],), (1.0,), round(pace, 4), round(amount, 4))

    def variation(self, source: Trajectory, source_name: str, distance: float, frames: int,
                  generator: torch.Generator) -> tuple[Trajectory, Recipe]:
        made, pace, amount = self.vary(source, distance, frames, generator)
        return made, Recipe((source_name,), (1.0,), round(pace, 4), round(amount, 4))


def morph(a: Trajectory, b: Trajectory, position: float, frames: int, bank: TrajectoryBank,
          generator: torch.Generator) -> Trajectory:
    """The sound `position` of the way from `a` (0) to `b` (1), onset-aligned."""
    return blend([a, b], [1.0 - position, position], frames, bank, generator)
