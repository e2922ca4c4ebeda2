"""Training: `TrainingJob`, which trains a ConvVAE on a background thread (its settings are
`distill.train_config.TrainConfig`; the experiments it makes, `distill.experiments`).

A job publishes events (see `distill.jobs`), writes a checkpoint after every epoch, previews
every `preview_every` epochs, and one line per epoch to metrics.jsonl. `cancel()` finishes
the current batch, checkpoints and ends as `stopped`; any exception ends it as `failed`
with the message in experiment.json. Either resumes exactly from its last checkpoint.

Exactness: every random draw comes from a generator seeded by (seed, epoch) for the batch
order and (seed, global step) for the VAE's noise, so a resumed run replays the same
numbers as an uninterrupted one. Reported losses use the final β (not the warm-up's), so
the curve is comparable from the first epoch to the last.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, AudioSettings, read_audio, resolve_device
from distill.checkpoints import (CheckpointInfo, CheckpointWriter, append_metrics, checkpoint_summary,
                                 list_checkpoints, load_checkpoint, now_iso, read_experiment, read_metrics,
                                 serialise_checkpoint, truncate_metrics, write_checkpoint, write_experiment)
from distill.datasets import clip_path, load_dataset
from distill.features import trim_onset
from distill.segments import (TrainingData, dataset_settings, estimate_train_windows, prepare_training_data,
                              split_clips)
from distill.jobs import (STOP_REQUEST_FILE, STOPPED, BackgroundJob, Cancelled, CheckpointWritten,
                          EpochFinished, Finished, PreviewWritten, Started, Warning)
from distill.experiments import WorkspaceLock, new_experiment_id, get_experiment
from distill.model import ConvVAE, ModelConfig, vae_loss
from distill.previews import PreviewItem, write_previews
from distill.train_config import DEFAULT_EPOCHS, STEP_SECONDS, TrainConfig, default_epochs
from distill.workspace import Workspace

PREVIEW_SOURCE_CLIPS = 16


_jobs: dict[Path, "TrainingJob"] = {}


def current_job(ws: Workspace) -> "TrainingJob | None":
    """The job this process started last in `ws` (running or finished), if any."""
    return _jobs.get(ws.root)


# -- disk space ----------------------------------------------------------------------------

def estimate_disk_need(config: TrainConfig, settings: AudioSettings, epochs_left: int) -> dict[str, int]:
    """Bytes this run's checkpoints and previews will take at most."""
    model_config = config.model_config()
    params = sum(p.numel() for p in ConvVAE(replace(model_config, n_mels=settings.feature_rows)).parameters())
    checkpoint = params * 4 * 3 + 256_000  # weights + Adam's two moments + the rest
    kept = epochs_left if config.keep_recent == 0 else min(epochs_left, config.keep_recent + config.keep_best)
    checkpoints = checkpoint * (kept + 1)  # + the one being written beside the old ones
    # Samples last one training window; reconstruction pairs are whole clips (say up to 10 s).
    sample_seconds = settings.frames_to_seconds(model_config.segment_frames)
    per_preview = sum(n * (int(seconds * settings.sample_rate) * 2 * settings.channels + 44)
                      for n, seconds in ((config.preview_samples, sample_seconds), (4, 10.0)))
    n_previews = epochs_left // config.preview_every + 1 if config.preview_every else 0
    return {"checkpoints": checkpoints, "previews": per_preview * n_previews,
            "total": checkpoints + per_preview * n_previews + 1_000_000}


def check_disk_space(folder: Path, need: dict[str, int]) -> None:
    free = shutil.disk_usage(folder).free
    if free < need["total"]:
        mb = lambda n: f"{n / 1e6:.1f} MB"  # noqa: E731
        raise DistillError(f"not enough disk space in {folder}: this run needs about {mb(need['total'])} "
                           f"(checkpoints {mb(need['checkpoints'])}, previews {mb(need['previews'])}) "
                           f"but only {mb(free)} is free")


# -- RNG state as plain values (weights_only-loadable) -------------------------------------

def capture_rng() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seeded(seed: int, counter: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + counter)


