"""The training job end to end on real (synthesised) audio with the tiny preset: events,
files, cancel, failure, exact resume (also after kill -9), checkpoint fallback, refusals."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from distill import DistillError
from distill.checkpoints import list_checkpoints, read_experiment, read_metrics
from distill.datasets import create_dataset
from distill.jobs import Cancelled, CheckpointWritten, EpochFinished, Failed, Finished, PreviewWritten, Started, Warning
from distill.previews import list_previews
from distill.experiments import get_experiment, list_experiments
from distill.train import current_job, resume_training, start_training
from distill.train_config import TrainConfig
from distill.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def small(ws: Workspace, example_corpus: list[Path]) -> Workspace:
    """A workspace with dataset "small": 6 clips of the example corpus."""
    create_dataset(ws, "small", example_corpus[::4][:6])
    return ws


def tiny(**changes) -> TrainConfig:
    base = TrainConfig(dataset="small", preset="tiny", epochs=3, batch_size=8, preview_every=2, seed=7,
                       device="cpu")
    return replace(base, **changes)


def run(job) -> list:
    events = list(job.events(timeout=300))
    job.join(30)
    return events


def losses(ws: Workspace, experiment_id: str) -> list[float]:
    """Every epoch's train and validation loss, flattened: [train1, val1, train2, val2, ...]."""
    return [row[key] for row in read_metrics(ws.experiment_dir(experiment_id)) for key in ("train_loss", "val_loss")]


def test_tiny_run_writes_everything(small: Workspace) -> None:
    job = start_training(small, tiny())
    events = run(job)
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished
    assert [e.epoch for e in events if isinstance(e, EpochFinished)] == [1, 2, 3]
    assert sum(isinstance(e, CheckpointWritten) for e in events) == 3
    assert [e.epoch for e in events if isinstance(e, PreviewWritten)] == [2, 3]

    folder = small.experiment_dir(job.experiment_id)
    record = read_experiment(folder)
    assert record["status"] == "completed" and record["name"] == "small" and record["epoch"] == 3
    assert record["checkpoints"]["last"]["epoch"] == 3
    assert record["checkpoints"]["best"]["epoch"] == record["best_epoch"]
    assert record["best_metric"]["val_loss"] == min(r["val_loss"] for r in read_metrics(folder))
    rows = read_metrics(folder)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all({"train_loss", "val_loss", "val_recon", "val_kl"} <= r.keys() for r in rows)
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]  # it learns something in 3 epochs

    previews = list_previews(folder)
    assert [p.epoch for p in previews] == sorted(p.epoch for p in previews)
    last = [p for p in previews if p.epoch == 3]
    assert [p.kind for p in last] == ["sample", "sample", "reconstruction"]  # 1 validation clip
    assert set(last[-1].paths) == {"original", "decoded"}
    assert all(path.stat().st_size > 1000 for p in last for path in p.paths.values())
    assert current_job(small) is job


def test_second_start_is_refused_while_training(small: Workspace) -> None:
    job = start_training(small, tiny(epochs=30))
    try:
        with pytest.raises(DistillError, match="already running"):
            start_training(small, tiny())
        assert get_experiment(small, job.experiment_id)["status"] == "running"
    finally:
        job.cancel()
        run(job)
    assert len(list_experiments(small)) == 1  # the refused start left nothing behind


def test_cancel_mid_epoch_then_resume_matches_an_uninterrupted_run(small: Workspace) -> None:
    reference = start_training(small, tiny(epochs=3, preview_every=0))
    run(reference)
    expected = losses(small, reference.experiment_id)

    job = start_training(small, tiny(epochs=3, preview_every=0))
    for event in job.events():
        if isinstance(event, Started):
            job.cancel()  # stops after the first batch, in the middle of epoch 1
    assert isinstance(job.outcome, Cancelled)
    assert get_experiment(small, job.experiment_id)["status"] == "stopped"
    [partial] = list_checkpoints(small.experiment_dir(job.experiment_id) / "checkpoints")
    assert partial.batch_in_epoch == 1 and partial.val_loss is None

    resumed = resume_training(small, job.experiment_id)
    assert isinstance(run(resumed)[-1], Finished)
    assert losses(small, job.experiment_id) == pytest.approx(expected, abs=1e-6)


