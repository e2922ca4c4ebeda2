"""`distill history list|keep|unkeep|delete|again|pack MODEL ...`: the sounds the web app made
with a model (`distill.history`). An entry is named by its id or the start of it."""

from __future__ import annotations

import argparse
import json

from distill.cli import format_options, instrument_option, output_format, print_instrument, workspace_from


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("history", parents=[common], help="the sounds the web app made with a model",
                                   description="Every sound the web app makes is kept in the model's history; "
                                               "keep (star) the good ones and pack them.")
    actions = parser.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="the model's sounds, newest first")
    listing.add_argument("model", help="catalog name or path of a .distillgan file")
    listing.add_argument("--kept", action="store_true", help="only the kept ones")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=_list)
    for name, help_text, run in (("keep", "keep a sound (never dropped for room; goes into the pack)", _keep),
                                 ("unkeep", "stop keeping a sound", _unkeep),
                                 ("delete", "delete a sound from the history, with its files", _delete)):
        action = actions.add_parser(name, parents=[common], help=help_text)
        action.add_argument("model")
        action.add_argument("id", nargs="+", help="entry id (or its start), as `history list` shows")
        action.set_defaults(run=run)
    again = actions.add_parser("again", parents=[common], help="make a sound again from what the history stores")
    again.add_argument("model")
    again.add_argument("id")
    again.add_argument("--device", default="auto", help="auto, cpu or cuda")
    again.set_defaults(run=_again)
    pack = actions.add_parser("pack", parents=[common], help="a sample pack of the kept sounds")
    pack.add_argument("model")
    pack.add_argument("-o", "--out", default=None, help="folder for the pack (default: <workspace>/packs)")
    pack.add_argument("--name", default=None, help="the pack's name (default: MODEL-kept)")
    pack.add_argument("--device", default="auto", help="auto, cpu or cuda")
    format_options(pack, default_bits=24)
    instrument_option(pack)
    pack.set_defaults(run=_pack)


def _list(args: argparse.Namespace) -> int:
    from distill.history import list_history

    entries = [e for e in list_history(workspace_from(args), args.model) if e.kept or not args.kept]
    if args.json:
        listed = [{**e.to_dict(), "audio_path": str(e.audio_path)} for e in entries]
        print(json.dumps(listed, indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print(f"no {'kept ' if args.kept else ''}sounds in the history of {args.model!r} yet: "
              "sounds made in the web app land here")
    for entry in entries:
        print(f"{'★' if entry.kept else ' '} {entry.id}  {entry.created[:19].replace('T', ' ')}  "
              f"{entry.settings_text()}  {entry.audio_path}")
    return 0


def _keep_all(args: argparse.Namespace, kept: bool) -> int:
    from distill.history import keep_entry

    ws = workspace_from(args)
    for ref in args.id:
        entry = keep_entry(ws, args.model, ref, kept)
        print(f"{'kept' if kept else 'no longer kept'}: {entry.id} ({entry.settings_text()})")
    return 0


def _keep(args: argparse.Namespace) -> int:
    return _keep_all(args, True)


def _unkeep(args: argparse.Namespace) -> int:
    return _keep_all(args, False)


def _delete(args: argparse.Namespace) -> int:
    from distill.history import delete_entry

    ws = workspace_from(args)
    for ref in args.id:
        entry = delete_entry(ws, args.model, ref)
        print(f"deleted {entry.id} ({entry.settings_text()}) and its files")
    return 0


def _again(args: argparse.Namespace) -> int:
    from distill.history import make_again

    again = make_again(workspace_from(args), args.model, args.id, device=args.device)
    same = "the same samples as the original" if again.identical else "NOT the same samples as the original " \
        "(the model file has changed since, e.g. a vocoder trained)"
    print(f"{again.path}\n{same}; in the history as {again.entry.id}")
    return 0


def _pack(args: argparse.Namespace) -> int:
    from distill.history import pack_kept

    result = pack_kept(workspace_from(args), args.model, out_dir=args.out, name=args.name, fmt=output_format(args),
                       device=args.device, instruments=args.instrument)
    print(f"{len(result.files)} kept sounds packed in {result.folder}\n{result.zip_path}")
    print_instrument(result.manifest)
    return 0
