"""Benchmark: listing the catalog from its index vs loading every model file, and the speed
of generation and of transforming a clip (seconds of audio per second of compute) with
Griffin-Lim on this machine's CPU.

    .venv/bin/python benchmarks/bench_catalog_generate.py [--models 1000] [--repeats 5]

Prints figures; asserts nothing. Models are untrained (speed does not depend on training):
the time-structured ConvVAE of model format 2, whose latent analysis describes latent frames.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill import catalog, generate, transform  # noqa: E402
from distill.audio import AudioSettings  # noqa: E402
from distill.model import PRESETS, ConvVAE  # noqa: E402
from distill.modelfile import ModelFile, analyse_latents, load_model_file, new_metadata, save_model_file  # noqa: E402
from distill.trajectories import build_bank  # noqa: E402
from distill.workspace import Workspace  # noqa: E402


def model_file(path: Path, preset: str, seed: int = 0) -> ModelFile:
    config = PRESETS[preset]
    torch.manual_seed(seed)
    model = ConvVAE(config).eval()
    segments = torch.randn(64, config.n_mels, config.segment_frames) * 2 - 6
    analysis = analyse_latents(model, segments)
    # Clip trajectories as an export stores them: 20 one-shots of 1-3 s (mel frames at 22.05 kHz / 256).
    clips = [(f"clip{i}.wav", torch.randn(config.n_mels, 86 + 9 * i) - 6 - torch.linspace(0, 6, 86 + 9 * i))
             for i in range(20)]
    analysis["trajectories"] = build_bank(model, clips, AudioSettings(), -20.0).to_plain()
    return ModelFile(path=path, model_config=config, audio_settings=AudioSettings(), state=model.state_dict(),
                     analysis=analysis,
                     metadata=new_metadata(path.stem, dataset={"name": f"set {seed % 17}", "clips": 10,
                                                              "total_seconds": 30.0}, epochs_trained=10,
                                           train_loss=0.5, val_loss=0.6),
                     vocoder=None)


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def bench_catalog(root: Path, count: int, repeats: int) -> None:
    ws = Workspace.open(root / "catalog-ws")
    template = model_file(ws.models_dir / "template.distillgan", "tiny")
    start = time.perf_counter()
    for i in range(count):
        template.path = ws.models_dir / f"model-{i:04d}.distillgan"
        template.metadata = {**template.metadata, "name": template.path.stem, "id": f"{i:032x}",
                             "dataset": {"name": f"set {i % 17}", "clips": 10, "total_seconds": 30.0}}
        save_model_file(template.path, template)
    write_s = time.perf_counter() - start
    size_mb = sum(p.stat().st_size for p in ws.models_dir.glob("*.distillgan")) / 1e6

    start = time.perf_counter()
    assert len(catalog.list_models(ws)) == count
    build_s = time.perf_counter() - start
    index_s, _ = timed(lambda: catalog.list_models(ws), repeats)
    table_s, _ = timed(lambda: catalog.models_table(ws, search="set 3"), repeats)
    full_s, _ = timed(lambda: [load_model_file(p) for p in sorted(ws.models_dir.glob("*.distillgan"))],
                      max(1, repeats // 2))
    print(f"catalog: {count} tiny models ({size_mb:.0f} MB on disk; written in {write_s:.1f} s)")
    print(f"  first listing, index built (reads metadata of every file, mmap): {build_s:8.3f} s")
    print(f"  listing from the index (stat every file, nothing re-read):        {index_s:8.4f} s")
    print(f"  models_table with a search, from the index:                       {table_s:8.4f} s")
    print(f"  full scan that loads every file (CRC-checked, weights read):      {full_s:8.3f} s")
    print(f"  index / full scan = {index_s / full_s:.4f}   (target <= 0.02)")


def bench_generation(root: Path, repeats: int) -> None:
    ws = Workspace.open(root / "generate-ws")
    print(f"generation with Griffin-Lim (32 iterations) on CPU, torch threads = {torch.get_num_threads()}, "
          f"cpus = {os.cpu_count()}:")
    for preset in ("tiny", "default"):
        mf = model_file(ws.models_dir / f"{preset}.distillgan", preset)
        save_model_file(mf.path, mf)
        segment = mf.audio_settings.frames_to_seconds(mf.model_config.segment_frames)
        for duration in (None, 10.0, 60.0):
            seconds = segment if duration is None else duration
            generate.generate(ws, preset, n=1, seed=0, duration=duration, device="cpu")  # warm the caches
            wall, _ = timed(lambda: generate.generate(ws, preset, n=1, seed=0, duration=duration, device="cpu",
                                                      out_dir=root / "out"), repeats)
            label = f"one segment ({seconds:.2f} s)" if duration is None else f"{seconds:.0f} s"
            print(f"  {preset:<7} {label:<22} {wall:7.3f} s  ->  {seconds / wall:6.1f} s of audio per s")


def bench_transform(root: Path, repeats: int) -> None:
    ws = Workspace.open(root / "transform-ws")
    print("transform with Griffin-Lim (32 iterations) on CPU:")
    for seconds in (10.0, 60.0):
        t = np.arange(int(seconds * 22050)) / 22050
        clip = root / f"clip-{seconds:g}s.wav"
        sf.write(str(clip), (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-(t % 2.0))).astype(np.float32), 22050)
        for preset in ("tiny", "default"):
            path = ws.models_dir / f"{preset}.distillgan"
            if not path.exists():
                save_model_file(path, model_file(path, preset))
            transform.transform_files(ws, preset, [clip], out_dir=root / "warm", device="cpu")
            wall, _ = timed(lambda: transform.transform_files(ws, preset, [clip], out_dir=root / "out",
                                                              device="cpu"), repeats)
            print(f"  {preset:<7} {seconds:4.0f} s clip          {wall:7.3f} s  ->  {seconds / wall:6.1f} s of audio per s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-catalog", action="store_true")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for the generation figures (default: torch's choice); on a shared, "
                             "busy machine 1 is often faster")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="distill-bench-") as tmp:
        if not args.skip_catalog:
            bench_catalog(Path(tmp), args.models, args.repeats)
        if not args.skip_generation:
            bench_generation(Path(tmp), max(1, args.repeats // 2))
            bench_transform(Path(tmp), max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
