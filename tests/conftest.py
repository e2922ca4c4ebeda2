"""Shared fixtures: a fresh workspace per test, and real audio files made on the spot."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import soundfile as sf

from distill.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "workspace")


def write_tone(path: Path, seconds: float = 1.0, rate: int = 22050, freq: float = 220.0,
               channels: int = 1, subtype: str = "PCM_16", amplitude: float = 0.5) -> Path:
    """A decaying sine (a plucked-ish note): real audio for tests."""
    t = np.arange(int(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * freq * t) * np.exp(-3 * t)
    data = np.repeat(wave[:, None], channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, subtype=subtype)
    return path


@pytest.fixture(scope="session")
def example_corpus(tmp_path_factory) -> list[Path]:
    """The bundled example corpus's dry notes, in mono at 22,050 Hz, synthesised once per test
    session: the suite's shared model (`trained_example`) is a mono one, so the mono path keeps
    its coverage (test_stereo trains a stereo model on stereo clips of its own), and the
    suite's time stays what it was (the shipped 44.1 kHz stereo corpus is tested in test_data)."""
    from distill.example_corpus import write_example_corpus

    return write_example_corpus(tmp_path_factory.mktemp("example_corpus"), sample_rate=22050, channels=1)


@pytest.fixture(scope="session")
def trained_example(tmp_path_factory, example_corpus):
    """(workspace, experiment id, model file, training clip paths): the default preset trained
    on 12 example clips and exported, once per test session (transform and generation
    tests share it; none of them writes into its models). Not the tiny preset: at full band
    its 8-channel latent gives a low note back 4.7 dB quiet, the default's within 2.5 dB."""
    from distill.datasets import create_dataset
    from distill.export import export_model
    from distill.jobs import Finished
    from distill.modelfile import load_model_file
    from distill.train import start_training
    from distill.train_config import TrainConfig

    ws = Workspace.open(tmp_path_factory.mktemp("trained") / "ws")
    clips = example_corpus[:12]
    create_dataset(ws, "example", clips)
    job = start_training(ws, TrainConfig(dataset="example", epochs=10, preview_every=5, preview_samples=1,
                                         device="cpu"))
    job.join(300)
    assert isinstance(job.outcome, Finished), job.outcome
    model_file = load_model_file(export_model(ws, job.experiment_id, name="example", device="cpu"))
    return ws, job.experiment_id, model_file, clips


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(ws: Workspace) -> Iterator[str]:
    """The web app on a free local port for `ws`; yields its URL. On the way out a training
    still running is stopped and the server closed."""
    from distill.train import current_job
    from ui.app import launch

    blocks, url = launch(ws, port=free_port(), block=False)
    try:
        yield url
    finally:
        job = current_job(ws)
        if job is not None and not job.done:
            job.cancel()
            job.join(60)
        blocks.close()


def wait_until(condition: Callable[[], Any], timeout: float = 90.0, every: float = 0.25) -> Any:
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")
