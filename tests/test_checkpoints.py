"""Checkpoints: retention, sidecar-only listing, verification, and saves that fail safely."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from distill import DistillError
from distill.checkpoints import (Retention, list_checkpoints, load_checkpoint, resolve_checkpoint, save_checkpoint,
                                 sidecar_path)


def _save_run(folder: Path, val_losses: list[float], retention: Retention) -> None:
    for epoch, loss in enumerate(val_losses, start=1):
        save_checkpoint(folder, {"weights": torch.full((4,), float(epoch))}, epoch=epoch, global_step=epoch * 10,
                        train_loss=loss + 0.1, val_loss=loss, retention=retention)


def _epochs(folder: Path) -> list[int]:
    return sorted(int(p.name[6:10]) for p in folder.glob("epoch-*.pt"))


def test_retention_keeps_recent_and_best(tmp_path: Path) -> None:
    _save_run(tmp_path, [5.0, 1.0, 4.0, 3.0, 6.0, 7.0], Retention(keep_recent=3, keep_best=1))
    assert _epochs(tmp_path) == [2, 4, 5, 6]
    assert sorted(p.name for p in tmp_path.glob("*.meta.json")) == [f"epoch-{e:04d}.pt.meta.json" for e in (2, 4, 5, 6)]


def test_retention_when_best_is_recent_leaves_three(tmp_path: Path) -> None:
    _save_run(tmp_path, [5.0, 4.0, 3.0, 2.0, 1.0], Retention(keep_recent=3, keep_best=1))
    assert _epochs(tmp_path) == [3, 4, 5]


def test_retention_zero_recent_keeps_all(tmp_path: Path) -> None:
    _save_run(tmp_path, [5.0, 4.0, 6.0, 7.0, 8.0], Retention(keep_recent=0, keep_best=1))
    assert _epochs(tmp_path) == [1, 2, 3, 4, 5]


def test_retention_configurable_and_ties_keep_the_earlier(tmp_path: Path) -> None:
    _save_run(tmp_path, [3.0, 1.0, 1.0, 5.0, 6.0, 7.0], Retention(keep_recent=2, keep_best=1))
    assert _epochs(tmp_path) == [2, 5, 6]


def test_listing_and_selection_read_sidecars_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "exp" / "checkpoints"
    _save_run(folder, [5.0, 1.0, 4.0, 3.0], Retention(keep_recent=2, keep_best=1))
    for pt in folder.glob("*.pt"):
        pt.write_bytes(b"not a checkpoint at all")  # loading any of these would fail loudly

    def no_loading(*args, **kwargs):
        raise AssertionError("a .pt file was loaded")

    monkeypatch.setattr(torch, "load", no_loading)
    infos = list_checkpoints(folder)
    assert [i.epoch for i in infos] == [2, 3, 4]
    assert [i.val_loss for i in infos] == [1.0, 4.0, 3.0]
    assert resolve_checkpoint(tmp_path / "exp", "best").name == "epoch-0002.pt"
    assert resolve_checkpoint(tmp_path / "exp", "last").name == "epoch-0004.pt"
    assert resolve_checkpoint(tmp_path / "exp", "epoch:3").name == "epoch-0003.pt"
    with pytest.raises(DistillError, match="no checkpoint for epoch 1"):
        resolve_checkpoint(tmp_path / "exp", "epoch:1")
    # retention also runs on sidecars alone
    from distill.checkpoints import prune_checkpoints
    prune_checkpoints(folder, Retention(keep_recent=1, keep_best=1))
    assert _epochs(folder) == [2, 4]


def test_load_round_trip_and_format(tmp_path: Path) -> None:
    info = save_checkpoint(tmp_path, {"weights": torch.arange(3.0), "epoch": 1}, epoch=1, global_step=5,
                           train_loss=1.0, val_loss=0.5)
    state = load_checkpoint(info.path)
    assert torch.equal(state["weights"], torch.arange(3.0))
    assert state["format"] == "distill_checkpoint" and state["format_version"] == 1
    assert info.size_bytes == info.path.stat().st_size and len(info.sha256) == 64


def test_truncated_checkpoint_is_named(tmp_path: Path) -> None:
    info = save_checkpoint(tmp_path, {"weights": torch.zeros(1000)}, epoch=1, global_step=1, train_loss=1, val_loss=1)
    data = info.path.read_bytes()
    info.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DistillError, match="epoch-0001.pt is truncated or corrupt"):
        load_checkpoint(info.path)


def test_corrupt_checkpoint_fails_its_checksum(tmp_path: Path) -> None:
    info = save_checkpoint(tmp_path, {"weights": torch.zeros(1000)}, epoch=1, global_step=1, train_loss=1, val_loss=1)
    data = bytearray(info.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    info.path.write_bytes(bytes(data))
    with pytest.raises(DistillError, match="SHA-256 does not match"):
        load_checkpoint(info.path)


def test_incompatible_version_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("distill.checkpoints.FORMAT_VERSION", 99)
    info = save_checkpoint(tmp_path, {"weights": torch.zeros(2)}, epoch=1, global_step=1, train_loss=1, val_loss=1)
    monkeypatch.setattr("distill.checkpoints.FORMAT_VERSION", 1)
    with pytest.raises(DistillError, match="format version 99"):
        load_checkpoint(info.path)


def test_missing_sidecar_is_named(tmp_path: Path) -> None:
    info = save_checkpoint(tmp_path, {"weights": torch.zeros(2)}, epoch=1, global_step=1, train_loss=1, val_loss=1)
    sidecar_path(info.path).unlink()
    with pytest.raises(DistillError, match="no readable sidecar"):
        load_checkpoint(info.path)


def test_failed_save_keeps_earlier_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _save_run(tmp_path, [3.0, 2.0, 1.0], Retention(keep_recent=2, keep_best=1))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, {"weights": torch.zeros(2)}, epoch=4, global_step=40, train_loss=1, val_loss=0.1,
                        retention=Retention(keep_recent=2, keep_best=1))
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # nothing pruned, no temp file left behind
    monkeypatch.undo()
    for info in list_checkpoints(tmp_path):
        load_checkpoint(info.path)
