"""The pretrained vocoder Distill ships: `pretrained.pt` beside this file, made by
`distill.vocoder.pretrain` (its recipe and figures in `pretrained.json`).

Every model whose file has no vocoder of its own decodes with it (`distill.synthesis`), as
long as the model uses the mel settings it was trained for. When the file is missing or
damaged, decoding falls back to Griffin-Lim and says so once per process with a
`RuntimeWarning`: a broken install must sound worse, never fail or go silent.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from distill.audio import AudioSettings
from distill.vocoder.network import load_vocoder

SHIPPED = Path(__file__).resolve().parent / "pretrained.pt"

# path → its slot, or the reason it cannot be used (read once per process)
_loaded: dict[Path, dict[str, Any] | str] = {}


def _read(path: Path) -> dict[str, Any] | str:
    if path not in _loaded:
        try:
            slot = torch.load(path, map_location="cpu", weights_only=True)
            load_vocoder(slot)  # it must build, or it is damaged
            _loaded[path] = slot
        except FileNotFoundError:
            _loaded[path] = f"the pretrained vocoder weights are missing ({path})"
        except Exception as exc:  # noqa: BLE001 - a damaged file can fail in any of pickle's or torch's ways
            _loaded[path] = f"the pretrained vocoder weights in {path} are damaged ({str(exc).splitlines()[0][:120]})"
        if isinstance(_loaded[path], str):
            warnings.warn(f"{_loaded[path]}: decoding with Griffin-Lim instead. Reinstall Distill to get them back.",
                          RuntimeWarning, stacklevel=3)
    return _loaded[path]


def shipped_slot(path: Path | None = None) -> dict[str, Any] | None:
    """The shipped vocoder as a model-file slot, or None (warned once) when it is missing or
    damaged."""
    slot = _read(path or SHIPPED)
    return None if isinstance(slot, str) else slot


def why_not_pretrained(settings: AudioSettings, path: Path | None = None) -> str | None:
    """None when a model of `settings` decodes with the shipped vocoder; else why not, in words."""
    slot = _read(path or SHIPPED)
    if isinstance(slot, str):
        return slot
    own = AudioSettings.from_dict(slot["config"]["audio_settings"])
    if own != settings:
        changed = ", ".join(f"{k} {v}" for k, v in settings.to_dict().items() if own.to_dict().get(k) != v)
        return f"the pretrained vocoder is for the default mel settings; this model uses {changed}"
    return None


def forget() -> None:
    """Read the weights again on next use (tests swap the file)."""
    _loaded.clear()
