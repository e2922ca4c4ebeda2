"""The live model (nn~ / NN.ar TorchScript, `distill.live`): real-time factor per buffer size
for each method on this CPU, its latency, and the seams between buffers.

    .venv/bin/python benchmarks/bench_live.py [MODEL.distillgan | MODEL.ts] [--threads N]

Without a model it builds one from the default preset, untrained (its linear path fitted to
random features, every weight nudged so that the deep path reaches as far as a trained one's):
the speed and the latency depend on the architecture, not on the weights.
A host plays one model per instance on one audio thread, so the default is one thread.
The real-time factor is the time a call takes over the audio it covers (below 1: faster than
real time); the time is the median of `--repeats` calls after a warm-up.

Measured 2026-12-07 on the trained example model (default preset, mono; load ~1.1, one thread):
latency 44,544 samples = 1010 ms; real-time factor of forward 0.296 / 0.154 / 0.082 / 0.061 at
2048 / 4096 / 8192 / 16384 samples (target: under 1 at 4096, met); seams -89 to -101 dB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill.live import export_live, seam_db  # noqa: E402

BUFFERS = (2048, 4096, 8192, 16384)


def default_model_file(channels: int, folder: Path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_live import synthetic_model_file  # the same stand-in the tests use, at the default preset

    from dataclasses import replace

    from distill.model import ConvVAE, preset

    small = synthetic_model_file(channels, folder)
    model = ConvVAE(replace(preset("default"), n_mels=small.model_config.n_mels))
    model.fit_linear_path(torch.randn(16, small.model_config.n_mels, 64) * 2 - 5)
    with torch.no_grad():  # the deep path's last layers start at zero: give it a reach, as training does
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    bank = small.analysis["trajectories"]
    bank = {**bank, "latents": torch.randn(int(bank["lengths"].sum()), model.config.latent_dim).half(),
            "silence": torch.zeros(model.config.latent_dim)}
    return replace(small, model_config=model.config, state=model.state_dict(), analysis={"trajectories": bank})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help=".distillgan or .ts (default: the default preset, untrained)")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 2), help="for the default model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open("/proc/loadavg") as f:
        print(f"load before: {f.read().strip()}   torch {torch.__version__}, {args.threads} thread(s)")
    folder = Path(tempfile.mkdtemp(prefix="bench_live_"))
    if args.model and args.model.endswith(".ts"):
        path = Path(args.model)
    else:
        from distill.modelfile import load_model_file

        model_file = load_model_file(args.model) if args.model else default_model_file(args.channels, folder)
        started = time.perf_counter()
        path = Path(export_live(model_file, folder / "model.ts")["path"])
        print(f"export: {time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.1f} MB")
    model = torch.jit.load(str(path))
    rate, channels, latency = int(model.sampling_rate), int(model.channels), int(model.latency)
    print(f"{rate} Hz, {channels} channel(s), latent {int(model.full_latent_size)} every {int(model.ratio)} samples")
    print(f"latency: {latency} samples = {1000 * latency / rate:.1f} ms "
          f"(encode {int(model.encode_latency)}, decode {int(model.decode_latency)})")
    print(f"\n{'buffer':>7} {'ms':>6} " + " ".join(f"{m:>9}" for m in model.get_methods()) + "   (real-time factor)")
    for buffer in BUFFERS:
        row = []
        for method in model.get_methods():
            cin, rin, _, _ = [int(v) for v in getattr(model, f"{method}_params")]
            x = 0.1 * torch.randn(1, cin, buffer // rin)
            fn = getattr(model, method)
            times = []
            with torch.no_grad():
                for i in range(args.repeats + 3):
                    started = time.perf_counter()
                    fn(x)
                    if i >= 3:
                        times.append(time.perf_counter() - started)
            row.append(statistics.median(times) / (buffer / rate))
        print(f"{buffer:7d} {1000 * buffer / rate:6.1f} " + " ".join(f"{r:9.3f}" for r in row))
    x = 0.1 * torch.randn(1, channels, 16 * 16384)
    with torch.no_grad():
        model.reset()
        whole = model(x)
        print("\nseams, forward buffer by buffer against one whole call (dB):")
        for buffer in BUFFERS:
            model.reset()
            pieces = torch.cat([model(x[..., i:i + buffer]) for i in range(0, x.shape[-1], buffer)], -1)
            print(f"  {buffer:6d}: {seam_db(whole, pieces, latency):.1f}")
    with open("/proc/loadavg") as f:
        print(f"load after: {f.read().strip()}")


if __name__ == "__main__":
    main()
