"""`distill transform MODEL INPUT...`."""

from __future__ import annotations

import argparse
import json
import math
import sys

from distill.cli import format_options, output_format, workspace_from
from distill.transfer import DEFAULT_STRENGTH
from distill.transform import TransformResult, transform_files


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cmd = subparsers.add_parser("transform", parents=[common],
                                help="put your own clips through a saved model (same length, same level)")
    cmd.add_argument("model", help="catalog name or path of a .distillgan file")
    cmd.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files (any format a dataset accepts)")
    cmd.add_argument("-o", "--output", metavar="DIR", default=None,
                     help="folder for the WAVs (default: <workspace>/transformed/<model>)")
    cmd.add_argument("--griffin-lim", action="store_true", help="decode with Griffin-Lim instead of the vocoder (its own, else the pretrained one)")
    cmd.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, metavar="S",
                     help="0 = the input as it is, 1 = played entirely by the model's own clips (its timing and "
                          f"loudness kept) (default: {DEFAULT_STRENGTH:g})")
    cmd.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    cmd.add_argument("--json", action="store_true", help="print the results as JSON")
    format_options(cmd, default_bits=16)
    cmd.set_defaults(run=run_transform)


def _db(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "-inf"


def describe(result: TransformResult) -> str:
    """`out.wav  2.50 s  rms -18.2 → -19.0 dBFS` (and the note, when there is one)."""
    line = (f"{result.path}  {result.seconds:.2f} s  rms {_db(result.input_rms_dbfs)} → "
            f"{_db(result.output_rms_dbfs)} dBFS")
    return f"{line}  ({result.note})" if result.note else line


def run_transform(args: argparse.Namespace) -> int:
    results = transform_files(workspace_from(args), args.model, args.inputs, out_dir=args.output,
                              griffin_lim=args.griffin_lim, device=args.device, fmt=output_format(args),
                              strength=args.strength)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    for result in results:
        if result.ok and not args.json:
            print(describe(result))
        elif not result.ok:
            print(f"error: {result.error}", file=sys.stderr)
    failed = sum(not r.ok for r in results)
    if failed:
        print(f"{failed} of {len(results)} inputs failed", file=sys.stderr)
    return 1 if failed else 0
