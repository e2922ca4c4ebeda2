"""Do generated sounds belong to the clips' family? Whole one-shots, by numbers.

For each development corpus (`../shared/corpora/dev-pitched`, `dev-drums`): train the default
preset on the corpus's training clips (as `bench_quality.py` does), export the model, make
24 sounds with the default settings (random mode, default duration, Griffin-Lim) and score
them with `distill.family` against the corpus's real clips (all of them, at their own level):
median decay, spectral peak prominence, flatness and centroid; family MMD² beside the real
clips' split-half floor; novelty against the training clips; how close the two nearest
generated sounds are (near-duplicates); generation speed in seconds of audio per second.
Prints; asserts nothing.

    .venv/bin/python benchmarks/bench_generate.py [--only dev-pitched] [--workspace DIR]
        [--write DIR]    # --workspace: keep (and reuse) the trained models; --write: the WAVs,
                         # for ../shared/quality/gen_eval.py REAL GEN --train TRAIN to cross-check

Targets (issue 10): median decay within ±4 dB of the clips'; prominence within 5 dB; MMD² ≤ 2×
the floor; novelty 0.6-1.4; the closest two of the 24 farther apart than the closest two
training clips; generation ≥ 50× real time with Griffin-Lim.

Measured 2026-12-07 05:00, the 96-channel latent (learning rate 1.5e-4) with the width held by
the perturbation (`direction_width`): dev-pitched decay -23.4 / -25.5 dB, prominence 69.8 / 67.2,
MMD² 0.7× the floor, novelty 0.60, nearest two 0.77 (0.55), sounds from stereo clips 0.8 dB
narrower than their clip (median; 8.1 dB wider with the width free); dev-drums decay -25.6 / -25.4,
prominence 34.2 / 31.7, MMD² 0.5×, novelty 0.88, nearest two 1.06 (0.63), 2.1 dB narrower (0.9 dB
wider free). Speed with the pretrained vocoder, 2 cores, load ~1.2: dev-pitched 49×, dev-drums 27×
(the first, cold call the bench times; warm, the best of 3: 54-58× and 41×; drums MISSED).

Measured 2026-12-06 23:00, two sounds rendered at once (`Studio.render_all`; 2 cores, nothing else
running): quality figures unchanged (the same sounds, sample for sample); dev-pitched 30x real
time with Griffin-Lim, 54x with the pretrained vocoder (target 50x: MET); dev-drums 22x / 38x
(MISSED: its sounds are short, 0.84 s median, and each costs its fixed share).

Measured 2026-12-06 at full band, stereo (2 cores, load ~1.2): dev-pitched decay -26.9 / -25.5 dB,
prominence 66.4 / 67.2, MMD² 0.7× the floor, novelty 0.73, sounds from stereo clips 0.7 dB
narrower than their clip (median), 19× real time with Griffin-Lim, 37× with the pretrained
vocoder (target 50×: MISSED); dev-drums decay -25.1 / -25.4, prominence 33.2 / 31.7, MMD² 0.4×,
novelty 0.84, sounds from stereo clips 6.1 dB narrower than their clip, 20× / 28× real time.

Measured 2026-12-03 at 22,050 Hz mono (2 shared cores, load ~1.2; training from scratch, deterministic):
  dev-pitched  decay -24.5 / -25.5 dB (generated / clips), prominence 66.2 / 67.2 dB, flatness
               0.000 / 0.000, MMD² 0.049 (floor 0.050: 1.0×), novelty 0.82, nearest two
               generated 0.75 (training clips' nearest two 0.55), 24 seed clips for 24 sounds,
               33× real time (target 50×: missed).
  dev-drums    decay -25.5 / -25.4 dB, prominence 31.7 / 31.7 dB, flatness 0.024 / 0.051, MMD²
               0.031 (floor 0.077: 0.4×), novelty 0.81, nearest two 0.72 (0.61), 21× real time.
`shared/quality/gen_eval.py` on the --write output agrees (dev-pitched: prominence 66.6,
decay -24.4, MMD² 0.050, novelty 0.82; dev-drums 31.2, -25.3, 0.031, 0.82). The build before
(a latent walk, one 0.74 s segment): decay -8.5 / -8.4 dB, MMD² 6.6× / 7.8× the floor,
novelty 1.26 / 1.89.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quality import DEFAULT_CORPORA, split, train  # noqa: E402
from distill.audio import read_audio  # noqa: E402
from distill.metrics import stereo_image  # noqa: E402
from distill.export import export_model  # noqa: E402
from distill.family import closest_pairs, mmd2, novelty, sound_stats, split_half_floor, standardise  # noqa: E402
from distill.generate import batch_specs, open_studio, under_ceiling  # noqa: E402
from distill.workspace import Workspace  # noqa: E402

RATE = 44100  # the models' rate: generated sounds and the clips are compared at it


def stats_of(paths: list[Path]) -> list:
    return [sound_stats(read_audio(p, RATE), RATE) for p in paths]


def model_for(ws: Workspace, name: str, training: list[Path]) -> Path:
    """The corpus's model: trained now, or (with --workspace) re-exported from the last run."""
    from distill.experiments import list_experiments

    done = [e for e in list_experiments(ws) if e.get("name") == name and e["status"] == "completed"]
    if done:  # newest first
        print(f"  reusing experiment {done[0]['id']}; exported again with this build")
        return export_model(ws, done[0]["id"], name=name, overwrite=True, device="cpu")
    path, seconds, epochs = train(ws, name, training, {})
    print(f"  trained {epochs} epochs in {seconds:.1f} s")
    return path


