"""Datasets: a user's clips in a folder with a manifest, checked file by file on the way in.
Their features are `distill.features`; the windows the trainer takes, `distill.segments`.

On disk::

    datasets/<name>/clips/<clip>          byte-for-byte copies of the imported files
    datasets/<name>/dataset.json          the manifest (written atomically)

What the manifest keeps. `clips` lists only the clips that are in the dataset (status "ok"
or "warning", each with its sha256, duration, rate, channels, peak, clipping and silence).
Files refused at import are never copied; the latest import's refusals are kept under
`last_import.rejected` so `Dataset.to_dict()` (and `distill dataset show --json`) can list them
after the kept clips, with status "rejected" and `"in_dataset": false`. The next import
replaces that list. A clip whose file has gone missing stays in the manifest but is shown as
"rejected" (reason: missing) and is not used for training.

What is imported: `distill.sources.gather` lists every file given (folders walked) and skips
some on their name alone (hidden files, macOS metadata, names without an audio extension), the
same for every door; each other file is checked by `distill.clips.check_clip` (streamed, never
loaded whole); a file byte-identical to a clip already in the dataset is skipped as a
duplicate. Every file given gets one `ImportEntry`: kept, rejected or skipped, with why.
Nothing about one file stops the others.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from distill import DistillError
from distill.clips import (DEFAULT_SEGMENT_SECONDS, DUPLICATE, HEAVY_CLIPPING_FRACTION, MOSTLY_SILENT_FRACTION, OK,
                           QUIET_DBFS, REJECTED, WARNING, Clip, _percent, _plural, check_clip)
from distill.import_report import ImportEntry, ImportFailed, ImportReport  # noqa: F401 (ImportFailed: re-exported)
from distill.sources import AUDIO_EXTENSIONS, GivenFile, NamedFile, gather, leaf_name  # noqa: F401 (re-exported)
from distill.atomic import WriteError, atomic_copy, atomic_write_json, temp_path
from distill.workspace import (Workspace, file_sha256, read_json,
                               sanitize_filename)

try:  # advisory lock around manifest updates (POSIX); elsewhere updates are simply unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

MANIFEST_NAME = "dataset.json"
MANIFEST_FORMAT = "distill-dataset"
MANIFEST_VERSION = 1
CLIPS_DIR = "clips"

MIN_TRAINING_SECONDS = 30.0  # less usable audio than this gets a warning



def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")




# --- datasets ------------------------------------------------------------------------------

@dataclass
class DatasetSummary:
    """Counts, durations and plain-language warnings (with numbers) about one dataset."""

    name: str
    clips: int  # in the dataset
    usable: int  # ok or warning, file present
    ok: int
    warning: int
    missing: int  # in the manifest, file gone
    rejected_last_import: int
    total_duration: float  # seconds of usable audio
    shortest: float
    longest: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:  # summary["warnings"] reads as well as summary.warnings
        return getattr(self, key)


def _listing(clips: list[Clip], detail, limit: int = 5) -> str:
    shown = ", ".join(f"{c.name} ({detail(c)})" for c in clips[:limit])
    return shown + (f", and {len(clips) - limit} more" if len(clips) > limit else "")


@dataclass
class Dataset:
    name: str
    folder: Path
    clips: list[Clip] = field(default_factory=list)  # what is in the dataset
    rejected: list[Clip] = field(default_factory=list)  # refused at the latest import
    created: str = ""
    updated: str = ""
    last_import: str = ""
    # no manifest on disk, and none could be written now (the disk is full): the clips were
    # found in the folder and checked again
    incomplete: bool = False

    @property
    def clips_dir(self) -> Path:
        return self.folder / CLIPS_DIR

    def clip_path(self, clip_name: str) -> Path:
        return self.clips_dir / clip_name

    def clip(self, clip_name: str) -> Clip:
        for clip in self.clips:
            if clip.name == clip_name:
                return clip
        raise DistillError(f"dataset {self.name!r} has no clip named {clip_name!r}")

    @property
    def missing_clips(self) -> list[Clip]:
        return [c for c in self.clips if not self.clip_path(c.name).is_file()]

    @property
    def usable_clips(self) -> list[Clip]:
        """The clips training uses: status ok or warning, file present."""
        return [c for c in self.clips if c.usable and self.clip_path(c.name).is_file()]

    @property
    def total_duration(self) -> float:
        return sum(c.duration for c in self.usable_clips)

    def summary(self, segment_seconds: float = DEFAULT_SEGMENT_SECONDS) -> DatasetSummary:
        usable, missing = self.usable_clips, self.missing_clips
        total = sum(c.duration for c in usable)
        warnings = []
        if self.incomplete:
            warnings.append(f"incomplete (no manifest): finish it with `distill dataset create {self.name} PATH...` "
                            f"once there is free space, or remove it with `distill dataset delete {self.name}`")
        if len(usable) < 2:
            warnings.append(f"only {_plural(len(usable), 'usable clip')}: training needs at least 2 "
                            f"(one to learn from, one to check against)")
        if total < MIN_TRAINING_SECONDS:
            warnings.append(f"{total:.1f} s of usable audio is very little to train on "
                            f"(aim for {MIN_TRAINING_SECONDS:g} s or more)")
        clipped = sorted((c for c in usable if c.clipping_fraction >= HEAVY_CLIPPING_FRACTION),
                         key=lambda c: -c.clipping_fraction)
        if clipped:
            warnings.append(f"{_plural(len(clipped), 'clip')} with clipping: "
                            + _listing(clipped, lambda c: f"{_percent(c.clipping_fraction)} of samples"))
        quiet = sorted((c for c in usable if c.peak_dbfs < QUIET_DBFS), key=lambda c: c.peak_dbfs)
        if quiet:
            warnings.append(f"{_plural(len(quiet), 'clip')} very quiet (peak below {QUIET_DBFS:g} dBFS; trained at "
                            "their own level): " + _listing(quiet, lambda c: f"peak {c.peak_dbfs:.1f} dBFS"))
        silent = sorted((c for c in usable if c.silent_fraction >= MOSTLY_SILENT_FRACTION),
                        key=lambda c: -c.silent_fraction)
        if silent:
            warnings.append(f"{_plural(len(silent), 'clip')} mostly silence: "
                            + _listing(silent, lambda c: f"{_percent(c.silent_fraction)} silent"))
        short = sorted((c for c in usable if c.duration < segment_seconds), key=lambda c: c.duration)
        if short:
            warnings.append(f"{_plural(len(short), 'clip')} shorter than one training segment "
                            f"({segment_seconds:.2f} s), padded with silence: "
                            + _listing(short, lambda c: f"{c.duration:.2f} s"))
        if missing:
            warnings.append(f"{_plural(len(missing), 'clip file')} missing from {self.clips_dir}: "
                            + ", ".join(c.name for c in missing[:5]))
        if self.rejected:
            more = f"; and {len(self.rejected) - 3} more" if len(self.rejected) > 3 else ""
            warnings.append(f"{_plural(len(self.rejected), 'file')} rejected at the last import: "
                            + "; ".join(f"{c.source or c.name}: {c.reason}" for c in self.rejected[:3]) + more)
        durations = [c.duration for c in usable] or [0.0]
        return DatasetSummary(
            name=self.name, clips=len(self.clips), usable=len(usable),
            ok=sum(c.status == OK for c in usable), warning=sum(c.status == WARNING for c in usable),
            missing=len(missing), rejected_last_import=len(self.rejected), total_duration=total,
            shortest=min(durations), longest=max(durations), warnings=warnings)

    def to_dict(self) -> dict[str, Any]:
        """The kept clips (`in_dataset: true`), then the latest import's refusals."""
        clips = []
        for clip in self.clips:
            view = clip.to_dict() | {"in_dataset": True, "missing": False}
            if not self.clip_path(clip.name).is_file():
                view |= {"status": REJECTED, "reason": f"missing: the file is gone from {self.clips_dir}",
                         "missing": True}
            clips.append(view)
        clips += [clip.to_dict() | {"in_dataset": False, "missing": False} for clip in self.rejected]
        return {"name": self.name, "folder": str(self.folder), "created": self.created,
                "updated": self.updated, "last_import": self.last_import, "clips": clips,
                "summary": self.summary().to_dict()}

    def _manifest(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "name": self.name,
                "created": self.created, "updated": self.updated,
                "clips": [c.to_dict() for c in self.clips],
                "last_import": {"time": self.last_import, "rejected": [c.to_dict() for c in self.rejected]}}

    def save(self) -> None:
        atomic_write_json(self.folder / MANIFEST_NAME, self._manifest())
        self.incomplete = False