def test_stop_after_epoch_then_resume_appends_metrics_exactly(small: Workspace) -> None:
    reference = start_training(small, tiny(epochs=4, preview_every=0))
    run(reference)
    expected = losses(small, reference.experiment_id)

    job = start_training(small, tiny(epochs=4, preview_every=0))
    for event in job.events():
        if isinstance(event, EpochFinished) and event.epoch == 2:
            job.cancel()
    job.join(30)  # the Cancelled event comes just before the thread lets go of the workspace lock
    assert isinstance(job.outcome, Cancelled) and job.outcome.epoch == 2
    resumed = resume_training(small, job.experiment_id)
    assert isinstance(run(resumed)[-1], Finished)
    assert [r["epoch"] for r in read_metrics(small.experiment_dir(job.experiment_id))] == [1, 2, 3, 4]
    assert losses(small, job.experiment_id) == pytest.approx(expected, abs=1e-6)


def test_failure_ends_failed_keeps_checkpoints_and_resumes(small: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import distill.train as train_module

    real_save, calls = train_module.write_checkpoint, []

    def disk_full_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(train_module, "write_checkpoint", disk_full_on_second)
    job = start_training(small, tiny(epochs=3, preview_every=0))
    events = run(job)
    assert isinstance(events[-1], Failed) and "No space left on device" in events[-1].message
    record = get_experiment(small, job.experiment_id)
    assert record["status"] == "failed" and "No space left" in record["error"]
    assert [i.epoch for i in list_checkpoints(small.experiment_dir(job.experiment_id) / "checkpoints")] == [1]

    monkeypatch.setattr(train_module, "write_checkpoint", real_save)
    resumed = resume_training(small, job.experiment_id)
    assert isinstance(run(resumed)[-1], Finished)
    assert [r["epoch"] for r in read_metrics(small.experiment_dir(job.experiment_id))] == [1, 2, 3]


def test_resume_falls_back_past_a_corrupt_checkpoint_and_says_so(small: Workspace) -> None:
    job = start_training(small, tiny(epochs=3, preview_every=0, keep_recent=0))
    run(job)
    folder = small.experiment_dir(job.experiment_id)
    last = folder / "checkpoints" / "epoch-0003.pt"
    last.write_bytes(last.read_bytes()[:100])
    resumed = resume_training(small, job.experiment_id, epochs=4)
    events = run(resumed)
    warnings = [e.message for e in events if isinstance(e, Warning)]
    assert any("resuming from epoch 2" in w and "epoch-0003.pt is truncated" in w for w in warnings)
    assert [r["epoch"] for r in read_metrics(folder)] == [1, 2, 3, 4]


def test_resume_refuses_when_no_checkpoint_verifies(small: Workspace) -> None:
    job = start_training(small, tiny(epochs=2, preview_every=0))
    run(job)
    for pt in (small.experiment_dir(job.experiment_id) / "checkpoints").glob("*.pt"):
        pt.write_bytes(b"garbage")
    with pytest.raises(DistillError, match="no checkpoint passes verification"):
        resume_training(small, job.experiment_id, epochs=3)


def test_completed_run_needs_more_epochs_to_resume(small: Workspace) -> None:
    job = start_training(small, tiny(epochs=1, preview_every=0))
    run(job)
    with pytest.raises(DistillError, match="already trained all 1 epochs"):
        resume_training(small, job.experiment_id)


def test_not_enough_disk_is_refused_with_numbers(small: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    usage = shutil.disk_usage(small.root)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=10_000))
    with pytest.raises(DistillError, match=r"needs about [\d.]+ MB .*only 0.0 MB is free"):
        start_training(small, tiny())
    assert list_experiments(small) == []


