"""The per-model vocoder: it trains as a background job (events, cancel, exact resume), goes
into the model file, decodes what generation makes, asks before replacing itself, shows in
the catalog, and is fed exactly what `log_mel` makes."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import write_tone
from distill import DistillError, catalog
from distill.audio import AudioSettings, _mel_transform, log_mel, read_audio
from distill.cli import main
from distill.datasets import create_dataset
from distill.generate import ab_pair, generate_sounds
from distill.jobs import Cancelled, CheckpointWritten, EpochFinished, Finished, PreviewWritten, Started
from distill.modelfile import load_model_file
from distill.vocoder import (Vocoder, VocoderConfig, VocoderTrainingJob, list_vocoder_previews,
                            load_vocoder, read_run, read_vocoder_metrics, remove_vocoder, shipped,
                            start_vocoder_training, vocoder_preset, vocoder_run_dir, vocoder_slot)
from distill.vocoder.data import load_vocoder_data, vae_reconstructions
from distill.vocoder.losses import log_spectral_distance, mrstft_distance
from distill.workspace import Workspace
from test_modelfile import make_model_file

TINY = vocoder_preset("tiny")
MODEL = "strings"


def _clips(folder: Path) -> list[Path]:
    """Five short real sounds: decaying tones and a noise burst."""
    paths = [write_tone(folder / f"tone-{f}.wav", seconds=0.8, freq=f) for f in (110.0, 196.0, 262.0, 330.0)]
    rng = np.random.default_rng(0)
    t = np.arange(int(0.6 * 22050)) / 22050
    noise = (0.4 * rng.standard_normal(t.shape) * np.exp(-8 * t)).astype(np.float32)
    sf.write(str(folder / "hit.wav"), noise, 22050, subtype="PCM_16")
    return paths + [folder / "hit.wav"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A workspace with a dataset and a (tiny, untrained) model made from it; copied per test."""
    root = tmp_path_factory.mktemp("vocoder") / "workspace"
    ws = Workspace.open(root)
    create_dataset(ws, "clips", _clips(tmp_path_factory.mktemp("sources")))
    make_model_file(ws.models_dir / f"{MODEL}.distillgan", dataset="clips")
    return root


