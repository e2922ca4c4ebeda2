"""New sounds from a saved model: random ones, variations of a clip, and morphs.

A sound is a latent trajectory (`distill.trajectories`) made from the training clips' own
onset-aligned trajectories, decoded in one `decode_long` call (equal to one pass: no chunk
joins to cross-fade) and inverted once (`distill.synthesis`: the model's vocoder or
Griffin-Lim), so nothing clicks at a seam. Three modes share that path:

- random: a training clip (temperature 0: the most typical), its decay run a little faster
  or slower and moved smoothly along the data's main directions (temperature: how far);
- variation: the same around a given clip or file, `distance` growing from close to far;
- morph: the onset-aligned blend from A to B in steps (each a whole sound).

A sound comes out at the level its trajectory says (the clips' own levels), never
peak-normalised; a peak above full scale is turned down to -0.1 dBFS. Sound `i` of a batch
uses seed `seed + i`, and `SoundSpec` holds everything needed to make one again.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from distill import DistillError
from distill.audio import (LOG_MEL_FLOOR, MAX_SECONDS, AudioSettings, OutputFormat, features, levels, loudness_lufs,
                           read_audio, write_sound, write_wav)
from distill.model import ConvVAE
from distill.modelfile import OpenModel, open_model
from distill.synthesis import GRIFFIN_LIM, Synthesizer, fit_length
from distill.trajectories import Generator, Recipe, Trajectory, encode_trajectory, morph, shifted, stored_bank
from distill.atomic import ensure_space, output_set
from distill.directions import Directions, directions_of
from distill.workspace import Workspace, sanitize_filename, unique_path, wav_name

MODES = ("random", "variation", "morph")
FADE_IN_SECONDS = 0.002  # the file starts at 0; short enough to keep the attack
RELEASE_SECONDS = 0.05  # a sound cut while it still sounds ends in this fade, not a click
RENDER_WORKERS = max(1, min(2, os.cpu_count() or 1))  # sounds rendered at once on a CPU (Studio.render_all)
TAIL_FRAMES = 8  # mel frames inverted past the last one above the floor (the STFT window's reach)
CEILING = 10 ** (-0.1 / 20)  # -0.1 dBFS: a louder peak is turned down to this
GENERATED_SOURCE = "seed:"  # a morph end or a variation source given as a generated sound: seed:N


@dataclass(frozen=True)
class SoundSpec:
    """Everything that decides one sound, given the model file: what `pack.json` stores.

    temperature: random mode's wildness; a variation's distance from its source.
    like: a variation's source; morph: (A, B) with position 0..1 between them. A source is a
    training clip's name, an audio file's path, or `seed:N` (random sound N of the model).
    duration: seconds; None = the default (the dataset's median clip length; a variation is
    as long as its source, a morph step between its ends' lengths; a longer or shorter
    `tail` stretches it). offsets: principal directions (pc1 = 1) in spreads; directions:
    the named sliders (brightness, tail, ...) from -1 to 1."""

    mode: str = "random"
    seed: int = 0
    duration: float | None = None
    temperature: float = 1.0
    like: str | None = None
    morph: tuple[str, str] | None = None
    position: float = 0.0
    offsets: dict[int, float] = field(default_factory=dict)
    directions: dict[str, float] = field(default_factory=dict)  # named sliders, -1..1 (`distill.directions`)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["morph"] = list(self.morph) if self.morph else None
        values["offsets"] = {str(k): v for k, v in self.offsets.items()}
        values["directions"] = dict(self.directions)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SoundSpec":
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        if known.get("morph"):
            known["morph"] = tuple(known["morph"])
        known["offsets"] = {int(k): float(v) for k, v in (known.get("offsets") or {}).items()}
        known["directions"] = {str(k): float(v) for k, v in (known.get("directions") or {}).items()}
        return cls(**known)


@dataclass(frozen=True)
class GeneratedSound:
    path: Path
    spec: SoundSpec
    recipe: str  # which clips, in what shares
    seconds: float
    peak_dbfs: float  # of the written file
    rms_dbfs: float

    @property
    def seed(self) -> int:
        return self.spec.seed


def generated_dir(ws: Workspace, model_name: str) -> Path:
    return ws.generated_dir / sanitize_filename(model_name, "model")


# -- latents ------------------------------------------------------------------------------

def offset_vector(analysis: dict, offsets: dict[int, float] | None, latent_dim: int) -> torch.Tensor:
    """Σ offsets[k] · spread_k · direction_k, with k counted from 1 (pc1 = the direction of
    most variance) and each offset in units of the data's spread along that direction."""
    vector = torch.zeros(latent_dim)
    if not offsets:
        return vector
    directions, spreads = analysis["directions"].float(), analysis["direction_std"].float()
    for k, amount in offsets.items():
        if not 1 <= int(k) <= directions.shape[0]:
            raise DistillError(f"pc{k}: this model has principal directions pc1..pc{directions.shape[0]}")
        vector += float(amount) * spreads[int(k) - 1] * directions[int(k) - 1]
    return vector


