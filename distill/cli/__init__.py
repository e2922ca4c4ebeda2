"""`distill ...`: a thin shell over the engine. Each topic's commands live in their own module
(`distill/cli/<topic>.py`) with a `register(subparsers, common)` function."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback

from distill import DistillError, __version__, user_message
from distill.workspace import Workspace

# The command modules, in the order their commands appear in `distill --help`.
COMMAND_MODULES = ["dataset", "train", "models", "generate", "presets", "history", "transform", "vocoder", "live"]
# Set to see the Python traceback behind an unexpected error (for a bug report).
TRACEBACK_ENV = "DISTILL_TRACEBACK"


def workspace_from(args: argparse.Namespace) -> Workspace:
    return Workspace.open(getattr(args, "workspace", None))


def experiment_arg(ws: Workspace, reference: str) -> str:
    """The id of the experiment a command-line argument (id, name or id prefix) means; prints
    which one was picked when a name was taken several times."""
    from distill.experiments import resolve_experiment  # torch: loaded by the commands that need it

    match = resolve_experiment(ws, reference)
    if match.note:
        print(match.note, flush=True)
    return match.id


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not erase a --workspace given before it.
    common.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS,
                        help="workspace folder (default: $DISTILL_WORKSPACE, else ~/distill-workspace)")
    parser = argparse.ArgumentParser(prog="distill", parents=[common],
                                     description="Train generative audio models on your own sounds.")
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"distill.cli.{name}").register(subparsers, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # A shell starts background commands (`distill train ... &`) with SIGINT ignored, and
        # Python then raises no KeyboardInterrupt: `kill -INT` would not stop a training.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `distill ... | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback only on request
        print(f"error: {user_message(exc)}", file=sys.stderr)
        if os.environ.get(TRACEBACK_ENV) and not isinstance(exc, DistillError):
            traceback.print_exc()
        return 1


def format_options(cmd: argparse.ArgumentParser, default_bits: int) -> None:
    """--format, --bits, --rate: how the files are written (`distill.audio.OutputFormat`)."""
    cmd.add_argument("--format", choices=("wav", "flac"), default="wav", help="file format (default: wav)")
    cmd.add_argument("--bits", type=int, choices=(16, 24, 32), default=default_bits,
                     help=f"bit depth: 16, 24, or 32 (float, WAV only) (default: {default_bits})")
    cmd.add_argument("--rate", type=int, choices=(44100, 48000), default=None,
                     help="sample rate of the files, resampled if it is not the model's (default: the model's)")


def instrument_option(cmd: argparse.ArgumentParser) -> None:
    """--instrument sfz,dspreset: the pack as a playable instrument too (`distill.instrument`)."""
    cmd.add_argument("--instrument", default=None, metavar="FORMATS",
                     help="also write the sounds as a playable instrument: sfz, dspreset (DecentSampler) or "
                          "sfz,dspreset; pitched sounds map to their notes, others to a kit from C1 (MIDI 36)")


def print_instrument(manifest: dict) -> None:
    """One line on a pack's instrument files, when it has them."""
    if manifest.get("instrument"):
        from distill.instrument import summary

        print(summary(manifest["instrument"]))


def output_format(args: argparse.Namespace):
    from distill.audio import OutputFormat

    return OutputFormat(args.format, args.bits, args.rate)
