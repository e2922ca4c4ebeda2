"""Training benchmark: prints figures, asserts nothing (this machine is shared and noisy).

1. Data preparation: the second `prepare_training_data` on the same dataset (features from
   the cache) over the first (decode, resample, log-mel). Target ≤ 0.1.
2. Engine overhead: the engine's wall time per epoch (train + validation + checkpoint +
   metrics + record) over a plain PyTorch loop (train + validation) on the same model, data
   and batch size. Target ≤ 1.05. Epoch 1 is a warm-up and is left out; runs alternate
   so drifting load hits both alike. The fastest epochs (least disturbed by whatever else
   the machine does) and the medians are both reported.

3. Scale (`--large`): a corpus of ~500 clips (~20 min) made from the dev corpora
   (`../shared/corpora`) played at 7 speeds, trained with the default settings: data
   preparation, seconds per epoch, the epochs the default run takes for it, its whole wall time
   and the process's peak memory. Target: the default run ends within 15 min on this CPU.

    .venv/bin/python benchmarks/bench_training.py [--preset default] [--epochs 6] [--rounds 2]
    .venv/bin/python benchmarks/bench_training.py --large [--corpora DIR]

Measured 2026-12-06 (--large, 2 cores, nothing else running): 504 clips, 15.3 min of audio
(stereo, 44.1 kHz); the default run took 7 epochs of 97.6 s (median) and 12.4 min from Train
to finished, data preparation and previews included (target 15 min: met); peak memory 4.3 GB
(the process, corpus making included).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from distill.audio import AudioSettings
from distill.datasets import create_dataset
from distill.segments import prepare_training_data
from distill.example_corpus import write_example_corpus
from distill.jobs import EpochFinished, Finished
from distill.model import ConvVAE, vae_loss
from distill.train import augment_gain, start_training
from distill.train_config import TrainConfig
from distill.workspace import Workspace


def plain_epochs(config: TrainConfig, train: torch.Tensor, val: torch.Tensor, model_config) -> list[float]:
    """The loop anyone would write by hand: same model, optimiser, batches and loss."""
    torch.manual_seed(config.seed)
    model = ConvVAE(model_config)
    model.fit_linear_path(train)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    times, generator = [], torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        for batch_index in torch.randperm(train.shape[0]).split(config.batch_size):
            batch = augment_gain(train[batch_index], config.gain_augment_db, generator)
            decoded, mu, logvar = model(batch)
            loss = vae_loss(batch, decoded, mu, logvar, config.kl_schedule.beta_at(epoch), config.free_bits,
                            model_config.feature_max, config.spectral_weight).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for batch in val.split(64):
                mu, logvar = model.encode(batch)
                vae_loss(batch, model.decode(mu), mu, logvar, config.beta, 0.0, model_config.feature_max,
                         config.spectral_weight)
        times.append(time.perf_counter() - started)
    return times[1:]


def in_thread(function, *args):
    """Run on a worker thread, as the engine does: under load, OpenMP in the main thread can
    be several times slower than in a worker, which would flatter the engine."""
    result = []
    worker = threading.Thread(target=lambda: result.append(function(*args)))
    worker.start()
    worker.join()
    return result[0]


def engine_epochs(ws: Workspace, config: TrainConfig) -> list[float]:
    job = start_training(ws, config)
    stamps = [event.time for event in job.events() if isinstance(event, (EpochFinished,))]
    job.join()
    assert isinstance(job.outcome, Finished), job.outcome
    return [b - a for a, b in zip(stamps, stamps[1:])]


def large_corpus(corpora: Path, folder: Path, speeds: tuple[float, ...] = (0.8, 0.87, 0.94, 1.0, 1.07, 1.15, 1.24)
                 ) -> list[Path]:
    """Every dev-corpus clip at each of `speeds` (resampled like tape: shorter and higher), in its
    own channels at 44.1 kHz: ~500 clips, ~20 minutes."""
    import soundfile as sf

    from distill.audio import read_audio
    from distill.datasets import AUDIO_EXTENSIONS
    from distill.features import change_speed

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for clip in sorted(p for name in ("dev-pitched", "dev-drums") for p in (corpora / name).iterdir()
                       if p.suffix.lower() in AUDIO_EXTENSIONS):
        wave = read_audio(clip, 44100, 2 if sf.info(str(clip)).channels >= 2 else 1)
        for speed in speeds:
            out = change_speed(wave, speed, 44100)
            target = folder / f"{clip.stem}-x{speed:g}.wav"
            sf.write(str(target), (out.T if out.dim() == 2 else out).numpy(), 44100, subtype="PCM_16")
            made.append(target)
    return made


def scale(corpora: Path) -> None:
    import resource

    from distill.datasets import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        clips = large_corpus(corpora, Path(tmp) / "large")
        create_dataset(ws, "large", clips)
        minutes = load_dataset(ws, "large").total_duration / 60
        config = TrainConfig(dataset="large", device="cpu")
        started = time.perf_counter()
        job = start_training(ws, config)
        epochs = [event for event in job.events() if isinstance(event, EpochFinished)]
        job.join()
        wall = time.perf_counter() - started
        assert isinstance(job.outcome, Finished), job.outcome
        per_epoch = statistics.median(e.seconds for e in epochs)
        print(f"large corpus: {len(clips)} clips, {minutes:.1f} min of audio; default run: {len(epochs)} epochs of "
              f"{per_epoch:.1f} s (median), {wall / 60:.1f} min wall from Train to finished (data preparation and "
              f"previews included; target <= 15 min); peak memory "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="the ~500-clip scale run instead")
    parser.add_argument("--corpora", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpora")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=int, default=48000, help="sample rate of the benchmark's clips")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.large:
        scale(args.corpora)
        return

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        # Recordings usually arrive at 44.1 or 48 kHz: the first preparation resamples them.
        create_dataset(ws, "example", write_example_corpus(Path(tmp) / "corpus", sample_rate=args.rate))
        config = TrainConfig(dataset="example", preset=args.preset, epochs=args.epochs, preview_every=0,
                             device="cpu")
        settings = AudioSettings()
        frames = config.model_config().segment_frames

        speeds = config.speed_augment
        first = in_thread(prepare_training_data, ws, "example", settings, frames, 0.15, 0, speeds)
        second = in_thread(prepare_training_data, ws, "example", settings, frames, 0.15, 0, speeds)
        print(f"data preparation ({len(first.clip_features)} clips at {args.rate} Hz): first {first.preparation_seconds:.3f} s ({first.computed_clips} clips computed), "
              f"second {second.preparation_seconds:.3f} s ({second.computed_clips} computed); "
              f"ratio {second.preparation_seconds / first.preparation_seconds:.3f} (target <= 0.1)")

        feats = first.train
        model_config = config.model_config().with_feature_stats(feats.mean().item(), feats.std().item(),
                                                                feats.max().item() + 1)
        plain, engine = [], []
        for _ in range(args.rounds):
            plain += in_thread(plain_epochs, config, first.train, first.val, model_config)
            engine += engine_epochs(ws, config)
        print(f"epoch time ({args.preset} preset, {feats.shape[0]} segments, batch {config.batch_size}, "
              f"{torch.get_num_threads()} threads, {len(plain)} epochs each):")
        for label, pick in (("fastest", min), ("median", statistics.median)):
            p, e = pick(plain), pick(engine)
            print(f"  {label:8} plain loop {p:.3f} s, engine {e:.3f} s; ratio {e / p:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
