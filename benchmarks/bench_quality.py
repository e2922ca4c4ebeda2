"""Does the model give back the clips? Reconstruction quality on real instruments, by numbers.

For each development corpus (`../shared/corpora/dev-pitched`, `dev-drums`; see its README):
train the default preset, as a user would (default epochs, the engine's own validation
split), on the corpus's training clips (held out: sorted positions 2, 7, 12, ...), export
the model, then send every clip, whole and at its own level, through `distill.transform`
(Griffin-Lim) and score it against the original with `distill.metrics`; beside each figure,
the ceiling: Griffin-Lim of the clip's own true log-mel, which no mel + Griffin-Lim system
can beat. Held-out and training clips are reported separately. Prints; asserts nothing.

    .venv/bin/python benchmarks/bench_quality.py [--corpora DIR] [--only dev-pitched]
        [--set epochs=20] [--write DIR]   # --write: originals/, model/, ceiling/ WAVs per corpus,
                                     # for ../shared/quality/eval_audio.py to cross-check

Targets (issue 9): held-out MR-STFT ≤ 1.5× the ceiling, training clips ≤ 1.25×; held-out
LSD-active ≤ ceiling + 2 dB; median level error within ±2 dB; dev-pitched training ≤ 90 s.

Measured 2026-12-02 (2 shared cores, load ~1.3; MR-STFT model / ceiling, LSD-active
model − ceiling, median level error): dev-pitched held-out 0.719 / 0.572 (1.26×), +0.05 dB,
−1.35 dB; training 0.721 / 0.589 (1.22×), +0.19 dB, −1.27 dB; training 75.6 s wall.
dev-drums held-out 1.136 / 0.929 (1.22×), +0.34 dB, −1.05 dB; training 1.057 / 0.870
(1.22×), +0.33 dB, −0.93 dB; 34.4 s. `eval_audio.py` on the --write output agrees to the
third decimal. The previous build (global latent per 0.74 s segment, 50 epochs) on the same
measure: 1.8–2.8× the ceiling, level −4.5 to −12.4 dB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from distill.audio import AudioSettings, log_mel, read_audio
from distill.checkpoints import read_metrics
from distill.data import AUDIO_EXTENSIONS, create_dataset
from distill.export import export_model
from distill.jobs import Finished
from distill.metrics import Distance, distance
from distill.modelfile import load_model_file
from distill.synthesis import Synthesizer
from distill.train import TrainConfig, start_training
from distill.transform import transform_wave
from distill.workspace import Workspace

DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(training, held-out) by the corpora README's rule: every 5th sorted file from 2."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    return [f for i, f in enumerate(files) if i % 5 != 2], [f for i, f in enumerate(files) if i % 5 == 2]


def train(ws: Workspace, name: str, clips: list[Path], overrides: dict) -> tuple[Path, float, int]:
    """(model file, training wall seconds from Train to finished, epochs)."""
    create_dataset(ws, name, clips)
    config = TrainConfig.from_dict({**TrainConfig(dataset=name).to_dict(), "device": "cpu", **overrides})
    started = time.perf_counter()
    job = start_training(ws, config)
    job.join()
    seconds = time.perf_counter() - started
    if not isinstance(job.outcome, Finished):
        raise SystemExit(f"training {name} did not finish: {job.outcome}")
    epoch_seconds = [m["seconds"] for m in read_metrics(ws.experiment_dir(job.experiment_id))]
    print(f"  epochs took {statistics.median(epoch_seconds):.2f} s (median), {sum(epoch_seconds):.1f} s in all; "
          f"the rest of the wall time is data preparation, previews and start-up")
    return export_model(ws, job.experiment_id, name=name, device="cpu"), seconds, config.epochs


def score(model_path: Path, clips: list[Path], write: Path | None) -> list[tuple[Distance, Distance]]:
    """(model, ceiling) distances per clip."""
    model_file = load_model_file(model_path)
    model, settings = model_file.build_model("cpu"), model_file.audio_settings
    synthesize = Synthesizer(settings, griffin_lim=True)
    rows = []
    for clip in clips:
        wave = read_audio(clip, settings.sample_rate)  # at its own level: nothing is normalised
        made = transform_wave(model, wave, settings, synthesize)
        ceiling = synthesize(log_mel(wave, settings))[: wave.shape[0]]
        rows.append((distance(wave, made), distance(wave, ceiling)))
        if write:
            for kind, audio in (("originals", wave), ("model", made), ("ceiling", ceiling)):
                (write / kind).mkdir(parents=True, exist_ok=True)
                sf.write(write / kind / f"{clip.stem}.wav", audio.numpy(), settings.sample_rate, subtype="FLOAT")
    return rows


def report(title: str, rows: list[tuple[Distance, Distance]]) -> None:
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    print(f"  {title} ({len(rows)} clips)        model   ceiling")
    for label, field, fmt in (("MR-STFT (SC + log-mag)", "mrstft", "{:7.3f}"),
                              ("spectral convergence", "convergence", "{:7.3f}"),
                              ("LSD, active frames (dB)", "lsd_active", "{:7.2f}")):
        model, ceiling = mean([getattr(m, field) for m, _ in rows]), mean([getattr(c, field) for _, c in rows])
        extra = f"   {model / ceiling:.2f}x ceiling" if field == "mrstft" else (
            f"   ceiling {model - ceiling:+.2f} dB" if field == "lsd_active" else "")
        print(f"    {label:24}" + fmt.format(model) + "  " + fmt.format(ceiling) + extra)
    model = statistics.median(m.level_error_db for m, _ in rows)
    ceiling = statistics.median(c.level_error_db for _, c in rows)
    print(f"    {'median level error (dB)':24}{model:+7.2f}  {ceiling:+7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--only", action="append", help="a corpus folder name (default: dev-pitched and dev-drums)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a TrainConfig field to change (JSON value), e.g. --set epochs=20; default: none")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if overrides:
        print(f"TrainConfig changed from its defaults: {overrides}")
    print(f"torch threads {torch.get_num_threads()}; load average {open('/proc/loadavg').read().split()[:3]}")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        for name in args.only or ["dev-pitched", "dev-drums"]:
            training, held_out = split(args.corpora / name)
            model_path, seconds, epochs = train(ws, name, training, overrides)
            print(f"{name}: {len(training)} training clips, {epochs} epochs, training {seconds:.1f} s wall "
                  f"(start to finish, data preparation and previews included)")
            for title, clips in (("held-out", held_out), ("training", training)):
                write = args.write / name / title if args.write else None
                report(title, score(model_path, clips, write))


if __name__ == "__main__":
    AudioSettings()  # imported for readers: every figure is at the model's own settings
    main()