def generate_timed(ws: Workspace, model: Path, n: int, seed: int, write: Path | None, griffin_lim: bool = True):
    """(waves, recipes, seconds of audio, seconds of compute): the studio is opened inside the
    timing, as `distill generate` opens it for each call."""
    started = time.perf_counter()
    studio = open_studio(ws, model, griffin_lim=griffin_lim, device="cpu")
    waves, recipes = [], []
    for wave, _, recipe in studio.render_all(batch_specs(n, seed)):  # as `distill generate` renders them
        waves.append(under_ceiling(wave))
        recipes.append(recipe)
    compute = time.perf_counter() - started
    audio = sum(w.shape[-1] for w in waves) / studio.settings.sample_rate
    if write:
        import soundfile as sf

        write.mkdir(parents=True, exist_ok=True)
        for i, wave in enumerate(waves):
            sf.write(write / f"{i:03d}-seed{seed + i}.wav", wave.T, studio.settings.sample_rate, subtype="FLOAT")
    return waves, recipes, audio, compute


def report(name: str, real, training, generated, recipes, audio: float, compute: float) -> None:
    def median(stats, field):
        return statistics.median(getattr(s, field) for s in stats)

    print(f"  {'':22}{'clips':>10}{'generated':>11}")
    for field, fmt in (("decay", "{:10.1f}"), ("prominence", "{:10.1f}"), ("flatness", "{:10.3f}"),
                       ("centroid", "{:10.0f}")):
        r, g = median(real, field), median(generated, field)
        print(f"  median {field:15}" + fmt.format(r) + " " + fmt.format(g) + f"   ({g - r:+.3g})")
    real_v, train_v, gen_v = standardise(np.array([s.vector for s in real]), np.array([s.vector for s in training]),
                                         np.array([s.vector for s in generated]))
    floor = split_half_floor(real_v)
    mmd = mmd2(real_v, gen_v)
    print(f"  family MMD² {mmd:.3f} (real split-half floor {floor:.3f}: {mmd / floor:.1f}×)")
    print(f"  novelty {novelty(gen_v, train_v):.2f}")
    gen_min, gen_median = closest_pairs(gen_v, train_v)
    train_min, _ = closest_pairs(train_v, train_v)
    print(f"  nearest two generated sounds {gen_min:.2f} (training clips' nearest two {train_min:.2f}); "
          f"median nearest-generated distance {gen_median:.2f}  [units: training NN spacing]")
    seeds = collections.Counter(r.clips[0] for r in recipes)
    shared = sum(c for c in seeds.values() if c > 1)
    print(f"  {len(seeds)} different seed clips for {len(recipes)} sounds ({shared} sounds share a seed clip)")
    print(f"  speed {audio:.1f} s of audio in {compute:.2f} s: {audio / compute:.0f}× real time (Griffin-Lim, CPU, "
          f"{torch.get_num_threads()} threads)")


