"""A small, musical example corpus, synthesised deterministically with numpy.

Two families of one-shot notes, tuned to an A minor pentatonic scale so anything a model
makes from them stays in key:

- `pluck-<note>-NN.wav`: plucked strings (Karplus-Strong with a fractional-delay tuning
  tap, so the pitch is right to within a cent), A2 to A4.
- `drum-<low|mid|high>-NN.wav`: struck membranes (modal synthesis: the inharmonic modes
  of a circular membrane, each with its own decay, a short downward pitch bend and a noise
  burst for the stick), tuned to E2, A2 and D3.

Each note varies a little (velocity, brightness, decay, length 1.5-3 s), peaks between
-3 and -4.5 dBFS, and fades out to true digital silence. Clip `i` depends only on `i` and
`seed`, never on how many clips are asked for, so a small corpus is a prefix of a big one.

The clips are 44.1 kHz stereo, as a user's own recordings are, so the example trains the
full-band stereo model a user's clips would: each note is panned a little off centre and
heard in a small room, a few early reflections that differ between the ears (`in_a_room`),
which gives it a width of its own (its side 7-22 dB under its mid, 12 dB on median), as a pair
of microphones would.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

from distill import DistillError
from distill.atomic import atomic_file, atomic_write_text
from distill.datasets import Dataset, create_dataset, dataset_names
from distill.workspace import Workspace

# A minor pentatonic, two octaves (MIDI note numbers).
PLUCK_NOTES = {"A2": 45, "C3": 48, "D3": 50, "E3": 52, "G3": 55, "A3": 57,
               "C4": 60, "D4": 62, "E4": 64, "G4": 67, "A4": 69}
DRUM_NOTES = {"low": 40, "mid": 45, "high": 50}  # E2, A2, D3
# Frequency ratios of the first modes of an ideal circular membrane (Bessel zeros / j01).
MEMBRANE_MODES = (1.0, 1.594, 2.136, 2.296, 2.653, 2.918, 3.156)
FADE_SECONDS = 0.3


@dataclass(frozen=True)
class ExampleClip:
    """What clip number `index` of the corpus is: its file name, family and pitch."""

    index: int
    name: str
    kind: str  # "pluck" or "drum"
    frequency: float  # Hz, the fundamental


def midi_to_hz(note: int) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def example_clip_specs(n_clips: int = 24) -> list[ExampleClip]:
    """The corpus plan: every third clip is a drum, the rest plucks walking the scale."""
    pluck_names, drum_names = list(PLUCK_NOTES), list(DRUM_NOTES)
    counts: dict[str, int] = {}
    specs = []
    for index in range(n_clips):
        if index % 3 == 2:
            label = drum_names[(index // 3) % len(drum_names)]
            kind, frequency = "drum", midi_to_hz(DRUM_NOTES[label])
        else:
            # Step by 3 notes through the 11 (coprime), so neighbours differ in pitch.
            pluck_number = (index // 3) * 2 + index % 3
            label = pluck_names[(pluck_number * 3) % len(pluck_names)]
            kind, frequency = "pluck", midi_to_hz(PLUCK_NOTES[label])
        key = f"{kind}-{label}"
        counts[key] = counts.get(key, 0) + 1
        specs.append(ExampleClip(index, f"{key}-{counts[key]:02d}.wav", kind, frequency))
    return specs


def karplus_strong(frequency: float, seconds: float, sample_rate: int, rng: np.random.Generator,
                   t60: float = 2.0, brightness: float = 0.7) -> np.ndarray:
    """A plucked string. The loop is y[n] = x[n] + g·(a·y[n-N] + ½·y[n-N-1] + b·y[n-N-2]):
    the classic two-point average with a linear-interpolation tap for the fractional part of
    the period. Every tap lags at least N samples, so a whole period is computed at once."""
    period = sample_rate / frequency
    n = int(np.floor(period - 0.5))  # the averaging filter adds half a sample of delay
    frac = period - 0.5 - n
    a, b = 0.5 * (1.0 - frac), 0.5 * frac
    gain = 10.0 ** (-3.0 / (t60 * frequency))  # -60 dB after t60 seconds at the fundamental
    length = int(seconds * sample_rate)

    # The string's initial shape: a triangle plucked at `position` (harmonics fall as 1/k²,
    # so the fundamental leads), roughened by noise; brighter means more noise.
    position = rng.uniform(0.12, 0.3)
    x = np.arange(n) / n
    shape = np.where(x < position, x / position, (1.0 - x) / (1.0 - position))
    burst = shape + 0.35 * brightness * rng.uniform(-1.0, 1.0, n)
    burst -= burst.mean()  # no DC in, none to ring on

    y = np.zeros(length + 2 + n)  # two leading zeros stand for y[-2], y[-1]
    y[2:2 + n] = burst
    for start in range(n, length, n):
        stop = min(start + n, length)
        i = np.arange(start, stop) + 2
        y[i] = gain * (a * y[i - n] + 0.5 * y[i - n - 1] + b * y[i - n - 2])
    return y[2:2 + length]


def membrane(frequency: float, seconds: float, sample_rate: int, rng: np.random.Generator,
             t60: float = 1.0, velocity: float = 0.8) -> np.ndarray:
    """A struck drum: decaying inharmonic partials with a pitch bend, plus a stick noise."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    bend, bend_time = 0.08 + 0.06 * velocity, 0.04
    # Phase of a frequency that starts `bend` higher and settles: ∫ f0·(1 + bend·e^(-t/τ)) dt.
    warped = t + bend * bend_time * (1.0 - np.exp(-t / bend_time))
    wave = np.zeros_like(t)
    for k, ratio in enumerate(MEMBRANE_MODES):
        amplitude = (0.55 ** k) * (1.0 + 0.3 * velocity * k / len(MEMBRANE_MODES))
        decay = t60 / (1.0 + 0.9 * k) * rng.uniform(0.9, 1.1)
        phase = rng.uniform(0, 2 * np.pi) if k else 0.0
        wave += amplitude * np.sin(2 * np.pi * frequency * ratio * warped + phase) * 10.0 ** (-3.0 * t / decay)
    # The stick: a few milliseconds of high-passed noise.
    noise = np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / 0.006)
    wave += 0.25 * velocity * noise
    return wave