@pytest.fixture
def vws(prepared, tmp_path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(prepared, root)
    return Workspace.open(root)


def run(job) -> list:
    events = list(job.events(timeout=120))
    job.join()
    return events


def kinds(events) -> list[str]:
    return [e.kind for e in events]


# -- the network ------------------------------------------------------------------------------

def test_untrained_vocoder_is_its_priors_and_they_invert_log_mel(tmp_path):
    """Zero-initialised corrections: before training the output is the mel-inverse magnitude
    with phase-gradient phase, already a recognisable rendering of the clip."""
    settings = AudioSettings()
    wave = read_audio(write_tone(tmp_path / "a.wav", seconds=1.0, freq=220.0), settings.sample_rate)
    mel = log_mel(wave, settings)
    vocoder = Vocoder(TINY, settings)
    prior = vocoder.magnitude_prior(mel.unsqueeze(0))[0]
    # the prior maps back onto (nearly) the same log-mel: it is an inverse of the filterbank
    fb = _mel_transform(settings, "cpu").mel_scale.fb
    remelled = torch.log((fb.T @ prior).clamp(min=1e-5))
    loud = mel > mel.max() - 6
    assert (remelled - mel)[loud].abs().mean() < 0.2
    out = vocoder.synthesize(mel)
    assert out.shape == (mel.shape[-1] * settings.hop_length,)
    assert mrstft_distance(out, wave) < 0.6 and log_spectral_distance(out, wave) < 3.0


def test_synthesize_is_finite_bounded_and_refuses_wrong_shapes():
    vocoder = Vocoder(TINY, AudioSettings())
    wild = torch.full((2, 128, 20), 40.0)  # far above anything log_mel makes: clamped, not blasted
    wild[0, :, 5] = float("nan")
    out = vocoder.synthesize(torch.nan_to_num(wild, nan=-100.0))
    assert out.shape == (2, 20 * 512) and torch.isfinite(out).all() and out.abs().max() <= 1.0
    loud = vocoder.synthesize(torch.nan_to_num(wild, nan=-100.0), clamp=False)  # for synthesis: seen, not clipped
    assert torch.isfinite(loud).all() and loud.abs().max() > 1.0
    with pytest.raises(DistillError, match="n_mels=128"):
        vocoder.synthesize(torch.zeros(64, 20))


def test_config_validates_and_round_trips():
    config = VocoderConfig(dim=24, mpd_periods=[2, 5])
    assert VocoderConfig.from_dict(config.to_dict()) == config
    assert set(config.architecture()) >= {"dim", "num_layers", "projections", "phase_mode"}
    with pytest.raises(DistillError):
        VocoderConfig(kernel_size=4)
    with pytest.raises(DistillError):
        vocoder_preset("huge")


def test_distances_are_zero_for_identical_audio_and_ignore_inaudible_bins():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(22050) / 22050
    wave = 0.5 * torch.sin(2 * math.pi * 220 * t) * torch.exp(-3 * t)
    assert mrstft_distance(wave, wave) == pytest.approx(0.0, abs=1e-6)
    assert log_spectral_distance(wave, wave) == pytest.approx(0.0, abs=1e-6)
    hiss = wave + 1e-6 * torch.randn(wave.shape, generator=g)  # ~120 dB down
    assert log_spectral_distance(hiss, wave) < 0.05  # below the 80 dB range: not counted
    assert log_spectral_distance(hiss, wave, floor_db=None) > log_spectral_distance(hiss, wave)
    louder_error = wave + 1e-2 * torch.randn(wave.shape, generator=g)
    assert mrstft_distance(louder_error, wave) > mrstft_distance(hiss, wave)


# -- training, bundling, generating -----------------------------------------------------------

def test_tiny_vocoder_trains_bundles_reloads_and_generates(vws, tmp_path):
    job = start_vocoder_training(vws, MODEL, TINY, epochs=2, device="cpu")
    events = run(job)
    assert kinds(events)[0] == "Started" and kinds(events)[-1] == "Finished"
    epochs = [e for e in events if isinstance(e, EpochFinished)]
    assert [e.epoch for e in epochs] == [1, 2]
    for e in epochs:
        assert {"train_loss", "val_loss", "val_lsd", "spectral", "phase", "mel", "mrstft"} <= set(e.metrics)
        assert all(math.isfinite(e.metrics[k]) for k in ("train_loss", "val_loss", "val_lsd"))
    assert "adv" in epochs[-1].metrics  # the GAN joined after gan_start_step
    assert any(isinstance(e, PreviewWritten) for e in events)
    assert any(isinstance(e, CheckpointWritten) for e in events)
    assert len(read_vocoder_metrics(vws, MODEL)) == 2

    # the slot: plain values, loadable with weights_only, stats for the catalog
    path = vws.models_dir / f"{MODEL}.distillgan"
    raw = torch.load(path, weights_only=True)
    slot = raw["vocoder"]
    assert set(slot) == {"config", "state", "training"}
    training = slot["training"]
    assert training["epochs"] == 2 and math.isfinite(training["final_loss"])
    assert training["training_seconds"] >= 0 and "T" in training["trained_at"]
    model_file = load_model_file(path)
    vocoder = load_vocoder(model_file.vocoder, "cpu", settings=model_file.audio_settings)
    assert isinstance(vocoder, Vocoder) and not vocoder.training

    # generation uses it; the Griffin-Lim switch still works; the audio is sane
    voc = generate_sounds(vws, MODEL, n=1, seed=3, out_dir=tmp_path / "voc")[0]
    gl = generate_sounds(vws, MODEL, n=1, seed=3, griffin_lim=True, out_dir=tmp_path / "gl")[0]
    a, b = sf.read(str(voc.path))[0], sf.read(str(gl.path))[0]
    assert a.shape == b.shape and not np.allclose(a, b)
    assert np.isfinite(a).all() and abs(a.mean()) < 0.05


def test_previews_and_ab_pair(vws):
    run(start_vocoder_training(vws, MODEL, TINY, epochs=2, device="cpu"))
    previews = list_vocoder_previews(vws, MODEL)
    assert [p.epoch for p in previews] == [1, 2]
    assert set(previews[0].paths) == {"original", "griffin-lim", "vocoder"}
    assert all(p.is_file() for p in previews[-1].paths.values())
    assert vocoder_run_dir(vws, MODEL) in previews[0].paths["vocoder"].parents
    assert vws.datasets_dir not in previews[0].paths["vocoder"].parents

    gl_path, voc_path = ab_pair(vws.models_dir / f"{MODEL}.distillgan", seed=5)
    a, b = sf.read(str(gl_path))[0], sf.read(str(voc_path))[0]
    assert a.shape == b.shape and not np.allclose(a, b)
    assert vws.generated_dir in gl_path.parents


def test_cancel_saves_state_and_resume_continues_exactly(vws, prepared, tmp_path):
    config = TINY.replace(steps_per_epoch=3)
    # an uninterrupted run, for reference
    reference = Workspace.open(shutil.copytree(prepared, tmp_path / "reference"))
    run(start_vocoder_training(reference, MODEL, config, epochs=3, device="cpu"))
    expected = load_model_file(reference.models_dir / f"{MODEL}.distillgan").vocoder["state"]

    job = start_vocoder_training(vws, MODEL, config, epochs=3, device="cpu")
    for event in job.events(timeout=120):
        if isinstance(event, Started):
            job.cancel()
    job.join()
    assert isinstance(job.outcome, Cancelled)
    assert job.outcome.checkpoint and Path(job.outcome.checkpoint).is_file()
    assert read_run(vws, MODEL)["status"] == "stopped"
    assert load_model_file(vws.models_dir / f"{MODEL}.distillgan").vocoder is None  # nothing half-done attached

    with pytest.raises(DistillError, match="--resume"):
        VocoderTrainingJob(vws, MODEL, config, epochs=3)
    resumed = start_vocoder_training(vws, MODEL, epochs=3, resume=True, device="cpu")
    events = run(resumed)
    assert isinstance(events[-1], Finished)
    got = load_model_file(vws.models_dir / f"{MODEL}.distillgan").vocoder["state"]
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6)
    assert [row["epoch"] for row in read_vocoder_metrics(vws, MODEL)] == [1, 2, 3]