def image(clips: list[Path], waves: list[np.ndarray], recipes) -> None:
    """The stereo image of each generated sound against its seed clip's (a sound made from a
    mono clip is centred, as its clip is): medians over the sounds whose seed clip is stereo."""
    import soundfile as sf

    by_name = {c.name: c for c in clips}
    pairs = [(by_name[r.clips[0]], w) for r, w in zip(recipes, waves)
             if w.ndim == 2 and r.clips[0] in by_name and sf.info(str(by_name[r.clips[0]])).channels >= 2]
    if not pairs:
        return
    real = [stereo_image(read_audio(c, RATE, 2)) for c, _ in pairs]
    made = [stereo_image(torch.from_numpy(w)) for _, w in pairs]
    median = lambda values: statistics.median(values)  # noqa: E731
    print(f"  stereo image of the {len(pairs)} sounds made from stereo clips, each against its clip (medians): "
          f"side/mid {median([m.side_to_mid_db for m in made]):.1f} dB against {median([r.side_to_mid_db for r in real]):.1f}"
          f" (difference {median([m.side_to_mid_db - r.side_to_mid_db for m, r in zip(made, real)]):+.1f} dB); "
          f"L/R correlation {median([m.correlation for m in made]):.3f} against {median([r.correlation for r in real]):.3f}")


@contextlib.contextmanager
def bench_workspace(folder: Path | None) -> Iterator[Workspace]:
    """The workspace a benchmark trains in: `folder` (kept, so a later run reuses its models),
    else a temporary one, removed afterwards."""
    tmp = None if folder else tempfile.mkdtemp()
    try:
        yield Workspace.open(folder or Path(tmp) / "ws")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def corpus_models(ws: Workspace, corpora: Path, only: list[str] | None) -> Iterator[tuple[str, list[Path], list[Path], Path]]:
    """(corpus name, training clips, held-out clips, its model file) for each corpus asked
    (default: dev-pitched and dev-drums), the model trained or reused by `model_for`."""
    for name in only or ["dev-pitched", "dev-drums"]:
        training, held_out = split(corpora / name)
        print(f"{name}: {len(training)} training clips, {len(held_out)} held out")
        yield name, training, held_out, model_for(ws, name, training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--only", action="append")
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--write", type=Path, default=None)
    parser.add_argument("-n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"load average {open('/proc/loadavg').read().split()[:3]}")
    with bench_workspace(args.workspace) as ws:
        for name, training, held_out, model in corpus_models(ws, args.corpora, args.only):
            write = args.write / name / "generated" if args.write else None
            waves, recipes, audio, compute = generate_timed(ws, model, args.n, args.seed, write)
            generated = [sound_stats(torch.from_numpy(w.mean(axis=0) if w.ndim == 2 else w), RATE) for w in waves]
            report(name, stats_of(sorted(training + held_out)), stats_of(training), generated, recipes, audio,
                   compute)
            image(training, waves, recipes)
            _, _, audio, compute = generate_timed(ws, model, args.n, args.seed, None, griffin_lim=False)
            print(f"  speed with the default decoder (the pretrained vocoder): {audio:.1f} s of audio in "
                  f"{compute:.2f} s: {audio / compute:.0f}× real time")


if __name__ == "__main__":
    main()
