"""`distill train-vocoder MODEL` and `distill remove-vocoder MODEL`."""

from __future__ import annotations

import argparse

from distill.cli import workspace_from
from distill.cli.progress import eta, follow
from distill.jobs import EpochFinished
from distill.vocoder import PRESETS, remove_vocoder, start_vocoder_training, vocoder_preset
from distill.vocoder.config import DEFAULT_EPOCHS


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    train = subparsers.add_parser("train-vocoder", parents=[common],
                                  help="train a model's own neural vocoder (replaces Griffin-Lim for it)")
    train.add_argument("model", help="catalog name or path of a .distillgan file")
    train.add_argument("--epochs", type=int, default=None,
                       help=f"epochs in all (an epoch is {PRESETS['default'].steps_per_epoch} steps; default: "
                            f"{DEFAULT_EPOCHS}, or the unfinished run's target)")
    train.add_argument("--resume", action="store_true", help="continue a stopped vocoder training")
    train.add_argument("--force", action="store_true",
                       help="replace the model's vocoder, or start over an unfinished training")
    train.add_argument("--preset", default="default", choices=sorted(PRESETS), help="vocoder size (default: default)")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    train.set_defaults(run=run_train_vocoder)

    remove = subparsers.add_parser("remove-vocoder", parents=[common],
                                   help="take the vocoder out of a model file (it decodes with Griffin-Lim again)")
    remove.add_argument("model", help="catalog name or path of a .distillgan file")
    remove.set_defaults(run=run_remove_vocoder)


def run_train_vocoder(args: argparse.Namespace) -> int:
    job = start_vocoder_training(workspace_from(args), args.model, vocoder_preset(args.preset), epochs=args.epochs,
                                 force=args.force, resume=args.resume, device=args.device)
    print(f"vocoder training for {job.model_name}  ({job.run_dir})", flush=True)
    return follow(job, _epoch_line, f"distill train-vocoder {job.model_name} --resume",
                  finished_note="; the vocoder is in the model file", what="vocoder training")


def run_remove_vocoder(args: argparse.Namespace) -> int:
    path = remove_vocoder(workspace_from(args), args.model)
    print(f"{path.stem}: vocoder removed; it decodes with Griffin-Lim")
    return 0


def _epoch_line(event: EpochFinished) -> str:
    m = event.metrics
    gan = "  +GAN" if m.get("gan") else ""
    return (f"{event.epoch:>4}/{event.total_epochs}  train {m['train_loss']:.4f}  held-out MR-STFT "
            f"{m['val_loss']:.3f}  LSD {m['val_lsd']:.2f} dB{gan}  {event.seconds:.1f} s/epoch  {eta(event)}")
