"""`distill train-vocoder MODEL` and `distill remove-vocoder MODEL`."""

from __future__ import annotations

import argparse
import sys

from distill.cli import workspace_from
from distill.jobs import Cancelled, EpochFinished, Failed, Finished, PreviewWritten, Started, Warning
from distill.vocoder import PRESETS, VocoderTrainingJob, remove_vocoder, start_vocoder_training, vocoder_preset


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    train = subparsers.add_parser("train-vocoder", parents=[common],
                                  help="train a model's own neural vocoder (replaces Griffin-Lim for it)")
    train.add_argument("model", help="catalog name or path of a .distillgan file")
    train.add_argument("--epochs", type=int, default=None,
                       help="epochs in all (an epoch is 100 steps; default: 30, or the unfinished run's target)")
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
    return follow(job)


def run_remove_vocoder(args: argparse.Namespace) -> int:
    path = remove_vocoder(workspace_from(args), args.model)
    print(f"{path.stem}: vocoder removed; it decodes with Griffin-Lim")
    return 0


def follow(job: VocoderTrainingJob) -> int:
    """Print one line per epoch until the job ends. Ctrl-C asks for a graceful stop (the job
    finishes its step and checkpoints); a second Ctrl-C quits at once."""
    seen, stopping = 0, False
    while True:
        try:
            for event in job.events(start=seen):
                seen += 1
                _print_event(event)
            break
        except KeyboardInterrupt:
            if stopping:
                raise
            stopping = True
            print("\nstopping after the current step (Ctrl-C again to quit at once)…", flush=True)
            job.cancel()
    job.join()
    outcome = job.outcome
    if isinstance(outcome, Failed):
        print(f"error: vocoder training failed: {outcome.message}", file=sys.stderr)
        return 1
    if isinstance(outcome, Cancelled):
        print(f"stopped. Resume with: distill train-vocoder {job.model_name} --resume", flush=True)
        return 130 if stopping else 0
    return 0


def _print_event(event) -> None:
    if isinstance(event, Started):
        start = f" from epoch {event.start_epoch}" if event.start_epoch else ""
        print(f"training on {event.device}{start}: {event.message}", flush=True)
    elif isinstance(event, EpochFinished):
        m = event.metrics
        eta = (event.total_epochs - event.epoch) * event.seconds
        gan = "  +GAN" if m.get("gan") else ""
        print(f"{event.epoch:>4}/{event.total_epochs}  train {m['train_loss']:.4f}  held-out MR-STFT "
              f"{m['val_loss']:.3f}  LSD {m['val_lsd']:.2f} dB{gan}  {event.seconds:.1f} s/epoch  "
              f"ETA {int(eta // 60)}:{int(eta % 60):02d}", flush=True)
    elif isinstance(event, PreviewWritten):
        print(f"      previews for epoch {event.epoch}: {len(event.paths)} files", flush=True)
    elif isinstance(event, Warning):
        print(f"warning: {event.message}", flush=True)
    elif isinstance(event, Finished):
        print(f"finished after epoch {event.epoch}; the vocoder is in the model file", flush=True)
    elif isinstance(event, Cancelled):
        print(f"cancelled at epoch {event.epoch}; checkpoint {event.checkpoint}", flush=True)