# --- on disk -------------------------------------------------------------------------------

def dataset_name(name: str) -> str:
    """The sanitised form of a dataset name (what its folder is called)."""
    safe = sanitize_filename(str(name), fallback="")
    if not safe:
        raise DistillError(f"{name!r} cannot be a dataset name: use letters, digits, spaces, - or _")
    return safe


def dataset_names(ws: Workspace) -> list[str]:
    if not ws.datasets_dir.is_dir():
        return []
    return sorted(p.name for p in ws.datasets_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(".")
                  and ((p / MANIFEST_NAME).exists() or (p / CLIPS_DIR).is_dir()))


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer at a time per dataset (a CLI import while the UI adds clips)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _from_manifest(folder: Path, data: dict[str, Any]) -> Dataset:
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ValueError("not a Distill dataset manifest")
    if int(data.get("version", 0)) > MANIFEST_VERSION:
        raise DistillError(f"{folder / MANIFEST_NAME} was written by a newer Distill "
                           f"(manifest version {data['version']}); upgrade Distill to open it")
    last = data.get("last_import") or {}
    return Dataset(name=folder.name, folder=folder,
                   clips=[Clip.from_dict(c) for c in data.get("clips", [])],
                   rejected=[Clip.from_dict(c) for c in last.get("rejected", [])],
                   created=data.get("created", ""), updated=data.get("updated", ""),
                   last_import=last.get("time", ""))


