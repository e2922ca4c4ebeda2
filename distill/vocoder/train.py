"""`VocoderTrainingJob`: trains a model's own vocoder on a background thread, then bundles it
into the model file.

The job publishes the same events as the VAE's (`distill.jobs`). Its state lives in
`<workspace>/vocoder_runs/<model>/` (never inside a dataset folder):

    run.json                  status, config, the model it belongs to, Griffin-Lim's figures
    metrics.jsonl             one line per epoch: losses, held-out MR-STFT distance and LSD
    checkpoints/epoch-0004.pt (+ .meta.json)   generator, discriminators, optimisers, RNG
    previews/epoch-0005/clip-01-{original,griffin-lim,vocoder}.wav

`cancel()` finishes the current step, checkpoints and ends as `stopped`; `resume=True`
continues from the newest checkpoint that verifies, exactly (segments are drawn from a
generator seeded by the step).

A run with `init="pretrained"` (the default preset) starts from the vocoder Distill ships and
fine-tunes it; its starting figures on the held-out clips are recorded first. At the end the
epoch that scored best on the held-out clips (the pretrained weights themselves when no
epoch beat them) goes into the model file's vocoder slot (`modelfile.attach_vocoder`, an
atomic rewrite), with the names of the held-out clips and both sets of figures.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill import DistillError
from distill.audio import AudioSettings, griffin_lim, log_mel, resolve_device, write_wav
from distill.checkpoints import (Retention, append_metrics, best_checkpoints, list_checkpoints, load_checkpoint,
                                 now_iso, read_metrics, save_checkpoint, truncate_metrics)
from distill.jobs import (STOPPED, BackgroundJob, Cancelled, CheckpointWritten, EpochFinished, Finished,
                          PreviewWritten, Started, Warning, status_word)
from distill.modelfile import attach_vocoder, load_model_file, resolve_model
from distill.experiments import WorkspaceLock
from distill.train import capture_rng, find_resume_checkpoint, restore_rng
from distill.vocoder import losses
from distill.vocoder.config import VocoderConfig, vocoder_preset
from distill.vocoder.data import VocoderData, load_vocoder_data, sample_batch, training_split, vae_reconstructions
from distill.vocoder.discriminators import Discriminators
from distill.vocoder.network import Vocoder, vocoder_slot
from distill.vocoder.shipped import shipped_slot, why_not_pretrained
from distill.atomic import atomic_write_json
from distill.workspace import Workspace, read_json, sanitize_filename

RUNS_DIR = "vocoder_runs"
RUN_FILE = "run.json"
PREVIEWS_DIR = "previews"


def vocoder_run_dir(ws: Workspace, model_name: str) -> Path:
    return ws.root / RUNS_DIR / sanitize_filename(model_name, "model")


def preview_dir(ws: Workspace, model_name: str, epoch: int) -> Path:
    """Where a run's previews of `epoch` go (`listen.list_vocoder_previews` reads them back)."""
    return vocoder_run_dir(ws, model_name) / PREVIEWS_DIR / f"epoch-{epoch:04d}"


def read_run(ws: Workspace, model_name: str) -> dict[str, Any] | None:
    """The vocoder run record of a model (status, epochs, figures), or None."""
    path = vocoder_run_dir(ws, model_name) / RUN_FILE
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    if "status" in record:  # an older run says "cancelled": it reads "stopped"
        record["status"] = status_word(record["status"])
    return record


def read_vocoder_metrics(ws: Workspace, model_name: str) -> list[dict[str, Any]]:
    """One row per finished epoch (the loss curve)."""
    return read_metrics(vocoder_run_dir(ws, model_name))


@dataclass
class _Progress:
    epoch: int = 0  # epochs completed
    global_step: int = 0
    batch_in_epoch: int = 0  # steps done in epoch + 1 (a mid-epoch stop)
    sums: dict[str, float] | None = None  # the unfinished epoch's loss sums
    best_val: float | None = None
    seconds: float = 0.0  # training time so far, over every session


