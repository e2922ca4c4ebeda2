"""The example scripts run as a newcomer would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_python_api_example_runs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "python_api.py"), "--workspace",
                             str(tmp_path / "ws"), "--epochs", "1"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout and "plucks-and-drums.distillgan" in result.stdout
    wavs = list((tmp_path / "ws" / "generated").rglob("*.wav"))
    assert len(wavs) == 3
    transformed = sorted((tmp_path / "ws" / "transformed" / "plucks-and-drums").glob("*.wav"))
    assert len(transformed) == 2 and all(p.name.endswith("-plucks-and-drums.wav") for p in transformed)


def test_make_example_corpus_script(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "make_example_corpus.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*.wav"))) >= 20
