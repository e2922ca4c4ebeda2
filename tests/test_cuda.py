"""The CUDA path end to end: train, stop, resume, export, generate, transform and the vocoder
on a GPU, and what a GPU wrote used on a CPU. Skipped where there is no CUDA device (CI has none; the
project's GPU checks run these on a lent machine)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from distill.checkpoints import list_checkpoints, read_metrics
from distill.datasets import create_dataset
from distill.export import export_model
from distill.generate import generate
from distill.jobs import Cancelled, EpochFinished, Finished
from distill.modelfile import load_model_file
from distill.train import resume_training, start_training
from distill.train_config import TrainConfig
from distill.transform import transform_files
from distill.vocoder import load_vocoder, start_vocoder_training, vocoder_preset
from distill.workspace import Workspace
from conftest import write_tone
from test_modelfile import make_model_file

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def _finish(job) -> list:
    events = list(job.events(timeout=300))
    job.join(30)
    return events


@pytest.fixture
def gpu_ws(ws: Workspace, example_corpus: list[Path]) -> Workspace:
    create_dataset(ws, "small", example_corpus[::4][:6])
    return ws


def test_train_stop_resume_export_generate_on_cuda(gpu_ws: Workspace, tmp_path: Path) -> None:
    config = TrainConfig(dataset="small", preset="tiny", epochs=4, batch_size=8, preview_every=2, seed=3, device="cuda")
    job = start_training(gpu_ws, config)
    for event in job.events(timeout=300):
        if isinstance(event, EpochFinished) and event.epoch == 2:
            job.cancel()
    job.join(30)
    assert isinstance(job.outcome, Cancelled)
    resumed = resume_training(gpu_ws, job.experiment_id)
    events = _finish(resumed)
    assert isinstance(events[-1], Finished), events[-1]
    rows = read_metrics(gpu_ws.experiment_dir(job.experiment_id))
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(row["val_loss"]) for row in rows)
    assert list_checkpoints(gpu_ws.experiment_dir(job.experiment_id) / "checkpoints")

    model = export_model(gpu_ws, job.experiment_id, name="gpu-model", device="cuda")
    # Written on the GPU, loaded and played on either device.
    for device in ("cuda", "cpu"):
        path, = generate(gpu_ws, model, n=1, seed=4, duration=1.0, out_dir=tmp_path / device, device=device)
        audio, rate = sf.read(str(path))
        assert rate == 22050 and np.isfinite(audio).all() and np.abs(audio).max() > 1e-3
        result, = transform_files(gpu_ws, model, [example_corpus_clip(gpu_ws)], out_dir=tmp_path / device,
                                  device=device)
        assert result.ok and np.isfinite(sf.read(str(result.path))[0]).all()


def example_corpus_clip(ws: Workspace) -> Path:
    from distill.datasets import clip_path, load_dataset

    return clip_path(ws, "small", load_dataset(ws, "small").usable_clips[0].name)


def test_generate_and_transform_on_cuda_sound_as_on_cpu(ws: Workspace, tmp_path: Path) -> None:
    """No training needed: the long decode (`decode_long`), `reconstruct` and Griffin-Lim on
    the GPU give what the CPU gives."""
    make_model_file(ws.models_dir / "m.distillgan")
    clip = write_tone(tmp_path / "note.wav", seconds=2.0)
    waves = {}
    for device in ("cuda", "cpu"):
        path, = generate(ws, "m", n=1, seed=3, duration=5.0, out_dir=tmp_path / device, device=device)
        result, = transform_files(ws, "m", [clip], out_dir=tmp_path / device, device=device)
        assert result.ok
        waves[device] = (sf.read(str(path))[0], sf.read(str(result.path))[0])
    for on_gpu, on_cpu in zip(waves["cuda"], waves["cpu"]):
        assert on_gpu.shape == on_cpu.shape
        assert np.corrcoef(on_gpu, on_cpu)[0, 1] > 0.99


def test_vocoder_trains_on_cuda_and_decodes_on_cpu(gpu_ws: Workspace, tmp_path: Path) -> None:
    job = start_training(gpu_ws, TrainConfig(dataset="small", preset="tiny", epochs=1, preview_every=0, device="cuda"))
    _finish(job)
    model = export_model(gpu_ws, job.experiment_id, name="gpu-voc", device="cuda")
    config = replace(vocoder_preset("tiny"), steps_per_epoch=3)
    events = _finish(start_vocoder_training(gpu_ws, model, config, epochs=2, device="cuda"))
    assert isinstance(events[-1], Finished), events[-1]
    model_file = load_model_file(model)
    vocoder = load_vocoder(model_file.vocoder, "cpu", settings=model_file.audio_settings)
    wave = vocoder.synthesize(torch.full((model_file.audio_settings.n_mels, 40), -4.0))
    assert wave.device.type == "cpu" and torch.isfinite(wave).all()
    path, = generate(gpu_ws, model, n=1, seed=1, duration=1.0, out_dir=tmp_path, device="cuda")
    assert np.isfinite(sf.read(str(path))[0]).all()
