"""Pretraining the vocoder Distill ships, on the corpus `distill.vocoder.corpus` renders.

    python -m distill.vocoder.pretrain render CORPUS_DIR          # ~2 min, ~380 MB, 1.2 h of audio
    python -m distill.vocoder.pretrain train CORPUS_DIR STATE_DIR --steps 4000 [--device cuda]
    python -m distill.vocoder.pretrain export STATE_DIR           # → distill/vocoder/pretrained.pt + .json

Training steps are the per-model vocoder's (`train.train_step`: spectral, phase, mel and
MR-STFT losses, the critics joining after `gan_start_step`), on random segments of the corpus
(`data.sample_batch`, seeded by the step). The state folder holds one checkpoint (generator,
critics, optimisers, step), rewritten atomically every `--every` steps and on Ctrl-C, so a run
continues exactly where it stopped; `metrics.jsonl` has the held-out figures beside
Griffin-Lim's at each checkpoint. A run can also start from exported weights
(`--start-from`), which is how pretraining carries on across machines that share only the
repository: the optimisers then start afresh, and the recipe says so.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from distill import DistillError
from distill.audio import AudioSettings, griffin_lim, log_mel, read_audio, resolve_device
from distill.checkpoints import now_iso
from distill.vocoder import losses
from distill.vocoder.config import VocoderConfig, vocoder_preset
from distill.vocoder.data import ClipPair, sample_batch
from distill.vocoder.discriminators import Discriminators
from distill.vocoder.network import Vocoder, load_vocoder, vocoder_slot
from distill.vocoder.shipped import SHIPPED
from distill.vocoder.train import train_step
from distill.atomic import atomic_file, atomic_write_json

STATE_FILE = "state.pt"
METRICS_FILE = "metrics.jsonl"
HELD_OUT_EVERY = 25  # every 25th corpus file (sorted) is held out: 100 of 2,540
VAL_SECONDS = 4.0


def load_corpus(folder: str | Path, settings: AudioSettings) -> tuple[list[ClipPair], list[ClipPair]]:
    """(training, held-out) (log-mel, waveform) pairs of a rendered corpus."""
    manifest = Path(folder) / "corpus.json"
    if not manifest.is_file():
        raise DistillError(f"{folder} has no corpus.json: render the corpus first (`render`)")
    files = sorted(entry["file"] for entry in json.loads(manifest.read_text())["files"])
    train, held = [], []
    for index, name in enumerate(files):
        wave = read_audio(Path(folder) / name, settings.sample_rate).float()
        pair = ClipPair(name, wave, log_mel(wave, settings).float())
        (held if index % HELD_OUT_EVERY == 0 else train).append(pair)
    return train, held


def pretrain(corpus: str | Path, state_dir: str | Path, steps: int, config: VocoderConfig | None = None,
             every: int = 250, device: str = "auto", start_from: str | Path | None = None,
             log: Callable[[str], None] = print, lr_floor: float | None = None) -> dict[str, Any]:
    """Train until `steps` steps in all (a resumed run counts the steps already done). With
    `lr_floor`, the learning rate falls from the config's along a half cosine to that share of
    it at `steps` (a step's rate depends only on the step and `steps`: a run resumed with the
    same `steps` repeats it); without, it stays constant."""
    settings = AudioSettings()
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    state_path = state_dir / STATE_FILE
    state = torch.load(state_path, map_location="cpu", weights_only=True) if state_path.is_file() else None
    config = VocoderConfig.from_dict(state["config"]) if state else (config or vocoder_preset("scratch"))
    train, held = load_corpus(corpus, settings)
    torch.manual_seed(config.seed)
    generator = Vocoder(config, settings).to(torch_device)
    critics = Discriminators(config).to(torch_device)
    opt_g = torch.optim.AdamW(generator.parameters(), config.learning_rate, betas=config.adam_betas)
    opt_d = torch.optim.AdamW(critics.parameters(), config.learning_rate, betas=config.adam_betas)
    step, seconds = 0, 0.0
    if state:
        generator.load_state_dict(state["generator"])
        critics.load_state_dict(state["critics"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step, seconds = int(state["step"]), float(state["seconds"])
        log(f"resuming at step {step} ({seconds / 60:.1f} min trained)")
    elif start_from:
        slot = torch.load(start_from, map_location="cpu", weights_only=True)
        generator.load_state_dict(slot["state"])
        log(f"starting from the weights in {start_from} (optimisers afresh)")
    reference = losses.held_out_scores(held, settings, lambda mel: griffin_lim(mel, settings), VAL_SECONDS)
    log(f"{len(train)} training sounds, {len(held)} held out; Griffin-Lim there: MR-STFT {reference['mrstft']:.3f}, "
        f"LSD {reference['lsd']:.2f} dB")
    generator.train()
    critics.train()
    sums: dict[str, float] = {}
    try:
        while step < steps:
            started = time.perf_counter()
            rng = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            mels, waves = sample_batch(train, config, settings, rng)
            if lr_floor is not None:
                share = lr_floor + (1 - lr_floor) * 0.5 * (1 + math.cos(math.pi * step / steps))
                for group in opt_g.param_groups + opt_d.param_groups:
                    group["lr"] = config.learning_rate * share
            terms = train_step(config, generator, critics, opt_g, opt_d, mels.to(torch_device), waves.to(torch_device),
                               gan=step >= config.gan_start_step)
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value
            step += 1
            seconds += time.perf_counter() - started
            if step % every == 0 or step == steps:
                _checkpoint(state_dir, config, generator, critics, opt_g, opt_d, step, seconds)
                scores = _validate(generator, held, settings, torch_device)
                line = {"step": step, "minutes": round(seconds / 60, 2), "time": now_iso(),
                        **{k: round(v / every, 5) for k, v in sums.items()},
                        "val_mrstft": scores["mrstft"], "val_lsd": scores["lsd"],
                        "griffin_lim_mrstft": reference["mrstft"], "griffin_lim_lsd": reference["lsd"]}
                with open(state_dir / METRICS_FILE, "a", encoding="utf-8") as out:
                    out.write(json.dumps(line) + "\n")
                log(f"step {step}: recon {line.get('recon', float('nan')):.3f}, held-out MR-STFT {scores['mrstft']:.3f} "
                    f"({scores['mrstft'] / reference['mrstft'] - 1:+.0%} vs Griffin-Lim), LSD {scores['lsd']:.2f} dB, "
                    f"{seconds / 60:.1f} min")
                sums = {}
    except KeyboardInterrupt:
        _checkpoint(state_dir, config, generator, critics, opt_g, opt_d, step, seconds)
        log(f"stopped at step {step}; run again to continue")
        raise
    return {"step": step, "seconds": seconds, "griffin_lim": reference}


def _checkpoint(state_dir: Path, config: VocoderConfig, generator: Vocoder, critics: Discriminators, opt_g, opt_d,
                step: int, seconds: float) -> None:
    with atomic_file(state_dir / STATE_FILE) as handle:
        torch.save({"config": config.to_dict(), "generator": generator.state_dict(), "critics": critics.state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step, "seconds": seconds}, handle)


@torch.no_grad()
def _validate(generator: Vocoder, held: list[ClipPair], settings: AudioSettings, device: torch.device) -> dict[str, float]:
    generator.eval()
    try:
        return losses.held_out_scores(held, settings, lambda mel: generator.synthesize(mel.to(device)).cpu(),
                                      VAL_SECONDS)
    finally:
        generator.train()


def state_generator(state: dict[str, Any]) -> Vocoder:
    """The generator of a loaded pretraining state (`STATE_FILE`), on the CPU."""
    generator = Vocoder(VocoderConfig.from_dict(state["config"]), AudioSettings())
    generator.load_state_dict(state["generator"])
    return generator


def export(state_dir: str | Path, target: str | Path = SHIPPED) -> Path:
    """The generator of a pretraining state as a vocoder slot file (`torch.load(weights_only=
    True)`-readable), with the recipe and the last held-out figures in `<target>.json`."""
    state_dir = Path(state_dir)
    state = torch.load(state_dir / STATE_FILE, map_location="cpu", weights_only=True)
    generator = state_generator(state)
    config = generator.config
    metrics = [json.loads(line) for line in (state_dir / METRICS_FILE).read_text().splitlines() if line.strip()]
    last = metrics[-1] if metrics else {}
    training = {"steps": int(state["step"]), "training_seconds": round(float(state["seconds"]), 1),
                "trained_at": now_iso(), "corpus": "distill.vocoder.corpus (Fluid R3 GM, 96 programs, 7 kits; "
                                                    "synthesised noise, sweeps, chords)",
                "held_out_mrstft": last.get("val_mrstft"), "held_out_lsd": last.get("val_lsd"),
                "griffin_lim_mrstft": last.get("griffin_lim_mrstft"), "griffin_lim_lsd": last.get("griffin_lim_lsd"),
                "recipe": config.to_dict(), "kind": "pretrained"}
    slot = vocoder_slot(generator.eval(), training)
    target = Path(target)
    with atomic_file(target) as handle:
        torch.save(slot, handle)
    atomic_write_json(target.with_suffix(".json"), {**training, "metrics": metrics})
    load_vocoder(torch.load(target, map_location="cpu", weights_only=True))  # it must load as every slot does
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distill.vocoder.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render the corpus (needs fluidsynth and fluid-soundfont-gm)")
    render.add_argument("corpus")
    train = sub.add_parser("train", help="train (or continue) a pretraining run")
    train.add_argument("corpus")
    train.add_argument("state")
    train.add_argument("--steps", type=int, required=True, help="steps in all (a resumed run counts those done)")
    train.add_argument("--every", type=int, default=250, help="steps between checkpoints and held-out checks")
    train.add_argument("--lr-floor", type=float, default=None, metavar="SHARE",
                       help="anneal the learning rate along a half cosine to this share of it at --steps "
                            "(default: constant)")
    train.add_argument("--device", default="auto")
    train.add_argument("--start-from", default=None, help="exported weights to start from (optimisers afresh)")
    train.add_argument("--set", action="append", default=[], metavar="FIELD=JSON", help="a VocoderConfig field")
    out = sub.add_parser("export", help="write the run's generator as the shipped weights")
    out.add_argument("state")
    out.add_argument("--to", default=str(SHIPPED))
    args = parser.parse_args(argv)
    if args.command == "render":
        from distill.vocoder.corpus import write_corpus

        print(write_corpus(args.corpus, progress=lambda done, total: print(f"{done}/{total} programs", flush=True)))
    elif args.command == "train":
        config = vocoder_preset("scratch").replace(**{k: json.loads(v) for k, v in
                                                      (item.split("=", 1) for item in args.set)})
        pretrain(args.corpus, args.state, args.steps, config, args.every, args.device, args.start_from,
                 log=lambda text: print(text, flush=True), lr_floor=args.lr_floor)
    else:
        print(export(args.state, args.to))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DistillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