def test_an_older_cancelled_run_reads_stopped(ws: Workspace) -> None:
    from distill.vocoder.train import RUN_FILE, vocoder_run_dir
    from distill.atomic import atomic_write_json

    vocoder_run_dir(ws, "m").mkdir(parents=True)
    atomic_write_json(vocoder_run_dir(ws, "m") / RUN_FILE, {"status": "cancelled", "epoch": 2, "epochs": 5})
    assert read_run(ws, "m")["status"] == "stopped"


def test_retraining_a_model_with_a_vocoder_asks_for_force(vws):
    with pytest.raises(DistillError, match="no vocoder training to resume"):
        start_vocoder_training(vws, MODEL, TINY, epochs=1, resume=True)
    run(start_vocoder_training(vws, MODEL, TINY, epochs=1, device="cpu"))
    with pytest.raises(DistillError, match="already has a vocoder.*--force"):
        start_vocoder_training(vws, MODEL, TINY, epochs=1)
    events = run(start_vocoder_training(vws, MODEL, TINY, epochs=2, force=True, device="cpu"))
    assert isinstance(events[-1], Finished)
    assert load_model_file(vws.models_dir / f"{MODEL}.distillgan").vocoder["training"]["epochs"] == 2


def test_catalog_shows_vocoder_stats_and_a_model_can_lose_it(vws):
    assert catalog.get_entry(vws, MODEL).vocoder == {"kind": "pretrained"}
    run(start_vocoder_training(vws, MODEL, TINY, epochs=2, device="cpu"))
    entry = catalog.get_entry(vws, MODEL)
    assert entry.vocoder["epochs"] == 2 and math.isfinite(entry.vocoder["final_loss"])
    table = catalog.models_table(vws)
    assert table.loc[table["Name"] == MODEL, "Vocoder"].item().startswith("own · 2 ep · MR-STFT ")
    details = catalog.model_details(vws, MODEL)
    assert details["vocoder"]["training"]["training_seconds"] >= 0
    remove_vocoder(vws, MODEL)
    assert load_model_file(vws.models_dir / f"{MODEL}.distillgan").vocoder is None
    assert catalog.get_entry(vws, MODEL).vocoder == {"kind": "pretrained"}


