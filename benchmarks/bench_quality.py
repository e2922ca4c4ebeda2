"""Does the model give back the clips, in full band and in stereo? Reconstruction quality on
real instruments, by numbers.

For each development corpus (`../shared/corpora/dev-pitched`, `dev-drums`; see its README):
train the default preset, as a user would (default epochs, the engine's own validation split,
the settings the dataset gets: 44.1 kHz, stereo when its clips are), on the corpus's training
clips (held out: sorted positions 2, 7, 12, ...), export the model, then send every clip, whole
and at its own level, through `distill.transform` (Griffin-Lim) and score it against the
original file (44.1 kHz as it is, 48 kHz resampled to 44.1 kHz; never the 22.05 kHz mono copy)
with `distill.metrics.full_band_distance`: MR-STFT over FFT 512-4096, LSD over active frames,
the high band's LSD (11-20 kHz), the level, and the stereo image (side-to-mid ratio and
left/right correlation, each estimate minus original; medians over the stereo originals).

Beside each figure, the ceiling: Griffin-Lim of the clip's own true features at the new
settings (the mid's mel inverted, the side made from it as every stereo sound is), which no mel
+ Griffin-Lim system at these settings can beat; and what the user got before full band: the
same default training at 22,050 Hz mono (80 mels to 11,025 Hz) + Griffin-Lim, upsampled to
44.1 kHz for scoring. Held-out and training clips are reported separately. Prints; asserts nothing.

    .venv/bin/python benchmarks/bench_quality.py [--corpora DIR] [--only dev-pitched]
        [--set epochs=20] [--no-before] [--write DIR]   # --write: originals/ (as recorded, as WAV),
                          # model/, ceiling/ per corpus, for ../shared/quality/eval_audio.py to cross-check

Targets (issue 22): held-out MR-STFT ≤ 1.5× the ceiling, training ≤ 1.25×; level ±2 dB;
high-band LSD-active ≤ ceiling + 3 dB; side/mid within ±3 dB and correlation within 0.1 of the
original's (medians); dev-pitched training ≤ 90 s wall.

Measured 2026-12-07 04:30 (2 cores, nothing else running; model / ceiling / 22.05 kHz mono), the
default preset with a 96-channel latent at learning rate 1.5e-4:
  dev-pitched held-out  MR-STFT 0.548 / 0.354 / 0.648 (1.55x: MISSED, just), LSD-active 1.44 / 1.21,
                        LSD 11-20 kHz 6.79 / 6.41 / 18.93 (met), level -0.11 dB (met), side/mid -2.36 dB
                        (met), correlation +0.025 (met)
  dev-pitched training  MR-STFT 0.509 / 0.373 / 0.626 (1.37x: MISSED), LSD-active 1.31 / 1.17, high band
                        6.06 / 5.85, level -0.70, side/mid +0.18, correlation -0.002; training 89.3 s wall
                        (83.3 s of epochs, 6.4 s each: met)
  dev-drums held-out    MR-STFT 1.042 / 0.863 / 1.544 (1.21x: met), LSD-active 2.60 / 2.24, high band
                        5.67 / 5.31, level -0.94, side/mid -0.96, correlation +0.010 (all met)
  dev-drums training    MR-STFT 0.881 / 0.729 / 1.119 (1.21x: met), level -0.92, side/mid +0.09
  peak memory 1.2 GB. (The 22.05 kHz column is the run of 2026-12-06, trained as it was then:
  latent 48, learning rate 3e-4, which `BEFORE_TRAINING` now pins.)
Before (2026-12-06, latent 48 at 3e-4, the same full-band settings): dev-pitched held-out 1.79x,
training 1.66x, side/mid -5.48 dB; dev-drums 1.33x / 1.36x. Measured on dev-pitched (latent /
learning rate: training, held-out): 96 / 3e-4 1.59x, 1.69x; 96 / 6e-4 2.04x, 1.91x; 96 / 7.5e-5
1.37x, 1.55x; 128 / 3e-4 1.51x, 1.57x; 128 / 1.5e-4 1.41x, 1.67x.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import soundfile as sf
import torch

from distill import train as train_module
from distill.audio import AudioSettings, features, read_audio, resample
from distill.checkpoints import read_metrics
from distill.datasets import AUDIO_EXTENSIONS, create_dataset
from distill.export import export_model
from distill.jobs import Finished
from distill.metrics import FullBandDistance, full_band_distance
from distill.modelfile import load_model_file
from distill.synthesis import Synthesizer
from distill.train import start_training
from distill.train_config import TrainConfig
from distill.transform import transform_wave
from distill.workspace import Workspace

DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
SCORE_RATE = 44100
# What every model was before full band: 22,050 Hz mono, 80 mels to 11,025 Hz.
BEFORE = AudioSettings(sample_rate=22050, n_fft=1024, hop_length=256, n_mels=80, f_max=11025.0, channels=1)
# ... and trained as it was then: a 48-channel latent at learning rate 3e-4.
BEFORE_TRAINING = {"latent_dim": 48, "learning_rate": 3e-4}


def split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(training, held-out) by the corpora README's rule: every 5th sorted file from 2."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
    return [f for i, f in enumerate(files) if i % 5 != 2], [f for i, f in enumerate(files) if i % 5 == 2]


def train(ws: Workspace, name: str, clips: list[Path], overrides: dict,
          settings: AudioSettings | None = None) -> tuple[Path, float, int]:
    """(model file, training wall seconds from Train to finished, epochs). `settings`: train at
    these instead of the ones the dataset gets (the before-full-band system)."""
    create_dataset(ws, name, clips)
    config = TrainConfig.from_dict({**TrainConfig(dataset=name).to_dict(), "device": "cpu", **overrides})
    fixed = mock.patch.object(train_module, "dataset_settings", lambda *_: settings) if settings else nullcontext()
    started = time.perf_counter()
    with fixed:
        job = start_training(ws, config)
        job.join()
    seconds = time.perf_counter() - started
    if not isinstance(job.outcome, Finished):
        raise SystemExit(f"training {name} did not finish: {job.outcome}")
    epoch_seconds = [m["seconds"] for m in read_metrics(ws.experiment_dir(job.experiment_id))]
    print(f"  epochs took {statistics.median(epoch_seconds):.2f} s (median), {sum(epoch_seconds):.1f} s in all; "
          f"the rest of the wall time is data preparation, previews and start-up")
    return export_model(ws, job.experiment_id, name=name, device="cpu"), seconds, job.config.epochs


def original(clip: Path) -> torch.Tensor:
    """The clip as recorded, at the scoring rate: (2, samples) for a stereo file, else (samples,)."""
    channels = sf.info(str(clip)).channels
    return read_audio(clip, SCORE_RATE, 2 if channels >= 2 else 1)


def score(model_path: Path, clips: list[Path], write: Path | None) -> list[tuple[FullBandDistance, FullBandDistance]]:
    """(model, ceiling) distances per clip, against the original at 44.1 kHz."""
    model_file = load_model_file(model_path)
    model, settings = model_file.build_model("cpu"), model_file.audio_settings
    synthesize = Synthesizer(settings, griffin_lim=True)
    rows = []
    for clip in clips:
        reference = original(clip)
        # the model's input, at its own rate and in its channels, at the clip's own level
        wave = read_audio(clip, settings.sample_rate, settings.channels)
        made = transform_wave(model, wave, settings, synthesize)
        ceiling = synthesize(features(wave, settings))[..., : wave.shape[-1]]
        if settings.sample_rate != SCORE_RATE:
            made, ceiling = resample(made, settings.sample_rate, SCORE_RATE), resample(ceiling, settings.sample_rate,
                                                                                      SCORE_RATE)
        rows.append((full_band_distance(reference, made, SCORE_RATE), full_band_distance(reference, ceiling, SCORE_RATE)))
        if write:
            # the original as it is (its own rate and channels: only the container becomes WAV,
            # which eval_audio.py reads), beside the model's and the ceiling's output
            (write / "originals").mkdir(parents=True, exist_ok=True)
            data, rate = sf.read(str(clip), dtype="float32", always_2d=True)
            sf.write(write / "originals" / f"{clip.stem}.wav", data, rate, subtype="FLOAT")
            for kind, audio in (("model", made), ("ceiling", ceiling)):
                (write / kind).mkdir(parents=True, exist_ok=True)
                sf.write(write / kind / f"{clip.stem}.wav", audio.numpy().T if audio.dim() == 2 else audio.numpy(),
                         SCORE_RATE, subtype="FLOAT")
    return rows


def report(title: str, rows: list[tuple[FullBandDistance, FullBandDistance]], stereo: list[bool],
           before: list[FullBandDistance] | None) -> None:
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    median = lambda values: statistics.median(values) if values else float("nan")  # noqa: E731
    print(f"  {title} ({len(rows)} clips, {sum(stereo)} stereo)   model   ceiling" + ("  before (22.05 kHz mono)"
                                                                                 if before else ""))
    for label, field, fmt, summary in (("MR-STFT (FFT 512-4096)", "mrstft", "{:7.3f}", mean),
                                       ("LSD, active frames (dB)", "lsd_active", "{:7.2f}", mean),
                                       ("LSD 11-20 kHz, active (dB)", "lsd_high", "{:7.2f}", mean),
                                       ("median level error (dB)", "level_error_db", "{:+7.2f}", median)):
        model, ceiling = summary([getattr(m, field) for m, _ in rows]), summary([getattr(c, field) for _, c in rows])
        extra = (f"   {model / ceiling:.2f}x ceiling" if field == "mrstft" else
                 f"   ceiling {model - ceiling:+.2f} dB" if field.startswith("lsd") else "")
        old = ("      " + fmt.format(summary([getattr(b, field) for b in before]))) if before else ""
        print(f"    {label:27}" + fmt.format(model) + "  " + fmt.format(ceiling) + old + extra)
    wide = [i for i, s in enumerate(stereo) if s]
    for label, field, fmt in (("side/mid vs original (dB)", "side_to_mid_diff_db", "{:+7.2f}"),
                              ("L/R correlation vs orig.", "correlation_diff", "{:+7.3f}")):
        model = median([getattr(rows[i][0], field) for i in wide])
        ceiling = median([getattr(rows[i][1], field) for i in wide])
        old = ("      " + fmt.format(median([getattr(before[i], field) for i in wide]))) if before else ""
        print(f"    {label + ' (median)':27}" + fmt.format(model) + "  " + fmt.format(ceiling) + old)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--only", action="append", help="a corpus folder name (default: dev-pitched and dev-drums)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a TrainConfig field to change (JSON value), e.g. --set epochs=20; default: none")
    parser.add_argument("--no-before", action="store_true", help="skip the 22.05 kHz mono system")
    parser.add_argument("--channels", type=int, choices=(1, 2), default=None,
                        help="train at 44.1 kHz in this many channels whatever the clips are (default: the dataset's)")
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
            model_path, seconds, epochs = train(ws, name, training, overrides,
                                                AudioSettings(channels=args.channels) if args.channels else None)
            settings = load_model_file(model_path).audio_settings
            print(f"{name}: {len(training)} training clips, {settings.describe()}, {epochs} epochs, training "
                  f"{seconds:.1f} s wall (start to finish, data preparation and previews included); peak memory "
                  f"so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
            before_path = None if args.no_before else train(ws, f"{name}-before", training,
                                                                 {**BEFORE_TRAINING, **overrides}, BEFORE)[0]
            for title, clips in (("held-out", held_out), ("training", training)):
                write = args.write / name / title if args.write else None
                before = [m for m, _ in score(before_path, clips, None)] if before_path else None
                stereo = [sf.info(str(c)).channels >= 2 for c in clips]
                report(title, score(model_path, clips, write), stereo, before)


if __name__ == "__main__":
    main()
