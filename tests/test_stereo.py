"""Full band and both channels: stereo clips train a stereo model whose sounds come back stereo
with their image, the top octave survives, and a mono dataset stays mono. Real audio made on the
spot (48 kHz stereo, a 15 kHz partial), a default model trained on it (the tiny preset's
latent is too small to keep a side or a top octave)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from distill.audio import AudioSettings, features, read_audio
from distill.datasets import create_dataset, load_dataset
from distill.export import export_model
from distill.generate import generate_sounds
from distill.jobs import Finished
from distill.metrics import stereo_image
from distill.modelfile import load_model_file
from distill.segments import dataset_settings
from distill.stereo import left_right, side_from_mid
from distill.synthesis import Synthesizer, fit_length
from distill.train import start_training
from distill.train_config import TrainConfig
from distill.transform import transform_files
from distill.workspace import Workspace

RATE = 48000
PARTIAL_HZ, PARTIAL_WIDTH_HZ = 15000.0, 300.0


def partial(rng: np.random.Generator, samples: int) -> np.ndarray:
    """A 15 kHz partial 300 Hz wide (a cymbal's or a string's is not a pure line), peak 1.

    A pure sine at 15 kHz comes back 6.5 dB low (8 dB through Griffin-Lim) even from its own
    true mel: a mel band there is ~470 Hz wide, and its magnitude cannot tell one line from
    noise spread over the band. 300 Hz wide, it comes back within 1 dB (2.6 through Griffin-Lim)."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    spectrum[np.abs(np.fft.rfftfreq(samples, 1 / RATE) - PARTIAL_HZ) > PARTIAL_WIDTH_HZ / 2] = 0
    line = np.fft.irfft(spectrum, samples)
    return line / np.abs(line).max()


def wide_note(path: Path, freq: float, seed: int, seconds: float = 1.0) -> Path:
    """A decaying harmonic note with a 15 kHz partial, recorded as a spaced pair records it:
    the right microphone hears it 0.4 ms later than the left, and each hears its own air
    (uncorrelated noise 30 dB under the note). A wide image whose side has the note's character."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.exp(-4 * t) * np.minimum(1, t * 400)
    note = sum(0.3 / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 6)) + 0.1 * partial(rng, t.shape[0])
    late = round(0.0004 * RATE)
    left = note * envelope
    right = np.concatenate([np.zeros(late), left[:-late]])
    level = np.sqrt(np.mean(left**2)) * 10 ** (-30 / 20)
    air = [np.convolve(rng.standard_normal(t.shape), np.ones(8) / 8, mode="same") for _ in range(2)]
    left, right = (x + a / np.sqrt(np.mean(a**2)) * level * envelope for x, a in zip((left, right), air))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.stack([left, right], axis=1).astype(np.float32), RATE, subtype="FLOAT")
    return path


def band_db(wave: np.ndarray, rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.shape[-1], 1 / rate)
    return 10 * np.log10(spectrum[(freqs >= low) & (freqs <= high)].sum() + 1e-20)


def train_default(ws: Workspace, name: str, clips: list[Path]) -> Path:
    create_dataset(ws, name, clips)
    job = start_training(ws, TrainConfig(dataset=name, epochs=20, preview_every=0, device="cpu"))
    job.join(300)
    assert isinstance(job.outcome, Finished), job.outcome
    return export_model(ws, job.experiment_id, name=name, device="cpu")


@pytest.fixture(scope="session")
def stereo_model(tmp_path_factory) -> tuple[Workspace, Path, list[Path]]:
    folder = tmp_path_factory.mktemp("wide")
    clips = [wide_note(folder / f"note{i}.wav", 220.0 * 2 ** (i / 12), seed=i) for i in range(0, 16, 2)]
    ws = Workspace.open(tmp_path_factory.mktemp("stereo") / "ws")
    return ws, train_default(ws, "wide", clips), clips


def test_the_true_features_of_a_wide_clip_come_back_with_its_image():
    """The ceiling of the design: a clip's own features, voiced (Griffin-Lim), keep its image."""
    settings = AudioSettings(channels=2)
    wave = read_audio(wide_note(Path("/tmp/distill-test-wide.wav"), 330.0, seed=1), settings.sample_rate, 2)
    out = fit_length(Synthesizer(settings, griffin_lim=True)(features(wave, settings)), wave.shape[-1])
    before, after = stereo_image(wave), stereo_image(out)
    assert out.shape == wave.shape
    assert abs(after.side_to_mid_db - before.side_to_mid_db) < 1.0
    assert abs(after.correlation - before.correlation) < 0.05