def train_step(config: VocoderConfig, generator: Vocoder, critics: Discriminators, opt_g, opt_d,
               mels: torch.Tensor, waves: torch.Tensor, gan: bool) -> dict[str, float]:
    """One optimiser step of the generator (and of the critics when `gan`): the losses, as
    floats. Shared by a model's own vocoder training and the pretraining (`pretrain.py`)."""
    settings = generator.settings
    spec = generator.spectrum(mels)
    output = generator.waveform(spec, mels)
    target_spec = generator.stft(waves)[..., :spec.shape[-1]]
    terms: dict[str, torch.Tensor] = {
        "spectral": losses.spectral_loss(spec, target_spec),
        "phase": losses.phase_loss(spec, target_spec),
        "mel": losses.mel_loss(output, log_mel(waves, settings), settings),
        "mrstft": losses.mrstft_loss(output, waves),
    }
    recon = (config.spectral_weight * terms["spectral"] + config.phase_weight * terms["phase"]
             + config.mel_weight * terms["mel"] + config.stft_weight * terms["mrstft"])
    total = recon
    if gan:
        real_waves, fake_waves = waves[:config.gan_batch_size], output[:config.gan_batch_size]
        disc = losses.discriminator_loss(critics(real_waves), critics(fake_waves.detach()))
        opt_d.zero_grad(set_to_none=True)
        disc.backward()
        torch.nn.utils.clip_grad_norm_(critics.parameters(), config.grad_clip)
        opt_d.step()
        with torch.no_grad():  # the real side only supplies feature-matching targets
            real = critics(real_waves)
        fake = critics(fake_waves)
        terms["adv"] = losses.generator_adversarial_loss(fake)
        terms["fm"] = losses.feature_matching_loss(real, fake)
        terms["disc"] = disc.detach()
        total = recon + config.adv_weight * terms["adv"] + config.fm_weight * terms["fm"]
    opt_g.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(generator.parameters(), config.grad_clip)
    opt_g.step()
    values = {k: float(v.detach()) for k, v in terms.items()}
    values["recon"] = float(recon.detach())
    return values


