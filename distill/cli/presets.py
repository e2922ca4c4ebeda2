"""`distill presets list|rename|delete MODEL ...`: a model's saved generate settings (made with
`distill generate MODEL ... --save-preset NAME`, used with `--preset NAME`)."""

from __future__ import annotations

import argparse
import json

from distill.cli import workspace_from


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("presets", parents=[common], help="a model's saved generate settings",
                                   description="Presets are made with `distill generate MODEL ... --save-preset "
                                               "NAME` and used with `--preset NAME`.")
    actions = parser.add_subparsers(dest="presets_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="the model's presets and their settings")
    listing.add_argument("model", help="catalog name or path of a .distillgan file")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=_list)
    rename = actions.add_parser("rename", parents=[common], help="rename a preset")
    rename.add_argument("model")
    rename.add_argument("old")
    rename.add_argument("new")
    rename.set_defaults(run=_rename)
    delete = actions.add_parser("delete", parents=[common], help="delete a preset")
    delete.add_argument("model")
    delete.add_argument("name")
    delete.set_defaults(run=_delete)


def describe(preset) -> str:
    """`variation of kick-03.wav · temperature 0.6 · 1.5 s · pc1 +1.0 · Griffin-Lim`."""
    what = {"random": "random", "variation": f"variations of {preset.like}",
            "morph": f"morph {' → '.join(preset.morph or ())}"}[preset.mode]
    parts = [what, f"temperature {preset.temperature:g}", f"{preset.duration:g} s" if preset.duration else "",
             " ".join(f"pc{k} {v:+g}" for k, v in sorted(preset.offsets.items())),
             "Griffin-Lim" if preset.griffin_lim else ""]
    return " · ".join(p for p in parts if p)


def _list(args: argparse.Namespace) -> int:
    from distill.presets import list_presets

    presets = list_presets(workspace_from(args), args.model)
    if args.json:
        print(json.dumps({name: p.to_dict() for name, p in presets.items()}, indent=2, ensure_ascii=False))
    elif not presets:
        print(f"no presets for {args.model!r} yet: keep settings with `distill generate {args.model} ... "
              "--save-preset NAME`")
    for name, preset in ([] if args.json else presets.items()):
        print(f"{name}: {describe(preset)}")
    return 0


def _rename(args: argparse.Namespace) -> int:
    from distill.presets import rename_preset

    print(f"renamed to {rename_preset(workspace_from(args), args.model, args.old, args.new)!r}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from distill.presets import delete_preset

    delete_preset(workspace_from(args), args.model, args.name)
    print(f"deleted preset {args.name!r}")
    return 0
