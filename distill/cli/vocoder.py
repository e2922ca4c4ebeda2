"""`distill train-vocoder MODEL` and `distill remove-vocoder MODEL`."""

from __future__ import annotations

import argparse

from distill import catalog
from distill.cli import workspace_from
from distill.cli.progress import eta, follow
from distill.jobs import EpochFinished
from distill.modelfile import load_model_file
from distill.vocoder import PRESETS, read_run, remove_vocoder, start_vocoder_training, vocoder_preset


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    default = PRESETS["default"]
    train = subparsers.add_parser("train-vocoder", parents=[common],
                                  help="fine-tune the pretrained vocoder on a model's clips (a few minutes), or "
                                       "train one from scratch (--preset scratch); it goes into the model file")
    train.add_argument("model", help="catalog name or path of a .distillgan file")
    train.add_argument("--epochs", type=int, default=None,
                       help=f"epochs in all (default preset: {default.epochs} of {default.steps_per_epoch} steps; "
                            "scratch: 30 of 100; or the unfinished run's target)")
    train.add_argument("--resume", action="store_true", help="continue a stopped vocoder training")
    train.add_argument("--force", action="store_true",
                       help="replace the model's vocoder, or start over an unfinished training")
    train.add_argument("--preset", default="default", choices=sorted(PRESETS),
                       help="default: fine-tune the pretrained vocoder; scratch: train from nothing (~25 min, for "
                            "mel settings the pretrained one was not made for); tiny: a quick check")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    train.set_defaults(run=run_train_vocoder)

    remove = subparsers.add_parser("remove-vocoder", parents=[common],
                                   help="take its own vocoder out of a model file (it decodes with the pretrained one again)")
    remove.add_argument("model", help="catalog name or path of a .distillgan file")
    remove.set_defaults(run=run_remove_vocoder)


def run_train_vocoder(args: argparse.Namespace) -> int:
    job = start_vocoder_training(workspace_from(args), args.model, vocoder_preset(args.preset), epochs=args.epochs,
                                 force=args.force, resume=args.resume, device=args.device)
    what = "fine-tuning the pretrained vocoder" if job.config.init == "pretrained" else "training a vocoder from scratch"
    print(f"{what} for {job.model_name}  ({job.run_dir})", flush=True)
    code = follow(job, _epoch_line, f"distill train-vocoder {job.model_name} --resume", what="vocoder training")
    record = read_run(job.ws, job.model_name) or {}
    if code == 0 and record.get("status") == "completed":
        best, reference = record.get("best") or {}, record.get("griffin_lim") or {}
        which = "the pretrained weights (no epoch beat them)" if record.get("best_epoch") == 0 else \
            f"epoch {record.get('best_epoch')}"
        print(f"in the model file now: {which}, held-out MR-STFT {best.get('val_loss', float('nan')):.3f} "
              f"(Griffin-Lim {reference.get('mrstft', float('nan')):.3f})", flush=True)
    return code


def run_remove_vocoder(args: argparse.Namespace) -> int:
    path = remove_vocoder(workspace_from(args), args.model)
    print(f"{path.stem}: its own vocoder removed; it decodes with "
          f"{catalog.vocoder_label(catalog.vocoder_stats(load_model_file(path, mmap=True)))} again")
    return 0


def _epoch_line(event: EpochFinished) -> str:
    m = event.metrics
    gan = "  +GAN" if m.get("gan") else ""
    return (f"{event.epoch:>4}/{event.total_epochs}  train {m['train_loss']:.4f}  held-out MR-STFT "
            f"{m['val_loss']:.3f}  LSD {m['val_lsd']:.2f} dB{gan}  {event.seconds:.1f} s/epoch  {eta(event)}")
