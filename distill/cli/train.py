"""`distill train`, `distill resume`, `distill stop`, `distill experiments`."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields

from distill.cli import experiment_arg, workspace_from
from distill.cli.progress import eta, follow
from distill.jobs import RESUMABLE, EpochFinished
from distill.model import PRESETS
from distill.stopping import request_stop, wait_until_stopped
from distill.experiments import experiments_table, list_experiments
from distill.train import resume_training, start_training
from distill.train_config import TrainConfig

DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}

# (flag, TrainConfig field, type, help)
_OPTIONS = [
    ("--name", "name", str, "experiment name (default: the dataset's name)"),
    ("--epochs", "epochs", int, "epochs to train (default: 13, fewer for a large dataset so the run ends within "
                                "~15 min: said when it starts)"),
    ("--preset", "preset", str, f"model size: {' | '.join(PRESETS)}"),
    ("--batch-size", "batch_size", int, "segments per batch"),
    ("--lr", "learning_rate", float, "learning rate"),
    ("--latent-dim", "latent_dim", int, "latent size (default: the preset's)"),
    ("--beta", "beta", float, "KL weight after warm-up"),
    ("--val-fraction", "val_fraction", float, "share of clips held out for validation"),
    ("--preview-every", "preview_every", int, "write previews every N epochs (0: never)"),
    ("--seed", "seed", int, "random seed"),
    ("--device", "device", str, "auto | cpu | cuda"),
    ("--keep-recent", "keep_recent", int, "checkpoints kept: the newest N (0 keeps all)"),
    ("--keep-best", "keep_best", int, "... plus the best N by validation loss"),
]


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    train = subparsers.add_parser("train", parents=[common], help="train a model on a dataset")
    train.add_argument("dataset", help="dataset name (see `distill dataset list`)")
    for flag, field, kind, text in _OPTIONS:
        default = DEFAULTS[field]
        train.add_argument(flag, dest=field, type=kind, default=None,
                           help=text if default is None else f"{text} (default: {default})")
    train.set_defaults(run=run_train)

    resume = subparsers.add_parser("resume", parents=[common],
                                   help="resume a stopped, failed or interrupted experiment")
    resume.add_argument("experiment", help="experiment id, name or id prefix (see `distill experiments`)")
    resume.add_argument("--epochs", type=int, default=None, help="train up to this many epochs in all")
    resume.set_defaults(run=run_resume)

    stop = subparsers.add_parser("stop", parents=[common], help="stop a training, wherever it runs",
                                 description="Ask the training that runs in this workspace (started here, in "
                                             "another terminal or from the web app) to stop after its current "
                                             "batch: it writes a checkpoint and ends as stopped, resumable.")
    stop.add_argument("experiment", nargs="?", default=None,
                      help="experiment id, name or id prefix (default: whichever is training)")
    stop.add_argument("--no-wait", dest="wait", action="store_false",
                      help="return at once instead of waiting for the run to end")
    stop.set_defaults(run=run_stop)

    experiments = subparsers.add_parser("experiments", parents=[common], help="list experiments")
    experiments.add_argument("--json", action="store_true", help="machine-readable output")
    experiments.set_defaults(run=run_experiments)


def run_train(args: argparse.Namespace) -> int:
    values = {field: getattr(args, field) for _, field, _, _ in _OPTIONS if getattr(args, field) is not None}
    config = TrainConfig(dataset=args.dataset, **values)
    job = start_training(workspace_from(args), config)
    print(f"experiment {job.experiment_id}  ({job.experiment_dir}), {job.config.epochs} epochs")
    return follow(job, _epoch_line, f"distill resume {job.experiment_id}")


def run_resume(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    job = resume_training(ws, experiment_arg(ws, args.experiment), epochs=args.epochs)
    print(f"resuming {job.experiment_id}")
    return follow(job, _epoch_line, f"distill resume {job.experiment_id}")


def run_stop(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    reference = experiment_arg(ws, args.experiment) if args.experiment else None
    request = request_stop(ws, reference, by=f"distill stop (process {os.getpid()})")
    print(f"asked {request.experiment_id} to stop after its current batch", flush=True)
    if not args.wait:
        return 0
    record = wait_until_stopped(ws, request.experiment_id)
    line = f"{request.experiment_id}: {record['status']} after epoch {record.get('epoch', 0)}"
    if record["status"] in RESUMABLE:  # it may have finished its last epoch before it saw the request
        line += f". Resume with: distill resume {request.experiment_id}"
    print(line)
    return 0


def run_experiments(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    if args.json:
        print(json.dumps(list_experiments(ws), indent=2))
        return 0
    table = experiments_table(ws)
    print(table.to_string(index=False) if len(table) else "no experiments yet: start one with `distill train DATASET`")
    return 0


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / max(1, total))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _epoch_line(event: EpochFinished) -> str:
    m = event.metrics
    return (f"{_bar(event.epoch, event.total_epochs)} {event.epoch:>4}/{event.total_epochs}  "
            f"train {m['train_loss']:.4f}  val {m['val_loss']:.4f}  (recon {m['val_recon']:.3f}, "
            f"kl {m['val_kl']:.2f})  {event.seconds:.1f} s/epoch  {eta(event)}")
