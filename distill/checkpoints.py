"""Checkpoints: save, verify, load, list and prune — and the experiment record beside them.

Layout of one experiment folder:
    experiment.json                  the record (status, config, best/last pointers, sizes)
    metrics.jsonl                    one line per finished epoch
    checkpoints/epoch-0012.pt        full training state (weights_only-loadable)
    checkpoints/epoch-0012.pt.meta.json   its sidecar: epoch, losses, step, created, size, sha256

Listing, retention and best/last selection read sidecars only, never a `.pt`: a sidecar is
written after its checkpoint is whole, so a `.pt` without one is a crash leftover.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from distill import DistillError
from distill.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, write_error
from distill.workspace import file_sha256, read_json

FORMAT = "distill_checkpoint"
FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".meta.json"
EXPERIMENT_FILE = "experiment.json"
METRICS_FILE = "metrics.jsonl"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Retention:
    """Which checkpoints survive pruning.

    keep_recent: the newest N (by global step) are kept; 0 keeps every checkpoint.
    keep_best:   the N with the lowest validation loss are kept as well; a tie goes to the
                 earlier checkpoint (a later one must be strictly better to take its place).
    When a best checkpoint is also among the recent ones it is kept once, so with the
    defaults 3 or 4 files remain. Checkpoints without a validation loss (a stop in the
    middle of an epoch) can be recent, never best.
    """

    keep_recent: int = 3
    keep_best: int = 1

    def __post_init__(self) -> None:
        if self.keep_recent < 0 or self.keep_best < 0:
            raise DistillError("checkpoint retention counts cannot be negative")


@dataclass(frozen=True)
class CheckpointInfo:
    """What a sidecar says about its checkpoint."""

    path: Path
    epoch: int  # epochs fully completed when it was written
    global_step: int
    train_loss: float | None
    val_loss: float | None
    created: str
    size_bytes: int
    sha256: str
    batch_in_epoch: int = 0  # > 0: written mid-epoch (a graceful stop), that many batches into epoch + 1

    def sidecar(self) -> dict[str, Any]:
        values = asdict(self)
        del values["path"]
        values["format_version"] = FORMAT_VERSION
        return values

    @property
    def size_mb(self) -> float:
        return round(self.size_bytes / 1e6, 3)

    def pointer(self) -> dict[str, Any]:
        """How experiment.json refers to this checkpoint."""
        return {"path": f"checkpoints/{self.path.name}", "size_mb": self.size_mb, "epoch": self.epoch}


def checkpoint_filename(epoch: int, batch_in_epoch: int = 0) -> str:
    if batch_in_epoch:
        return f"epoch-{epoch + 1:04d}-batch-{batch_in_epoch:05d}.pt"
    return f"epoch-{epoch:04d}.pt"


def sidecar_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + SIDECAR_SUFFIX)



def serialise_checkpoint(state: dict[str, Any]) -> memoryview:
    """The checkpoint's bytes: a snapshot of `state` as it is now, safe to write later."""
    buffer = io.BytesIO()
    torch.save({**state, "format": FORMAT, "format_version": FORMAT_VERSION}, buffer)
    return buffer.getbuffer()


