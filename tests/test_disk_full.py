"""A full disk (injected: writes raise ENOSPC after a byte budget, or from the k-th file on)
never gives a traceback or a mess: every writer's command exits 1 with one line naming what
could not be written, leaves nothing partial, and keeps the catalog and datasets intact.
Litter of killed writers is swept by the next write into the same folder."""

from __future__ import annotations

import errno
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest
import soundfile as sf

from distill import atomic
from distill.atomic import WriteError, atomic_write_bytes, output_set, sweep_litter
from distill.cli import main
from distill.datasets import MANIFEST_NAME, create_dataset, load_dataset
from distill.workspace import Workspace


class FullDisk:
    """Replaces the one place outputs are opened: writes succeed until `budget` bytes have
    been written in all, or until the `file`-th file is opened; then ENOSPC."""

    def __init__(self, budget: int | None = None, file: int | None = None) -> None:
        self.budget, self.file, self.opened = budget, file, 0

    def open(self, path: Path):
        self.opened += 1
        if self.file is not None and self.opened >= self.file:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        disk = self

        class Filling:
            def __init__(self) -> None:
                self.raw = open(path, "xb", buffering=0)

            def write(self, data) -> int:
                if disk.budget is not None:
                    if disk.budget <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    data = memoryview(data)[: disk.budget]
                    disk.budget -= len(data)
                return self.raw.write(data)

            def __getattr__(self, name):
                return getattr(self.raw, name)

        return Filling()


@pytest.fixture
def full_disk(monkeypatch) -> Iterator[callable]:
    def install(budget: int | None = None, file: int | None = None) -> FullDisk:
        disk = FullDisk(budget, file)
        monkeypatch.setattr(atomic, "_open_raw", disk.open)
        atomic._swept.clear()
        return disk
    yield install