class Studio:
    """One opened model, ready to make sounds: its bank, its synthesizer, and the sources
    (clips, files, generated sounds) it has encoded so far."""

    def __init__(self, opened: OpenModel, synthesize: Synthesizer):
        self.opened, self.synthesize = opened, synthesize
        self.file, self.model = opened.file, opened.network
        self.settings, self.config = self.file.audio_settings, self.file.model_config
        self.bank = stored_bank(self.file)
        self.generator = Generator(self.bank, self.file.analysis, self.settings, self.config.time_stride)
        self._sources: dict[str, tuple[Trajectory, str]] = {}
        self._loudness: dict[str, float] = {}
        self._directions: Directions | None = None

    @property
    def directions(self) -> Directions:
        """The model's named directions (found now, once, for a file exported before them)."""
        if self._directions is None:
            self._directions = directions_of(self.file, Synthesizer.for_model(self.file, self.opened.device),
                                             self.model)
        return self._directions

    def check_directions(self, values: dict[str, float]) -> None:
        """Refuse an unknown or unreliable slider, or a value outside -1..1, before any sound is
        made (with no slider set, nothing is checked and no directions are looked up)."""
        if values:
            self.directions.check(values)

    def seconds_to_latents(self, seconds: float) -> int:
        frames = math.ceil(round(seconds * self.settings.sample_rate) / self.settings.hop_length) + 1
        return math.ceil(frames / self.config.time_stride)

    def latents_to_seconds(self, latents: int) -> float:
        return self.settings.frames_to_seconds(latents * self.config.time_stride)

    def source(self, ref: str) -> tuple[Trajectory, str]:
        """(trajectory, a short label) of a training clip name, an audio file or `seed:N`."""
        if ref not in self._sources:
            self._sources[ref] = self._load_source(ref)
        return self._sources[ref]

    def _load_source(self, ref: str) -> tuple[Trajectory, str]:
        from distill.features import trim_onset

        if ref in self.bank.names:
            return self.bank.trajectories[self.bank.index(ref)], Path(ref).stem
        if ref.startswith(GENERATED_SOURCE):
            try:
                seed = int(ref[len(GENERATED_SOURCE):])
            except ValueError:
                raise DistillError(f"{ref!r}: write a generated sound as seed:N, e.g. seed:42") from None
            trajectory, _ = self.trajectory(SoundSpec(seed=seed))
            return trajectory, f"seed{seed}"
        path = Path(ref).expanduser()
        if not path.is_file():
            raise DistillError(f"{ref!r} is neither a training clip of this model nor an audio file "
                               f"(training clips: {', '.join(self.bank.names[:4])}{', …' if len(self.bank) > 4 else ''})")
        wave = read_audio(path, self.settings.sample_rate, self.settings.channels)
        if wave.abs().max() <= 0:
            raise DistillError(f"{path.name} is silent: there is nothing to vary or morph")
        mel = trim_onset(features(wave, self.settings))
        return encode_trajectory(self.model, mel), path.stem

    def seconds(self, spec: SoundSpec) -> float:
        """How long `spec`'s sound is: its duration, else the dataset's median clip length
        (random), its source's length (variation), or between its ends' lengths (morph),
        stretched as the `tail` slider stretches the decay."""
        if spec.duration is not None:
            return float(spec.duration)
        stretch = self.directions.stretch(spec.directions) if spec.directions.get("tail") else 1.0
        if spec.mode == "variation" and spec.like:
            return stretch * self.latents_to_seconds(self.source(spec.like)[0].frames)
        if spec.mode == "morph" and spec.morph and len(spec.morph) == 2:
            a, b = (self.latents_to_seconds(self.source(ref)[0].frames) for ref in spec.morph)
            return stretch * ((1 - spec.position) * a + spec.position * b)
        return stretch * self.bank.median_seconds

    def size_bytes(self, specs: list[SoundSpec], fmt: OutputFormat) -> int:
        """What the files of `specs` take on disk in `fmt`, at most."""
        return sum(fmt.size_bytes(self.seconds(spec), self.settings.sample_rate, self.settings.channels)
                   for spec in specs)

    def trajectory(self, spec: SoundSpec) -> tuple[Trajectory, Recipe]:
        """The latent trajectory of `spec`, covering `seconds(spec)`."""
        generator = torch.Generator().manual_seed(int(spec.seed))
        frames = self.seconds_to_latents(self.seconds(spec))
        if spec.mode == "random":
            made, recipe = self.generator.random(spec.temperature, frames, spec.seed, generator)
        elif spec.mode == "variation":
            if not spec.like:
                raise DistillError("a variation needs a source: a training clip, a file or seed:N")
            source, label = self.source(spec.like)
            made, recipe = self.generator.variation(source, label, spec.temperature, frames, generator)
        elif spec.mode == "morph":
            if not spec.morph or len(spec.morph) != 2:
                raise DistillError("a morph needs two sources, A and B")
            (a, label_a), (b, label_b) = self.source(spec.morph[0]), self.source(spec.morph[1])
            made = morph(a, b, spec.position, frames, self.bank, generator)
            recipe = Recipe((label_a, label_b), (round(1 - spec.position, 4), round(spec.position, 4)))
        else:
            raise DistillError(f"unknown mode {spec.mode!r}: choose one of {', '.join(MODES)}")
        if spec.offsets:
            shift = offset_vector(self.file.analysis, spec.offsets, self.config.latent_dim)
            made = shifted(made, shift)
        if spec.directions:
            made = self.directions.apply(made, spec.directions, self.bank, generator)
        return made, recipe

    def render_all(self, specs: list[SoundSpec]) -> Iterator[tuple[np.ndarray, torch.Tensor, Recipe]]:
        """`render` of each spec, in order, each yielded as soon as it and those before it are
        done. On a CPU, sounds are rendered RENDER_WORKERS at a time: one sound's small tensors
        keep about one core busy, so two at once on 2 cores made 24 sounds 1.2-1.35x faster,
        the same sounds sample for sample. At most that many wait unconsumed (a long sound
        is hundreds of MB)."""
        workers = 1 if self.opened.device.type != "cpu" else min(RENDER_WORKERS, len(specs))
        if workers <= 1:
            yield from (self.render(spec) for spec in specs)
            return
        self.synthesize.load()  # once, before the workers share it
        pool = ThreadPoolExecutor(workers, thread_name_prefix="distill-render")
        waiting = iter(specs)
        pending = deque(pool.submit(self.render, spec) for spec in itertools.islice(waiting, workers))
        try:
            while pending:
                result = pending.popleft().result()
                for spec in itertools.islice(waiting, 1):
                    pending.append(pool.submit(self.render, spec))
                yield result
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)

    def render(self, spec: SoundSpec) -> tuple[np.ndarray, torch.Tensor, Recipe]:
        """(waveform float32 at the model's level, the log-mel it was made from, recipe)."""
        trajectory, recipe = self.trajectory(spec)
        wave, mel = self._decode(trajectory, self.seconds(spec))
        if spec.mode == "morph" and 0 < spec.position < 1:
            wave = self._between_levels(wave, spec)
        return wave, mel, recipe

    def _between_levels(self, wave: np.ndarray, spec: SoundSpec) -> np.ndarray:
        """A morph step at the loudness between its ends' (in dB, by position). Decoded as it
        is, the middle of a morph between two notes is much quieter than either (their
        partials do not line up, and the latent blend averages the spectra in the log domain)."""
        ends = [self._source_loudness(ref) for ref in spec.morph or ()]
        now = loudness_lufs(torch.from_numpy(wave), self.settings.sample_rate)
        if len(ends) != 2 or not all(math.isfinite(v) for v in (*ends, now)):
            return wave
        target = (1 - spec.position) * ends[0] + spec.position * ends[1]
        return (wave * np.float32(10 ** ((target - now) / 20))).astype(np.float32)

    def _source_loudness(self, ref: str) -> float:
        if ref not in self._loudness:
            source, _ = self.source(ref)
            seconds = self.latents_to_seconds(source.frames)
            self._loudness[ref] = loudness_lufs(torch.from_numpy(self._decode(source, seconds)[0]),
                                                self.settings.sample_rate)
        return self._loudness[ref]

    def _decode(self, trajectory: Trajectory, seconds: float) -> tuple[np.ndarray, torch.Tensor]:
        return sound_of(self.model, trajectory, seconds, self.settings, self.synthesize)


