"""`distill generate MODEL` (random sounds, `--like CLIP` variations, `--morph A B` morphs)
and `distill pack MODEL` (the same sounds as a sample-pack folder and zip)."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from typing import TYPE_CHECKING

from distill import DistillError
from distill.cli import format_options, instrument_option, output_format, print_instrument, workspace_from

if TYPE_CHECKING:
    from distill.presets import Preset

PC_FLAGS = 8  # --pc1 .. --pc8; further directions with --offset k=v
SOURCE_HELP = "a training clip's name, an audio file, or seed:N (generated sound N)"


def _sound_options(cmd: argparse.ArgumentParser, default_n: int) -> None:
    """The options `generate` and `pack` share: what sounds to make."""
    cmd.add_argument("model", help="catalog name or path of a .distillgan file")
    cmd.add_argument("-n", type=int, default=None,
                     help=f"how many sounds (default: {default_n}; with --morph see --steps)")
    cmd.add_argument("--seed", type=int, default=None, help="sound i uses seed+i (default: a random seed)")
    cmd.add_argument("--duration", type=float, default=None, metavar="SEC",
                     help="seconds per sound (default: the dataset's median clip length; a variation is "
                          "as long as its source, a morph step between its ends)")
    cmd.add_argument("--temperature", type=float, default=None,
                     help="0 = the most typical clip as it is, 1 = as varied as the clips (default), "
                          "higher = wilder; with --like: how far the farthest variation goes")
    cmd.add_argument("--like", metavar="CLIP", default=None, help=f"variations of this sound ({SOURCE_HELP}), "
                     "from close to far")
    cmd.add_argument("--morph", nargs=2, metavar=("A", "B"), default=None,
                     help=f"sounds on the way from A to B ({SOURCE_HELP} each)")
    cmd.add_argument("--steps", type=int, default=None, help="morph: how many sounds from A to B, both "
                     "included (default: 5)")
    for k in range(1, PC_FLAGS + 1):
        cmd.add_argument(f"--pc{k}", type=float, default=None, metavar="X",
                         help=argparse.SUPPRESS if k > 2 else
                         f"move along principal direction {k}, in units of the data's spread (also --pc3..--pc{PC_FLAGS})")
    cmd.add_argument("--set", action="append", default=[], metavar="NAME=V", dest="directions",
                     help="move a named direction from -1 to 1: brightness, attack, tail, noise, pitch, width "
                          "(repeatable; `distill models info MODEL` lists the model's)")
    cmd.add_argument("--offset", action="append", default=[], metavar="K=V",
                     help="move along principal direction K by V spreads (repeatable)")
    cmd.add_argument("--griffin-lim", action="store_true", help="decode with Griffin-Lim instead of the vocoder (its own, else the pretrained one)")
    cmd.add_argument("--preset", metavar="NAME", default=None,
                     help="start from the settings saved as NAME for this model (options given override them)")
    cmd.add_argument("--save-preset", metavar="NAME", default=None,
                     help="keep these settings as NAME for this model (not the seed or the count)")
    cmd.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    gen = subparsers.add_parser("generate", parents=[common], help="make new sounds with a saved model")
    _sound_options(gen, default_n=4)
    format_options(gen, default_bits=16)
    gen.add_argument("-o", "--output", metavar="DIR", default=None,
                     help="folder for the WAVs (default: <workspace>/generated/<model>)")
    gen.set_defaults(run=run_generate)

    pack = subparsers.add_parser("pack", parents=[common],
                                 help="make a sample pack: trimmed, loudness-matched 24-bit WAVs, a zip and pack.json")
    _sound_options(pack, default_n=12)
    format_options(pack, default_bits=24)
    pack.add_argument("--lufs", type=float, default=None, metavar="LUFS",
                      help="loudness every sound is matched to (default: the training clips' median), "
                           "under a true-peak ceiling of -1 dBTP")
    pack.add_argument("--name", default=None, help="the pack's folder name (default: <model>-<mode>-seed<seed>)")
    instrument_option(pack)
    pack.add_argument("-o", "--output", metavar="DIR", default=None,
                      help="folder the pack goes into (default: <workspace>/packs)")
    pack.set_defaults(run=run_pack)


def parse_offsets(args: argparse.Namespace) -> dict[int, float]:
    offsets = {k: getattr(args, f"pc{k}") for k in range(1, PC_FLAGS + 1) if getattr(args, f"pc{k}") is not None}
    for item in args.offset:
        match = re.fullmatch(r"\s*(?:pc)?(\d+)\s*=\s*([-+]?[\d.]+(?:e[-+]?\d+)?)\s*", item, re.IGNORECASE)
        if not match:
            raise DistillError(f"--offset {item!r}: write K=V, e.g. --offset 3=-1.5")
        offsets[int(match.group(1))] = float(match.group(2))
    return offsets


def parse_directions(items: list[str]) -> dict[str, float]:
    """`--set name=v` options as {name: v} (the model checks the names and the range)."""
    values = {}
    for item in items:
        match = re.fullmatch(r"\s*([a-z]+)\s*=\s*([-+]?[\d.]+(?:e[-+]?\d+)?)\s*", item, re.IGNORECASE)
        if not match:
            raise DistillError(f"--set {item!r}: write NAME=V, e.g. --set brightness=0.5")
        values[match.group(1).lower()] = float(match.group(2))
    return values


def asked_preset(args: argparse.Namespace, ws) -> Preset:
    """The settings the options ask for: `--preset`'s (or the defaults), with every option
    given on the command line put over them."""
    from distill.presets import Preset, get_preset

    if args.like and args.morph:
        raise DistillError("--like and --morph are two modes: give one of them")
    base = get_preset(ws, args.model, args.preset) if args.preset else Preset()
    changes: dict = {"offsets": {**base.offsets, **parse_offsets(args)},
                     "directions": {**base.directions, **parse_directions(args.directions)}}
    if args.morph:
        changes |= {"mode": "morph", "morph": tuple(args.morph), "like": None}
    elif args.like:
        changes |= {"mode": "variation", "like": args.like, "morph": None}
    if args.temperature is not None:
        changes["temperature"] = args.temperature
    if args.duration is not None:
        changes["duration"] = args.duration
    if args.griffin_lim:
        changes["griffin_lim"] = True
    return base.replace(**changes)


def sound_request(args: argparse.Namespace, default_n: int, ws) -> dict:
    """The engine's keyword arguments for what the options ask: the settings (`asked_preset`),
    the count, the seed; `--save-preset` keeps the settings."""
    from distill.presets import save_preset

    preset = asked_preset(args, ws)
    if args.steps is not None and preset.mode != "morph":
        raise DistillError("--steps goes with --morph A B (for other modes use -n)")
    if args.morph and args.n is not None and args.steps is not None and args.n != args.steps:
        raise DistillError("give the morph's length once: --steps (or -n)")
    n = (args.steps or args.n or 5) if preset.mode == "morph" else (args.n or default_n)
    if args.save_preset:
        name = save_preset(ws, args.model, args.save_preset, preset)
        print(f"settings kept as preset {name!r} (use them again with --preset {shlex.quote(name)})", flush=True)
    return {"n": n, "seed": args.seed, "device": args.device, **preset.kwargs()}


def run_generate(args: argparse.Namespace) -> int:
    from distill.generate import generate_sounds  # torch: loaded by the commands that need it

    ws = workspace_from(args)
    sounds = generate_sounds(ws, args.model, fmt=output_format(args), out_dir=args.output,
                             **sound_request(args, default_n=4, ws=ws))
    for sound in sounds:
        print(f"{sound.path}  {sound.seconds:.2f} s  peak {sound.peak_dbfs:.1f} dBFS  rms {sound.rms_dbfs:.1f} dBFS"
              f"  ({sound.recipe})")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    from distill.pack import make_pack

    line_open = False

    def progress(done: int, total: int) -> None:
        nonlocal line_open
        line_open = done < total
        print(f"\r{done}/{total} sounds", end="" if line_open else "\n", file=sys.stderr, flush=True)

    fmt, ws = output_format(args), workspace_from(args)
    try:
        result = make_pack(ws, args.model, out_dir=args.output, name=args.name,
                           progress=progress, fmt=fmt, loudness_lufs_target=args.lufs,
                           instruments=args.instrument,
                           **sound_request(args, default_n=12, ws=ws))
    except BaseException:
        if line_open:  # the error gets a line of its own
            print(file=sys.stderr, flush=True)
        raise
    manifest = result.manifest
    limited = sum(1 for f in result.files if f["peak_limited"])
    print(f"{result.folder}  ({len(result.files)} sounds, {fmt.describe(manifest['model_sample_rate'])} "
          f"{'stereo' if manifest['channels'] == 2 else 'mono'}, {manifest['loudness_target_lufs']:g} LUFS, pack.json)")
    print(f"{result.zip_path}")
    print_instrument(manifest)
    if limited:
        print(f"{limited} sound(s) stayed under the loudness target: their true peaks would have passed -1 dBTP")
    return 0
