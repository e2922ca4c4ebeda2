"""Shared fixtures: a fresh workspace per test, and real audio files made on the spot."""

from __future__ import annotations

from pathlib import Path

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
    """The bundled example corpus, synthesised once per test session."""
    from distill.example_corpus import write_example_corpus

    return write_example_corpus(tmp_path_factory.mktemp("example_corpus"))