@torch.no_grad()
def sound_of(model: ConvVAE, trajectory: Trajectory, seconds: float, settings: AudioSettings,
             synthesize: Callable[[torch.Tensor], torch.Tensor]) -> tuple[np.ndarray, torch.Tensor]:
    """(waveform float32 of `seconds`, (samples,) or (2, samples) for a stereo model; its
    log-mel): the trajectory decoded in one pass and inverted once, faded in and out.
    Generation and the training previews both sound here."""
    n_samples = round(seconds * settings.sample_rate)
    total_frames = math.ceil(n_samples / settings.hop_length) + 1
    device = next(model.parameters()).device
    mel = model.decode_long(trajectory.latents.to(device), total_frames).float().cpu()
    # Frames after the sound has died away (a one-shot shorter than the sound asked for)
    # are silence: they are not inverted, the wave is padded with zeros instead.
    sounding = (mel > LOG_MEL_FLOOR + 1.0).any(dim=0).nonzero()
    end = min(mel.shape[1], int(sounding[-1]) + 1 + TAIL_FRAMES) if sounding.numel() else 1
    wave = fit_length(synthesize(mel[:, :end]), n_samples).numpy().astype(np.float32)
    return _fade(wave, settings.sample_rate), mel


def _fade(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """A 2 ms fade-in (the file starts at 0, the attack stays) and a 50 ms release (at most
    a tenth of the sound) so a sound cut while sounding does not click. Along the last axis
    (every channel alike)."""
    length = wave.shape[-1]
    fade_in = min(round(FADE_IN_SECONDS * sample_rate), length // 2)
    release = min(round(RELEASE_SECONDS * sample_rate), length // 10)
    for samples, part in ((fade_in, slice(0, fade_in)), (release, slice(length - release, None))):
        if samples > 0:
            ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(samples) / samples)).astype(np.float32)
            wave[..., part] *= ramp if part.start == 0 else ramp[::-1]
    return wave


def under_ceiling(wave: np.ndarray) -> np.ndarray:
    """`wave`, turned down to -0.1 dBFS if its peak is above that (never up)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return (wave * (CEILING / peak)).astype(np.float32) if peak > CEILING else wave


# -- batches ------------------------------------------------------------------------------

def batch_specs(n: int, seed: int, mode: str = "random", duration: float | None = None, temperature: float = 1.0,
                like: str | None = None, morph_ends: tuple[str, str] | None = None,
                offsets: dict[int, float] | None = None, directions: dict[str, float] | None = None
                ) -> list[SoundSpec]:
    """The specs of one batch. random: seeds seed..seed+n-1. variation: sound i at distance
    temperature·(i+1)/n (close to far), seed + i. morph: n steps from A (0) to B (1), one
    seed for all (the same splice choices at every step)."""
    if n < 1:
        raise DistillError("the number of sounds must be at least 1")
    if temperature < 0 or not math.isfinite(temperature):
        raise DistillError("temperature must be 0 or more")
    if duration is not None and not 0 < duration <= MAX_SECONDS:
        raise DistillError(f"duration must be between 0 and {MAX_SECONDS:g} seconds")
    base = SoundSpec(mode=mode, seed=seed, duration=duration, temperature=temperature, like=like,
                     morph=tuple(morph_ends) if morph_ends else None, offsets=dict(offsets or {}),
                     directions={k: float(v) for k, v in (directions or {}).items() if v})
    if mode == "random":
        return [replace(base, seed=seed + i) for i in range(n)]
    if mode == "variation":
        return [replace(base, seed=seed + i, temperature=round(temperature * (i + 1) / n, 6)) for i in range(n)]
    if mode == "morph":
        if n < 2:
            raise DistillError("a morph needs at least 2 steps (A and B)")
        return [replace(base, position=round(i / (n - 1), 6)) for i in range(n)]
    raise DistillError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")


def file_name(model_name: str, spec: SoundSpec, index: int | None = None) -> str:
    parts = [f"{index:03d}"] if index is not None else []
    parts.append(sanitize_filename(model_name, "model"))
    if spec.mode == "random":
        parts.append(f"seed{spec.seed}")
        if spec.temperature != 1.0:
            parts.append(f"t{spec.temperature:g}")
    elif spec.mode == "variation":
        parts += ["like", Path(spec.like or "").stem[:40], f"d{spec.temperature:.2f}", f"seed{spec.seed}"]
    else:
        a, b = (Path(x).stem[:30] for x in spec.morph or ("", ""))
        parts += ["morph", a, b, f"{spec.position:.2f}"]
    parts += [f"pc{k}{v:+g}" for k, v in sorted(spec.offsets.items()) if v]
    parts += [f"{k}{v:+g}" for k, v in sorted(spec.directions.items()) if v]
    if spec.duration is not None:
        parts.append(f"{spec.duration:g}s")
    return wav_name(*parts)


def open_studio(ws: Workspace, model: str | Path, griffin_lim: bool = False, device: str = "auto") -> Studio:
    opened = open_model(ws, model, device)
    return Studio(opened, Synthesizer.for_model(opened.file, opened.device, griffin_lim))


def generate_sounds(ws: Workspace, model: str | Path, n: int = 4, seed: int | None = None,
                    duration: float | None = None, temperature: float = 1.0,
                    offsets: dict[int, float] | None = None, griffin_lim: bool = False,
                    fmt: OutputFormat = OutputFormat("wav", 16), out_dir: str | Path | None = None,
                    device: str = "auto", mode: str = "random", like: str | None = None,
                    morph_ends: tuple[str, str] | None = None, directions: dict[str, float] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[GeneratedSound]:
    """Make `n` sounds with `model` (a catalog name or a path) and write them as WAVs to
    `out_dir` (default `<workspace>/generated/<model>/`); see `batch_specs` for the modes.
    `seed` None picks one. `offsets` maps a principal direction (1 = pc1) to a shift in
    units of spread; `directions` maps a named direction (`distill.directions`) to a slider
    value from -1 to 1. `fmt`: the files' format (default 16-bit WAV at the model's rate).
    `progress(done, total)` is called at the start and after each sound."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    specs = batch_specs(n, seed, mode, duration, temperature, like, morph_ends, offsets, directions)
    studio = open_studio(ws, model, griffin_lim, device)
    studio.check_directions(specs[0].directions)
    folder = ws.output_dir(out_dir if out_dir else generated_dir(ws, studio.opened.path.stem))
    ensure_space(folder, studio.size_bytes(specs, fmt), f"{len(specs)} sounds")
    sounds, names = [], set()
    if progress:
        progress(0, len(specs))
    with output_set() as outputs:  # the batch appears whole, or not at all
        for i, (spec, (wave, _, recipe)) in enumerate(zip(specs, studio.render_all(specs))):
            wave = under_ceiling(wave)
            target = unique_path(folder, fmt.file_name(file_name(studio.opened.path.stem, spec)), taken=names)
            names.add(target.name)
            write_sound(target, wave, studio.settings.sample_rate, fmt, outputs=outputs)
            peak, rms = levels(wave)
            sounds.append(GeneratedSound(target, spec, recipe.describe(),
                                         round(wave.shape[-1] / studio.settings.sample_rate, 3), peak, rms))
            if progress:
                progress(i + 1, len(specs))
    return sounds


