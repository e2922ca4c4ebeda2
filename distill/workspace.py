"""Where things live on disk (how a file is written: `distill.atomic`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection

from distill import DistillError

DEFAULT_WORKSPACE = Path.home() / "distill-workspace"
WORKSPACE_ENV = "DISTILL_WORKSPACE"


def default_workspace_root() -> Path:
    """`$DISTILL_WORKSPACE` when set, else `~/distill-workspace`."""
    env = os.environ.get(WORKSPACE_ENV)
    return Path(env).expanduser() if env else DEFAULT_WORKSPACE


@dataclass(frozen=True)
class Workspace:
    """The folder tree of one user's datasets, experiments and models."""

    root: Path

    @classmethod
    def open(cls, root: str | Path | None = None) -> "Workspace":
        ws = cls(Path(root).expanduser().resolve() if root else default_workspace_root().resolve())
        for folder in (ws.datasets_dir, ws.experiments_dir, ws.models_dir, ws.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return ws

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def experiments_dir(self) -> Path:
        return self.root / "experiments"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def generated_dir(self) -> Path:
        """Where generated sounds go: outside every dataset folder, so they are never
        imported as training data by accident."""
        return self.root / "generated"

    @property
    def transformed_dir(self) -> Path:
        """Where clips transformed through a model go: outside every dataset folder, like
        generated sounds."""
        return self.root / "transformed"

    def output_dir(self, folder: str | Path) -> Path:
        """`folder` resolved, as a place to write sounds: refused inside the datasets folder,
        where they would be taken for training data (generate and transform both ask here)."""
        folder = Path(folder).expanduser().resolve()
        if folder.is_relative_to(self.datasets_dir.resolve()):
            raise DistillError(f"{folder} is inside the datasets folder: sounds written there would be taken "
                               "for training data. Choose another folder.")
        return folder

    @property
    def lock_path(self) -> Path:
        return self.root / "training.lock"

    def dataset_dir(self, name: str) -> Path:
        return self.datasets_dir / name

    def experiment_dir(self, experiment_id: str) -> Path:
        return self.experiments_dir / experiment_id


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def sanitize_filename(name: str, fallback: str = "file") -> str:
    """A name safe to create in one folder: no path parts, no `..`, no control characters.
    Non-ASCII letters are kept (normalised to NFC)."""
    name = unicodedata.normalize("NFC", str(name))
    name = name.replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".")
    name = re.sub(r"\s+", " ", name)
    if not name or set(name) <= {"_", " "}:
        name = fallback
    return name[:200]


def wav_name(*parts: str) -> str:
    """`parts` joined with '-' into a WAV file name for sounds Distill writes: letters, digits,
    '.', '+' and '-' stay, anything else (spaces, slashes) becomes '_'."""
    return re.sub(r"[^\w.+-]", "_", "-".join(parts)) + ".wav"


def unique_path(folder: Path, name: str, taken: Collection[str] = ()) -> Path:
    """`folder/name`, or `folder/stem-2.ext`, `-3`… if that name is taken (on disk, or in
    `taken`: names a batch being written has claimed): never an overwrite."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    counter = 2
    while candidate.exists() or candidate.name in taken:
        candidate = folder / f"{stem}-{counter}{suffix}"
        counter += 1
    return candidate


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
