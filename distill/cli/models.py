"""`distill export` and `distill models list | info | import | delete | rename`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, TypeVar

from distill import DistillError, catalog
from distill.catalog import ModelEntry
from distill.cli import experiment_arg, workspace_from
from distill.export import export_model
from distill.modelfile import ModelExistsError

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    export = subparsers.add_parser("export", parents=[common], help="save an experiment's checkpoint as a model")
    export.add_argument("experiment", help="experiment id, name or id prefix (see `distill experiments`)")
    export.add_argument("--checkpoint", default="best", help="best | last | epoch:N (default: best)")
    export.add_argument("--name", help="model name (default: the experiment's name)")
    export.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    export.add_argument("--device", default="auto", help="for the latent analysis: auto | cpu | cuda")
    export.set_defaults(run=run_export)

    models = subparsers.add_parser("models", parents=[common], help="the model catalog")
    sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", parents=[common], help="list models")
    listing.add_argument("--search", default="", help="only names or datasets containing this")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)
    info = sub.add_parser("info", parents=[common], help="everything about one model")
    info.add_argument("name", help="catalog name or path of a .distillgan file")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=run_info)
    imp = sub.add_parser("import", parents=[common], help="copy a .distillgan file into the catalog")
    imp.add_argument("file")
    imp.add_argument("--name", help="catalog name (default: the file's name)")
    imp.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    imp.set_defaults(run=run_import)
    delete = sub.add_parser("delete", parents=[common], help="delete a model")
    delete.add_argument("name")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=run_delete)
    rename = sub.add_parser("rename", parents=[common], help="rename a model")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.add_argument("--overwrite", action="store_true", help="replace a model already called NEW")
    rename.set_defaults(run=run_rename)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _with_free_name(action: Callable[[str, bool], T], name: str | None, overwrite: bool) -> T:
    """Run `action(name, overwrite)`; on a name clash ask for another name when someone is at
    the terminal, else fail with the suggestion."""
    while True:
        try:
            return action(name, overwrite)
        except ModelExistsError as clash:
            if not _interactive():
                raise DistillError(f"{clash} (--name NEW or --overwrite)") from None
            answer = input(f"a model named {clash.name!r} exists. New name [{clash.suggestion}] "
                           "(or 'overwrite'): ").strip()
            if answer == "overwrite":
                overwrite = True
            else:
                name = answer or clash.suggestion


def run_export(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    experiment = experiment_arg(ws, args.experiment)
    path = _with_free_name(lambda name, overwrite: export_model(ws, experiment, name, args.checkpoint,
                                                                overwrite, args.device), args.name, args.overwrite)
    entry = catalog.get_entry(ws, path.stem)
    print(f"exported {entry.name!r}: {path} ({entry.size_mb} MB)")
    print(f"generate with: distill generate {json.dumps(entry.name)}")
    return 0


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def run_list(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    if args.json:
        print(json.dumps([e.to_dict() for e in catalog.list_models(ws, args.search)], indent=2, ensure_ascii=False))
        return 0
    table = catalog.models_table(ws, args.search)
    if len(table):
        print(table.to_string(index=False, na_rep="—"))
    elif args.search:
        print(f"no model matches {args.search!r}")
    else:
        print("no models yet: export one with `distill export EXPERIMENT --name NAME`")
    for file, problem in catalog.problems(ws).items():
        print(f"warning: {file}: {problem}", file=sys.stderr)
    return 0


def run_info(args: argparse.Namespace) -> int:
    details = catalog.model_details(workspace_from(args), args.name)
    if args.json:
        print(json.dumps(details, indent=2, ensure_ascii=False))
        return 0
    meta, dataset = details["metadata"], details["metadata"].get("dataset") or {}
    experiment, settings, config = meta.get("experiment") or {}, details["audio_settings"], details["model_config"]
    analysis = details["analysis"]
    synthesis = details["synthesis"]
    rows = [
        ("name", details["name"]), ("file", details["path"]), ("size", f"{details['size_mb']} MB"),
        ("id", meta.get("id")), ("created", meta.get("created")),
        ("dataset", f"{dataset.get('name')} ({dataset.get('clips')} clips, {_fmt(dataset.get('total_seconds'))} s)"),
        ("experiment", f"{experiment.get('id')} ({experiment.get('checkpoint')} checkpoint, "
                       f"epoch {experiment.get('checkpoint_epoch')} of {experiment.get('epochs_total')})"),
        ("epochs trained", meta.get("epochs_trained")),
        ("loss", f"train {_fmt(meta.get('train_loss'))}, validation {_fmt(meta.get('val_loss'))}"),
        ("audio", f"{settings['sample_rate']} Hz {'stereo' if settings.get('channels', 1) == 2 else 'mono'}, "
                  f"{settings['n_mels']} mels to {settings['f_max']:g} Hz, n_fft {settings['n_fft']}, "
                  f"hop {settings['hop_length']}"),
        ("architecture", f"channels {config['channels']}, latent {config['latent_dim']} channels, one frame per "
                         f"{analysis['time_stride']} mel frames ({analysis['latent_frames_per_second']:g} a second), "
                         f"training window {config['segment_frames']} frames, {details['parameters']:,} parameters"),
        ("latent analysis", f"{analysis['latent_frames']} latent frames of {analysis['segments']} segments; "
                            "variance along pc1.. "
                            + ", ".join(f"{r:.0%}" for r in analysis["explained_variance_top"][:4])),
        ("new sounds", "export again to generate (this file has no clip trajectories)"
         if analysis.get("generation_clips") is None else
         f"from {analysis['generation_clips']} clips; {analysis['default_seconds']:g} s long by default, "
         f"packs at {analysis['loudness_lufs']:g} LUFS"),
        ("vocoder", synthesis["label"] + (f" ({synthesis['why']})" if synthesis.get("why") else "")),
        ("directions", _directions_line(details["directions"]) if details["directions"] is not None
         else f"none: {details['directions_problem']}"),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {_fmt(value)}")
    return 0


def _directions_line(directions: list[dict]) -> str:
    """`brightness, tail, … (--set NAME=-1..1); hidden: pitch (the clips are not pitched)`."""
    shown = [d["name"] for d in directions if d["shown"]]
    hidden = [f"{d['name']} ({d['reason']})" for d in directions if not d["shown"]]
    return (f"{', '.join(shown) or 'none'} (--set NAME=-1..1)"
            + (f"; not reliable here: {'; '.join(hidden)}" if hidden else ""))


def _summary(entry: ModelEntry) -> str:
    return f"{entry.name!r} ({entry.dataset}, {entry.epochs} epochs, {entry.size_mb} MB)"


def run_import(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    entry = _with_free_name(lambda name, overwrite: catalog.import_model(ws, args.file, name, overwrite),
                            args.name, args.overwrite)
    print(f"imported {_summary(entry)}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    entry = catalog.get_entry(ws, args.name)
    if not args.yes and _interactive():
        if input(f"delete {_summary(entry)}? This cannot be undone. [y/N] ").strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    catalog.delete_model(ws, entry.name)
    print(f"deleted {entry.name!r}")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    entry = _with_free_name(lambda name, overwrite: catalog.rename_model(ws, args.old, name, overwrite),
                            args.new, args.overwrite)
    print(f"renamed {args.old!r} to {entry.name!r}")
    return 0
