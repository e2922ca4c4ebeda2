"""Reconstruction quality of a trained experiment, by numbers (prints; asserts nothing).

For each held-out (validation) clip: encode its log-mel in segments, decode, invert with
Griffin-Lim, and compare with the original audio:
- log-mel L1 on held-out segments (nats of log magnitude; the validation recon term),
- spectral convergence ||S - Ŝ||_F / ||S||_F on linear STFT magnitudes, for the model's
  reconstruction and, beside it, for Griffin-Lim of the *original* mel (the floor that the
  mel + Griffin-Lim path alone allows),
- levels (peak / RMS dBFS) of the original and the reconstruction: not silent, not blown up.

    .venv/bin/python benchmarks/bench_quality.py --workspace DIR EXPERIMENT_ID [--checkpoint best]
"""

from __future__ import annotations

import argparse

import torch

from distill.audio import AudioSettings, griffin_lim, read_audio
from distill.checkpoints import load_checkpoint, resolve_checkpoint
from distill.data import clip_path, prepare_training_data, segment_log_mel
from distill.model import ConvVAE, ModelConfig
from distill.train import TrainConfig, get_experiment
from distill.workspace import Workspace


def spectral_convergence(reference: torch.Tensor, estimate: torch.Tensor, settings: AudioSettings) -> float:
    n = min(reference.shape[-1], estimate.shape[-1])
    window = torch.hann_window(settings.n_fft)
    spec = lambda x: torch.stft(x[:n], settings.n_fft, settings.hop_length, window=window,  # noqa: E731
                                return_complex=True).abs()
    s, s_hat = spec(reference), spec(estimate)
    return float(torch.linalg.norm(s - s_hat) / torch.linalg.norm(s))


def dbfs(x: torch.Tensor) -> tuple[float, float]:
    peak = float(x.abs().max().clamp(min=1e-9).log10() * 20)
    rms = float(x.pow(2).mean().sqrt().clamp(min=1e-9).log10() * 20)
    return peak, rms


@torch.no_grad()
def reconstruct(model: ConvVAE, mel: torch.Tensor) -> torch.Tensor:
    frames = model.config.segment_frames
    windows = segment_log_mel(mel, frames, frames, drop_silent=False)
    mu, _ = model.encode(windows)
    decoded = model.decode(mu, clamp=True)
    return torch.cat(list(decoded), dim=1)[:, : mel.shape[1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--checkpoint", default="best")
    args = parser.parse_args()
    ws = Workspace.open(args.workspace)
    record = get_experiment(ws, args.experiment)
    state = load_checkpoint(resolve_checkpoint(ws.experiment_dir(args.experiment), args.checkpoint))
    settings = AudioSettings.from_dict(state["audio_settings"])
    model = ConvVAE(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model_state"])
    model.eval()
    config = TrainConfig.from_dict(record["config"])
    data = prepare_training_data(ws, config.dataset, settings, model.config.segment_frames, config.val_fraction,
                                 config.seed)
    with torch.no_grad():
        mu, _ = model.encode(data.val)
        l1 = float((model.decode(mu) - data.val).abs().mean())
    print(f"experiment {args.experiment}, checkpoint {args.checkpoint} (epoch {state['epoch']}): "
          f"held-out log-mel L1 {l1:.3f} over {data.val.shape[0]} segments of {len(data.val_clips)} clips")
    for title, clips in (("held-out clips", data.val_clips), ("training clips (first 4)", data.train_clips[:4])):
        report(title, clips, ws, config.dataset, model, data, settings)


def report(title: str, clips: list[str], ws: Workspace, dataset: str, model: ConvVAE, data, settings) -> None:
    print(f"\n{title}\n{'clip':28} {'SC model':>9} {'SC GL-only':>10} {'orig pk/rms dBFS':>17} {'recon pk/rms dBFS':>18}")
    scores = []
    for clip in clips:
        audio = read_audio(clip_path(ws, dataset, clip), settings.sample_rate)
        mel = data.clip_features[clip]
        recon = griffin_lim(reconstruct(model, mel), settings)
        floor = griffin_lim(mel, settings)
        sc, sc_floor = spectral_convergence(audio, recon, settings), spectral_convergence(audio, floor, settings)
        scores.append((sc, sc_floor))
        (op, orms), (rp, rrms) = dbfs(audio), dbfs(recon)
        print(f"{clip:28} {sc:9.3f} {sc_floor:10.3f} {op:8.1f}/{orms:6.1f}  {rp:9.1f}/{rrms:6.1f}")
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    print(f"mean spectral convergence: model {mean([s for s, _ in scores]):.3f}, "
          f"Griffin-Lim of the original mel {mean([f for _, f in scores]):.3f}")

if __name__ == "__main__":
    main()