class VocoderTrainingJob(BackgroundJob):
    """Train `model_path`'s vocoder for `epochs` epochs in all (a resumed run counts the epochs
    already done). Refuses, with a DistillError, to replace a vocoder the model already has
    unless `force`, and to start over an unfinished run unless `force` (or to `resume` it)."""

    name = "distill-vocoder"

    def __init__(self, ws: Workspace, model_path: str | Path, config: VocoderConfig | None = None,
                 epochs: int | None = None, force: bool = False, resume: bool = False, device: str = "auto"):
        super().__init__()
        self.ws = ws
        self.model_path = resolve_model(ws, model_path)
        self.model_name = self.model_path.stem
        self.run_dir = vocoder_run_dir(ws, self.model_name)
        self.device = resolve_device(device)
        self.lock = WorkspaceLock(ws.lock_path)
        self._val_vae_mels: dict[str, torch.Tensor] | None = None  # set by run() when the config learns from them
        model_file = load_model_file(self.model_path, mmap=True)
        self.model_id = str(model_file.metadata.get("id", ""))
        training_split(ws, model_file)  # the model's dataset must be here: fail now, not on the thread
        record = read_run(ws, self.model_name) or {}
        has_checkpoints = bool(list_checkpoints(self.run_dir / "checkpoints"))
        continuing = resume and has_checkpoints and record.get("model_id") == self.model_id
        if resume and not has_checkpoints:
            raise DistillError(f"model {self.model_name!r} has no vocoder training to resume; start one without --resume")
        if resume and has_checkpoints and not continuing:
            raise DistillError(f"the vocoder run in {self.run_dir} was for another model file called "
                               f"{self.model_name!r}; start a new one with --force")
        existing = model_file.vocoder
        if existing is not None and not force:
            same_run = continuing and (existing.get("training") or {}).get("run_id") == record.get("run_id")
            if not same_run:
                training = existing.get("training") or {}
                raise DistillError(f"model {self.model_name!r} already has a vocoder ({training.get('epochs', '?')} "
                                   f"epochs, trained {training.get('trained_at', '?')}); training a new one "
                                   "replaces it: use --force (or confirm in the UI)")
        if not resume and has_checkpoints and record.get("status") not in ("completed", None) and not force:
            raise DistillError(f"model {self.model_name!r} has an unfinished vocoder training (epoch "
                               f"{record.get('epoch', '?')} of {record.get('epochs', '?')}): use --resume to "
                               "continue it, or --force to start over")
        self.resume = continuing
        self.config = VocoderConfig.from_dict(record["config"]) if continuing else (config or vocoder_preset("default"))
        self.epochs = int(epochs if epochs is not None else (record.get("epochs") if continuing else self.config.epochs))
        if self.epochs < 1:
            raise DistillError("epochs must be at least 1")
        self.start_slot = self._pretrained_start(model_file) if self.config.init == "pretrained" else None
        if continuing and self.epochs <= int(record.get("epoch", 0)) and record.get("status") == "completed":
            raise DistillError(f"the vocoder of {self.model_name!r} has already trained {record.get('epoch')} "
                               "epochs; pass more --epochs to train further")
        self.run_id = record.get("run_id") if continuing else uuid.uuid4().hex

    def _pretrained_start(self, model_file) -> dict[str, Any]:
        """The shipped weights a fine-tune starts from; a clear refusal when they cannot be."""
        reason = why_not_pretrained(model_file.audio_settings.mono)
        if reason:
            raise DistillError(f"cannot fine-tune the pretrained vocoder for {self.model_name!r}: {reason}. "
                               "Train one from scratch instead (preset 'scratch')")
        slot = shipped_slot()
        if slot["config"]["architecture"] != self.config.architecture():
            raise DistillError("this vocoder preset's architecture differs from the pretrained vocoder's, so it "
                               "cannot start from it: use init 'scratch' for it")
        return slot

    # -- bookkeeping ---------------------------------------------------------------------
    def _record(self, **changes: Any) -> dict[str, Any]:
        path = self.run_dir / RUN_FILE
        try:
            record = read_json(path)
        except (OSError, ValueError):
            record = {}
        record.update(changes, updated=now_iso())
        atomic_write_json(path, record)
        return record

    def on_failure(self, message: str, details: str) -> None:
        try:
            self._record(status="failed", error=message)
        except Exception:  # noqa: BLE001 - the disk may be what failed
            pass

    def start(self) -> "VocoderTrainingJob":
        self.lock.acquire(f"vocoder:{self.model_name}")
        try:
            if not self.resume:
                shutil.rmtree(self.run_dir, ignore_errors=True)  # a fresh run: no stale checkpoints or curve
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._record(model=self.model_name, model_path=str(self.model_path), model_id=self.model_id,
                         run_id=self.run_id, config=self.config.to_dict(), epochs=self.epochs, status="running",
                         error=None, device=str(self.device), pid=os.getpid(),
                         **({} if self.resume else {"created": now_iso(), "epoch": 0}))
            super().start()
        except BaseException:
            self.lock.release()
            raise
        return self

    def run(self) -> None:
        try:
            self._train()
        finally:
            self.lock.release()

    # -- the run -------------------------------------------------------------------------
    def _train(self) -> None:
        config, device = self.config, self.device
        model_file = load_model_file(self.model_path)
        settings = model_file.audio_settings.mono  # the vocoder voices the mid
        data = load_vocoder_data(self.ws, model_file)
        state = None
        if self.resume:
            state, problems = find_resume_checkpoint(self.run_dir)
            for problem in problems:
                self.publish(Warning(message=f"skipped a checkpoint that failed verification: {problem}"))
            if state is not None and state.get("dataset_fingerprint") != data.fingerprint:
                raise DistillError(f"dataset {data.dataset!r} has changed since this vocoder training started, so "
                                   "it cannot resume exactly; start over with --force")
        torch.manual_seed(config.seed)
        generator = Vocoder(config, settings).to(device)
        critics = Discriminators(config).to(device)
        opt_g = torch.optim.AdamW(generator.parameters(), config.learning_rate, betas=config.adam_betas)
        opt_d = torch.optim.AdamW(critics.parameters(), config.learning_rate, betas=config.adam_betas)
        sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, config.lr_decay)
        progress = _Progress()
        if self.start_slot is not None:
            generator.load_state_dict(self.start_slot["state"])
        if state is not None:
            generator.load_state_dict(state["generator"])
            critics.load_state_dict(state["discriminators"])
            opt_g.load_state_dict(state["opt_g"])
            opt_d.load_state_dict(state["opt_d"])
            sched_g.load_state_dict(state["sched_g"])
            restore_rng(state["rng"])
            progress = _Progress(state["epoch"], state["global_step"], state["batch_in_epoch"],
                                 state.get("sums"), state.get("best_val"), float(state.get("seconds", 0.0)))
        truncate_metrics(self.run_dir, progress.epoch)
        reference = self._griffin_lim_reference(data, settings)
        self._record(epoch=progress.epoch, dataset=data.dataset, train_clips=len(data.train),
                     val_clips=len(data.val), held_out=[clip.name for clip in data.val], griffin_lim=reference)
        if config.vae_finetune_from_epoch:  # what the held-out clips sound like behind the model
            self._val_vae_mels = vae_reconstructions(model_file, data.val[:config.val_clips], device)
        if self.start_slot is not None and state is None:
            self._record(start=self._validate(generator, data, settings))  # the pretrained weights' own figures
        start = (read_run(self.ws, self.model_name) or {}).get("start")
        self.publish(Started(experiment_id=f"vocoder:{self.model_name}", start_epoch=progress.epoch,
                             total_epochs=self.epochs, device=str(device),
                             message=f"vocoder for {self.model_name}: {len(data.train)} training clips, "
                                     f"{len(data.val)} held out; Griffin-Lim there: MR-STFT "
                                     f"{reference['mrstft']:.3f}, LSD {reference['lsd']:.2f} dB"
                                     + (f"; the pretrained vocoder: MR-STFT {start['val_loss']:.3f}, "
                                        f"LSD {start['val_lsd']:.2f} dB" if start else "")))
        vae_mels: dict[str, torch.Tensor] | None = None
        parts = (generator, critics, opt_g, opt_d, sched_g)
        while progress.epoch < self.epochs:
            epoch = progress.epoch + 1
            if config.vae_finetune_from_epoch and epoch >= config.vae_finetune_from_epoch and vae_mels is None:
                vae_mels = vae_reconstructions(model_file, data.train, device)
            started = time.perf_counter()
            done = self._train_epoch(parts, data, settings, progress, vae_mels)
            progress.seconds += time.perf_counter() - started
            if not done:
                info = self._save(parts, progress, data, None, None)
                self._end_cancelled(progress, str(info.path))
                return
            sched_g.step()
            for group in opt_d.param_groups:  # the critics follow the generator's schedule
                group["lr"] = opt_g.param_groups[0]["lr"]
            sums = progress.sums or {}
            steps = max(1.0, sums.get("steps", 0.0))
            metrics = {"epoch": epoch, **{k: v / steps for k, v in sums.items() if k != "steps"}}
            metrics["train_loss"] = metrics.pop("recon", float("nan"))
            metrics.update(self._validate(generator, data, settings))
            metrics.update(lr=opt_g.param_groups[0]["lr"], global_step=progress.global_step,
                           gan=progress.global_step > config.gan_start_step, vae_mels=vae_mels is not None)
            progress.epoch, progress.batch_in_epoch, progress.sums = epoch, 0, None
            if progress.best_val is None or metrics["val_loss"] < progress.best_val:
                progress.best_val = metrics["val_loss"]
            info = self._save(parts, progress, data, metrics["train_loss"], metrics["val_loss"])
            metrics.update(seconds=time.perf_counter() - started, time=now_iso())
            append_metrics(self.run_dir, metrics)
            self._record(epoch=epoch, val_loss=metrics["val_loss"], val_lsd=metrics["val_lsd"],
                         training_seconds=round(progress.seconds, 1))
            self.publish(EpochFinished(epoch=epoch, total_epochs=self.epochs, metrics=metrics,
                                       seconds=metrics["seconds"]))
            if config.preview_every and (epoch % config.preview_every == 0 or epoch == self.epochs):
                self._write_previews(generator, data, settings, epoch)
            if self.cancel_requested and epoch < self.epochs:
                self._end_cancelled(progress, str(info.path))
                return
        self._bundle(generator, data, progress)
        self._record(status="completed", finished=now_iso())
        self.publish(Finished(epoch=progress.epoch))

    def _train_epoch(self, parts: tuple, data: VocoderData, settings: AudioSettings, progress: _Progress,
                     vae_mels: dict[str, torch.Tensor] | None) -> bool:
        """The rest of the current epoch; False when cancelled before its last step."""
        generator, critics, opt_g, opt_d, _ = parts
        config, device = self.config, self.device
        generator.train()
        critics.train()
        sums = dict(progress.sums or {})
        for index in range(progress.batch_in_epoch, config.steps_per_epoch):
            rng = torch.Generator().manual_seed(config.seed * 1_000_003 + progress.global_step)
            mels, waves = sample_batch(data.train, config, settings, rng)
            if vae_mels is not None and config.vae_mel_share > 0:
                swap = torch.rand(mels.shape[0], generator=rng) < config.vae_mel_share
                if swap.any():
                    fake_mels, _ = sample_batch(data.train, config, settings,
                                                torch.Generator().manual_seed(config.seed * 1_000_003 + progress.global_step),
                                                mels=vae_mels)
                    mels[swap] = fake_mels[swap]
            terms = self._step(generator, critics, opt_g, opt_d, mels.to(device), waves.to(device),
                               gan=progress.global_step >= config.gan_start_step)
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value
            sums["steps"] = sums.get("steps", 0.0) + 1
            progress.global_step += 1
            progress.batch_in_epoch, progress.sums = index + 1, sums
            if self.cancel_requested and index + 1 < config.steps_per_epoch:
                return False
        return True

    def _step(self, generator: Vocoder, critics: Discriminators, opt_g, opt_d, mels: torch.Tensor,
              waves: torch.Tensor, gan: bool) -> dict[str, float]:
        return train_step(self.config, generator, critics, opt_g, opt_d, mels, waves, gan)

    # -- measuring, previews, saving -----------------------------------------------------
    def _griffin_lim_reference(self, data: VocoderData, settings: AudioSettings) -> dict[str, float]:
        return losses.held_out_scores(data.val[:self.config.val_clips], settings,
                                      lambda mel: griffin_lim(mel, settings), self.config.val_seconds)

    def _validate(self, generator: Vocoder, data: VocoderData, settings: AudioSettings) -> dict[str, float]:
        """The held-out clips' MR-STFT distance and LSD from their true log-mels. A run that
        learns from the model's reconstructions is judged as it is heard too: `val_loss` is then
        the mean of the true-mel distance and the end-to-end one (the model's reconstruction of
        each held-out clip, voiced, against the clip), so an epoch that helps behind the model
        is not passed over for costing a little on true mels."""
        def score(mels: dict[str, torch.Tensor] | None) -> dict[str, float]:
            return losses.held_out_scores(data.val[:self.config.val_clips], settings,
                                          lambda mel: generator.synthesize(mel.to(self.device)).cpu(),
                                          self.config.val_seconds, mels)
        try:
            true = score(None)
            behind = score(self._val_vae_mels) if self._val_vae_mels is not None else None
        finally:
            generator.train()
        if behind is None:
            return {"val_loss": true["mrstft"], "val_lsd": true["lsd"]}
        return {"val_loss": (true["mrstft"] + behind["mrstft"]) / 2, "val_lsd": true["lsd"],
                "val_true_mrstft": true["mrstft"], "val_end_to_end_mrstft": behind["mrstft"],
                "val_end_to_end_lsd": behind["lsd"]}

    def _write_previews(self, generator: Vocoder, data: VocoderData, settings: AudioSettings, epoch: int) -> None:
        folder = preview_dir(self.ws, self.model_name, epoch)
        paths: list[str] = []
        try:
            for index, (_, mel, wave) in enumerate(
                    losses.excerpts(data.val[:self.config.preview_clips], settings, self.config.preview_seconds), start=1):
                for label, audio in (("original", wave), ("griffin-lim", griffin_lim(mel, settings)),
                                     ("vocoder", generator.synthesize(mel.to(self.device)).cpu())):
                    paths.append(str(write_wav(folder / f"clip-{index:02d}-{label}.wav", audio, settings.sample_rate)))
        except Exception as exc:  # noqa: BLE001 - a preview must never stop training
            self.publish(Warning(message=f"vocoder preview at epoch {epoch} failed: {exc}"))
        finally:
            generator.train()
        if paths:
            self.publish(PreviewWritten(epoch=epoch, paths=tuple(paths)))

    def _save(self, parts: tuple, progress: _Progress, data: VocoderData, train_loss: float | None,
              val_loss: float | None):
        generator, critics, opt_g, opt_d, sched_g = parts
        state = {
            "generator": generator.state_dict(), "discriminators": critics.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "sched_g": sched_g.state_dict(), "rng": capture_rng(),
            "epoch": progress.epoch, "global_step": progress.global_step, "batch_in_epoch": progress.batch_in_epoch,
            "sums": progress.sums, "best_val": progress.best_val, "seconds": progress.seconds,
            "config": self.config.to_dict(), "model_id": self.model_id, "run_id": self.run_id,
            "dataset_fingerprint": data.fingerprint,
        }
        info = save_checkpoint(self.run_dir / "checkpoints", state, epoch=progress.epoch,
                               global_step=progress.global_step, train_loss=train_loss, val_loss=val_loss,
                               retention=Retention(self.config.keep_recent, self.config.keep_best),
                               batch_in_epoch=progress.batch_in_epoch)
        self.publish(CheckpointWritten(epoch=progress.epoch, path=str(info.path), size_bytes=info.size_bytes))
        return info

    def _best_weights(self, generator: Vocoder, start: dict[str, float] | None) -> tuple[int, dict[str, Any]]:
        """Load into `generator` what scored best on the held-out clips: the best epoch's
        checkpoint, or the pretrained weights it started from when no epoch beat them (a tie
        goes to the earlier). Returns (epoch, that epoch's figures); epoch 0 is the start."""
        best = best_checkpoints(list_checkpoints(self.run_dir / "checkpoints"), 1)
        if self.start_slot is not None and start is not None and (not best or start["val_loss"] <= best[0].val_loss):
            generator.load_state_dict(self.start_slot["state"])
            return 0, {"train_loss": None, **start}
        if not best:
            raise DistillError(f"the vocoder run of {self.model_name!r} has no checkpoint with held-out figures")
        generator.load_state_dict(load_checkpoint(best[0].path)["generator"])
        row = next((r for r in read_vocoder_metrics(self.ws, self.model_name) if r.get("epoch") == best[0].epoch), {})
        return best[0].epoch, {"val_loss": best[0].val_loss, "val_lsd": row.get("val_lsd"),
                               "train_loss": row.get("train_loss")}

    def _bundle(self, generator: Vocoder, data: VocoderData, progress: _Progress) -> None:
        current = load_model_file(self.model_path, mmap=True)
        if str(current.metadata.get("id", "")) != self.model_id:
            raise DistillError(f"{self.model_path.name} was replaced by another model while its vocoder trained; "
                               "the vocoder was not attached (train again for the new model)")
        record = read_run(self.ws, self.model_name) or {}
        reference, start = record.get("griffin_lim") or {}, record.get("start")
        best_epoch, best = self._best_weights(generator, start)
        training = {
            "kind": "fine-tuned" if self.config.init == "pretrained" else "scratch",
            "epochs": progress.epoch, "steps": progress.global_step, "best_epoch": best_epoch,
            "final_loss": best["val_loss"], "loss_name": "held-out MR-STFT distance",
            "final_lsd": best["val_lsd"], "final_train_loss": best["train_loss"],
            "start_loss": (start or {}).get("val_loss"), "start_lsd": (start or {}).get("val_lsd"),
            "griffin_lim_loss": reference.get("mrstft"), "griffin_lim_lsd": reference.get("lsd"),
            "trained_at": now_iso(), "training_seconds": round(progress.seconds, 1),
            "dataset": data.dataset, "train_clips": len(data.train), "val_clips": len(data.val),
            "held_out": [clip.name for clip in data.val],
            "device": str(self.device), "run_id": self.run_id, "recipe": self.config.to_dict(),
        }
        generator.eval()
        attach_vocoder(self.model_path, vocoder_slot(generator.cpu(), training))
        generator.to(self.device)
        self._record(best_epoch=best_epoch, best=best)

    def _end_cancelled(self, progress: _Progress, checkpoint: str) -> None:
        self._record(status=STOPPED, epoch=progress.epoch, training_seconds=round(progress.seconds, 1))
        self.publish(Cancelled(epoch=progress.epoch, checkpoint=checkpoint))