def _finish(wave: np.ndarray, sample_rate: int, peak_db: float) -> np.ndarray:
    """Normalise the peak, then fade the last FADE_SECONDS to exact zeros."""
    wave = wave * (10.0 ** (peak_db / 20.0) / np.max(np.abs(wave)))
    fade = min(len(wave), int(FADE_SECONDS * sample_rate))
    ramp = 0.5 * (1.0 + np.cos(np.linspace(0.0, np.pi, fade)))
    wave[len(wave) - fade:] *= ramp[:, None] if wave.ndim == 2 else ramp
    wave[-int(0.01 * sample_rate):] = 0.0
    return wave


def in_a_room(wave: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """(samples,) → (samples, 2): the sound panned up to 30 % off centre (constant power),
    each ear also hearing five early reflections of its own (5-30 ms, each 14-24 dB down)."""
    pan = rng.uniform(-0.3, 0.3)
    angle = (pan + 1.0) * np.pi / 4.0
    ears = []
    for gain in (np.cos(angle), np.sin(angle)):
        delays = (rng.uniform(0.005, 0.030, 5) * sample_rate).astype(int)
        echo = np.zeros(delays.max() + 1)
        echo[0] = 1.0
        np.add.at(echo, delays, 10.0 ** (-rng.uniform(14.0, 24.0, 5) / 20.0) * rng.choice((-1.0, 1.0), 5))
        ears.append(gain * np.sqrt(2.0) * np.convolve(wave, echo)[: len(wave)])
    return np.stack(ears, axis=1)


def synthesize(spec: ExampleClip, sample_rate: int = 44100, seed: int = 0, channels: int = 2) -> np.ndarray:
    """The float64 samples of one example clip, (samples, 2), or (samples,) for `channels=1`:
    the dry note, without the room (deterministic for `spec.index` and `seed`)."""
    rng = np.random.default_rng([seed, spec.index])
    velocity = rng.uniform(0.6, 1.0)
    if spec.kind == "pluck":
        seconds = rng.uniform(1.5, 3.0)
        wave = karplus_strong(spec.frequency, seconds, sample_rate, rng,
                              t60=rng.uniform(1.6, 3.0), brightness=0.35 + 0.6 * velocity)
    else:
        seconds = rng.uniform(1.5, 2.2)
        wave = membrane(spec.frequency, seconds, sample_rate, rng, t60=rng.uniform(0.8, 1.4),
                        velocity=velocity)
    peak_db = -3.0 - 1.5 * (1.0 - velocity) / 0.4
    return _finish(in_a_room(wave, sample_rate, rng) if channels == 2 else wave, sample_rate, peak_db)


def write_example_corpus(folder: Path, n_clips: int = 24, sample_rate: int = 44100,
                         seed: int = 0, channels: int = 2) -> list[Path]:
    """Write `n_clips` 16-bit WAVs into `folder` (created if needed; stereo, or the dry notes
    in mono for `channels=1`); returns their paths."""
    if channels not in (1, 2):
        raise DistillError(f"the example corpus is mono or stereo, not {channels} channels")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in example_clip_specs(n_clips):
        path = folder / spec.name
        with atomic_file(path) as handle:
            sf.write(handle, synthesize(spec, sample_rate, seed, channels), sample_rate, subtype="PCM_16", format="WAV")
        paths.append(path)
    return paths


EXAMPLE_MARKER = ".example-created"  # in datasets/: the example was offered once; never again


def ensure_example_dataset(ws: Workspace, name: str = "example") -> Dataset | None:
    """On a first start (no datasets at all, example never created before), import the
    synthesised example corpus as dataset `name` and return it; otherwise return None."""
    marker = ws.datasets_dir / EXAMPLE_MARKER
    if dataset_names(ws) or marker.exists():
        return None
    with tempfile.TemporaryDirectory(prefix="distill-example-") as tmp:
        try:
            report = create_dataset(ws, name, write_example_corpus(Path(tmp)))
        except DistillError:  # someone else created one at the same moment
            return None
    atomic_write_text(marker, datetime.now(timezone.utc).isoformat(timespec="seconds") + "\n")
    return report.dataset