def augment_gain(batch: torch.Tensor, max_db: float, generator: torch.Generator) -> torch.Tensor:
    """A random level change per segment: in log-magnitude, a gain is an offset (silence stays
    at the floor). Small datasets need every honest variation they can get."""
    if max_db <= 0:
        return batch
    nats = max_db * math.log(10) / 20
    offset = (torch.rand((batch.shape[0], 1, 1), generator=generator, device=batch.device) * 2 - 1) * nats
    return torch.clamp(batch + offset, min=LOG_MEL_FLOOR)


# -- the job -------------------------------------------------------------------------------

@dataclass
class _Progress:
    """Where training stands; all of it goes into every checkpoint."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    batch_in_epoch: int = 0  # batches done in epoch + 1 (a mid-epoch stop)
    sums: tuple[float, float, int] = (0.0, 0.0, 0)  # the unfinished epoch's recon sum, KL sum, items
    best_val_loss: float | None = None


class TrainingJob(BackgroundJob):
    name = "distill-training"

    def __init__(self, ws: Workspace, experiment_id: str, config: TrainConfig,
                 resume_state: dict[str, Any] | None = None):
        super().__init__()
        self.ws = ws
        self.experiment_id = experiment_id
        self.experiment_dir = ws.experiment_dir(experiment_id)
        self.stop_file = self.experiment_dir / STOP_REQUEST_FILE  # `distill stop`, the page's Stop (distill.stopping)
        self.config = config
        self.resume_state = resume_state
        self.lock = WorkspaceLock(ws.lock_path)
        self.started_at = time.time()
        self.device = resolve_device(config.device)

    # -- bookkeeping --------------------------------------------------------------------
    def _update_record(self, **changes: Any) -> None:
        record = read_experiment(self.experiment_dir)
        record.update(changes)
        record.update(checkpoint_summary(self.experiment_dir))
        write_experiment(self.experiment_dir, record)

    def on_failure(self, message: str, details: str) -> None:
        try:  # the disk may be the very thing that failed: best effort
            self._update_record(status="failed", error=message)
        except Exception:  # noqa: BLE001
            pass

    # -- the run ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._train()
        finally:
            self.lock.release()

    def _train(self) -> None:
        config = self.config
        data, settings, model_config = self._prepare_data()
        torch.manual_seed(config.seed)
        model = ConvVAE(model_config)
        if not self.resume_state:
            model.fit_linear_path(data.train)  # on the CPU: the same start on any device
        model = model.to(self.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
        progress = self._restore(model, optimizer, scheduler)

        self._update_record(status="running", error=None, device=str(self.device), pid=os.getpid(),
                            model_config=model_config.to_dict(), audio_settings=settings.to_dict(),
                            dataset_fingerprint=data.fingerprint, train_clips=len(data.train_clips),
                            val_clips=len(data.val_clips), epoch=progress.epoch)
        self.publish(Started(experiment_id=self.experiment_id, start_epoch=progress.epoch,
                             total_epochs=config.epochs, device=str(self.device),
                             message=f"{data.train.shape[0]} training / {data.val.shape[0]} validation segments"))
        items = self._preview_items(data, settings)
        self._sample_clips = self._preview_clips(data)
        train, val = data.train.to(self.device), data.val.to(self.device)
        writer = CheckpointWriter()

        def save(val_loss: float | None, train_loss: float | None) -> Future:
            """Snapshot the state now; write it while the next epoch trains."""
            state = {
                "epoch": progress.epoch, "global_step": progress.global_step,
                "batch_in_epoch": progress.batch_in_epoch, "epoch_sums": list(progress.sums),
                "best_val_loss": progress.best_val_loss, "model_config": model_config.to_dict(),
                "audio_settings": settings.to_dict(), "train_config": config.to_dict(),
                "dataset_fingerprint": data.fingerprint, "model_state": model.state_dict(),
                "optimizer_state": optimizer.state_dict(), "scheduler_state": scheduler.state_dict(),
                "rng": capture_rng(), "metrics": {"train_loss": train_loss, "val_loss": val_loss},
            }
            return writer.submit(self._write_checkpoint, serialise_checkpoint(state), progress.epoch,
                                 progress.global_step, train_loss, val_loss, progress.batch_in_epoch)

        try:
            while progress.epoch < config.epochs:
                epoch = progress.epoch + 1
                started = time.perf_counter()
                if not self._train_epoch(model, optimizer, train, epoch, progress):
                    self._end_cancelled(save(None, None).result())
                    return
                scheduler.step()
                metrics = self._epoch_metrics(model, val, epoch, progress, optimizer)
                progress.epoch, progress.batch_in_epoch, progress.sums = epoch, 0, (0.0, 0.0, 0)
                if progress.best_val_loss is None or metrics["val_loss"] < progress.best_val_loss:
                    progress.best_val_loss = metrics["val_loss"]
                written = save(metrics["val_loss"], metrics["train_loss"])
                metrics["seconds"] = time.perf_counter() - started
                metrics["time"] = now_iso()
                append_metrics(self.experiment_dir, metrics)
                self.publish(EpochFinished(epoch=epoch, total_epochs=config.epochs, metrics=metrics,
                                           seconds=metrics["seconds"]))
                if config.preview_every and (epoch % config.preview_every == 0 or epoch == config.epochs):
                    self._write_previews(model, epoch, settings, items, data.train)
                if self.cancel_requested and epoch < config.epochs:
                    self._end_cancelled(written.result())
                    return
            writer.flush()
        finally:
            writer.close()  # a failure still waits for the write in flight before it is recorded
        self._update_record(status="completed", finished=now_iso())
        self.publish(Finished(epoch=progress.epoch))

    def _prepare_data(self) -> tuple[TrainingData, AudioSettings, ModelConfig]:
        """The dataset's segments, and the model config: fitted to the features' scale on a new
        run, the checkpoint's own on a resume (which refuses a changed dataset)."""
        config, state = self.config, self.resume_state
        settings = AudioSettings.from_dict(state["audio_settings"]) if state else dataset_settings(self.ws, config.dataset)
        model_config = ModelConfig.from_dict(state["model_config"]) if state else config.model_config()
        data = prepare_training_data(self.ws, config.dataset, settings, model_config.segment_frames,
                                     config.val_fraction, config.seed, config.speed_augment)
        if state:
            if state["dataset_fingerprint"] != data.fingerprint:
                raise DistillError(f"dataset {config.dataset!r} has changed since this experiment started "
                                   "(clips added, removed or edited), so it cannot resume exactly; "
                                   "start a new training instead")
            return data, settings, model_config
        feats = data.train
        model_config = replace(model_config, n_mels=settings.feature_rows).with_feature_stats(
            feats.mean().item(), feats.std().item(), feats.max().item() + 1.0)
        return data, settings, model_config

    def _restore(self, model: ConvVAE, optimizer: torch.optim.Optimizer, scheduler: Any) -> _Progress:
        state = self.resume_state
        if not state:
            return _Progress()
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        scheduler.load_state_dict(state["scheduler_state"])
        restore_rng(state["rng"])
        return _Progress(state["epoch"], state["global_step"], state.get("batch_in_epoch", 0),
                         tuple(state.get("epoch_sums", (0.0, 0.0, 0))), state.get("best_val_loss"))

    def _write_checkpoint(self, data: memoryview, epoch: int, global_step: int, train_loss: float | None,
                          val_loss: float | None, batch_in_epoch: int) -> CheckpointInfo:
        """On the writer thread: the checkpoint, its sidecar, pruning, then the record."""
        info = write_checkpoint(self.experiment_dir / "checkpoints", data, epoch=epoch, global_step=global_step,
                                train_loss=train_loss, val_loss=val_loss, retention=self.config.retention,
                                batch_in_epoch=batch_in_epoch)
        self._update_record(epoch=epoch)
        self.publish(CheckpointWritten(epoch=epoch, path=str(info.path), size_bytes=info.size_bytes))
        return info

    def _epoch_metrics(self, model: ConvVAE, val: torch.Tensor, epoch: int, progress: _Progress,
                       optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        recon_sum, kl_sum, count = progress.sums
        beta = self.config.beta
        return {"epoch": epoch, "train_loss": (recon_sum + beta * kl_sum) / count, **self._validate(model, val),
                "train_recon": recon_sum / count, "train_kl": kl_sum / count,
                "beta": self.config.kl_schedule.beta_at(epoch), "lr": optimizer.param_groups[0]["lr"],
                "global_step": progress.global_step}

    def _train_epoch(self, model: ConvVAE, optimizer: torch.optim.Optimizer, train: torch.Tensor, epoch: int,
                     progress: _Progress) -> bool:
        """One epoch (or the rest of one, after a mid-epoch resume). False when cancelled
        before its last batch."""
        config = self.config
        model.train()
        beta = config.kl_schedule.beta_at(epoch)
        order = torch.randperm(train.shape[0], generator=_seeded(config.seed, epoch))
        batches = list(order.split(config.batch_size))
        recon_sum, kl_sum, count = progress.sums
        for index in range(progress.batch_in_epoch, len(batches)):
            noise = _seeded(config.seed, progress.global_step, train.device)
            batch = augment_gain(train[batches[index].to(train.device)], config.gain_augment_db, noise)
            decoded, mu, logvar = model(batch, generator=noise)
            terms = vae_loss(batch, decoded, mu, logvar, beta, config.free_bits, model.config.feature_max,
                             config.spectral_weight)
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            n = batch.shape[0]
            recon_sum, kl_sum, count = recon_sum + terms.recon.item() * n, kl_sum + terms.kl.item() * n, count + n
            progress.global_step += 1
            progress.batch_in_epoch, progress.sums = index + 1, (recon_sum, kl_sum, count)
            if self.cancel_requested and index + 1 < len(batches):
                return False
        return True

    @torch.no_grad()
    def _validate(self, model: ConvVAE, val: torch.Tensor) -> dict[str, float]:
        model.eval()
        recon_sum = kl_sum = 0.0
        for batch in val.split(64):
            mu, logvar = model.encode(batch)
            terms = vae_loss(batch, model.decode(mu), mu, logvar, self.config.beta, 0.0, model.config.feature_max,
                             self.config.spectral_weight)
            recon_sum += terms.recon.item() * batch.shape[0]
            kl_sum += terms.kl.item() * batch.shape[0]
        model.train()
        n = max(1, val.shape[0])
        return {"val_loss": (recon_sum + self.config.beta * kl_sum) / n, "val_recon": recon_sum / n,
                "val_kl": kl_sum / n}

    def _preview_clips(self, data: TrainingData) -> list[tuple[str, torch.Tensor]]:
        """Up to PREVIEW_SOURCE_CLIPS training clips (name, log-mel from onset): what the
        preview's random sounds are made from, as generation makes them from all clips."""
        names = [n for n in data.train_clips if n in data.clip_features][:PREVIEW_SOURCE_CLIPS]
        return [(name, trim_onset(data.clip_features[name])) for name in names]

    def _preview_items(self, data: TrainingData, settings: AudioSettings) -> list[PreviewItem]:
        """The first two validation clips, whole, with their real audio at its own level."""
        items = []
        for clip in data.val_clips[:2]:
            try:
                items.append(PreviewItem(clip, read_audio(clip_path(self.ws, self.config.dataset, clip),
                                                          settings.sample_rate, settings.channels)))
            except Exception as exc:  # noqa: BLE001
                self.publish(Warning(message=f"no reconstruction preview for {clip}: {exc}"))
        return items

    def _write_previews(self, model: ConvVAE, epoch: int, settings: AudioSettings, items: list[PreviewItem],
                        train: torch.Tensor) -> None:
        paths, errors = write_previews(model, self.experiment_dir, epoch, settings, items, train,
                                       self.config.preview_samples, seed=self.config.seed + epoch,
                                       sample_clips=self._sample_clips)
        for message in errors:
            self.publish(Warning(message=message))
        if paths:
            self.publish(PreviewWritten(epoch=epoch, paths=tuple(str(p) for p in paths)))

    def _end_cancelled(self, info: CheckpointInfo) -> None:
        self._update_record(status=STOPPED)
        self.publish(Cancelled(epoch=info.epoch, checkpoint=str(info.path)))


# -- starting and resuming -----------------------------------------------------------------

def _launch(ws: Workspace, job: TrainingJob, settings: AudioSettings, epochs_left: int) -> TrainingJob:
    check_disk_space(ws.experiments_dir, estimate_disk_need(job.config, settings, epochs_left))
    job.lock.acquire(job.experiment_id)
    try:
        _jobs[ws.root] = job
        job._update_record(status="running", error=None)
        job.start()
    except BaseException:
        job.lock.release()
        raise
    return job


def planned(ws: Workspace, config: TrainConfig) -> tuple[TrainConfig, str | None]:
    """`config` with its epochs decided (`default_epochs` when not given), and a sentence for
    the user when a large dataset got fewer than DEFAULT_EPOCHS."""
    if config.epochs is not None:
        return config, None
    windows = estimate_train_windows(ws, config.dataset, config.model_config().segment_frames, config.val_fraction,
                                     config.seed, config.speed_augment)
    steps = -(-windows // config.batch_size)
    epochs = default_epochs(steps)
    note = None
    if epochs < DEFAULT_EPOCHS:
        note = (f"a large dataset: {epochs} epochs of about {steps:,} steps each (not {DEFAULT_EPOCHS}), so the "
                f"default run ends in about {max(1, round(epochs * steps * STEP_SECONDS / 60))} min on 2 CPU cores; "
                "set the epochs to train longer")
    return replace(config, epochs=epochs), note


def start_training(ws: Workspace, config: TrainConfig) -> TrainingJob:
    """Create an experiment and start training it on a background thread. Refuses (with a
    DistillError) when another job trains in this workspace, the dataset is unusable, or the
    disk is too full."""
    # Fail here, not on the job's thread, when the dataset cannot be split for training.
    split_clips([clip.name for clip in load_dataset(ws, config.dataset).usable_clips], config.val_fraction,
                config.seed)
    resolve_device(config.device)
    config, note = planned(ws, config)
    name = config.name or config.dataset
    experiment_id = new_experiment_id(ws, name)
    folder = ws.experiment_dir(experiment_id)
    folder.mkdir(parents=True)
    write_experiment(folder, {"id": experiment_id, "name": name, "dataset": config.dataset,
                              "config": config.to_dict(), "status": "created", "created": now_iso(),
                              "epoch": 0})
    job = TrainingJob(ws, experiment_id, replace(config, name=name))
    if note:
        job.publish(Warning(message=note))
    try:
        return _launch(ws, job, dataset_settings(ws, config.dataset), config.epochs)
    except DistillError:
        shutil.rmtree(folder, ignore_errors=True)  # nothing happened yet: leave no empty experiment
        raise


def find_resume_checkpoint(experiment_dir: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The newest checkpoint that passes verification, and a message for each newer one that
    did not. (None, []) when the experiment has no checkpoint at all. Raises when there are
    checkpoints but none is usable: a resume never quietly starts from scratch."""
    infos = list_checkpoints(experiment_dir / "checkpoints")
    problems: list[str] = []
    for info in reversed(infos):
        try:
            return load_checkpoint(info.path), problems
        except DistillError as exc:
            problems.append(str(exc))
    if infos:
        raise DistillError(f"cannot resume {experiment_dir.name}: no checkpoint passes verification ("
                           + "; ".join(problems) + "). Start a new training instead.")
    return None, []


def resume_training(ws: Workspace, experiment_id: str, epochs: int | None = None) -> TrainingJob:
    """Resume a stopped, failed or interrupted experiment (or extend a completed one with
    more `epochs`) from its newest verifiable checkpoint, in the same experiment.
    `experiment_id` may be anything `resolve_experiment` accepts."""
    record = get_experiment(ws, experiment_id)
    experiment_id = record["id"]
    config = TrainConfig.from_dict(record["config"])
    if record["status"] == "running":
        raise DistillError(f"experiment {experiment_id} is running now")
    if epochs is not None:
        config = replace(config, epochs=epochs)
    state, problems = find_resume_checkpoint(ws.experiment_dir(experiment_id))
    done = state["epoch"] if state else 0
    if done >= config.epochs:
        raise DistillError(f"experiment {experiment_id} has already trained all {config.epochs} epochs; "
                           "pass more epochs to train further")
    job = TrainingJob(ws, experiment_id, config, resume_state=state)
    folder = ws.experiment_dir(experiment_id)
    truncate_metrics(folder, done)
    if problems:
        job.publish(Warning(message=f"resuming from epoch {done}: newer checkpoints failed verification: "
                                    + "; ".join(problems)))
    if state is None:
        if read_metrics(folder):
            raise DistillError(f"cannot resume {experiment_id}: its checkpoints are gone")
        job.publish(Warning(message="no checkpoint was written yet: starting this experiment from epoch 1"))
    write_experiment(folder, {**record, "config": config.to_dict()})
    settings = AudioSettings.from_dict(state["audio_settings"]) if state else dataset_settings(ws, config.dataset)
    return _launch(ws, job, settings, config.epochs - done)
