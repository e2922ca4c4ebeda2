"""The model gives the clips back: a trained model's transform keeps a clip's length and
level, is deterministic, handles long inputs with no seams, previews hold whole clips; and
the pieces that make that so (PCA start, level-keeping loss, onset trim, cached speeds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from distill.audio import AudioSettings, LOG_MEL_FLOOR, log_mel, read_audio
from distill.datasets import create_dataset, load_dataset
from distill.features import trim_onset
from distill.segments import prepare_training_data
from distill.metrics import distance, pre_echo_db, rms_db
from distill.model import PRESETS, ConvVAE, reconstruction_terms
from distill.previews import list_previews
from distill.synthesis import Synthesizer
from distill.transform import transform_wave
from test_generate import jump_near_and_elsewhere

SETTINGS = AudioSettings()
TINY = PRESETS["tiny"]


@pytest.fixture
def trained(trained_example):
    """(workspace, experiment id, model file, training clip paths): see conftest."""
    return trained_example


def through(model_file, wave: torch.Tensor) -> torch.Tensor:
    model = model_file.build_model("cpu")
    return transform_wave(model, wave, model_file.audio_settings, Synthesizer(model_file.audio_settings))


def test_transform_keeps_a_training_clips_length_and_level(trained):
    ws, _, model_file, clips = trained
    errors = []
    for clip in clips[:3]:
        wave = read_audio(clip, model_file.audio_settings.sample_rate)
        out = through(model_file, wave)
        assert out.shape == wave.shape
        errors.append(rms_db(out) - rms_db(wave))
        # (the lowest note, A2, comes back 2.2 dB quiet: its low harmonics blur; the others within 0.6)
        assert abs(errors[-1]) <= 3.0, clip.name
        # It is the clip, not just its level: far closer than the same-level silence-free noise.
        noise = torch.randn(wave.shape, generator=torch.Generator().manual_seed(0)) * wave.pow(2).mean().sqrt()
        assert distance(wave, out).mrstft < 0.6 * distance(wave, noise).mrstft, clip.name
    assert abs(sorted(errors)[1]) <= 2.0, errors  # the median clip: the benchmark's measure of level


def test_transform_is_deterministic(trained):
    _, _, model_file, clips = trained
    wave = read_audio(clips[1], model_file.audio_settings.sample_rate)
    assert torch.equal(through(model_file, wave), through(model_file, wave))


def test_a_long_input_decodes_in_chunks_equal_to_one_pass_with_no_seams(trained):
    _, _, model_file, clips = trained
    rate = model_file.audio_settings.sample_rate
    wave = torch.cat([read_audio(c, rate) for c in clips * 4])[: 32 * rate]
    assert wave.shape[0] >= 30 * rate
    model = model_file.build_model("cpu")
    mel = log_mel(wave, model_file.audio_settings)
    stride = model.config.time_stride
    # Small chunks, so a 32 s input has many joins; the default chunk is larger.
    chunked = model.decode_long(model.encode_long(mel, chunk_frames=256), mel.shape[1], chunk_latents=64)
    with torch.no_grad():
        whole = model.decode(model.encode(mel[None])[0], clamp=True)[0, :, : mel.shape[1]]
    torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=0)
    out = Synthesizer(model_file.audio_settings)(chunked)[: wave.shape[0]].numpy()
    hop = model_file.audio_settings.hop_length
    joins = [j * hop for j in range(256, mel.shape[1], 256)] + [j * stride * hop for j in range(64, mel.shape[1] // stride, 64)]
    joins = sorted(j for j in joins if 0 < j < out.shape[0] - 1)
    assert len(joins) > 10
    near, elsewhere = jump_near_and_elsewhere(out, joins)
    assert near <= 1.25 * elsewhere, (near, elsewhere)


def test_previews_hold_whole_validation_clips_at_their_level(trained):
    ws, experiment_id, model_file, _ = trained
    pairs = [p for p in list_previews(ws.experiment_dir(experiment_id)) if p.kind == "reconstruction"]
    assert pairs and {p.epoch for p in pairs} == {5, 10}
    clips = {c.name: c for c in load_dataset(ws, "example").clips}
    for pair in pairs:
        original, rate = sf.read(str(pair.paths["original"]), dtype="float32")
        decoded, _ = sf.read(str(pair.paths["decoded"]), dtype="float32")
        assert original.shape == decoded.shape
        # Whole: as long as one of the dataset's clips, not a 0.74 s piece of one.
        lengths = [round(c.duration * rate) for c in clips.values()]
        assert min(abs(original.shape[0] - n) for n in lengths) <= 2
        assert original.shape[0] > 2 * model_file.model_config.segment_frames * SETTINGS.hop_length
        # Not normalised: the original is written at its own level.
        assert np.abs(original).max() < 0.89


def test_preview_samples_are_made_as_generation_makes_them(trained):
    ws, experiment_id, model_file, _ = trained
    samples = [p for p in list_previews(ws.experiment_dir(experiment_id)) if p.kind == "sample" and p.epoch == 10]
    assert samples
    durations = [c.duration for c in load_dataset(ws, "example").clips]
    lengths = set()
    for sample in samples:
        wave, rate = sf.read(str(sample.paths["audio"]), dtype="float32")
        lengths.add(wave.shape[0])
        # A whole sound of a typical clip's length (the training clips' median), not a
        # 0.37 s window; and a one-shot: loudest early, quiet by its end.
        assert min(durations) - 0.1 <= wave.shape[0] / rate <= max(durations)
        frames = np.abs(wave[: wave.shape[0] // 1024 * 1024]).reshape(-1, 1024).max(axis=1)
        assert int(frames.argmax()) < len(frames) // 3 and frames[-1] < 0.1 * frames.max()
    assert len(lengths) == 1


def test_training_starts_from_the_pca_of_the_data(example_corpus, ws):
    create_dataset(ws, "d", example_corpus[:8])
    data = prepare_training_data(ws, "d", SETTINGS, TINY.segment_frames)
    config = TINY.with_feature_stats(data.train.mean().item(), data.train.std().item(), data.train.max().item() + 1)
    model = ConvVAE(config).eval()
    mean_only = (model.decode(model.encode(data.train)[0]) - data.train).abs().mean()
    model.fit_linear_path(data.train)
    with torch.no_grad():
        fitted = (model.decode(model.encode(data.train)[0])[..., : data.train.shape[-1]] - data.train).abs().mean()
        mu = model.encode(data.train)[0]
    assert fitted < 0.6 * mean_only, (fitted, mean_only)
    # Whitened: the latent frames have about unit spread, as the prior assumes.
    assert 0.5 < float(mu.transpose(0, 1).reshape(mu.shape[1], -1).std(dim=1).mean()) < 1.5
    again = ConvVAE(config)
    again.fit_linear_path(data.train)
    for layer in ("patch_in", "patch_out"):  # the same data gives the same start, bit for bit
        for name, value in getattr(model, layer).state_dict().items():
            assert torch.equal(value, getattr(again, layer).state_dict()[name]), (layer, name)


def test_one_output_frame_depends_only_on_its_receptive_field():
    model = ConvVAE(PRESETS["default"]).eval()
    for p in model.parameters():  # the last layers start at zero: give every path weight
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(128, 600) - 5
    poked = x.clone()
    poked[:, 300] += 5
    changed = (model.reconstruct(poked) - model.reconstruct(x)).abs().amax(dim=0).nonzero().flatten()
    assert changed.numel() > 0
    assert 300 - model.receptive_field <= int(changed.min()) and int(changed.max()) <= 300 + model.receptive_field


def test_the_loss_charges_a_lost_level_that_log_l1_alone_would_shrug_off():
    target = torch.full((2, 128, 32), LOG_MEL_FLOOR)
    target[:, 10, :] = 3.0  # one loud partial
    assert all(float(t) < 1e-6 for t in reconstruction_terms(target, target, feature_max=6.0))
    quieter = target.clone()
    quieter[:, 10, :] -= math.log(10 ** (6 / 20))  # the partial 6 dB down
    log_l1, convergence, envelope = reconstruction_terms(target, quieter, feature_max=6.0)
    assert float(log_l1) < 0.01  # one bin in 128: the log-mel L1 barely notices
    assert float(convergence) == pytest.approx(1 - 10 ** (-6 / 20), abs=1e-3)
    assert float(envelope) == pytest.approx(math.log(10 ** (6 / 20)), abs=1e-3)


def test_onsets_are_trimmed_to_a_couple_of_frames_before_the_sound():
    mel = torch.full((128, 100), LOG_MEL_FLOOR)
    mel[:, 30:] = -2.0
    trimmed = trim_onset(mel)
    assert trimmed.shape[1] == 72 and torch.equal(trimmed[:, 2:], mel[:, 30:])
    assert torch.equal(trim_onset(mel[:, 30:]), mel[:, 30:])  # nothing to trim


def test_speed_augmentation_adds_cached_training_windows_only(example_corpus, ws):
    create_dataset(ws, "d", example_corpus[:8])
    plain = prepare_training_data(ws, "d", SETTINGS, 32)
    sped = prepare_training_data(ws, "d", SETTINGS, 32, speeds=(0.84, 1.19))
    assert sped.train.shape[0] > plain.train.shape[0] and torch.equal(sped.val, plain.val)
    assert sped.computed_clips == 2 * len(sped.train_clips)  # the sped-up versions, computed once...
    assert prepare_training_data(ws, "d", SETTINGS, 32, speeds=(0.84, 1.19)).computed_clips == 0  # ...then cached


def test_pre_echo_is_the_energy_smeared_before_the_attack():
    rate = 22050
    t = torch.arange(rate) / rate
    tone = torch.sin(2 * math.pi * 440 * t)
    wave = torch.where(t >= 0.1, tone * torch.exp(-3 * (t - 0.1)), torch.zeros_like(t))
    assert pre_echo_db(wave, wave, rate) < -100  # nothing before its own attack
    smeared = wave.clone()
    early = (t >= 0.09) & (t < 0.1)
    smeared[early] = 0.1 * tone[early]  # 10 ms at -20 dB, half of the 20 ms looked at: about -22 dB
    assert -25 < pre_echo_db(wave, smeared, rate) < -19
