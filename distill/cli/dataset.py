"""`distill dataset create|add|remove|list|show|delete`: a thin shell over `distill.data`."""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from distill import DistillError
from distill import datasets as data
from distill.cli import workspace_from


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "dataset", parents=[common], help="create, inspect and change datasets of clips",
        description="A dataset is a folder of your clips, checked file by file on import.")
    actions = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[common], help="a new dataset from files and folders",
                                description="Create a dataset from audio files and folders (searched "
                                            "recursively). Every file is listed with what happened to it: "
                                            "kept, rejected or skipped, and why.")
    create.add_argument("name", help="dataset name")
    create.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    create.add_argument("--json", action="store_true", help="print the import report as JSON")
    create.set_defaults(run=_create)

    add = actions.add_parser("add", parents=[common], help="import more files into a dataset")
    add.add_argument("name", help="dataset name")
    add.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    add.add_argument("--json", action="store_true", help="print the import report as JSON")
    add.set_defaults(run=_add)

    remove = actions.add_parser("remove", parents=[common], help="take clips out of a dataset")
    remove.add_argument("name", help="dataset name")
    remove.add_argument("clips", nargs="+", metavar="CLIP", help="clip names, as `dataset show` lists them")
    remove.set_defaults(run=_remove)

    listing = actions.add_parser("list", parents=[common], help="all datasets, with their totals")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=_list)

    show = actions.add_parser("show", parents=[common], help="a dataset's clips, summary and warnings")
    show.add_argument("name", help="dataset name")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(run=_show)

    delete = actions.add_parser("delete", parents=[common], help="delete a dataset and its copied clips")
    delete.add_argument("name", help="dataset name")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=_delete)


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _print_summary(dataset: data.Dataset) -> None:
    summary = dataset.summary()
    print(f"dataset {dataset.name!r}: {summary.usable} usable clips ({summary.ok} ok, {summary.warning} with "
          f"warnings), {summary.total_duration:.1f} s of audio")
    for warning in summary.warnings:
        print(f"  warning: {warning}")


def _report(report: data.ImportReport, as_json: bool) -> None:
    if as_json:
        _print_json(report.to_dict() | {"dataset": report.dataset.to_dict() if report.dataset else None})
        return
    for line in report.lines():
        print(line)
    if report.dataset is not None:
        print()
        _print_summary(report.dataset)


def _create(args: argparse.Namespace) -> int:
    try:
        report = data.create_dataset(workspace_from(args), args.name, args.paths)
    except data.ImportFailed as failed:
        if args.json:
            _print_json(failed.report.to_dict() | {"dataset": None})
        else:
            for line in failed.report.lines():
                print(line)
        raise DistillError(f"dataset {failed.report.dataset_name!r} not created: none of the "
                           f"{len(failed.report.entries)} files could be imported (reasons above)") from None
    _report(report, args.json)
    return 0


def _add(args: argparse.Namespace) -> int:
    report = data.add_clips(workspace_from(args), args.name, args.paths)
    _report(report, args.json)
    # Files already in the dataset are no failure; nothing usable among the files given is.
    if not report.kept and len(report.duplicates) < len(report.entries):
        print(f"error: nothing added to {report.dataset_name!r}: no file could be imported (reasons above)",
              file=sys.stderr)
        return 1
    return 0


def _remove(args: argparse.Namespace) -> int:
    dataset = data.remove_clips(workspace_from(args), args.name, args.clips)
    print(f"removed {len(set(args.clips))} clip(s) from {dataset.name!r}")
    _print_summary(dataset)
    return 0


def _list(args: argparse.Namespace) -> int:
    datasets = data.list_datasets(workspace_from(args))
    if args.json:
        _print_json([{"folder": str(d.folder)} | d.summary().to_dict() for d in datasets])
        return 0
    if not datasets:
        print("no datasets yet: create one with `distill dataset create NAME PATH...`")
        return 0
    rows = []
    for dataset in datasets:
        summary = dataset.summary()
        rows.append({"name": dataset.name, "clips": summary.clips, "usable": summary.usable,
                     "seconds": round(summary.total_duration, 1), "warnings": len(summary.warnings),
                     "updated": dataset.updated})
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _show(args: argparse.Namespace) -> int:
    dataset = data.load_dataset(workspace_from(args), args.name)
    view = dataset.to_dict()
    if args.json:
        _print_json(view)
        return 0
    print(f"dataset {dataset.name!r} in {dataset.folder}")
    kept = [c for c in view["clips"] if c["in_dataset"]]
    refused = [c for c in view["clips"] if not c["in_dataset"]]
    if kept:
        table = pd.DataFrame([{
            "clip": c["name"], "status": c["status"], "seconds": round(c["duration"], 2),
            "Hz": c["sample_rate"], "ch": c["channels"],
            "peak dBFS": "" if c["peak_dbfs"] is None else round(c["peak_dbfs"], 1),
            "clipped %": round(100 * c["clipping_fraction"], 2), "note": c["reason"]} for c in kept])
        print(table.to_string(index=False, max_colwidth=70))
    else:
        print("(no clips)")
    if refused:
        print(f"\nrejected at the last import ({dataset.last_import}):")
        print(pd.DataFrame([{"file": c["source"] or c["name"], "reason": c["reason"]} for c in refused])
              .to_string(index=False, max_colwidth=90))
    print()
    _print_summary(dataset)
    return 0


def _delete(args: argparse.Namespace) -> int:
    ws = workspace_from(args)
    dataset = data.load_dataset(ws, args.name)
    what = f"dataset {dataset.name!r} and its {len(dataset.clips)} copied clips ({dataset.folder})"
    if not args.yes:
        if not sys.stdin.isatty():
            raise DistillError(f"this deletes {what}; pass --yes to confirm")
        answer = input(f"delete {what}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("not deleted")
            return 1
    data.delete_dataset(ws, dataset.name)
    print(f"deleted {what}")
    return 0