def test_the_side_is_made_orthogonal_to_the_mid_and_silent_where_the_side_is():
    settings = AudioSettings(channels=2)
    t = torch.arange(settings.sample_rate) / settings.sample_rate
    mid = 0.3 * torch.sin(2 * torch.pi * 440 * t) * torch.exp(-3 * t)
    frames = settings.sample_rate // settings.hop_length + 1
    side = side_from_mid(mid, torch.full((settings.side_bands, frames), -3.0), settings)
    assert abs(float((mid * side).sum()) / float(mid.norm() * side.norm())) < 0.05  # a quarter cycle apart
    silent = side_from_mid(mid, torch.full((settings.side_bands, frames), -11.5129), settings)
    assert float(silent.abs().max()) < 1e-3 * float(mid.abs().max())
    assert torch.allclose(left_right(mid, silent)[0] - left_right(mid, silent)[1], 2 * silent, atol=1e-7)


def test_a_stereo_dataset_trains_a_stereo_model_and_a_mono_one_a_mono_model(stereo_model, ws, tmp_path):
    stereo_ws, path, _ = stereo_model
    assert load_model_file(path).audio_settings == AudioSettings(channels=2)
    assert dataset_settings(stereo_ws, "wide").channels == 2
    mono = [tmp_path / f"m{i}.wav" for i in range(3)]
    for i, clip in enumerate(mono):
        sf.write(str(clip), 0.3 * np.sin(np.arange(RATE) * (0.05 + 0.01 * i)), RATE)
    create_dataset(ws, "mono", mono)
    assert dataset_settings(ws, "mono") == AudioSettings(channels=1)
    # a mixed dataset is stereo: its mono clips are centred (their side silent)
    create_dataset(ws, "mixed", mono + [wide_note(tmp_path / "w.wav", 300.0, seed=3)])
    assert dataset_settings(ws, "mixed").channels == 2
    assert len(load_dataset(ws, "mixed").usable_clips) == 4


def test_a_stereo_clip_comes_back_stereo_with_its_channels_different_and_its_image_kept(stereo_model, tmp_path):
    ws, path, clips = stereo_model
    result, = transform_files(ws, path, [clips[2]], out_dir=tmp_path, device="cpu")
    assert result.ok, result.error
    out, rate = sf.read(str(result.path), dtype="float32", always_2d=True)
    original, _ = sf.read(str(clips[2]), dtype="float32", always_2d=True)
    assert rate == 44100 and out.shape[1] == 2
    assert np.abs(out[:, 0] - out[:, 1]).max() > 0.1 * np.abs(out).max()  # two channels, not one twice
    before, after = stereo_image(torch.from_numpy(original.T)), stereo_image(torch.from_numpy(out.T))
    assert abs(after.side_to_mid_db - before.side_to_mid_db) < 3.0, (before, after)
    assert abs(after.correlation - before.correlation) < 0.15, (before, after)


def test_a_15khz_partial_in_a_48khz_clip_survives_transform_within_3db(stereo_model, tmp_path):
    ws, path, clips = stereo_model
    result, = transform_files(ws, path, [clips[1]], out_dir=tmp_path, device="cpu")
    out, rate = sf.read(str(result.path), dtype="float64", always_2d=True)
    original, original_rate = sf.read(str(clips[1]), dtype="float64", always_2d=True)
    seconds = min(out.shape[0] / rate, original.shape[0] / original_rate)
    level = lambda x, r: band_db(x[: int(seconds * r)].mean(axis=1), r, PARTIAL_HZ - 1000, PARTIAL_HZ + 1000)  # noqa: E731
    assert abs(level(out, rate) - level(original, original_rate)) < 3.0


def test_generated_sounds_of_a_stereo_model_are_stereo_with_the_clips_image(stereo_model, tmp_path):
    ws, path, clips = stereo_model
    widths = sorted(stereo_image(read_audio(c, 44100, 2)).side_to_mid_db for c in clips)
    typical, = generate_sounds(ws, path, n=1, seed=3, temperature=0.0, out_dir=tmp_path, device="cpu")
    varied = generate_sounds(ws, path, n=2, seed=3, out_dir=tmp_path, device="cpu")
    for sound in [typical, *varied]:
        data, rate = sf.read(str(sound.path), dtype="float32", always_2d=True)
        assert (rate, data.shape[1]) == (44100, 2)
        image = stereo_image(torch.from_numpy(data.T))
        # stereo, as wide as the clips are (a varied one within 6 dB of their range); the most
        # typical clip as it is within 3 dB of the clips' median
        assert widths[0] - 6.0 < image.side_to_mid_db < widths[-1] + 6.0, (image, widths)
        if sound is typical:
            assert abs(image.side_to_mid_db - widths[len(widths) // 2]) < 3.0, (image, widths)


def test_a_mono_clip_through_a_mono_model_stays_mono(trained_example, tmp_path):
    ws, _, model_file, clips = trained_example
    assert model_file.audio_settings.channels == 1
    result, = transform_files(ws, model_file.path, [clips[0]], out_dir=tmp_path, device="cpu")
    assert sf.info(str(result.path)).channels == 1 and sf.info(str(result.path)).samplerate == 44100