def _rebuild(folder: Path, save: bool = True) -> Dataset:
    """A dataset folder whose manifest is lost or unreadable (a killed import, a full disk,
    an edit): re-check the clips it holds, and write the manifest when `save` and the disk
    lets us (a command that only reads must not fail for want of space)."""
    manifest = folder / MANIFEST_NAME
    if manifest.exists():
        manifest.replace(folder / f"{MANIFEST_NAME}.unreadable-{int(time.time())}")
    dataset = Dataset(name=folder.name, folder=folder, created=_now(), updated=_now())
    clips_dir = folder / CLIPS_DIR
    for path in sorted(clips_dir.iterdir()) if clips_dir.is_dir() else []:
        if path.is_file() and not path.name.startswith("."):
            clip = check_clip(path, name=path.name)
            clip.sha256, clip.mtime_ns = file_sha256(path), path.stat().st_mtime_ns
            (dataset.clips if clip.usable else dataset.rejected).append(clip)
    if save:
        try:
            dataset.save()
        except WriteError:
            dataset.incomplete = True
    else:
        dataset.incomplete = True
    return dataset


def load_dataset(ws: Workspace, name: str) -> Dataset:
    safe = dataset_name(name)
    folder = ws.dataset_dir(safe)
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        try:
            return _from_manifest(folder, read_json(manifest))
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            return _rebuild(folder)
    if (folder / CLIPS_DIR).is_dir():
        return _rebuild(folder)
    have = ", ".join(dataset_names(ws)) or "none yet"
    raise DistillError(f"no dataset named {name!r} (have: {have})")


def list_datasets(ws: Workspace) -> list[Dataset]:
    return [load_dataset(ws, name) for name in dataset_names(ws)]


def clip_path(ws: Workspace, dataset: str, clip_name: str) -> Path:
    ds = load_dataset(ws, dataset)
    return ds.clip_path(ds.clip(clip_name).name)


# --- importing -----------------------------------------------------------------------------