@dataclass(frozen=True)
class ModelSounds:
    """What a model can start from, for pickers: its training clips and its default length."""

    clips: list[str]
    default_seconds: float


def model_sounds(ws: Workspace, model: str | Path) -> ModelSounds:
    """The training clips a model's variations and morphs can start from (read without
    building the network)."""
    from distill.modelfile import load_model_file, resolve_model

    bank = stored_bank(load_model_file(resolve_model(ws, model), mmap=True))
    return ModelSounds(list(bank.names), bank.median_seconds)


def generate(ws: Workspace, model: str | Path, n: int = 4, seed: int | None = None, duration: float | None = None,
             temperature: float = 1.0, offsets: dict[int, float] | None = None, griffin_lim: bool = False,
             bits: int = 16, out_dir: str | Path | None = None, device: str = "auto") -> list[Path]:
    """`generate_sounds` (random mode, `bits`-bit WAV), returning only the paths written."""
    return [s.path for s in generate_sounds(ws, model, n, seed, duration, temperature, offsets, griffin_lim,
                                            OutputFormat("wav", bits), out_dir, device)]


def ab_pair(model: str | Path, seed: int, ws: Workspace | None = None, duration: float | None = None,
            device: str = "auto") -> tuple[Path, Path]:
    """The same generated sound (one seed: one trajectory, one log-mel) decoded by
    Griffin-Lim and by the vocoder the model uses (its own, else the pretrained one):
    (griffin_lim_wav, vocoder_wav), written to `<workspace>/generated/<model>/ab/`. The
    workspace defaults to the one whose models folder holds the file."""
    if ws is None:
        if not Path(model).is_file():
            raise DistillError(f"no model file at {model}")
        ws = Workspace.open(Path(model).resolve().parent.parent)
    opened = open_model(ws, model, device)
    vocoder = Synthesizer.for_model(opened.file, opened.device)
    if vocoder.kind == GRIFFIN_LIM:
        raise DistillError(f"model {opened.path.stem!r} has no vocoder: it decodes with Griffin-Lim "
                           f"({vocoder.fallback}); train one with "
                           f"`distill train-vocoder {opened.path.stem} --preset scratch`")
    folder = generated_dir(ws, opened.path.stem) / "ab"
    written = []
    for label, synthesize in (("griffin-lim", Synthesizer.for_model(opened.file, opened.device, griffin_lim=True)),
                              (vocoder.kind, vocoder)):
        studio = Studio(opened, synthesize)
        wave, _, _ = studio.render(SoundSpec(seed=int(seed), duration=duration))
        name = sanitize_filename(f"seed-{int(seed)}{f'-{duration:g}s' if duration else ''}-{label}.wav")
        written.append(write_wav(folder / name, wave, opened.file.audio_settings.sample_rate))
    return written[0], written[1]
