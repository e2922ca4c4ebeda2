"""`distill export-live MODEL [-o FILE.ts]`: a model for nn~ (Max/MSP, Pure Data) and NN.ar
(SuperCollider)."""

from __future__ import annotations

import argparse
import json

from distill.cli import workspace_from


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cmd = subparsers.add_parser("export-live", parents=[common],
                                help="write a TorchScript file that nn~ (Max, Pd) and NN.ar (SuperCollider) play live")
    cmd.add_argument("model", help="catalog name or path of a .distillgan file")
    cmd.add_argument("-o", "--output", metavar="FILE.ts", default=None,
                     help="where to write it (default: <workspace>/live/<model>.ts)")
    cmd.add_argument("--json", action="store_true", help="print what was written as JSON")
    cmd.set_defaults(run=run_export_live)


def run_export_live(args: argparse.Namespace) -> int:
    from distill.live import export_live_model, summary  # torch: only when the command runs

    info = export_live_model(workspace_from(args), args.model, args.output)
    print(json.dumps(info, indent=2) if args.json else summary(info))
    return 0