def test_a_vocoder_for_other_mel_settings_is_refused(vws):
    run(start_vocoder_training(vws, MODEL, TINY, epochs=1, device="cpu"))
    slot = load_model_file(vws.models_dir / f"{MODEL}.distillgan").vocoder
    with pytest.raises(DistillError, match="other mel settings"):
        load_vocoder(slot, "cpu", settings=AudioSettings(n_mels=64))
    with pytest.raises(DistillError, match="version"):
        load_vocoder({**slot, "config": {**slot["config"], "version": 99}})


def test_a_model_without_its_dataset_is_refused_plainly(vws):
    make_model_file(vws.models_dir / "orphan.distillgan", dataset="gone")
    with pytest.raises(DistillError, match="'gone', which is not in this workspace"):
        start_vocoder_training(vws, "orphan", TINY, epochs=1)


def test_cli_train_vocoder_prints_epochs_and_asks_for_force(vws, capsys):
    args = ["train-vocoder", MODEL, "--preset", "tiny", "--epochs", "2", "--device", "cpu", "--workspace", str(vws.root)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "   1/2  train" in out and "held-out MR-STFT" in out and "finished after epoch 2" in out
    assert main(args) == 1
    assert "--force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    assert main(["remove-vocoder", MODEL, "--workspace", str(vws.root)]) == 0
    assert load_model_file(vws.models_dir / f"{MODEL}.distillgan").vocoder is None


def test_vae_reconstructions_are_the_models_reconstruct_of_each_whole_clip(vws):
    model_file = load_model_file(vws.models_dir / f"{MODEL}.distillgan")
    data = load_vocoder_data(vws, model_file)
    mels = vae_reconstructions(model_file, data.train, torch.device("cpu"))
    assert set(mels) == {clip.name for clip in data.train}
    model = model_file.build_model()
    for clip in data.train:
        assert mels[clip.name].shape == clip.mel.shape
        torch.testing.assert_close(mels[clip.name], model.reconstruct(clip.mel))


def test_fine_tuning_on_the_vaes_reconstructions(vws):
    config = TINY.replace(vae_finetune_from_epoch=2, vae_mel_share=1.0)
    events = run(start_vocoder_training(vws, MODEL, config, epochs=2, device="cpu"))
    metrics = [e.metrics for e in events if isinstance(e, EpochFinished)]
    assert [m["vae_mels"] for m in metrics] == [False, True]
    assert isinstance(events[-1], Finished)
    # judged as heard too: the held-out clips through the model, then the vocoder
    for m in metrics:
        assert m["val_end_to_end_mrstft"] > 0 and m["val_end_to_end_mrstft"] != m["val_true_mrstft"]
        assert m["val_loss"] == pytest.approx((m["val_true_mrstft"] + m["val_end_to_end_mrstft"]) / 2)


# -- fine-tuning the pretrained vocoder ----------------------------------------------------------

# The default preset's recipe and architecture (the shipped weights'), cut to a few tiny steps.
QUICK_FINE_TUNE = vocoder_preset("default").replace(epochs=3, steps_per_epoch=2, batch_size=2, segment_frames=8,
                                                    val_clips=1, val_seconds=0.5, preview_every=0)


def scripted_validation(monkeypatch, losses: list[float]) -> None:
    """The held-out check returns these MR-STFT figures in turn (the start's first): which
    epoch wins is then known, and the test checks the run bundles that one."""
    figures = iter(losses)
    monkeypatch.setattr(VocoderTrainingJob, "_validate", lambda self, *args: {"val_loss": next(figures), "val_lsd": 1.0})


def test_fine_tune_starts_from_the_pretrained_weights_and_bundles_its_best_epoch(vws, monkeypatch):
    scripted_validation(monkeypatch, [0.50, 0.45, 0.40, 0.48])  # start, epochs 1-3: epoch 2 is best
    job = start_vocoder_training(vws, MODEL, QUICK_FINE_TUNE, device="cpu")
    assert job.epochs == 3 and job.start_slot is not None
    events = run(job)
    assert isinstance(events[-1], Finished)
    slot = load_model_file(vws.models_dir / f"{MODEL}.distillgan").vocoder
    training = slot["training"]
    assert (training["kind"], training["best_epoch"], training["epochs"]) == ("fine-tuned", 2, 3)
    assert (training["final_loss"], training["start_loss"]) == (0.40, 0.50)
    record = read_run(vws, MODEL)
    assert record["best_epoch"] == 2 and record["start"]["val_loss"] == 0.50
    data = load_vocoder_data(vws, load_model_file(vws.models_dir / f"{MODEL}.distillgan"))
    assert training["held_out"] == record["held_out"] == [clip.name for clip in data.val] != []
    best = torch.load(vocoder_run_dir(vws, MODEL) / "checkpoints" / "epoch-0002.pt", weights_only=True)
    for name, tensor in slot["state"].items():
        torch.testing.assert_close(tensor, best["generator"][name], rtol=0, atol=0)
    assert not all(torch.equal(tensor, job.start_slot["state"][name]) for name, tensor in slot["state"].items())
    assert catalog.get_entry(vws, MODEL).vocoder_label == "fine-tuned · epoch 2/3 · MR-STFT 0.40 vs GL " + \
        f"{training['griffin_lim_loss']:.2f}"


def test_a_fine_tune_that_never_beats_the_pretrained_weights_bundles_them(vws, monkeypatch):
    scripted_validation(monkeypatch, [0.30, 0.45, 0.40, 0.48])
    job = start_vocoder_training(vws, MODEL, QUICK_FINE_TUNE, device="cpu")
    run(job)
    slot = load_model_file(vws.models_dir / f"{MODEL}.distillgan").vocoder
    assert slot["training"]["best_epoch"] == 0 and slot["training"]["final_loss"] == 0.30
    for name, tensor in slot["state"].items():
        torch.testing.assert_close(tensor, job.start_slot["state"][name], rtol=0, atol=0)


def test_fine_tune_is_refused_clearly_when_it_cannot_start_from_the_pretrained_weights(vws, monkeypatch, tmp_path):
    with pytest.raises(DistillError, match="architecture differs"):
        start_vocoder_training(vws, MODEL, TINY.replace(init="pretrained"), device="cpu")
    monkeypatch.setattr("distill.vocoder.shipped.SHIPPED", tmp_path / "gone.pt")
    shipped.forget()
    try:
        with pytest.warns(RuntimeWarning), pytest.raises(DistillError, match="weights are missing.*scratch"):
            start_vocoder_training(vws, MODEL, QUICK_FINE_TUNE, device="cpu")
    finally:
        shipped.forget()


# -- mel matching ----------------------------------------------------------------------------

def test_mel_matching_puts_the_output_bands_at_the_levels_the_mel_asks_for():
    """The untrained vocoder (its priors) renders a noise burst 3 dB quiet in its louder bands
    and louder than asked in its quiet ones; two matching steps halve the band error and leave
    the silence after it silent."""
    settings = AudioSettings()
    rng = np.random.default_rng(1)
    t = np.arange(int(0.8 * settings.sample_rate)) / settings.sample_rate
    burst = torch.from_numpy((0.3 * rng.standard_normal(t.shape) * np.exp(-6 * t)).astype(np.float32))
    mel = log_mel(torch.cat([burst, torch.zeros(8192)]), settings)
    loud = mel > mel.max() - 40 / 8.686  # the bands within 40 dB of the loudest (log-mels are in nats)
    errors, biases = [], []
    for steps in (0, 2):
        # the attack guard off: it also turns down the quiet bands' excess, and this is mel matching's test
        config = vocoder_preset("default").replace(mel_matching=steps, attack_guard=False)
        out = Vocoder(config, settings).eval().synthesize(mel)
        error = log_mel(out, settings)[:, :mel.shape[-1]] - mel
        errors.append(float(error[loud].abs().mean()))
        biases.append(abs(float(error.mean())))
        assert out[burst.shape[0] + 4096:].abs().max() < 1e-4  # the silence after it
    # (measured: error 0.48 → 0.22 nats, bias 0.13 → 0.09 at 44.1 kHz; at 22.05 kHz the bias fell
    # below 0.6× too, where a white burst had no bands above 11 kHz)
    assert errors[1] < 0.6 * errors[0] and biases[1] < 0.75 * biases[0], (errors, biases)


def test_momentum_takes_mel_matching_further_in_the_same_steps():
    settings = AudioSettings()
    rng = np.random.default_rng(2)
    t = np.arange(int(0.8 * settings.sample_rate)) / settings.sample_rate
    burst = torch.from_numpy((0.3 * rng.standard_normal(t.shape) * np.exp(-6 * t)).astype(np.float32))
    mel = log_mel(burst, settings)
    loud = mel > mel.max() - 40 / 8.686
    errors = []
    for momentum in (0.0, 0.9):
        config = vocoder_preset("default").replace(mel_matching=3, mel_matching_momentum=momentum, attack_guard=False)
        out = Vocoder(config, settings).eval().synthesize(mel)
        errors.append(float((log_mel(out, settings)[:, :mel.shape[-1]] - mel)[loud].abs().mean()))
    assert errors[1] < 0.9 * errors[0], errors


def test_a_slot_written_before_mel_matching_momentum_decodes_as_it_was_trained():
    vocoder = Vocoder(vocoder_preset("default").replace(mel_matching=2, mel_matching_momentum=0.0), AudioSettings())
    slot = vocoder_slot(vocoder, {"epochs": 1})
    del slot["config"]["architecture"]["mel_matching_momentum"]
    loaded = load_vocoder(slot, settings=AudioSettings())
    assert loaded.config.mel_matching_momentum == 0.0
    mel = torch.full((128, 16), -4.0)
    mel[:, 8:] = -9.0
    torch.testing.assert_close(loaded.synthesize(mel), vocoder.synthesize(mel))


def test_a_slot_written_before_mel_matching_decodes_as_it_was_trained():
    vocoder = Vocoder(vocoder_preset("default").replace(mel_matching=0), AudioSettings())
    slot = vocoder_slot(vocoder, {"epochs": 1})
    del slot["config"]["architecture"]["mel_matching"]  # as an older model file of this version has it
    loaded = load_vocoder(slot, settings=AudioSettings())
    assert loaded.config.mel_matching == 0
    mel = torch.full((128, 16), -4.0)
    torch.testing.assert_close(loaded.synthesize(mel), vocoder.synthesize(mel))


def test_gradients_stay_finite_through_silent_frames():
    """An exactly silent stretch gives exactly-zero bins in the projections and the stages
    after them; a fine-tune must not turn NaN there (one did, at step 41, before |X| got its floor)."""
    vocoder = Vocoder(vocoder_preset("default"), AudioSettings())
    spec = torch.randn(1, 1025, 24, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    spec[..., 8:20] = 0
    spec.requires_grad_(True)
    mel = torch.full((1, 128, 24), -4.0)
    vocoder.waveform(spec, mel).pow(2).sum().backward()
    assert torch.isfinite(spec.grad).all() and spec.grad.abs().max() > 0