_jobs: dict[Path, VocoderTrainingJob] = {}


def current_vocoder_job(ws: Workspace) -> VocoderTrainingJob | None:
    """The vocoder job this process started last in `ws` (running or finished), if any."""
    return _jobs.get(ws.root)


def remove_vocoder(ws: Workspace, model: str | Path) -> Path:
    """Clear a model file's vocoder slot (an atomic rewrite): it decodes with the pretrained
    vocoder again (or Griffin-Lim, where that does not suit it). The run folder stays."""
    path = resolve_model(ws, model)
    holder = WorkspaceLock.holder(ws.lock_path) or {}
    if holder.get("experiment_id") == f"vocoder:{path.stem}":
        raise DistillError(f"a vocoder for {path.stem!r} is training right now; stop it first")
    attach_vocoder(path, None)
    return path


def start_vocoder_training(ws: Workspace, model: str | Path, config: VocoderConfig | None = None,
                           epochs: int | None = None, force: bool = False, resume: bool = False,
                           device: str = "auto") -> VocoderTrainingJob:
    """Check everything that can be checked now (the model, its dataset, the confirmation
    for replacing a vocoder, the workspace's one-training-at-a-time lock), then train on a
    background thread. Follow it with `job.events()`; stop it with `job.cancel()`."""
    job = VocoderTrainingJob(ws, model, config, epochs, force, resume, device)
    job.start()
    _jobs[ws.root] = job
    return job
