"""Named directions: sliders that each move one audible property of a model's sounds.

`brightness` (spectral centroid), `attack` (how steeply the onset rises), `tail` (how long the
decay lasts), `noise` (spectral flatness), `pitch` (the register of the lowest strong partial,
only where the clips are pitched) and `width` (side against mid, stereo models only). A slider
runs from -1 to +1; 0 is the sound as the recipe makes it.

How they are found (`find_directions`, at export; a file exported before them has them found
when it is opened):

1. What is measured on: 16 random sounds as generation makes them (seeds 0-15, temperature 1,
   the default length), decoded to features; descriptors are read off the decoded features
   (`Describer`: power-weighted over the frames within 40 dB of the peak).
2. What each principal direction of the latent does: each of the 16 main directions is moved
   ±0.5 of its spread (weighted by how much each frame sounds, as generation moves sounds)
   and the change of every descriptor is measured through the decoder itself (a response
   matrix G). A regression of the descriptors on the clips' own latents was tried first: it
   finds what goes together in the data, not what the decoder does (its brightness direction
   made the drums duller).
3. The step for descriptor j is the shortest that changes j and holds every other descriptor
   and the level still, G (GᵀG)⁻¹ e_j (as InterFaceGAN's conditional editing projects other
   attributes out). Moving in spreads along the main directions keeps frames where real frames
   are, the reason generation moves only along them.
4. The range: a ladder of spans, tried from the smallest up until the ends leave the family
   (MMD² against the clips' reconstructions over twice their split-half floor, the family's
   features (`distill.family`) read off the decoded mel). Each span is judged at 5 slider steps:
   the descriptor's mean rises at every step, by at least a quarter of its spread, in at least
   3 of 4 sounds, and no other descriptor moves half as much. The widest span that passes is
   checked once more on rendered audio with the family scorer itself, stepping down the ladder
   until both ends sound inside (the mel's reading alone let the drums' width reach 2.4× the
   floor). `benchmarks/bench_directions.py` measures it all again on audio.
5. A direction with no passing span is not shown; it is kept with the reason, for `models info`.

`tail` is not a latent direction: a decay is a sequence of frames, and a fixed shift of every
frame changes what each frame sounds like, not how many there are. Its slider plays the decay
after the attack faster or slower (`trajectories.retime`, as the random recipe does), and a
sound of the default length grows or shrinks with it. Its range is found and checked the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from distill import DistillError
from distill.audio import AudioSettings
from distill.descriptors import ATTACK_LATENTS, UNITS, Describer, prominence
from distill.family import mmd2, sound_stats, split_half_floor, standardise
from distill.trajectories import Generator, Trajectory, TrajectoryBank, fit_frames, retime, shifted, stored_bank

NAMES = ("brightness", "attack", "tail", "noise", "pitch", "width")
FORMAT_VERSION = 1
COORDINATES = 16  # principal directions a named direction is made of: room to hold the others still
PROBE = 0.5  # spreads each principal direction is moved by to measure what it does
REFERENCE_CLIPS = 32  # clips whose reconstructions are the family (evenly through the bank)
REFERENCE_SOUNDS = 16  # random sounds (seeds 0..15) the directions are measured and judged on
AGREEMENT = 0.75  # a shown direction moves its descriptor the right way in at least this share of them
REFERENCE_SECONDS = 3.0  # each decoded at most this long
MMD_LIMIT = 2.0  # an end of the range may be this many times the family's split-half floor
SPANS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # latent spans tried, in spreads along the direction
TAIL_SPANS = (0.1, 0.2, 0.3, 0.45, 0.6, 0.8)  # tail spans tried: log of the decay's stretch at +1
STEPS = (-1.0, -0.5, 0.0, 0.5, 1.0)
SMALL = "it moves its descriptor"
OUTSIDE = "its ends leave the family"
MIN_CHANGE = 0.25  # a shown direction moves its descriptor at least this many spreads across its range
CROSSTALK = 0.5  # and every other descriptor less than this share of that
# Clips whose mean mel spectrum's 5 strongest bands stand this far over its median band are
# pitched. Measured on the clips' reconstructions (medians): dev-pitched 41.6 dB, the example
# corpus 28.7, dev-drums 18.6.
PITCHED_PROMINENCE_DB = 25.0
MEANINGS = {"brightness": "brighter (spectral centroid up)", "attack": "harder attack (steeper onset)",
            "tail": "longer tail (slower decay)", "noise": "noisier (flatter spectrum)",
            "pitch": "higher register (lowest strong partial up)", "width": "wider (more side)"}


@dataclass(frozen=True)
class Direction:
    """One named slider. vector (D,): the latent shift at +1 (None for `tail`, which stretches
    the decay by e^span at +1); shown: whether it passed; report: what it measured."""

    name: str
    span: float
    vector: torch.Tensor | None
    shown: bool
    reason: str
    report: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """For `models info --json` and the page: what the slider does and how well."""
        return {"name": self.name, "shown": self.shown, "reason": self.reason, "meaning": MEANINGS[self.name],
                "unit": UNITS[self.name], **self.report}


@dataclass(frozen=True)
class Directions:
    """A model's named directions, in the order of `NAMES`; pitched: whether the clips were
    found pitched (the pitch slider is offered only then)."""

    items: tuple[Direction, ...]
    pitched: bool = False

    @property
    def shown(self) -> list[Direction]:
        return [d for d in self.items if d.shown]

    def get(self, name: str) -> Direction:
        for direction in self.items:
            if direction.name == name:
                if not direction.shown:
                    raise DistillError(f"this model's {name} direction is not reliable ({direction.reason}); "
                                       f"its reliable ones: {', '.join(d.name for d in self.shown) or 'none'}")
                return direction
        raise DistillError(f"no direction named {name!r}: choose from {', '.join(d.name for d in self.shown) or 'none'}")

    def check(self, values: dict[str, float]) -> dict[str, float]:
        """`values` with every name known and shown and every value in -1..1 (else a clear error)."""
        for name, value in values.items():
            self.get(name)
            if not (math.isfinite(float(value)) and -1.0 <= float(value) <= 1.0):
                raise DistillError(f"{name}={value}: a direction runs from -1 to 1")
        return {name: float(value) for name, value in values.items()}

    def stretch(self, values: dict[str, float]) -> float:
        """How many times longer the decay is played (the tail slider's e^(value·span))."""
        value = values.get("tail", 0.0)
        return math.exp(value * self.get("tail").span) if value else 1.0

    def apply(self, trajectory: Trajectory, values: dict[str, float], bank: TrajectoryBank,
              generator: torch.Generator) -> Trajectory:
        """`trajectory` (of `frames` latent frames) moved by the sliders: each latent direction
        weighted by how much a frame sounds (silence stays silence), `attack` only on the onset,
        `tail` as a slower or faster decay."""
        moved = trajectory
        for name, value in values.items():
            direction = self.get(name)
            if value and direction.vector is not None:
                moved = _shifted(moved, value * direction.span * direction.vector, onset=name == "attack")
        if values.get("tail"):
            moved = _stretch_decay(moved, 1.0 / self.stretch(values), bank, generator)
        return moved

    # -- storage: plain values, readable with weights_only=True ------------------------------

    def to_plain(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "pitched": self.pitched, "items": [
            {"name": d.name, "span": float(d.span), "vector": None if d.vector is None else d.vector.float().clone(),
             "shown": bool(d.shown), "reason": d.reason, "report": d.report} for d in self.items]}

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> "Directions":
        return cls(tuple(Direction(item["name"], float(item["span"]),
                                   None if item["vector"] is None else item["vector"].float(),
                                   bool(item["shown"]), str(item["reason"]), dict(item["report"]))
                         for item in plain["items"]), bool(plain.get("pitched", False)))


def _shifted(trajectory: Trajectory, shift: torch.Tensor, onset: bool) -> Trajectory:
    """`shifted`, on the attack's frames only for the attack slider (`onset`)."""
    return shifted(trajectory, shift, ATTACK_LATENTS if onset else 0)


def _stretch_decay(trajectory: Trajectory, pace: float, bank: TrajectoryBank,
                   generator: torch.Generator) -> Trajectory:
    """The decay played at `pace` (< 1: longer), at the trajectory's length: a longer one is cut
    (its sound was given room for it), a shorter one goes on as `fit_frames` continues a sound."""
    frames = trajectory.frames
    return fit_frames(retime(trajectory, pace, frames), frames, bank, generator)


# -- finding them -----------------------------------------------------------------------------

@dataclass
class _Reference:
    """What a direction is measured and judged on: random sounds as generation makes them
    (temperature 1, the default length up to REFERENCE_SECONDS), decoded; and the family they
    must stay in: the clips' own reconstructions' family features and their split-half floor."""

    trajectories: list[Trajectory]
    frames: int
    feats: list[torch.Tensor]
    values: list[dict[str, float]]
    vectors: np.ndarray
    floor: float
    pitched: bool  # the clips' reconstructions' median mel peak prominence is PITCHED_PROMINENCE_DB or more
    heard: "_Heard | None" = None  # the family on rendered audio, when a synthesizer is given


@dataclass
class _Heard:
    """The family as rendered audio: the clips' reconstructions voiced by `synthesize`, their
    family features (`distill.family.sound_stats`) and split-half floor."""

    synthesize: Callable[[torch.Tensor], torch.Tensor]
    sample_rate: int
    vectors: np.ndarray
    floor: float

    def vector(self, feats: torch.Tensor) -> np.ndarray:
        wave = self.synthesize(feats)
        return sound_stats(wave.mean(0) if wave.dim() == 2 else wave, self.sample_rate).vector

    def ratio(self, feats: list[torch.Tensor]) -> float:
        """MMD² of these sounds against the clips', as × the floor."""
        reference, made = standardise(self.vectors, np.stack([self.vector(f) for f in feats]))
        return mmd2(made, reference) / max(self.floor, 1e-12)


def find_directions(model: Any, bank: TrajectoryBank, analysis: dict[str, Any], settings: AudioSettings,
                    synthesize: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    progress: Callable[[str], None] | None = None) -> Directions:
    """The model's named directions (see the module's docstring): measure, solve, range, check.
    `synthesize` (features → wave, `distill.synthesis.Synthesizer`) checks each range's ends on
    rendered audio too. On the CPU: 10-20 s for the default model."""
    model.eval()
    stride = model.config.time_stride
    basis = analysis["directions"].float()[:COORDINATES]
    spreads = analysis["direction_std"].float()[:COORDINATES].clamp(min=1e-6)
    reference = _reference(model, bank, analysis, Describer(settings, stride), synthesize)
    pitched = reference.pitched
    describer = Describer(settings, stride)
    if progress:
        progress("measuring what each principal direction does")
    steps = {**_solve(_response(model, reference, describer, basis, spreads, onset=False), exclude=("attack",)),
             **_solve(_response(model, reference, describer, basis, spreads, onset=True), only=("attack",))}
    items = []
    for name in NAMES:
        if progress:
            progress(f"checking {name}")
        if name == "width" and settings.channels != 2:
            items.append(Direction(name, 0.0, None, False, "the model is mono"))
        elif name == "pitch" and not pitched:
            items.append(Direction(name, 0.0, None, False, "the clips are not pitched"))
        elif name == "tail":
            items.append(_ranged(name, None, model, reference, describer, bank))
        elif name not in steps:
            items.append(Direction(name, 0.0, None, False, "no principal direction moves it"))
        else:
            items.append(_ranged(name, (steps[name] * spreads) @ basis, model, reference, describer, bank))
    return Directions(tuple(items), pitched)


def _response(model: Any, reference: _Reference, describer: Describer, basis: torch.Tensor, spreads: torch.Tensor,
              onset: bool) -> dict[str, torch.Tensor]:
    """{descriptor: (K,) its mean change over the reference clips per spread moved along each
    principal direction}, in units of the descriptor's spread over the clips: central
    differences of ±`PROBE` spreads through the decoder itself. A regression of the descriptors
    on the clips' own latents was tried first: it finds what goes together in the data, not
    what the decoder does (its brightness direction made the drums duller)."""
    names = list(reference.values[0])
    spread = {k: float(np.std([v[k] for v in reference.values])) or 1.0 for k in names}
    columns = {k: [] for k in names}
    for direction, size in zip(basis, spreads):
        ends = []
        for sign in (-1.0, 1.0):
            vector = sign * PROBE * size * direction
            moved = [_shifted(t, vector, onset) for t in reference.trajectories]
            values = [describer.clip_values(f) for f in _decode(model, moved)]
            ends.append({k: float(np.mean([v[k] for v in values])) for k in names})
        for k in names:
            columns[k].append((ends[1][k] - ends[0][k]) / (2 * PROBE * spread[k]))
    return {k: torch.tensor(v) for k, v in columns.items()}


def _solve(response: dict[str, torch.Tensor], only: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
           ) -> dict[str, torch.Tensor]:
    """{name: (K,) unit step in spreads along the principal directions}. With G (K, M) the
    descriptors' response, the step for descriptor j is the shortest one that changes j and
    holds every other descriptor still (level and tail included): G (GᵀG)⁻¹ e_j, as
    InterFaceGAN's conditional editing projects other attributes out. On its own, the
    gradient of brightness mostly turned the sound up (louder frames are brighter)."""
    names = [k for k in response if k not in exclude]
    g = torch.stack([response[k] for k in names], 1).double()
    steps = g @ torch.linalg.solve(g.T @ g + 1e-4 * torch.eye(len(names), dtype=g.dtype),
                                   torch.eye(len(names), dtype=g.dtype))
    out = {}
    for j, name in enumerate(names):
        if name in NAMES and name != "tail" and (not only or name in only) and float(steps[:, j].norm()) > 1e-9:
            out[name] = (steps[:, j] / steps[:, j].norm()).float()
    return out


@torch.no_grad()
def _decode(model: Any, trajectories: list[Trajectory]) -> list[torch.Tensor]:
    """Decode trajectories of one length in one batch: each one's features (rows, frames)."""
    device = next(model.parameters()).device
    z = torch.stack([t.latents for t in trajectories]).to(device)
    mels = model.decode(z, clamp=True).float().cpu()
    return list(mels)


def _reference(model: Any, bank: TrajectoryBank, analysis: dict[str, Any], describer: Describer,
               synthesize: Callable[[torch.Tensor], torch.Tensor] | None) -> _Reference:
    settings, stride = describer.settings, describer.stride
    count = min(REFERENCE_CLIPS, len(bank))
    picks = sorted({round(i * (len(bank) - 1) / max(1, count - 1)) for i in range(count)})
    cap = max(2, round(settings.seconds_to_frames(REFERENCE_SECONDS) / stride))
    longest = min(cap, max(bank.trajectories[i].frames for i in picks))
    generator = torch.Generator().manual_seed(0)
    clips = _decode(model, [fit_frames(bank.trajectories[i], longest, bank, generator) for i in picks])
    vectors = np.stack([describer.family_vector(f) for f in clips])
    floors = [split_half_floor(standardise(vectors)[0], seed) for seed in range(5)] if len(picks) >= 4 else [0.0]
    frames = min(cap, max(2, math.ceil(settings.seconds_to_frames(bank.median_seconds) / stride)))
    maker = Generator(bank, analysis, settings, stride)
    sounds = [maker.random(1.0, frames, seed, torch.Generator().manual_seed(seed))[0] for seed in range(REFERENCE_SOUNDS)]
    feats = _decode(model, sounds)
    pitched = float(np.median([prominence(f, settings) for f in clips])) >= PITCHED_PROMINENCE_DB
    heard = None
    if synthesize is not None:
        heard = _Heard(synthesize, settings.sample_rate, np.zeros(0), 0.0)
        heard.vectors = np.stack([heard.vector(f) for f in clips])
        heard.floor = float(np.mean([split_half_floor(standardise(heard.vectors)[0], seed) for seed in range(5)])) \
            if len(picks) >= 4 else 0.0
    return _Reference(sounds, frames, feats, [describer.clip_values(f) for f in feats], vectors, float(np.mean(floors)),
                      pitched, heard)


def _moved(name: str, vector: torch.Tensor | None, amount: float, reference: _Reference, bank: TrajectoryBank
           ) -> tuple[list[Trajectory], int]:
    """The reference trajectories moved `amount` along a direction (for tail: the decay stretched
    by e^amount, the frames grown to hold it)."""
    if vector is None:
        frames = reference.frames if amount <= 0 else math.ceil(reference.frames * math.exp(amount))
        generator = torch.Generator().manual_seed(0)
        return [_stretch_decay(fit_frames(t, frames, bank, generator), math.exp(-amount), bank, generator)
                for t in reference.trajectories], frames
    return [_shifted(t, amount * vector, onset=name == "attack") for t in reference.trajectories], reference.frames


def _ranged(name: str, vector: torch.Tensor | None, model: Any, reference: _Reference,
            describer: Describer, bank: TrajectoryBank) -> Direction:
    """The direction at the widest span of the ladder that passes `_judge`, or hidden with the
    reason the last span gave. Spans are tried from the smallest up until the ends leave the
    family: a failure at a small span is often measurement noise (a tail measured in whole
    frames, a change smaller than the clips' differences), and what a slider is judged by is
    the span it is given."""
    passing: list[tuple[float, dict[str, Any]]] = []
    reason = ""
    for span in TAIL_SPANS if vector is None else SPANS:
        reason, report = _judge(name, vector, span, model, reference, describer, bank)
        if reason == "":
            passing.append((span, report))
        elif reason == OUTSIDE:
            break
    for span, report in reversed(passing):  # the widest whose ends also sound inside the family
        if reference.heard is None:
            return Direction(name, span, vector, True, "", report)
        ends = [reference.heard.ratio(_decode(model, _moved(name, vector, sign * span, reference, bank)[0]))
                for sign in (-1.0, 1.0)]
        report = {**report, "heard_mmd2_ends_x_floor": [round(e, 3) for e in ends]}
        if max(ends) <= MMD_LIMIT:
            return Direction(name, span, vector, True, "", report)
        reason = OUTSIDE + " (rendered)"
    return Direction(name, 0.0, vector, False, reason, report)


def _judge(name: str, vector: torch.Tensor | None, span: float, model: Any, reference: _Reference,
           describer: Describer, bank: TrajectoryBank) -> tuple[str, dict[str, Any]]:
    """(why the slider fails at `span`, or "" when it passes; what was measured) at the 5 steps
    of STEPS: its descriptor must rise at every step (mean over the reference clips), by at
    least MIN_CHANGE spreads end to end, every other descriptor move less than CROSSTALK of that,
    and both ends stay in the family (MMD² ≤ MMD_LIMIT × floor)."""
    reference_std = standardise(reference.vectors)[0]
    steps, ends, per_sound = [], [], []
    for step in STEPS:
        feats = _decode(model, _moved(name, vector, step * span, reference, bank)[0]) if step else reference.feats
        values = [describer.clip_values(f) for f in feats]
        steps.append({k: float(np.mean([v[k] for v in values])) for k in values[0]})
        per_sound.append([v[name] for v in values])
        if abs(step) == 1.0:
            vectors = np.stack([describer.family_vector(f) for f in feats])
            ends.append(mmd2(standardise(reference.vectors, vectors)[1], reference_std))
    spread = {k: float(np.std([v[k] for v in reference.values])) or 1.0 for k in reference.values[0]}
    own = [s[name] for s in steps]
    change = (own[-1] - own[0]) / spread[name]
    others = {k: round(abs(steps[-1][k] - steps[0][k]) / spread[k], 3) for k in spread if k not in (name, "level")}
    agreement = float(np.mean([b > a for a, b in zip(per_sound[0], per_sound[-1])]))
    report = {"span": span, "steps": [round(v, 4) for v in own], "change_spreads": round(change, 3),
              "agreement": round(agreement, 3),
              "others_spreads": others, "level_change_db": round(steps[-1]["level"] - steps[0]["level"], 2),
              "mmd2_ends": [round(e, 5) for e in ends], "mmd2_floor": round(reference.floor, 5)}
    worst = max(others, key=others.get) if others else None
    if max(ends) > MMD_LIMIT * reference.floor:
        return OUTSIDE, report
    if change < MIN_CHANGE:  # first: at a small span, order and crosstalk are measurement noise
        return f"{SMALL} only {change:.2f} spreads", report
    if not all(b > a for a, b in zip(own, own[1:])):
        return "its descriptor does not rise at every step", report
    if agreement < AGREEMENT:
        return f"{SMALL} the right way in only {agreement:.0%} of the sounds", report
    if worst and others[worst] > CROSSTALK * change:
        return f"it moves {worst} as much as {name}", report
    return "", report


# -- a model file's ---------------------------------------------------------------------------

ANALYSIS_KEY = "named_directions"
_found: dict[tuple[str, int, int], Directions] = {}  # files exported before directions: found once per process


def directions_of(model_file: Any, synthesize: Callable[[torch.Tensor], torch.Tensor], network: Any = None
                  ) -> Directions:
    """A model file's (`distill.modelfile.ModelFile`) named directions: as it stores them, or,
    for a file exported before they were, found now and kept for the rest of the process (its
    network built on the CPU unless given; `synthesize` must be the file's own default decoder,
    `Synthesizer.for_model(model_file)`, as export uses, so every caller finds the same ones)."""
    plain = model_file.analysis.get(ANALYSIS_KEY)
    if isinstance(plain, dict):
        try:
            return Directions.from_plain(plain)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DistillError(f"{model_file.path.name} is damaged: its named directions do not read ({exc})") from None
    stat = model_file.path.stat()
    key = (str(model_file.path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _found:
        model = network if network is not None else model_file.build_model(torch.device("cpu"))
        _found[key] = find_directions(model, stored_bank(model_file), model_file.analysis,
                                      model_file.audio_settings, synthesize)
    return _found[key]