def visible(folder: Path) -> list[str]:
    """What a user sees in `folder` (recursively), hidden temporary names left out."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not any(
        part.startswith(".") for part in p.relative_to(folder).parts))


def litter(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.tmp")) if folder.exists() else []


def cli(capsys, ws: Workspace, *args: str) -> tuple[int, str, str]:
    code = main(["--workspace", str(ws.root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_disk_error(code: int, err: str) -> None:
    """Exit 1 and one error line (a progress line before it, as a terminal shows it, aside)."""
    assert code == 1, err
    lines = [line.split("\r")[-1] for line in err.strip().split("\n")]
    errors = [line for line in lines if not line.endswith(" sounds")]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    assert "Traceback" not in err and "disk is full" in errors[0], err


# -- the helper itself --------------------------------------------------------------------

def test_a_failed_write_keeps_the_old_file_and_says_which_and_where(tmp_path, full_disk) -> None:
    target = tmp_path / "keep.json"
    target.write_text("old")
    full_disk(budget=3)
    with pytest.raises(WriteError, match=r"could not write keep.json in .*: the disk is full"):
        atomic_write_bytes(target, b"new contents")
    assert target.read_text() == "old" and litter(tmp_path) == []


def test_a_set_of_outputs_appears_whole_or_not_at_all(tmp_path, full_disk) -> None:
    full_disk(file=3)
    with pytest.raises(WriteError):
        with output_set() as outputs:
            for name in ("a", "b", "c"):
                with outputs.file(tmp_path / name) as handle:
                    handle.write(b"x" * 10)
    assert visible(tmp_path) == [] and litter(tmp_path) == []


def test_soundfile_and_torch_report_the_disk_not_their_own_error(tmp_path, full_disk) -> None:
    import numpy as np
    import torch

    from distill.audio import write_sound

    full_disk(budget=1000)
    with pytest.raises(WriteError, match="disk is full"):
        write_sound(tmp_path / "s.wav", np.zeros(44100, np.float32), 44100)
    full_disk(budget=1000)
    with pytest.raises(WriteError, match="disk is full"):
        with atomic.atomic_file(tmp_path / "t.pt") as handle:
            torch.save(torch.zeros(10000), handle)
    assert visible(tmp_path) == [] and litter(tmp_path) == []


def test_litter_of_a_dead_writer_is_swept_and_a_live_ones_kept(tmp_path) -> None:
    dead = tmp_path / ".pack.wav.999999999-0123abcd.tmp"
    dead_folder = tmp_path / ".pack.999999999-89abcdef.tmp"
    live = tmp_path / f".other.wav.{os.getppid()}-0123abcd.tmp"
    mine = atomic.temp_path(tmp_path / "mine.wav")
    dead_folder.mkdir()
    (dead_folder / "001.wav").write_bytes(b"x")
    for path in (dead, live, mine):
        path.write_bytes(b"x")
    past = time.time() - 3600
    for path in (dead, dead_folder, live):
        os.utime(path, (past, past))
    removed = sweep_litter(tmp_path, force=True)
    assert sorted(removed) == sorted([dead, dead_folder])
    assert live.exists() and mine.exists()


# -- every writer, through the CLI ----------------------------------------------------------

@pytest.fixture(scope="module")
def model_ws(tmp_path_factory, example_corpus) -> Workspace:
    """A workspace with dataset "small" and a model "m" (the tiny preset: seconds to train)."""
    ws = Workspace.open(tmp_path_factory.mktemp("disk") / "ws")
    create_dataset(ws, "small", example_corpus[::4][:6])
    assert main(["--workspace", str(ws.root), "train", "small", "--preset", "tiny", "--epochs", "2",
                 "--batch-size", "8", "--preview-every", "0", "--device", "cpu", "--name", "t"]) == 0
    from distill.experiments import list_experiments

    [experiment] = list_experiments(ws)
    assert main(["--workspace", str(ws.root), "export", experiment["id"], "--name", "m"]) == 0
    return ws


def catalog_state(ws: Workspace) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in ws.models_dir.iterdir() if p.is_file()}


def test_dataset_create_on_a_full_disk_leaves_no_dataset(ws, capsys, full_disk, example_corpus) -> None:
    full_disk(file=3)  # two clips copied, the third cannot be
    code, _, err = cli(capsys, ws, "dataset", "create", "d", *map(str, example_corpus[:5]))
    assert_one_line_disk_error(code, err)
    assert visible(ws.datasets_dir) == [] and litter(ws.datasets_dir) == []


def test_dataset_add_on_a_full_disk_leaves_the_dataset_as_it_was(ws, capsys, full_disk, example_corpus) -> None:
    create_dataset(ws, "d", example_corpus[:2])
    before = (ws.dataset_dir("d") / MANIFEST_NAME).read_bytes(), visible(ws.dataset_dir("d"))
    full_disk(file=2)
    code, _, err = cli(capsys, ws, "dataset", "add", "d", *map(str, example_corpus[2:6]))
    assert_one_line_disk_error(code, err)
    assert ((ws.dataset_dir("d") / MANIFEST_NAME).read_bytes(), visible(ws.dataset_dir("d"))) == before
    assert litter(ws.datasets_dir) == []


def test_a_half_made_dataset_is_shown_on_a_full_disk_and_finished_by_create(ws, capsys, full_disk,
                                                                            example_corpus) -> None:
    create_dataset(ws, "d", example_corpus[:2])
    (ws.dataset_dir("d") / MANIFEST_NAME).unlink()  # what a create killed before its manifest leaves
    full_disk(budget=0)
    code, out, err = cli(capsys, ws, "dataset", "show", "d")
    assert code == 0, err
    assert "incomplete (no manifest)" in out and "distill dataset create d" in out
    code, out, err = cli(capsys, ws, "dataset", "list")
    assert code == 0 and "d" in out, err

    full_disk()  # space again
    code, out, err = cli(capsys, ws, "dataset", "create", "d", str(example_corpus[2]))
    assert code == 0, err
    assert "finished the incomplete dataset 'd'" in out
    dataset = load_dataset(ws, "d")
    assert len(dataset.clips) == 3 and not dataset.incomplete
    assert (ws.dataset_dir("d") / MANIFEST_NAME).is_file()


def test_reading_commands_work_with_no_space_at_all(model_ws, capsys, full_disk) -> None:
    (model_ws.models_dir / "catalog.json").unlink()  # the index must be rebuilt: a write
    full_disk(budget=0)
    for command in (["models", "list"], ["dataset", "show", "small"], ["dataset", "list"], ["experiments"],
                    ["models", "info", "m"]):
        code, out, err = cli(capsys, model_ws, *command)
        assert code == 0 and err == "" and out, (command, err)


def test_models_import_on_a_full_disk_keeps_the_catalog(model_ws, capsys, full_disk, tmp_path) -> None:
    outside = tmp_path / "friend.distillgan"
    outside.write_bytes((model_ws.models_dir / "m.distillgan").read_bytes())
    before = catalog_state(model_ws)
    full_disk(budget=5000)
    code, _, err = cli(capsys, model_ws, "models", "import", str(outside))
    assert_one_line_disk_error(code, err)
    assert catalog_state(model_ws) == before and litter(model_ws.models_dir) == []


def test_export_on_a_full_disk_keeps_the_catalog(model_ws, capsys, full_disk) -> None:
    from distill.experiments import list_experiments

    before = catalog_state(model_ws)
    full_disk(budget=5000)
    code, _, err = cli(capsys, model_ws, "export", list_experiments(model_ws)[0]["id"], "--name", "m2")
    assert_one_line_disk_error(code, err)
    assert catalog_state(model_ws) == before and litter(model_ws.models_dir) == []


def test_generate_on_a_full_disk_writes_no_sound(model_ws, capsys, full_disk, tmp_path) -> None:
    full_disk(file=3)
    code, _, err = cli(capsys, model_ws, "generate", "m", "-n", "4", "--seed", "1", "--duration", "0.5",
                       "--griffin-lim", "--output", str(tmp_path / "out"))
    assert_one_line_disk_error(code, err)
    assert visible(tmp_path / "out") == [] and litter(tmp_path) == []


def test_transform_on_a_full_disk_writes_nothing(model_ws, capsys, full_disk, tmp_path, example_corpus) -> None:
    full_disk(budget=2000)
    code, _, err = cli(capsys, model_ws, "transform", "m", str(example_corpus[0]), "--griffin-lim",
                       "--output", str(tmp_path / "out"))
    assert_one_line_disk_error(code, err)
    assert visible(tmp_path / "out") == [] and litter(tmp_path) == []


def test_pack_on_a_full_disk_leaves_neither_folder_nor_zip(model_ws, capsys, full_disk) -> None:
    packs = model_ws.root / "packs"
    for fault in (dict(file=3), dict(file=6)):  # during the sounds; at the zip (4 sounds, pack.json, zip)
        full_disk(**fault)
        code, _, err = cli(capsys, model_ws, "pack", "m", "-n", "4", "--seed", "2", "--duration", "0.5",
                           "--griffin-lim")
        assert_one_line_disk_error(code, err)
        assert visible(packs) == [] and litter(packs) == [], fault


def test_a_pack_that_cannot_fit_is_refused_before_rendering(model_ws, capsys, monkeypatch) -> None:
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 1_000_000)
    code, _, err = cli(capsys, model_ws, "pack", "m", "-n", "24", "--duration", "2", "--griffin-lim")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "not enough free space" in err and "a pack of 24 sounds" in err and "1.0 MB free" in err
    assert visible(model_ws.root / "packs") == []


def test_vocoder_fine_tune_on_a_full_disk_keeps_the_model(model_ws, capsys, full_disk) -> None:
    before = catalog_state(model_ws)
    full_disk(budget=0)
    code, _, err = cli(capsys, model_ws, "train-vocoder", "m", "--preset", "tiny", "--device", "cpu")
    assert code == 1 and "Traceback" not in err and "disk is full" in err, err
    assert catalog_state(model_ws) == before


def test_an_unexpected_error_is_one_line_too(ws, capsys, monkeypatch) -> None:
    import distill.cli.dataset as dataset_cli

    monkeypatch.setattr(dataset_cli.data, "list_datasets", lambda ws: 1 / 0)
    code, _, err = cli(capsys, ws, "dataset", "list")
    assert code == 1 and err.strip() == "error: unexpected ZeroDivisionError: division by zero"


def test_pack_and_generate_leave_outputs_that_are_whole(model_ws, capsys, tmp_path) -> None:
    code, out, err = cli(capsys, model_ws, "pack", "m", "-n", "3", "--seed", "3", "--duration", "0.3",
                         "--griffin-lim", "--output", str(tmp_path))
    assert code == 0, err
    [folder] = [p for p in tmp_path.iterdir() if p.is_dir()]
    with zipfile.ZipFile(tmp_path / f"{folder.name}.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{folder.name}/{p.name}" for p in folder.iterdir())
    assert json.loads((folder / "pack.json").read_text())["files"]
    assert all(sf.info(str(p)).frames > 0 for p in folder.glob("*.wav"))


# -- kill -9 at random moments ----------------------------------------------------------------

def whole_outputs(ws: Workspace, out: Path) -> None:
    """Every visible output is whole: packs (folder with its pack.json and sounds; zip that
    opens), model files that load, transformed sounds that decode; the catalog index parses."""
    from distill.modelfile import validate_model_file

    packs = ws.root / "packs"
    for folder in (p for p in packs.glob("*") if p.is_dir() and not p.name.startswith(".")):
        manifest = json.loads((folder / "pack.json").read_text())
        assert all(sf.info(str(folder / f["file"])).frames > 0 for f in manifest["files"])
    for archive in packs.glob("[!.]*.zip"):
        with zipfile.ZipFile(archive) as opened:
            assert opened.testzip() is None
    for model in ws.models_dir.glob("[!.]*.distillgan"):
        validate_model_file(model)
    json.loads((ws.models_dir / "catalog.json").read_text())
    for sound in out.glob("[!.]*.wav"):
        assert sf.info(str(sound)).frames > 0


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_only_whole_outputs(model_ws, example_corpus, tmp_path) -> None:
    import random
    import signal
    import subprocess
    import sys

    from distill.experiments import list_experiments

    out = tmp_path / "transformed"
    friend = tmp_path / "friend.distillgan"
    friend.write_bytes((model_ws.models_dir / "m.distillgan").read_bytes())
    experiment = list_experiments(model_ws)[0]["id"]
    base = [sys.executable, "-m", "distill.cli", "--workspace", str(model_ws.root)]
    commands = {
        "pack": ["pack", "m", "-n", "6", "--duration", "0.5", "--griffin-lim"],
        "export": ["export", experiment, "--name", "killed", "--overwrite"],
        "import": ["models", "import", str(friend), "--name", "imported", "--overwrite"],
        "transform": ["transform", "m", *map(str, example_corpus[:3]), "--griffin-lim", "--output", str(out)],
    }
    full_run = {}
    for name, args in commands.items():  # each once to its end: how long a run takes
        started = time.monotonic()
        subprocess.run(base + args, check=True, capture_output=True)
        full_run[name] = time.monotonic() - started
    rng = random.Random(9)
    kills = caught_writing = 0
    for round_ in range(8):
        for name, args in commands.items():
            process = subprocess.Popen(base + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # late in its run, where the writing is (start-up is most of a run), and before its end
            time.sleep(rng.uniform(0.5, 0.95) * full_run[name])
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            process.wait()
            whole_outputs(model_ws, out)
            caught_writing += any(litter(f) for f in (model_ws.root / "packs", model_ws.models_dir, out))
    print(f"{kills} kills, {caught_writing} of them left temporary files (killed while writing)")
    assert kills >= 20 and caught_writing >= 1  # at least one kill landed while a file was being written
    for name, args in commands.items():  # the next run of each kind clears what the killed ones left
        subprocess.run(base + args, check=True, capture_output=True)
    for folder in (model_ws.root / "packs", model_ws.models_dir, out):
        assert litter(folder) == [], folder
    whole_outputs(model_ws, out)


def test_training_on_a_full_disk_fails_in_one_line_and_can_be_resumed(model_ws, capsys, full_disk) -> None:
    full_disk(budget=200_000)  # the run's first files fit; a checkpoint does not
    code, out, err = cli(capsys, model_ws, "train", "small", "--preset", "tiny", "--epochs", "2", "--batch-size", "8",
                         "--preview-every", "0", "--device", "cpu", "--name", "full")
    assert code == 1 and "Traceback" not in err and "disk is full" in err, (out, err)
    assert len([line for line in err.splitlines() if line.startswith("error")]) == 1, err
    full_disk()  # space again
    code, out, err = cli(capsys, model_ws, "resume", "full")
    assert code == 0 and "finished after epoch 2" in out, (out, err)