def write_checkpoint(folder: Path, data: bytes | memoryview, *, epoch: int, global_step: int,
                     train_loss: float | None, val_loss: float | None, retention: Retention = Retention(),
                     batch_in_epoch: int = 0) -> CheckpointInfo:
    """Write serialised checkpoint bytes, then the sidecar (each atomically), then prune.
    Nothing old is deleted before the new checkpoint and its sidecar are whole on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_filename(epoch, batch_in_epoch)
    atomic_write_bytes(path, data)
    info = CheckpointInfo(path=path, epoch=epoch, global_step=global_step, train_loss=_finite(train_loss),
                          val_loss=_finite(val_loss), created=now_iso(), size_bytes=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), batch_in_epoch=batch_in_epoch)
    atomic_write_json(sidecar_path(path), info.sidecar())
    prune_checkpoints(folder, retention)
    return info


def save_checkpoint(folder: Path, state: dict[str, Any], *, epoch: int, global_step: int,
                    train_loss: float | None, val_loss: float | None,
                    retention: Retention = Retention(), batch_in_epoch: int = 0) -> CheckpointInfo:
    """Serialise and write in one go (see `write_checkpoint`)."""
    return write_checkpoint(folder, serialise_checkpoint(state), epoch=epoch, global_step=global_step,
                            train_loss=train_loss, val_loss=val_loss, retention=retention,
                            batch_in_epoch=batch_in_epoch)


class CheckpointWriter:
    """Writes checkpoints on one background thread, in order, so the disk work (hashing,
    writing, fsync, pruning: ~0.1 s for the default model) overlaps the next epoch instead
    of adding to it. At most one write is in flight; a failed write raises at the next
    `submit` or at `flush`, so a full disk still ends the run with the older checkpoints
    intact."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="distill-checkpoint")
        self._pending: Future | None = None

    def submit(self, write: Callable[..., CheckpointInfo], *args: Any) -> Future:
        self.flush()
        self._pending = self._pool.submit(write, *args)
        return self._pending

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _read_sidecar(path: Path) -> CheckpointInfo | None:
    try:
        meta = read_json(path)
        return CheckpointInfo(path=path.with_name(path.name[: -len(SIDECAR_SUFFIX)]), epoch=int(meta["epoch"]),
                              global_step=int(meta["global_step"]), train_loss=meta.get("train_loss"),
                              val_loss=meta.get("val_loss"), created=meta.get("created", ""),
                              size_bytes=int(meta.get("size_bytes", 0)), sha256=meta.get("sha256", ""),
                              batch_in_epoch=int(meta.get("batch_in_epoch", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_checkpoints(folder: Path) -> list[CheckpointInfo]:
    """Every checkpoint with a readable sidecar, oldest first. Reads sidecars only."""
    if not folder.is_dir():
        return []
    infos = [info for sidecar in folder.glob("*.pt" + SIDECAR_SUFFIX) if (info := _read_sidecar(sidecar))]
    return sorted(infos, key=lambda info: (info.global_step, info.epoch))


def best_checkpoints(infos: list[CheckpointInfo], count: int = 1) -> list[CheckpointInfo]:
    ranked = [info for info in infos if info.val_loss is not None]
    # Stable sort on (loss, step): of equal losses the earliest wins.
    return sorted(ranked, key=lambda info: (info.val_loss, info.global_step))[:count]


def retained(infos: list[CheckpointInfo], retention: Retention) -> list[CheckpointInfo]:
    """The checkpoints `retention` keeps, oldest first."""
    if retention.keep_recent == 0:
        return list(infos)
    keep = {info.path for info in infos[-retention.keep_recent:]}
    keep |= {info.path for info in best_checkpoints(infos, retention.keep_best)}
    return [info for info in infos if info.path in keep]


def prune_checkpoints(folder: Path, retention: Retention) -> list[Path]:
    """Delete what retention does not keep, and `.pt` files whose sidecar never got written.
    The sidecar goes first: a crash mid-prune leaves an orphan `.pt`, never a sidecar that
    points at nothing."""
    infos = list_checkpoints(folder)
    keep = {info.path for info in retained(infos, retention)}
    removed = []
    for info in infos:
        if info.path not in keep:
            sidecar_path(info.path).unlink(missing_ok=True)
            info.path.unlink(missing_ok=True)
            removed.append(info.path)
    known = {info.path for info in infos}
    for orphan in folder.glob("epoch-*.pt"):
        if orphan not in known and not sidecar_path(orphan).exists():
            orphan.unlink(missing_ok=True)
            removed.append(orphan)
    return removed


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify the checkpoint against its sidecar (size, SHA-256), then load it with
    `weights_only=True` and check its format and version. Every failure says what is wrong."""
    path = Path(path)
    info = _read_sidecar(sidecar_path(path))
    if not path.exists():
        raise DistillError(f"checkpoint {path.name} is missing")
    if info is None:
        raise DistillError(f"checkpoint {path.name} has no readable sidecar ({sidecar_path(path).name}); "
                           "it was not written completely")
    size = path.stat().st_size
    if size != info.size_bytes:
        raise DistillError(f"checkpoint {path.name} is truncated or corrupt: {size} bytes on disk, "
                           f"{info.size_bytes} expected")
    if info.sha256 and file_sha256(path) != info.sha256:
        raise DistillError(f"checkpoint {path.name} is corrupt: its SHA-256 does not match its sidecar")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise DistillError(f"checkpoint {path.name} cannot be loaded: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DistillError(f"{path.name} is not a Distill checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise DistillError(f"checkpoint {path.name} has format version {state.get('format_version')}; "
                           f"this Distill reads version {FORMAT_VERSION}")
    return state


def resolve_checkpoint(experiment_dir: Path, which: str = "best") -> Path:
    """`best`, `last` or `epoch:N` → the checkpoint's path (from sidecars)."""
    infos = list_checkpoints(experiment_dir / "checkpoints")
    if not infos:
        raise DistillError(f"experiment {experiment_dir.name} has no checkpoints yet")
    if which == "last":
        return infos[-1].path
    if which == "best":
        best = best_checkpoints(infos)
        return (best[0] if best else infos[-1]).path
    if which.startswith("epoch:"):
        try:
            epoch = int(which.split(":", 1)[1])
        except ValueError:
            raise DistillError(f"bad checkpoint choice {which!r}: use best, last or epoch:N") from None
        matches = [info for info in infos if info.epoch == epoch and info.batch_in_epoch == 0]
        if not matches:
            available = ", ".join(str(info.epoch) for info in infos if info.batch_in_epoch == 0)
            raise DistillError(f"experiment {experiment_dir.name} has no checkpoint for epoch {epoch} "
                               f"(kept: {available or 'none'})")
        return matches[-1].path
    raise DistillError(f"bad checkpoint choice {which!r}: use best, last or epoch:N")


# -- the experiment record -----------------------------------------------------------------

def read_experiment(experiment_dir: Path) -> dict[str, Any]:
    path = experiment_dir / EXPERIMENT_FILE
    try:
        return read_json(path)
    except FileNotFoundError:
        raise DistillError(f"no experiment at {experiment_dir}") from None
    except (OSError, ValueError) as exc:
        raise DistillError(f"{path} is unreadable: {exc}") from exc


def write_experiment(experiment_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    record = {**record, "updated": now_iso()}
    atomic_write_json(experiment_dir / EXPERIMENT_FILE, record)
    return record


def checkpoint_summary(experiment_dir: Path) -> dict[str, Any]:
    """The checkpoint fields of experiment.json, from sidecars."""
    infos = list_checkpoints(experiment_dir / "checkpoints")
    best = best_checkpoints(infos)
    return {
        "best_epoch": best[0].epoch if best else None,
        "best_metric": {"val_loss": best[0].val_loss} if best else None,
        "checkpoints": {
            "best": best[0].pointer() if best else None,
            "last": infos[-1].pointer() if infos else None,
        },
        "checkpoint_total_mb": round(sum(info.size_bytes for info in infos) / 1e6, 3),
        "checkpoint_count": len(infos),
    }


def read_metrics(experiment_dir: Path) -> list[dict[str, Any]]:
    path = experiment_dir / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash mid-append
    return rows


def append_metrics(experiment_dir: Path, row: dict[str, Any]) -> None:
    """One line more in the metrics log: an append, not a rewrite (a line cut short by a crash
    is skipped on reading), so not through `distill.atomic`; its failures are said the same way."""
    path = experiment_dir / METRICS_FILE
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
    except OSError as exc:
        raise write_error(exc, path) or exc


def truncate_metrics(experiment_dir: Path, after_epoch: int) -> int:
    """Drop metric lines for epochs after `after_epoch` (work lost since that checkpoint),
    so a resumed curve never jumps backwards. Returns how many were dropped."""
    rows = read_metrics(experiment_dir)
    kept = [row for row in rows if row.get("epoch", 0) <= after_epoch]
    if len(kept) != len(rows) or (experiment_dir / METRICS_FILE).exists():
        atomic_write_text(experiment_dir / METRICS_FILE, "".join(json.dumps(row) + "\n" for row in kept))
    return len(rows) - len(kept)
