"""Do the named sliders move what they are named for, and only that? By numbers, on the audio.

For each dev corpus, the default preset trained on its training clips (as `bench_generate.py`
trains it; with --workspace the last run's experiment is exported again with this build, so its
directions are found by this build). For every direction the model shows, 12 random sounds
(seeds 0-11, temperature 1, the default length) at 5 slider steps (-1, -0.5, 0, 0.5, 1),
rendered with the default decoder (the pretrained vocoder) as a user hears them:
- its descriptor (`distill.directions.Describer`, read again from the rendered wave's features),
  the mean over the 12 sounds at each step: monotonic?, and the change end to end in units of
  the descriptor's spread over the step-0 sounds;
- every other descriptor's change end to end, in its own spreads (small = left alone);
- family MMD² (`distill.family`, on the audio, as `bench_generate.py` scores it) of the sounds
  at -1 and +1 against the training clips, as × the clips' split-half floor (target ≤ 2×),
  beside the step-0 sounds' own.
The directions a model hides are listed with the reason. Prints; asserts nothing.

Measured 2026-12-07 05:00, the 96-channel latent (learning rate 1.5e-4), same columns:
    dev-pitched  tail        0.28 → 2.29 s (+5.9 spreads)      noise 7 %      1.22 / 0.51
                 noise       -43.9 → -39.1 dB flatness (+0.74) tail 32 %      0.88 / 0.96
                 width       -109 → -11 dB side/mid (+2.2)     noise 21 %     1.21 / 0.67
                 hidden: brightness and pitch (right way in 62 % of sounds), attack (0.05 spreads)
    dev-drums    brightness  2.97 → 4.28 kHz (+0.40)           pitch 53 %     0.80 / 0.99
                 tail        0.19 → 1.05 s (+4.8)              noise 18 %     1.88 / 1.01
                 noise       -21.0 → -16.0 dB flatness (+0.65) pitch 100 %    0.98 / 1.00
                 width       -119 → -16 dB side/mid (+1.9)     pitch 24 %     1.25 / 1.32
                 hidden: attack (0.07 spreads), pitch (the clips are not pitched)
Every shown slider is monotonic and both its ends within 2x the floor. Lost against the 48-channel
model: the pitched brightness and attack sliders; gained: pitched and drums noise.

Measured 2026-12-07 (the 48-channel latent; full band, stereo, the pretrained vocoder; descriptor at -1 → +1; the
largest other movement as a share of the slider's own; family MMD² at -1 / +1 as × the floor):
    dev-pitched  brightness  526 → 612 Hz (+0.25 spreads)      noise 81 %     0.76 / 0.72
                 attack      34.2 → 40.6 dB/frame (+0.29)      noise 86 %     0.63 / 0.79
                 tail        0.34 → 2.25 s (+4.0)              noise 50 %     0.95 / 0.50
                 width       -105 → -17 dB side/mid (+2.5)     attack 13 %    1.06 / 0.77
                 hidden: noise (its ends leave the family), pitch (right way in 69 % of sounds)
    dev-drums    brightness  3.28 → 5.02 kHz (+0.44)           tail 80 %      2.12 / 1.22 (OVER 2x at -1)
                 tail        0.18 → 1.08 s (+4.2)              noise 12 %     1.83 / 1.24
                 width       -111 → -36 dB side/mid (+1.5)     tail 9 %       0.94 / 1.39
                 hidden: attack and noise (not monotonic), pitch (the clips are not pitched)
Every shown slider is monotonic on the audio. The search checks its ends against the clips'
reconstructions; against the real clips the drums' darkest end is 2.12x (MISSED by a little).
On audio the other descriptors move more than the search measured on the mel (it holds them
under 50 % there): noisiness reads a vocoder's noise floor under tonal notes.

    .venv/bin/python benchmarks/bench_directions.py [--workspace DIR] [--only dev-pitched] [--write DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import DEFAULT_CORPORA, bench_workspace, corpus_models, stats_of  # noqa: E402

from distill.audio import features  # noqa: E402
from distill.descriptors import UNITS, Describer  # noqa: E402
from distill.directions import find_directions  # noqa: E402
from distill.family import mmd2, sound_stats, split_half_floor, standardise  # noqa: E402
from distill.generate import SoundSpec, open_studio, under_ceiling  # noqa: E402
from distill.workspace import Workspace  # noqa: E402

STEPS = (-1.0, -0.5, 0.0, 0.5, 1.0)
SOUNDS = 12


def family_vector(wave: np.ndarray, rate: int) -> np.ndarray:
    mono = wave.mean(axis=0) if wave.ndim == 2 else wave
    return sound_stats(torch.from_numpy(np.ascontiguousarray(mono)), rate).vector


def measure(studio, describer: Describer, name: str | None, step: float, write: Path | None):
    """(descriptors of each sound, family vectors) of SOUNDS random sounds at `step` of `name`."""
    values, vectors = [], []
    for seed in range(SOUNDS):
        spec = SoundSpec(seed=seed, directions={name: step} if name and step else {})
        wave, _, _ = studio.render(spec)
        wave = under_ceiling(wave)
        values.append(describer.clip_values(features(torch.from_numpy(wave), studio.settings)))
        vectors.append(family_vector(wave, studio.settings.sample_rate))
        if write and seed == 0:
            import soundfile as sf

            write.mkdir(parents=True, exist_ok=True)
            sf.write(write / f"seed0-{name or 'plain'}{step:+g}.wav", wave.T, studio.settings.sample_rate,
                     subtype="FLOAT")
    return values, np.stack(vectors)


def report(name: str, ws: Workspace, model: Path, training: list[Path], write: Path | None) -> None:
    studio = open_studio(ws, model, device="cpu")
    started = time.perf_counter()
    find_directions(studio.model, studio.bank, studio.file.analysis, studio.settings, studio.synthesize)
    print(f"  finding the directions took {time.perf_counter() - started:.1f} s (at export; stored in the file)")
    directions = studio.directions
    describer = Describer(studio.settings, studio.config.time_stride)
    clips = np.stack([s.vector for s in stats_of(training)])
    floor = split_half_floor(standardise(clips)[0])
    base_values, base_vectors = measure(studio, describer, None, 0.0, write)
    keys = list(base_values[0])
    spread = {k: float(np.std([v[k] for v in base_values])) or 1.0 for k in keys}

    def family(vectors: np.ndarray) -> float:
        reference, made = standardise(clips, vectors)
        return mmd2(made, reference) / floor

    print(f"  clips pitched: {directions.pitched}; split-half floor of the clips' MMD² {floor:.4f}; the plain "
          f"sounds (step 0) score {family(base_vectors):.2f}× it")
    for item in directions.items:
        if not item.shown:
            print(f"  {item.name:<10} hidden: {item.reason}")
            continue
        means, ends = [], []
        for step in STEPS:
            values, vectors = (base_values, base_vectors) if step == 0 else \
                measure(studio, describer, item.name, step, write / item.name if write else None)
            means.append({k: float(np.mean([v[k] for v in values])) for k in keys})
            if abs(step) == 1:
                ends.append(family(vectors))
        own = [m[item.name] for m in means]
        rising = all(b > a for a, b in zip(own, own[1:]))
        change = (own[-1] - own[0]) / spread[item.name]
        others = {k: abs(means[-1][k] - means[0][k]) / spread[k] for k in keys if k not in (item.name, "level")}
        worst = max(others, key=others.get)
        print(f"  {item.name:<10} span {item.span:g}: {' → '.join(f'{v:.3g}' for v in own)} {UNITS[item.name]}"
              f" ({'monotonic' if rising else 'NOT monotonic'}, {change:+.2f} spreads); others "
              + ", ".join(f"{k} {v:.2f}" for k, v in others.items())
              + f" (most: {worst}, {others[worst] / max(abs(change), 1e-9):.0%} of its own); level "
              f"{means[-1]['level'] - means[0]['level']:+.1f} dB; MMD² at -1 / +1: {ends[0]:.2f}× / {ends[1]:.2f}× "
              f"floor{'' if max(ends) <= 2 else ' (OVER 2×)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--only", action="append")
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--write", type=Path, default=None, help="write seed 0 at every step of every slider here")
    args = parser.parse_args()
    print(f"load average {open('/proc/loadavg').read().split()[:3]}")
    with bench_workspace(args.workspace) as ws:
        for name, training, _, model in corpus_models(ws, args.corpora, args.only):
            report(name, ws, model, training, args.write / name if args.write else None)


if __name__ == "__main__":
    main()
