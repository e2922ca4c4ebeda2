"""Stopping a training from outside the process that runs it, and the web app's own exit:
a CLI run stopped by the engine call the page's Stop makes (and by `distill stop`), a
`distill-ui` stopped by SIGTERM mid-training; each ends `stopped` with a checkpoint and resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from distill import DistillError
from distill.checkpoints import list_checkpoints, read_metrics
from distill.cli.progress import EXIT_STOP_REQUESTED
from distill.datasets import create_dataset
from distill.jobs import STOP_REQUEST_FILE, Cancelled, Started, StopRequested, Warning, write_stop_request
from distill.stopping import request_stop, running_experiment, stop_request
from distill.experiments import get_experiment
from distill.train import resume_training, start_training
from distill.train_config import TrainConfig
from distill.workspace import Workspace
from conftest import free_port, wait_until

pytestmark = pytest.mark.slow

TINY_FLAGS = ["--preset", "tiny", "--epochs", "500", "--batch-size", "8", "--preview-every", "0", "--device", "cpu"]


@pytest.fixture
def small(ws: Workspace, example_corpus: list[Path]) -> Workspace:
    create_dataset(ws, "small", example_corpus[::4][:6])
    return ws


def _cli(ws: Workspace, *args: str) -> list[str]:
    return [sys.executable, "-m", "distill.cli", "--workspace", str(ws.root), *args]


def _start_cli_training(ws: Workspace, name: str) -> tuple[subprocess.Popen, str]:
    """`distill train` in a subprocess; returns it and its experiment id once it trains."""
    process = subprocess.Popen(_cli(ws, "train", "small", "--name", name, *TINY_FLAGS),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        experiment_id = wait_until(lambda: running_experiment(ws), timeout=120)
    except AssertionError:
        process.kill()
        raise AssertionError(f"the CLI training never started: {process.communicate()}") from None
    return process, experiment_id


def _assert_stopped_with_a_checkpoint(ws: Workspace, experiment_id: str) -> None:
    record = get_experiment(ws, experiment_id)
    assert record["status"] == "stopped", record["status"]
    assert list_checkpoints(ws.experiment_dir(experiment_id) / "checkpoints")
    assert not (ws.experiment_dir(experiment_id) / STOP_REQUEST_FILE).exists()  # the request was used up
    assert running_experiment(ws) is None


def test_a_cli_training_stops_when_another_process_asks_and_resumes(small: Workspace) -> None:
    process, experiment_id = _start_cli_training(small, "far")
    wait_until(lambda: read_metrics(small.experiment_dir(experiment_id)), timeout=120)  # an epoch to resume after
    request = request_stop(small, by="the test")  # what the page's Stop calls
    assert request.experiment_id == experiment_id
    assert stop_request(small, experiment_id).by == "the test"  # what the page shows meanwhile
    stdout, stderr = process.communicate(timeout=120)

    assert process.returncode == EXIT_STOP_REQUESTED, stderr
    assert "stop requested by the test: stopping after the current batch" in stdout
    assert f"Resume with: distill resume {experiment_id}" in stdout
    _assert_stopped_with_a_checkpoint(small, experiment_id)

    done = int(read_metrics(small.experiment_dir(experiment_id))[-1]["epoch"])
    result = subprocess.run(_cli(small, "resume", "far", "--epochs", str(done + 1)), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert get_experiment(small, experiment_id)["status"] == "completed"
    assert [r["epoch"] for r in read_metrics(small.experiment_dir(experiment_id))] == list(range(1, done + 2))


def test_distill_stop_stops_a_training_in_another_terminal_and_waits_for_it(small: Workspace) -> None:
    process, experiment_id = _start_cli_training(small, "there")
    result = subprocess.run(_cli(small, "stop", "there"), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert f"asked {experiment_id} to stop after its current batch" in result.stdout
    assert f"{experiment_id}: stopped after epoch" in result.stdout and "Resume with" in result.stdout
    assert process.wait(60) == EXIT_STOP_REQUESTED
    _assert_stopped_with_a_checkpoint(small, experiment_id)


def test_a_stop_request_needs_a_running_training(small: Workspace) -> None:
    with pytest.raises(DistillError, match="nothing is training"):
        request_stop(small)
    job = start_training(small, TrainConfig(dataset="small", preset="tiny", epochs=1, preview_every=0, device="cpu"))
    job.join(300)
    with pytest.raises(DistillError, match=f"experiment {job.experiment_id} is not training \\(it is completed\\)"):
        request_stop(small, job.experiment_id)
    assert not (small.experiment_dir(job.experiment_id) / STOP_REQUEST_FILE).exists()


def test_a_leftover_request_does_not_stop_the_next_run(small: Workspace) -> None:
    """A request that found its run already gone (or a crash before it was used) must not
    stop the resumed run at its first batch."""
    job = start_training(small, TrainConfig(dataset="small", preset="tiny", epochs=1, preview_every=0, device="cpu"))
    job.join(300)
    write_stop_request(small.experiment_dir(job.experiment_id) / STOP_REQUEST_FILE, "a crashed page")
    resumed = resume_training(small, job.experiment_id, epochs=2)
    events = list(resumed.events(timeout=300))
    resumed.join(30)
    assert not any(isinstance(e, (StopRequested, Cancelled)) for e in events)
    assert get_experiment(small, job.experiment_id)["status"] == "completed"


def test_the_job_polls_the_request_between_batches(small: Workspace) -> None:
    """In-process, too, the file alone stops the job (the page in another process writes only the file)."""
    job = start_training(small, TrainConfig(dataset="small", preset="tiny", epochs=50, batch_size=4,
                                            preview_every=0, device="cpu"))
    wait_until(lambda: list_checkpoints(job.experiment_dir / "checkpoints"), timeout=120)
    write_stop_request(job.stop_file, "a page elsewhere")
    events = list(job.events(timeout=120))
    job.join(30)
    assert [e.by for e in events if isinstance(e, StopRequested)] == ["a page elsewhere"]
    assert isinstance(events[-1], Cancelled)
    _assert_stopped_with_a_checkpoint(small, job.experiment_id)


def test_distill_ui_stops_and_checkpoints_its_training_on_sigterm(tmp_path: Path, example_corpus: list[Path]) -> None:
    from gradio_client import Client

    root = tmp_path / "ws"
    create_dataset(Workspace.open(root), "small", example_corpus[::4][:6])
    script = Path(sys.executable).with_name("distill-ui")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ui.app"]
    port = free_port()
    process = subprocess.Popen(command + ["--workspace", str(root), "--port", str(port), "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:
            if line.startswith("Workspace:"):
                break
        ws = Workspace.open(root)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        # The tiny preset, far more epochs than the test waits for; stopped wherever it is (a
        # stop in the middle of an epoch checkpoints too).
        client.submit("small", "tiny", 500, 8, 0.001, 0, 0, "cpu", "", api_name="/train")
        experiment_id = wait_until(lambda: running_experiment(ws), timeout=120)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert f"{experiment_id}: stopped at epoch" in output, output
    _assert_stopped_with_a_checkpoint(ws, experiment_id)
    # It resumes from that checkpoint (stopped again as soon as it has started: the point is the restore).
    record = get_experiment(ws, experiment_id)
    job = resume_training(ws, experiment_id)
    started = next(e for e in job.events(timeout=300) if isinstance(e, Started))
    job.cancel()
    job.join(300)
    assert started.start_epoch == record["epoch"] and isinstance(job.outcome, Cancelled)
    assert not any(isinstance(e, Warning) for e in job.history)  # no "starting from epoch 1"
