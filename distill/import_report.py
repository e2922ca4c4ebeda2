"""What an import did, file by file: the verdicts every door (CLI line, JSON, the page's upload
table) shows, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill import DistillError
from distill.clips import DUPLICATE, REJECTED, SKIPPED, WARNING, Clip

@dataclass(frozen=True, order=True)  # ordered by file name first, so two doors' lists compare sorted
class Verdict:
    """What happened to one file, in the three parts every door shows: the CLI's line, its
    JSON and the page's upload table are all made of these, so they cannot disagree."""

    file: str  # the name the user knows it by
    result: str  # "kept" | "kept (with a warning)" | "rejected" | "skipped"
    details: str  # for a kept file its length, rate and channels (and new name); else why not


@dataclass
class ImportEntry:
    """What happened to one file the user gave."""

    source: str  # the path as given (or as found inside a given folder; an upload's copy)
    status: str  # "ok" | "warning" | "rejected" | "duplicate" | "skipped"
    reason: str = ""
    kept_as: str | None = None  # the clip name in the dataset
    clip: Clip | None = None
    file: str = ""  # the name the user knows it by (default: the source's own name)

    def __post_init__(self) -> None:
        self.file = self.file or Path(self.source).name

    def verdict(self) -> Verdict:
        if self.kept_as is not None and self.clip is not None:
            c = self.clip
            details = f"{c.duration:.2f} s, {c.sample_rate} Hz, {c.channels} ch"
            if self.kept_as != self.file.rsplit("/", 1)[-1]:  # (a "/" in `file` is a folder given)
                details += f", saved as {self.kept_as}"
            if self.status == WARNING:
                return Verdict(self.file, "kept (with a warning)", f"{details}; {self.reason}")
            return Verdict(self.file, "kept", details)
        return Verdict(self.file, "rejected" if self.status == REJECTED else "skipped", self.reason)

    def to_dict(self) -> dict[str, Any]:
        clip, verdict = self.clip, self.verdict()
        return {"file": verdict.file, "result": verdict.result, "details": verdict.details,
                "source": self.source, "kept_as": self.kept_as, "status": self.status, "reason": self.reason,
                "duration": clip.duration if clip else None, "sample_rate": clip.sample_rate if clip else None,
                "channels": clip.channels if clip else None}

    def describe(self) -> str:
        """One line for people: `kick.wav: kept (1.20 s, 44100 Hz, 2 ch)`, `notes.txt: skipped: …`."""
        v = self.verdict()
        return f"{v.file}: {v.result} ({v.details})" if self.kept_as is not None else f"{v.file}: {v.result}: {v.details}"


@dataclass
class ImportReport:
    """One entry per file the user gave, in the order given (folders walked in sorted order)."""

    dataset_name: str
    entries: list[ImportEntry] = field(default_factory=list)
    created: bool = False
    # clips found in the dataset's folder when a create finished one an earlier run left
    # without its manifest (killed, or the disk filled up)
    finished_clips: int = 0
    # the distill.datasets.Dataset after the import (None when a create kept nothing); not typed
    # by name here: datasets imports this module, and this one must not import it back
    dataset: Any = None

    @property
    def kept(self) -> list[ImportEntry]:
        return [e for e in self.entries if e.kept_as is not None]

    @property
    def rejected(self) -> list[ImportEntry]:
        return [e for e in self.entries if e.status == REJECTED]

    @property
    def duplicates(self) -> list[ImportEntry]:
        return [e for e in self.entries if e.status == DUPLICATE]

    @property
    def skipped(self) -> list[ImportEntry]:
        """Not looked at for their name, and duplicates of clips already in."""
        return [e for e in self.entries if e.status in (SKIPPED, DUPLICATE)]

    def verdicts(self) -> list[Verdict]:
        return [e.verdict() for e in self.entries]

    def counts(self) -> str:
        """`6 kept, 1 rejected, 3 skipped`: the sum is the number of files given."""
        return f"{len(self.kept)} kept, {len(self.rejected)} rejected, {len(self.skipped)} skipped"

    def lines(self) -> list[str]:
        finished = ([f"finished the incomplete dataset {self.dataset_name!r}: its {self.finished_clips} clips from an "
                     "earlier import are kept"] if self.finished_clips else [])
        return finished + [e.describe() for e in self.entries] + [self.counts()]

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset_name, "created": self.created, "finished_clips": self.finished_clips,
                "files": [e.to_dict() for e in self.entries], "kept": len(self.kept),
                "rejected": len(self.rejected), "skipped": len(self.skipped), "duplicates": len(self.duplicates)}


class ImportFailed(DistillError):
    """Nothing could be imported; `report` says why, file by file."""

    def __init__(self, message: str, report: ImportReport):
        super().__init__(message)
        self.report = report
