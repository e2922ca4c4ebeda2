"""The one way Distill writes a file that matters, and what a failed write tells the user.

Every output (a clip copied into a dataset, a model file, a checkpoint, a cached feature, a
generated sound, a pack and its zip, the catalog index) is written through `atomic_file` or
an `OutputSet`: into a hidden temporary name in the target's own folder
(`.NAME.PID-TOKEN.tmp`), flushed to disk, then renamed over the target. A crash leaves the
old file or the new one, never half of one; a set of outputs (a batch of sounds, a pack
folder and its zip) is renamed into place only once every member is whole.

A write that fails for want of space, permission or a working disk raises `WriteError`, a
`DistillError` naming what could not be written, the folder, and the space needed or free:
the CLI prints it as one line, the page as a toast. Libraries that write through our file
object (soundfile, torch, zipfile) may swallow the OS error and raise their own vague one
("System error."), so the file object remembers the first OS error it met and that is the
one reported.

Temporary names carry the writer's process id: a writer that was killed leaves litter no
one would ever clean, so the first write into a folder by any later process removes the
temporary entries there whose process is gone (`sweep_litter`).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from distill import DistillError

# Below this much free space after a failed write, the disk is taken to be the cause even
# when the library that failed did not say so.
NEARLY_FULL_BYTES = 4 << 20
# Kept free on top of an estimate, so a write that fits by its estimate still leaves room
# for the small files that follow it (a manifest, the catalog index).
SPARE_BYTES = 64 << 10
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\.tmp$")
_STARTED = time.time()
_swept: set[Path] = set()


class WriteError(DistillError):
    """An output could not be written: the disk is full, read-only, or refused us."""


def size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def free_bytes(folder: Path) -> int | None:
    """Free space where `folder` is (or would be: its nearest existing parent); None if unknown."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def ensure_space(folder: str | Path, needed: int, what: str) -> None:
    """Refuse at once, before any work, when `what` (about `needed` bytes) cannot fit in `folder`."""
    free = free_bytes(Path(folder))
    if free is not None and needed + SPARE_BYTES > free:
        raise WriteError(f"not enough free space in {folder} for {what}: about {size_text(needed)} needed, "
                         f"{size_text(free)} free. Free some space or choose another folder.")


def write_error(exc: BaseException, path: Path, needed: int = 0) -> WriteError | None:
    """The user's words for a failed write of `path`, or None when `exc` is not about the disk
    (a bug, Ctrl-C: those go on as they are)."""
    if isinstance(exc, WriteError):
        return exc
    if not isinstance(exc, (OSError, RuntimeError)):
        return None
    path = shown_path(path)
    free = free_bytes(path.parent)
    code = exc.errno if isinstance(exc, OSError) else None
    if code in _FULL or (code is None and free is not None and free < NEARLY_FULL_BYTES):
        wanted = f", about {size_text(needed)} needed" if needed else ""
        have = f" ({size_text(free)} free{wanted})" if free is not None else ""
        return WriteError(f"could not write {path.name} in {path.parent}: the disk is full{have}. "
                          "Free some space and try again; nothing was changed.")
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return WriteError(f"could not write {path.name} in {path.parent}: {reason}. Nothing was changed.")
    return None


def shown_path(path: Path) -> Path:
    """`path` as the user will see it: a folder being built under a temporary name (a pack's)
    by the name it will have."""
    parts = [m["name"] if (m := _TEMP_NAME.match(part)) else part for part in path.parts[:-1]]
    return Path(*parts, path.name)


def temp_path(target: Path) -> Path:
    """A hidden name beside `target` that says which process is writing it."""
    return target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_litter(folder: str | Path, force: bool = False) -> list[Path]:
    """Remove the temporary files and folders in `folder` left by writers that were killed:
    older than this process, of a process that no longer runs. Once per folder per process
    unless `force`. Returns what was removed."""
    folder = Path(folder)
    if folder in _swept and not force:
        return []
    _swept.add(folder)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or int(match["pid"]) == os.getpid() or _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_mtime > _STARTED:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _open_raw(path: Path) -> BinaryIO:
    """The one place an output file is opened (unbuffered: every write reaches the OS, which
    says at once when the disk is full). Tests replace it to inject faults."""
    return open(path, "xb", buffering=0)


class TrackedFile(io.RawIOBase):
    """A binary file that remembers the first OS error of a write instead of raising it into a
    library's C callback (soundfile would print a traceback and go on); `failure` is checked
    when the write is finished."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self.failure: OSError | None = None
        self.written = 0

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.failure is not None:
            return 0
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                n = self._raw.write(view[done:])
                if not n:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += n
        except OSError as exc:
            self.failure = exc
            return 0
        self.written += done
        return done

    def readinto(self, buffer: Any) -> int:
        return self._raw.readinto(buffer)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def fileno(self) -> int:
        return self._raw.fileno()

    def finish(self) -> None:
        """Flush to the disk; raise the remembered failure, if any."""
        if self.failure is None:
            try:
                os.fsync(self._raw.fileno())
            except OSError as exc:
                self.failure = exc
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._raw.close()
        super().close()


class OutputSet:
    """Outputs that appear together or not at all: files (`file`) and folders (`folder`) are
    written under temporary names and renamed into place, in the order they were begun, when
    the `output_set` block ends without error; otherwise every one of them is removed."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def _prepare(self, target: Path) -> Path:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, target) or exc
        sweep_litter(target.parent)
        tmp = temp_path(target)
        self._pending.append((tmp, target))
        return tmp

    @contextlib.contextmanager
    def file(self, path: str | Path) -> Iterator[TrackedFile]:
        """A file object to write `path`'s bytes into (seekable, for soundfile and zipfile)."""
        path = Path(path)
        tmp = self._prepare(path)
        try:
            handle = TrackedFile(_open_raw(tmp))
        except OSError as exc:
            raise write_error(exc, path) or exc
        try:
            with handle:
                try:
                    yield handle
                except BaseException as exc:
                    if handle.failure is not None:  # the library's error hides the disk's
                        raise handle.failure from exc
                    raise
                handle.finish()
        except BaseException as exc:
            raise write_error(exc, path) or exc

    def folder(self, path: str | Path) -> Path:
        """A temporary folder to build `path` in (written into with `atomic_file`)."""
        path = Path(path)
        tmp = self._prepare(path)
        try:
            tmp.mkdir()
        except OSError as exc:
            raise write_error(exc, path) or exc
        return tmp

    def _commit(self) -> None:
        folders = set()
        for tmp, target in self._pending:
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise write_error(exc, target) or exc
            folders.add(target.parent)
        for folder in folders:
            _fsync_dir(folder)

    def _discard(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def output_set() -> Iterator[OutputSet]:
    outputs = OutputSet()
    try:
        yield outputs
        outputs._commit()
    finally:
        outputs._discard()  # after a commit there is nothing left to remove


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[TrackedFile]:
    """A file object for `path`'s new bytes; renamed over `path` once the block succeeds."""
    with output_set() as outputs, outputs.file(path) as handle:
        yield handle


def _fsync_dir(folder: Path) -> None:
    # The rename itself lives in the directory entry; without this a power cut can lose it.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> None:
    with atomic_file(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_copy(source: str | Path, target: str | Path) -> None:
    """Copy a file's bytes to `target` atomically, refusing at once if they cannot fit."""
    source, target = Path(source), Path(target)
    ensure_space(target.parent, source.stat().st_size, target.name)
    with open(source, "rb") as reading, atomic_file(target) as handle:
        shutil.copyfileobj(reading, handle, 1 << 20)
