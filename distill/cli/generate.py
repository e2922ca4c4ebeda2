"""`distill generate MODEL`."""

from __future__ import annotations

import argparse
import re

from distill import DistillError
from distill.cli import workspace_from
from distill.generate import generate_sounds

PC_FLAGS = 8  # --pc1 .. --pc8; further directions with --offset k=v


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    gen = subparsers.add_parser("generate", parents=[common], help="make new sounds with a saved model")
    gen.add_argument("model", help="catalog name or path of a .distillgan file")
    gen.add_argument("-n", type=int, default=4, help="how many sounds (default: 4)")
    gen.add_argument("--seed", type=int, default=None, help="sound i uses seed+i (default: a random seed)")
    gen.add_argument("--duration", type=float, default=None, metavar="SEC",
                     help="seconds per sound (default: one training segment)")
    gen.add_argument("--temperature", type=float, default=1.0,
                     help="spread around the training data: 0 = its centre, 1 = its own spread (default: 1)")
    for k in range(1, PC_FLAGS + 1):
        gen.add_argument(f"--pc{k}", type=float, default=None, metavar="X",
                         help=argparse.SUPPRESS if k > 2 else
                         f"move along principal direction {k}, in units of the data's spread (also --pc3..--pc{PC_FLAGS})")
    gen.add_argument("--offset", action="append", default=[], metavar="K=V",
                     help="move along principal direction K by V spreads (repeatable)")
    gen.add_argument("--griffin-lim", action="store_true", help="use Griffin-Lim even if the model has a vocoder")
    gen.add_argument("--bits", type=int, choices=(16, 24), default=16, help="WAV bit depth (default: 16)")
    gen.add_argument("-o", "--output", metavar="DIR", default=None,
                     help="folder for the WAVs (default: <workspace>/generated/<model>)")
    gen.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    gen.set_defaults(run=run_generate)


def parse_offsets(args: argparse.Namespace) -> dict[int, float]:
    offsets = {k: getattr(args, f"pc{k}") for k in range(1, PC_FLAGS + 1) if getattr(args, f"pc{k}") is not None}
    for item in args.offset:
        match = re.fullmatch(r"\s*(?:pc)?(\d+)\s*=\s*([-+]?[\d.]+(?:e[-+]?\d+)?)\s*", item, re.IGNORECASE)
        if not match:
            raise DistillError(f"--offset {item!r}: write K=V, e.g. --offset 3=-1.5")
        offsets[int(match.group(1))] = float(match.group(2))
    return offsets


def run_generate(args: argparse.Namespace) -> int:
    sounds = generate_sounds(workspace_from(args), args.model, n=args.n, seed=args.seed, duration=args.duration,
                             temperature=args.temperature, offsets=parse_offsets(args),
                             griffin_lim=args.griffin_lim, bits=args.bits, out_dir=args.output, device=args.device)
    for sound in sounds:
        print(f"{sound.path}  seed {sound.seed}  {sound.seconds:.2f} s  peak {sound.peak_dbfs:.1f} dBFS  "
              f"rms {sound.rms_dbfs:.1f} dBFS")
    return 0