def _free_name(folder: Path, name: str, taken: set[str]) -> str:
    """`name`, or `stem-2.ext`, `-3`… (the unique_path scheme), never a file that exists or a
    name already in the manifest; compared case-insensitively so the folder survives a Mac."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, counter = name, 2
    while candidate.casefold() in taken or (folder / candidate).exists():
        candidate, counter = f"{stem}-{counter}{suffix}", counter + 1
    return candidate


def _import_one(given: GivenFile, dataset: Dataset, known: dict[str, str], taken: set[str],
                segment_seconds: float) -> ImportEntry:
    source = given.path
    entry = functools.partial(ImportEntry, str(source), file=given.name)
    try:
        digest = file_sha256(source)
    except OSError as exc:
        return entry(REJECTED, f"could not be read ({exc.strerror or exc})")
    if digest in known:
        return entry(DUPLICATE, f"same content as {known[digest]}, already in the dataset")
    clip = check_clip(source, segment_seconds, name=sanitize_filename(given.own_name, "clip"))
    clip.sha256, clip.added, clip.source = digest, _now(), given.name
    if not clip.usable:
        dataset.rejected.append(clip)
        return entry(REJECTED, clip.reason, clip=clip)
    clip.name = _free_name(dataset.clips_dir, clip.name, taken)
    target = dataset.clip_path(clip.name)
    atomic_copy(source, target)
    clip.mtime_ns = target.stat().st_mtime_ns
    dataset.clips.append(clip)
    known[digest] = clip.name
    taken.add(clip.name.casefold())
    return entry(clip.status, clip.reason, kept_as=clip.name, clip=clip)


def _import(ws: Workspace, dataset: Dataset, sources: Iterable[str | Path | NamedFile], segment_seconds: float,
            report: ImportReport) -> None:
    sources = list(sources)
    given = gather(sources, ws.root)
    if not given:
        shown = ", ".join(str(s) for s in sources[:3]) + (", …" if len(sources) > 3 else "")
        raise DistillError(f"no files found in {shown or 'nothing given'}")
    dataset.rejected = []
    known = {c.sha256: c.name for c in dataset.clips if c.sha256}
    taken = {c.name.casefold() for c in dataset.clips}
    dataset.clips_dir.mkdir(parents=True, exist_ok=True)
    for item in given:
        if item.refusal is not None:
            status, reason = item.refusal
            entry = ImportEntry(str(item.path), status, reason, file=item.name)
            if status == REJECTED:  # a missing path: `dataset show` lists it with the import's refusals
                dataset.rejected.append(Clip(name=leaf_name(item.name), status=REJECTED, reason=reason,
                                             source=item.name))
        else:
            try:
                entry = _import_one(item, dataset, known, taken, segment_seconds)
            except WriteError:  # the disk, not the file: every file after it would fail the same way
                raise
            except Exception as exc:  # one bad file never stops the others
                entry = ImportEntry(str(item.path), REJECTED, f"could not be imported ({exc})", file=item.name)
                dataset.rejected.append(Clip(name=item.own_name, status=REJECTED, reason=entry.reason,
                                             source=item.name))
        report.entries.append(entry)
    dataset.last_import = dataset.updated = _now()


def _failure(report: ImportReport, what: str) -> ImportFailed:
    reasons = "; ".join(e.describe() for e in report.entries[:5])
    more = f" (and {len(report.entries) - 5} more)" if len(report.entries) > 5 else ""
    return ImportFailed(f"{what}: no file could be imported: {reasons}{more}", report)


def create_dataset(ws: Workspace, name: str, sources: Iterable[str | Path],
                   segment_seconds: float = DEFAULT_SEGMENT_SECONDS) -> ImportReport:
    """A new dataset from files and folders. Refuses an existing name; when no file is
    usable the dataset is not created and ImportFailed (a DistillError) carries the report."""
    safe = dataset_name(name)
    folder = ws.dataset_dir(safe)
    if (folder / MANIFEST_NAME).exists():
        raise DistillError(f"a dataset named {safe!r} already exists: add to it with "
                           f"`distill dataset add {safe} PATH...` or choose another name")
    report = ImportReport(safe, created=True)
    with _locked(folder):
        if (folder / MANIFEST_NAME).exists():  # created by someone else while we waited
            raise DistillError(f"a dataset named {safe!r} already exists")
        # A folder with clips and no manifest is a create that never finished: finish it.
        unfinished = (folder / CLIPS_DIR).is_dir()
        dataset = _rebuild(folder, save=False) if unfinished else Dataset(name=safe, folder=folder, created=_now())
        report.finished_clips = len(dataset.clips)
        with _undone_on_failure(dataset, remove_folder=not unfinished):
            _import(ws, dataset, sources, segment_seconds, report)
            if not report.kept and not dataset.clips:
                report.created = False
                raise _failure(report, f"dataset {safe!r} not created")
            dataset.save()
    report.dataset = dataset
    return report


@contextlib.contextmanager
def _undone_on_failure(dataset: Dataset, remove_folder: bool) -> Iterator[None]:
    """An import that fails (a full disk, Ctrl-C) leaves the dataset as it was: the clips it
    copied are removed (the manifest never named them), or the whole folder of a new dataset."""
    before = {c.name for c in dataset.clips}
    try:
        yield
    except BaseException:
        if remove_folder:
            shutil.rmtree(dataset.folder, ignore_errors=True)
        else:
            for clip in dataset.clips:
                if clip.name not in before:
                    dataset.clip_path(clip.name).unlink(missing_ok=True)
        raise


def add_clips(ws: Workspace, name: str, sources: Iterable[str | Path],
              segment_seconds: float = DEFAULT_SEGMENT_SECONDS) -> ImportReport:
    """Import more files into an existing dataset. Refusals are in the report, never raised."""
    dataset = load_dataset(ws, name)
    report = ImportReport(dataset.name)
    with _locked(dataset.folder):
        dataset = load_dataset(ws, dataset.name)  # fresh, under the lock
        with _undone_on_failure(dataset, remove_folder=False):
            _import(ws, dataset, sources, segment_seconds, report)
            dataset.save()
    report.dataset = dataset
    return report


def remove_clips(ws: Workspace, name: str, clip_names: Iterable[str]) -> Dataset:
    """Take clips out of a dataset (and delete their copies). Unknown names change nothing."""
    names = list(dict.fromkeys(clip_names))
    if not names:
        raise DistillError("name at least one clip to remove")
    dataset = load_dataset(ws, name)
    with _locked(dataset.folder):
        dataset = load_dataset(ws, dataset.name)
        present = {c.name for c in dataset.clips}
        unknown = [n for n in names if n not in present]
        if unknown:
            refused = {c.name for c in dataset.rejected}
            hint = " (refused at import, so never part of it)" if set(unknown) <= refused else ""
            raise DistillError(f"dataset {dataset.name!r} has no clip named {', '.join(map(repr, unknown))}{hint}")
        dataset.clips = [c for c in dataset.clips if c.name not in set(names)]
        dataset.updated = _now()
        dataset.save()  # manifest first: a crash leaves a stray file, never a dangling entry
        for clip_name in names:
            dataset.clip_path(clip_name).unlink(missing_ok=True)
    return dataset


def delete_dataset(ws: Workspace, name: str) -> None:
    """Delete a dataset and its clips (the feature cache is shared and left alone)."""
    dataset = load_dataset(ws, name)
    # Rename first, so the dataset disappears at once even if removing the files is slow.
    trash = temp_path(dataset.folder)  # a kill during the removal leaves litter the next write sweeps
    dataset.folder.replace(trash)
    shutil.rmtree(trash, ignore_errors=True)


def _is_stale(dataset: Dataset, clip: Clip) -> bool:
    path = dataset.clip_path(clip.name)
    if not path.is_file():
        return False
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns) != (clip.size_bytes, clip.mtime_ns)


def refresh_changed(ws: Workspace, dataset: Dataset) -> Dataset:
    """Re-check clips whose file changed on disk since the manifest was written (size or
    mtime differ, then the hash), so the cache key and the stats follow the actual bytes."""
    if not any(_is_stale(dataset, clip) for clip in dataset.clips):
        return dataset
    with _locked(dataset.folder):
        dataset = load_dataset(ws, dataset.name)
        for index, clip in enumerate(dataset.clips):
            if not _is_stale(dataset, clip):
                continue
            path = dataset.clip_path(clip.name)
            digest = file_sha256(path)
            if digest != clip.sha256:
                fresh = check_clip(path, name=clip.name)
                fresh.source, fresh.added = clip.source, clip.added
                clip = dataset.clips[index] = fresh
            stat = path.stat()
            clip.sha256, clip.size_bytes, clip.mtime_ns = digest, stat.st_size, stat.st_mtime_ns
        dataset.updated = _now()
        dataset.save()
    return dataset



def dataset_channels(dataset: Dataset) -> int:
    """2 when any usable clip has two channels or more: a stereo model (its mono clips centred,
    their side silent); else 1."""
    return 2 if any(c.channels >= 2 for c in dataset.usable_clips) else 1
