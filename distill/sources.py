"""What the user handed over, file by file, before any file is opened: the files to check
(each with the name the user knows it by) and the ones skipped on their name alone, with why.

Every door goes through `gather`: the CLI's files and folders and the page's uploads. So the
same files get the same verdict whichever way they came in, and every file the user gave is
accounted for (nothing is dropped without a word). The rules, in order, on a file's own name
(the part after the last `/` or `\\`: a Windows path is a path, so `..\\evil.wav` is judged,
and kept, as `evil.wav`):

- `._name`: macOS metadata (an AppleDouble twin), skipped.
- any other name starting with a dot: a hidden file, skipped.
- no audio extension (see AUDIO_EXTENSIONS): not audio by its name, skipped; this holds for a
  file named explicitly too, so that a folder and the same files dropped one by one agree.

A folder is walked recursively in sorted order; a hidden subfolder is one skipped entry (its
files are not looked at), and so is the Distill workspace when a given folder holds it (its
previews and generated sounds are not training data). A path that does not exist is rejected.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from distill.clips import REJECTED, SKIPPED

# What libsndfile reads (by content; the extension only says it is worth trying).
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                              ".aifc", ".w64", ".rf64", ".caf", ".au", ".snd"})
_EXTENSIONS_SHOWN = ".wav, .flac, .ogg, .mp3, .aiff"


@dataclass(frozen=True)
class NamedFile:
    """A file whose name is not its path's: an upload, which Gradio keeps under a changed name
    (`..\\evil.wav` arrives as `..evil.wav`); `name` is the one the user's file had."""

    path: Path
    name: str


@dataclass(frozen=True)
class GivenFile:
    """One thing the user gave. `refusal` is (status, reason) when it is decided without opening
    the file (skipped by name, or missing); None means: open it and check it."""

    path: Path
    name: str  # what people read: the file's name, or its path inside a given folder
    refusal: tuple[str, str] | None = None

    @property
    def own_name(self) -> str:
        """The file's own name, without any folder part (`/` or `\\`)."""
        return leaf_name(self.name)


def leaf_name(name: str) -> str:
    """The last part of `name`, taking both `/` and `\\` as separators."""
    return re.split(r"[\\/]", str(name))[-1]


def skip_reason(name: str) -> str | None:
    """Why a file called `name` is not imported, judged by its name alone; None: check it."""
    leaf = leaf_name(name)
    if leaf.startswith("._"):
        return f"macOS metadata (the AppleDouble twin of {leaf[2:]}), not audio"
    if leaf.startswith("."):
        return "a hidden file (its name starts with a dot)"
    suffix = Path(leaf).suffix.lower()
    if not suffix:
        return f"no file extension: name it with its format's ({_EXTENSIONS_SHOWN}…) to import it"
    if suffix not in AUDIO_EXTENSIONS:
        return f"not an audio file by its name ({suffix})"
    return None


def _file(path: Path, name: str) -> GivenFile:
    reason = skip_reason(name)
    return GivenFile(path, name, (SKIPPED, reason) if reason else None)


def _walk(folder: Path, workspace: Path) -> Iterable[GivenFile]:
    """A folder's files, sorted, named by their path inside it."""
    # Never pull the workspace's own files (previews, generated audio, other datasets) in through
    # a folder that happens to contain it, unless that folder is inside it.
    skip_workspace = not folder.resolve().is_relative_to(workspace)
    for current, subfolders, names in os.walk(folder):
        here = Path(current)
        inside = here.relative_to(folder)
        kept = []
        for sub in sorted(subfolders):
            label = (inside / sub).as_posix() + "/"
            if sub.startswith("."):
                yield GivenFile(here / sub, label, (SKIPPED, "a hidden folder: its files were not looked at"))
            elif skip_workspace and (here / sub).resolve().is_relative_to(workspace):
                yield GivenFile(here / sub, label, (SKIPPED, "Distill's own workspace: its previews and "
                                                             "generated sounds are not training data"))
            else:
                kept.append(sub)
        subfolders[:] = kept
        for file_name in sorted(names):
            yield _file(here / file_name, (inside / file_name).as_posix())


def gather(given: Iterable[str | Path | NamedFile], workspace: Path) -> list[GivenFile]:
    """Every file in `given` (folders walked), each once, in order, with its verdict by name."""
    found: list[GivenFile] = []
    seen: set[Path] = set()
    workspace = workspace.resolve()
    for item in given:
        if isinstance(item, NamedFile):
            candidates = [_file(Path(item.path), item.name)]
        else:
            path = Path(item).expanduser()
            if path.is_dir():
                candidates = list(_walk(path, workspace))
            elif path.is_file():
                candidates = [_file(path, path.name)]
            else:
                candidates = [GivenFile(path, str(item), (REJECTED, "no such file or folder"))]
        for candidate in candidates:
            key = candidate.path.resolve()
            if candidate.refusal is None and key in seen:  # a file given twice (itself and its folder)
                continue
            seen.add(key)
            found.append(candidate)
    return found
