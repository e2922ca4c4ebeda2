"""Listening to a vocoder: its training previews.

    vocoder_runs/<model>/previews/epoch-0005/clip-01-original.wav      a held-out clip
                                             clip-01-griffin-lim.wav   its log-mel, Griffin-Lim
                                             clip-01-vocoder.wav       its log-mel, the vocoder

The A/B pair of one generated sound (generated/<model>/ab/seed-7-griffin-lim.wav and
seed-7-vocoder.wav) is `distill.generate.ab_pair`: it needs generation, which sits above
this package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from distill.vocoder.train import PREVIEWS_DIR, vocoder_run_dir
from distill.workspace import Workspace

_EPOCH_DIR = re.compile(r"^epoch-(\d+)$")
_CLIP = re.compile(r"^clip-(\d+)-(original|griffin-lim|vocoder)\.wav$")
PREVIEW_KINDS = ("original", "griffin-lim", "vocoder")


@dataclass(frozen=True)
class VocoderPreview:
    epoch: int
    item: int  # 1-based: the same held-out clip at every epoch
    paths: dict[str, Path] = field(default_factory=dict)  # "original", "griffin-lim", "vocoder"


def list_vocoder_previews(ws: Workspace, model_name: str) -> list[VocoderPreview]:
    """Every preview of a model's vocoder training, by epoch, then clip."""
    root = vocoder_run_dir(ws, model_name) / PREVIEWS_DIR
    found: dict[tuple[int, int], dict[str, Path]] = {}
    if root.is_dir():
        for folder in root.iterdir():
            match = _EPOCH_DIR.match(folder.name)
            if not match or not folder.is_dir():
                continue
            for path in folder.iterdir():
                if clip := _CLIP.match(path.name):
                    found.setdefault((int(match.group(1)), int(clip.group(1))), {})[clip.group(2)] = path
    return [VocoderPreview(epoch, item, paths) for (epoch, item), paths in sorted(found.items())]
