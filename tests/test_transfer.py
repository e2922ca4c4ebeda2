"""Transfer (`distill transform --strength`): an input's rhythm played by the model's own
clips, its onsets and loudness kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill import DistillError
from distill.audio import AudioSettings, features, read_audio
from distill.family import sound_stats
from distill.metrics import rms_db
from distill.synthesis import Synthesizer
from distill.trajectories import stored_bank
from distill.transfer import frame_pool, onset_frames, transfer
from distill.transform import transform_wave

RATE = 44100


def noise_bursts(onsets: list[float], seconds: float = 2.0, seed: int = 0) -> torch.Tensor:
    """White-noise hits with a 60 ms decay: a shaker pattern, of no family the example has."""
    rng = np.random.default_rng(seed)
    wave = np.zeros(round(seconds * RATE), np.float32)
    t = np.arange(round(0.2 * RATE)) / RATE
    for onset in onsets:
        start = round(onset * RATE)
        hit = 0.4 * rng.standard_normal(len(t)) * np.exp(-t / 0.06)
        wave[start:start + len(t)] += hit[: len(wave) - start]
    return torch.from_numpy(wave)


def test_onsets_are_found_where_the_events_start(example_corpus) -> None:
    settings = AudioSettings()
    times = [0.1, 0.4, 0.7, 1.0, 1.3, 1.6]
    wave = torch.zeros(round(2.2 * RATE))
    for i, when in enumerate(times):  # example drums and plucks, each cut to 0.3 s
        clip = read_audio(example_corpus[i], RATE)[: round(0.3 * RATE)]
        wave[round(when * RATE): round(when * RATE) + clip.shape[-1]] += clip
    found = [f * settings.hop_length / RATE for f in onset_frames(features(wave, settings), settings)]
    assert len(found) == len(times)
    assert all(abs(f - t) < 0.035 for f, t in zip(found, times)), found  # within 3 frames


def test_strength_one_plays_the_rhythm_with_the_models_own_sounds(trained_example) -> None:
    _, _, model_file, _ = trained_example
    settings, model = model_file.audio_settings, model_file.build_model("cpu")
    pool = frame_pool(stored_bank(model_file))
    times = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    wave = noise_bursts(times)
    synthesize = Synthesizer(settings, griffin_lim=True)
    out = transform_wave(model, wave, settings, synthesize, 1.0, pool)
    assert out.shape == wave.shape
    assert abs(rms_db(out) - rms_db(wave)) < 2.0  # its loudness kept
    found = [f * settings.hop_length / RATE for f in onset_frames(features(out, settings), settings)]
    assert len(found) == len(times) and all(abs(f - t) < 0.06 for f, t in zip(found, times)), found
    # noise in, the example's plucks and drums out: far more tonal (flatness 0 tonal … 1 noise)
    flat_in, flat_out = (sound_stats(w, RATE).flatness for w in (wave, out))
    assert flat_in > 0.3 and flat_out < flat_in / 3, (flat_in, flat_out)


def test_strength_zero_is_the_plain_reconstruction_and_out_of_range_is_refused(trained_example) -> None:
    _, _, model_file, clips = trained_example
    settings, model = model_file.audio_settings, model_file.build_model("cpu")
    pool = frame_pool(stored_bank(model_file))
    wave = read_audio(clips[0], RATE)
    synthesize = Synthesizer(settings, griffin_lim=True)
    torch.testing.assert_close(transform_wave(model, wave, settings, synthesize, 0.0, pool),
                               transform_wave(model, wave, settings, synthesize), rtol=0, atol=0)
    given = features(wave, settings)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(DistillError, match="strength must be"):
            transfer(model, given, settings, pool, bad)