def test_a_failing_preview_is_skipped(small: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import distill.previews as previews

    real = previews.write_wav

    def broken_samples(path, *args, **kwargs):
        if Path(path).name.startswith("sample-01"):
            raise RuntimeError("simulated encoder failure")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(previews, "write_wav", broken_samples)
    events = run(start_training(small, tiny(epochs=2, preview_every=1)))
    assert isinstance(events[-1], Finished)
    assert any(isinstance(e, Warning) and "simulated encoder failure" in e.message for e in events)
    assert any(isinstance(e, PreviewWritten) for e in events)


def _cli(ws: Workspace, *args: str) -> list[str]:
    return [sys.executable, "-m", "distill.cli", "--workspace", str(ws.root), *args]


def test_kill_9_then_resume_gives_the_same_losses(small: Workspace) -> None:
    flags = ["--preset", "tiny", "--epochs", "4", "--batch-size", "8", "--preview-every", "0", "--seed", "7",
             "--device", "cpu"]
    subprocess.run(_cli(small, "train", "small", "--name", "reference", *flags), check=True, capture_output=True)
    [reference] = [r for r in list_experiments(small) if r["name"] == "reference"]

    process = subprocess.Popen(_cli(small, "train", "small", "--name", "victim", *flags),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    victim = None
    while time.time() < deadline:
        victim = next((r for r in list_experiments(small) if r["name"] == "victim"), None)
        if victim and len(read_metrics(small.experiment_dir(victim["id"]))) >= 2:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert victim is not None
    assert get_experiment(small, victim["id"])["status"] == "interrupted"

    result = subprocess.run(_cli(small, "resume", victim["id"]), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert get_experiment(small, victim["id"])["status"] == "completed"
    assert losses(small, victim["id"]) == pytest.approx(losses(small, reference["id"]), abs=1e-6)
    rows = read_metrics(small.experiment_dir(victim["id"]))
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]


def test_cli_reports_user_errors_in_one_line(small: Workspace) -> None:
    result = subprocess.run(_cli(small, "train", "nope", "--preset", "tiny"), capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    listing = subprocess.run(_cli(small, "experiments", "--json"), capture_output=True, text=True, check=True)
    assert json.loads(listing.stdout) == []


def _stop_cli_training(ws: Workspace, signum: int, *train_flags: str) -> tuple[dict, str]:
    """Start `distill train` in a subprocess, send it `signum` once an epoch is done, and check
    it stopped gracefully with exit code 128 + signum. Returns the experiment and stdout."""
    process = subprocess.Popen(_cli(ws, "train", "small", "--preset", "tiny", "--epochs", "500", "--batch-size", "8",
                                    "--preview-every", "0", "--device", "cpu", *train_flags),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        records = list_experiments(ws)
        if records and read_metrics(ws.experiment_dir(records[0]["id"])):
            break
        time.sleep(0.05)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert f"{signal.Signals(signum).name}: stopping after the current batch" in stdout
    assert "Resume with: distill resume" in stdout
    record = list_experiments(ws)[0]
    assert record["status"] == "stopped"
    assert list_checkpoints(ws.experiment_dir(record["id"]) / "checkpoints")
    return record, stdout


def test_ctrl_c_stops_the_cli_gracefully_and_it_resumes(small: Workspace) -> None:
    _stop_cli_training(small, signal.SIGINT)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_the_cli_gracefully_and_it_resumes_exactly(small: Workspace, signum: int) -> None:
    record, _ = _stop_cli_training(small, signum, "--name", "cut")
    done = int(read_metrics(small.experiment_dir(record["id"]))[-1]["epoch"])

    result = subprocess.run(_cli(small, "resume", "cut", "--epochs", str(done + 2)),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert get_experiment(small, record["id"])["status"] == "completed"
    rows = read_metrics(small.experiment_dir(record["id"]))
    assert [r["epoch"] for r in rows] == list(range(1, done + 3))


def test_a_default_run_takes_13_epochs_and_fewer_on_a_large_dataset_and_says_so(ws, example_corpus, monkeypatch):
    from distill import train_config
    from distill.segments import estimate_train_windows, prepare_training_data, dataset_settings
    from distill.train import planned

    create_dataset(ws, "d", example_corpus[:8])
    config = TrainConfig(dataset="d", preset="tiny")
    assert config.epochs is None
    settled, note = planned(ws, config)
    assert settled.epochs == train_config.DEFAULT_EPOCHS == 13 and note is None
    # the estimate from durations alone is close to the windows the data gives
    estimate = estimate_train_windows(ws, "d", 32, config.val_fraction, config.seed, config.speed_augment)
    actual = prepare_training_data(ws, "d", dataset_settings(ws, "d"), 32, config.val_fraction, config.seed,
                                   config.speed_augment).train.shape[0]
    assert abs(estimate - actual) <= 0.1 * actual, (estimate, actual)
    # as if the dataset were ten times the step budget's size for 13 epochs
    steps = -(-estimate // config.batch_size)
    monkeypatch.setattr(train_config, "DEFAULT_STEP_BUDGET", steps * 5)
    settled, note = planned(ws, config)
    assert settled.epochs == 5 and "a large dataset: 5 epochs" in note
    assert planned(ws, TrainConfig(dataset="d", epochs=20))[0].epochs == 20  # asked for: as asked
