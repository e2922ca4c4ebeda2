"""Generation from a saved model: seeds, default lengths, random sounds, variations, morphs,
long sounds without clicks, the vocoder switch, the CLI, and where the files go."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, levels, loudness_lufs, normalize_peak
from distill.generate import SoundSpec, Studio, generate, generate_sounds, offset_vector, open_studio
from distill.modelfile import open_model
from distill.model import ConvVAE
from distill.modelfile import V1_MESSAGE, attach_vocoder, load_model_file
from distill.synthesis import Synthesizer
from test_modelfile import make_model_file, vocoder_slot


@pytest.fixture
def model_ws(ws):
    make_model_file(ws.models_dir / "drones.distillgan")
    return ws


def read(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float32")[0]


CHUNK_LATENTS = 4  # decode_long's chunk in the tests: many joins in a few seconds


def join_samples(model_file, n_samples: int) -> list[int]:
    """Sample positions where a long sound could have a seam: where `decode_long`'s chunks of
    CHUNK_LATENTS latent frames meet."""
    settings, stride = model_file.audio_settings, model_file.model_config.time_stride
    latents = math.ceil((math.ceil(n_samples / settings.hop_length) + 1) / stride)
    joins = set(range(CHUNK_LATENTS, latents, CHUNK_LATENTS))
    samples = (j * stride * settings.hop_length for j in joins)
    return sorted(s for s in samples if 0 < s < n_samples - 1)


def jump_near_and_elsewhere(wave: np.ndarray, joins: list[int], halfwidth: int = 128,
                            context: int = 1024) -> tuple[float, float]:
    """Largest sample-to-sample jump |x[n+1] - x[n]|, measured against the local RMS (±`context`
    samples) so a loud passage is not mistaken for a click, within `halfwidth` samples of a
    join and away from every join."""
    jumps = np.abs(np.diff(wave))
    kernel = np.ones(2 * context + 1) / (2 * context + 1)
    local_rms = np.sqrt(np.convolve(wave[:-1].astype(np.float64) ** 2, kernel, mode="same")) + 1e-4
    relative = jumps / local_rms
    near = np.zeros(jumps.shape[0], dtype=bool)
    for j in joins:
        near[max(0, j - halfwidth):j + halfwidth] = True
    return float(relative[near].max()), float(relative[~near].max())


class ChunkyDecoder(ConvVAE):
    """The model, decoding long sequences in chunks of CHUNK_LATENTS latent frames."""

    def decode_long(self, z, frames=None, chunk_latents=CHUNK_LATENTS):
        return super().decode_long(z, frames, chunk_latents)


class ToneDecoder(ChunkyDecoder):
    """Decodes each latent frame to a steady two-partial tone whose pitch and level follow
    z[0], z[1]: tonal frames that differ, where a seam would be audible (and measurable)."""

    def decode(self, z, clamp=False):
        stride = self.config.time_stride
        mel = torch.full((z.shape[0], self.config.n_mels, z.shape[-1] * stride), LOG_MEL_FLOOR)
        for i, frames in enumerate(z):
            for t, row in enumerate(frames.T):
                band = 10 + int(5 * (1 + torch.tanh(row[0])))
                mel[i, band, t * stride:(t + 1) * stride] = 0.5 + 0.5 * torch.tanh(row[1])
                mel[i, band + 12, t * stride:(t + 1) * stride] = -1.0
        return mel


def studio_as(kind: type[ConvVAE], ws, name: str = "drones") -> Studio:
    """A Studio (Griffin-Lim, as the seams were measured with it) whose network is `kind`, with
    the model file's weights."""
    opened = open_model(ws, name, "cpu")
    model = kind(opened.file.model_config)
    model.load_state_dict(opened.file.state)
    opened = dataclasses.replace(opened, network=model.eval())
    return Studio(opened, Synthesizer(opened.file.audio_settings, griffin_lim=True))


def mel_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute log-mel difference over the frames both have."""
    n = min(a.shape[1], b.shape[1])
    return float((a[:, :n] - b[:, :n]).abs().mean())


def test_same_seed_same_sound_and_sound_i_uses_seed_plus_i(model_ws, tmp_path):
    first = generate(model_ws, "drones", n=3, seed=10, out_dir=tmp_path / "a", device="cpu")
    again = generate(model_ws, "drones", n=3, seed=10, out_dir=tmp_path / "b", device="cpu")
    alone = generate(model_ws, "drones", n=1, seed=12, out_dir=tmp_path / "c", device="cpu")
    assert [p.name for p in first] == ["drones-seed10.wav", "drones-seed11.wav", "drones-seed12.wav"]
    for a, b in zip(first, again):
        assert np.array_equal(read(a), read(b))
    assert np.array_equal(read(first[2]), read(alone[0]))
    assert not np.array_equal(read(first[0]), read(first[1]))


def test_rendering_two_at_once_gives_the_sounds_one_at_a_time_gives_in_order(trained_example):
    from distill.generate import batch_specs

    ws, _, model_file, clips = trained_example
    studio = open_studio(ws, model_file.path, griffin_lim=True, device="cpu")
    specs = batch_specs(3, 4) + batch_specs(2, 9, mode="variation", like=clips[0].name)
    together = list(studio.render_all(specs))
    for spec, (wave, mel, recipe) in zip(specs, together):
        alone = studio.render(spec)
        assert np.array_equal(wave, alone[0]) and torch.equal(mel, alone[1]) and recipe == alone[2]
    assert len(together) == len(specs)


def test_duration_defaults_to_the_datasets_median_clip_length(model_ws, tmp_path):
    sounds = generate_sounds(model_ws, "drones", n=3, seed=1, out_dir=tmp_path, device="cpu")
    model_file = load_model_file(model_ws.models_dir / "drones.distillgan")
    median = model_file.analysis["trajectories"]["median_seconds"]
    assert median > 0.5
    for sound in sounds:
        assert read(sound.path).shape[0] == round(median * model_file.audio_settings.sample_rate)
    longer, = generate(model_ws, "drones", n=1, seed=1, duration=2.5, out_dir=tmp_path, device="cpu")
    assert read(longer).shape[0] == round(2.5 * 44100)


def test_a_sound_is_at_its_clips_level_not_peak_normalised(model_ws, tmp_path):
    sounds = generate_sounds(model_ws, "drones", n=4, seed=3, out_dir=tmp_path, device="cpu")
    peaks = [s.peak_dbfs for s in sounds]
    assert max(peaks) <= -0.09 and max(peaks) - min(peaks) > 1.0  # levels differ as the clips' do
    for sound in sounds:
        # 16-bit rounding: one step is 0.03 dB of a peak at -40 dBFS
        assert levels(read(sound.path))[0] == pytest.approx(sound.peak_dbfs, abs=0.05)


def test_temperature_zero_makes_the_most_typical_clip_for_every_seed(model_ws, tmp_path):
    studio = open_studio(model_ws, "drones", device="cpu")
    made = [studio.render(SoundSpec(seed=seed, temperature=0.0)) for seed in (1, 2)]
    assert np.array_equal(made[0][0], made[1][0])
    medoid = studio.bank.names[int(studio.generator.typicality().argmin())]
    assert made[0][2].clips == (medoid,)
    seconds = studio.seconds(SoundSpec())
    own, _, _ = studio.render(SoundSpec(mode="variation", like=medoid, temperature=0.0, duration=seconds))
    np.testing.assert_array_equal(made[0][0], own)  # the medoid clip as it is


def test_variations_grow_with_their_distance_setting(trained_example, tmp_path):
    ws, _, model_file, clips = trained_example
    studio = open_studio(ws, "example", griffin_lim=True, device="cpu")
    clip = studio.bank.names[3]
    _, source, _ = studio.render(SoundSpec(mode="variation", like=clip, temperature=0.0))
    for seed in (0, 1, 2):
        gaps = [mel_gap(studio.render(SoundSpec(mode="variation", like=clip, temperature=d, seed=seed))[1], source)
                for d in (0.25, 0.5, 1.0, 2.0)]
        assert gaps == sorted(gaps) and gaps[0] > 0, gaps
    sounds = generate_sounds(ws, "example", n=4, seed=7, mode="variation", like=clip, temperature=2.0,
                             out_dir=tmp_path, device="cpu")
    assert [s.spec.temperature for s in sounds] == [0.5, 1.0, 1.5, 2.0]  # from close to far
    assert all(clip.rsplit(".", 1)[0] in s.path.name for s in sounds)


def test_a_variation_of_any_file_starts_from_that_file(trained_example, tmp_path):
    ws, _, model_file, clips = trained_example
    studio = open_studio(ws, "example", griffin_lim=True, device="cpu")
    outside = clips[0]  # a training clip given as a file: encoded like any file
    by_file = studio.render(SoundSpec(mode="variation", like=str(outside), temperature=0.0))[1]
    by_name = studio.render(SoundSpec(mode="variation", like=studio.bank.names[0], temperature=0.0))[1]
    other = studio.render(SoundSpec(mode="variation", like=studio.bank.names[5], temperature=0.0))[1]
    assert mel_gap(by_file, by_name) < 0.5 * mel_gap(by_name, other)
    with pytest.raises(DistillError, match="neither a training clip"):
        studio.render(SoundSpec(mode="variation", like=str(tmp_path / "missing.wav")))


def test_morph_endpoints_are_their_clips_and_the_steps_lie_between(trained_example, tmp_path):
    ws, _, _, _ = trained_example
    studio = open_studio(ws, "example", griffin_lim=True, device="cpu")
    a, b = studio.bank.names[1], studio.bank.names[8]
    own_a = studio.render(SoundSpec(mode="variation", like=a, temperature=0.0))
    own_b = studio.render(SoundSpec(mode="variation", like=b, temperature=0.0))
    steps = [studio.render(SoundSpec(mode="morph", morph=(a, b), position=p, seed=3)) for p in (0.0, 0.5, 1.0)]
    np.testing.assert_array_equal(steps[0][0], own_a[0])
    np.testing.assert_array_equal(steps[2][0], own_b[0])
    middle = steps[1][1]
    assert mel_gap(middle, own_a[1]) < mel_gap(own_b[1], own_a[1])
    assert mel_gap(middle, own_b[1]) < mel_gap(own_b[1], own_a[1])
    loud = [loudness_lufs(torch.from_numpy(w), 44100) for w, _, _ in steps]
    assert min(loud[0], loud[2]) - 0.5 <= loud[1] <= max(loud[0], loud[2]) + 0.5
    sounds = generate_sounds(ws, "example", n=3, seed=3, mode="morph", morph_ends=(a, "seed:4"),
                             out_dir=tmp_path, device="cpu")
    assert [s.spec.position for s in sounds] == [0.0, 0.5, 1.0]
    assert sounds[2].recipe.startswith("0.00") and "seed4" in sounds[2].recipe
    with pytest.raises(DistillError, match="at least 2 steps"):
        generate_sounds(ws, "example", n=1, mode="morph", morph_ends=(a, b), out_dir=tmp_path)


def test_generated_one_shots_attack_and_decay_like_the_clips(trained_example):
    ws, _, _, _ = trained_example
    studio = open_studio(ws, "example", griffin_lim=True, device="cpu")
    for seed in range(4):
        wave, _, _ = studio.render(SoundSpec(seed=seed))
        frames = np.abs(wave[: wave.shape[0] // 1024 * 1024]).reshape(-1, 1024).max(axis=1)
        loudest = int(frames.argmax())
        assert loudest < len(frames) // 4, seed  # the attack comes first
        assert 20 * np.log10(frames[-1] / frames[loudest] + 1e-9) < -20, seed  # and it dies away


def test_a_long_sound_is_one_decode_and_one_inversion(model_ws):
    whole = studio_as(ConvVAE, model_ws)
    chunked = studio_as(ChunkyDecoder, model_ws)
    spec = SoundSpec(seed=6, duration=3.0)
    wave, mel, _ = whole.render(spec)
    chunked_wave, chunked_mel, _ = chunked.render(spec)
    settings = whole.settings
    assert mel.shape == (settings.n_mels, math.ceil(3.0 * settings.sample_rate / settings.hop_length) + 1)
    assert mel.std() > 0.1
    torch.testing.assert_close(chunked_mel, mel, atol=1e-4, rtol=0)  # chunks leave no seam in the mel
    np.testing.assert_allclose(chunked_wave, wave, atol=1e-4)


def test_a_long_sustained_sound_has_no_jumps_at_the_joins(model_ws, tmp_path):
    studio = studio_as(ChunkyDecoder, model_ws)
    sustained = studio.bank.names[6]  # the bank's one sustained clip: it goes on by splicing
    wave, _, _ = studio.render(SoundSpec(mode="variation", like=sustained, temperature=0.5, duration=4.0))
    assert np.isfinite(wave).all() and np.abs(wave).max() <= 1.0
    assert levels(wave[-44100:])[1] > levels(wave)[1] - 20  # still sounding at the end
    joins = join_samples(studio.file, wave.shape[0])
    assert len(joins) > 10
    near, elsewhere = jump_near_and_elsewhere(normalize_peak(wave), joins)
    assert near <= 1.25 * elsewhere, (near, elsewhere)


def test_tonal_frames_join_without_clicks_and_the_measure_catches_a_click(model_ws):
    studio = studio_as(ToneDecoder, model_ws)
    wave, _, _ = studio.render(SoundSpec(mode="variation", like=studio.bank.names[6], temperature=1.0,
                                         duration=3.0, seed=4))
    wave = normalize_peak(wave)
    joins = join_samples(studio.file, wave.shape[0])
    near, elsewhere = jump_near_and_elsewhere(wave, joins)
    assert near <= 1.25 * elsewhere, (near, elsewhere)
    # A bad join, as per-chunk inversion makes one: the phase jumps (here: flips) at a join.
    join = joins[len(joins) // 2]
    at = join - 64 + int(np.argmax(np.abs(wave[join - 64:join + 64])))
    clicked = np.concatenate([wave[:at], -wave[at:]])
    near, elsewhere = jump_near_and_elsewhere(clicked, joins)
    assert near > 3 * elsewhere, (near, elsewhere)


def test_offsets_move_along_the_principal_directions_in_units_of_spread(model_ws, tmp_path):
    analysis = load_model_file(model_ws.models_dir / "drones.distillgan").analysis
    vector = offset_vector(analysis, {1: 2.0, 3: -1.0}, 8)
    expected = 2.0 * analysis["direction_std"][0] * analysis["directions"][0] \
        - 1.0 * analysis["direction_std"][2] * analysis["directions"][2]
    torch.testing.assert_close(vector, expected.float())
    with pytest.raises(DistillError, match="pc1..pc8"):
        offset_vector(analysis, {9: 1.0}, 8)
    plain, = generate(model_ws, "drones", n=1, seed=3, out_dir=tmp_path, device="cpu")
    moved, = generate(model_ws, "drones", n=1, seed=3, offsets={1: 3.0}, out_dir=tmp_path, device="cpu")
    assert moved.name == "drones-seed3-pc1+3.wav"
    assert not np.array_equal(read(plain), read(moved))


def test_a_model_file_without_clip_trajectories_says_to_export_again(model_ws):
    from distill.modelfile import save_model_file

    model_file = load_model_file(model_ws.models_dir / "drones.distillgan")
    del model_file.analysis["trajectories"]
    save_model_file(model_file.path, model_file)
    with pytest.raises(DistillError, match="export it again"):
        generate(model_ws, "drones", n=1)


def test_files_go_to_the_generated_folder_never_into_a_dataset(model_ws, tmp_path):
    first = generate(model_ws, "drones", n=1, seed=1, device="cpu")
    second = generate(model_ws, "drones", n=1, seed=1, device="cpu")
    assert first[0].parent == model_ws.root / "generated" / "drones"
    assert second[0].name == "drones-seed1-2.wav"  # never an overwrite
    with pytest.raises(DistillError, match="inside the datasets folder"):
        generate(model_ws, "drones", n=1, seed=1, out_dir=model_ws.datasets_dir / "birds" / "clips")


def test_24_bit_on_request(model_ws, tmp_path):
    path, = generate(model_ws, "drones", n=1, seed=1, bits=24, out_dir=tmp_path, device="cpu")
    assert sf.info(str(path)).subtype == "PCM_24"
    with pytest.raises(DistillError, match="16, 24, 32 bits"):
        generate(model_ws, "drones", n=1, bits=8, out_dir=tmp_path)


def test_model_by_path_and_v1_refusal(model_ws, tmp_path):
    outside = tmp_path / "elsewhere.distillgan"
    make_model_file(outside)
    path, = generate(model_ws, str(outside), n=1, seed=1, device="cpu")
    assert path.parent == model_ws.root / "generated" / "elsewhere"
    (tmp_path / "old.distill").write_bytes(b"x")
    with pytest.raises(DistillError) as info:
        generate(model_ws, str(tmp_path / "old.distill"))
    assert str(info.value) == V1_MESSAGE


def test_bad_settings_are_refused(model_ws):
    for kwargs, message in [({"n": 0}, "at least 1"), ({"temperature": -1}, "temperature"),
                            ({"duration": 0}, "duration"), ({"duration": 10_000}, "duration"),
                            ({"mode": "remix"}, "unknown mode"), ({"mode": "variation"}, "needs a source")]:
        with pytest.raises(DistillError, match=message):
            generate_sounds(model_ws, "drones", **kwargs)


def test_the_models_vocoder_is_used_unless_griffin_lim_is_forced(model_ws, tmp_path, monkeypatch):
    from distill.vocoder.shipped import shipped_slot

    calls, loads = [], []

    class FakeVocoder:
        def synthesize(self, log_mels, clamp=True):
            calls.append((tuple(log_mels.shape), clamp))
            t = torch.arange(log_mels.shape[-1] * 512) / 44100
            return 0.5 * torch.sin(2 * math.pi * 440 * t)

    def fake_load(slot, device, settings=None):
        loads.append((slot, settings))
        return FakeVocoder()

    def is_the_sine(path: Path) -> bool:
        wave = read(path)
        t = np.arange(wave.shape[0]) / 44100
        head = slice(2000, 8000)  # the fades aside
        return np.corrcoef(wave[head], np.sin(2 * np.pi * 440 * t[head]))[0, 1] > 0.99

    monkeypatch.setattr("distill.synthesis.load_vocoder", fake_load)
    pretrained, = generate(model_ws, "drones", n=1, seed=2, out_dir=tmp_path / "pre", device="cpu")
    assert len(calls) == 1 and loads[0][0] is shipped_slot()  # no vocoder of its own: the shipped one
    attach_vocoder(model_ws.models_dir / "drones.distillgan", vocoder_slot())
    voiced = generate(model_ws, "drones", n=2, seed=2, out_dir=tmp_path / "voc", device="cpu")
    assert len(calls) == 3 and calls[1][0][0] == 128 and calls[1][1] is False
    assert len(loads) == 2 and loads[1][0] is not shipped_slot()  # its own, loaded once for the batch ...
    assert loads[1][1] == load_model_file(model_ws.models_dir / "drones.distillgan").audio_settings  # ... checked
    assert is_the_sine(voiced[0]) and is_the_sine(pretrained)
    forced, = generate(model_ws, "drones", n=1, seed=2, griffin_lim=True, out_dir=tmp_path / "forced", device="cpu")
    assert len(calls) == 3 and not is_the_sine(forced)


def test_ab_pair_is_one_sound_decoded_both_ways(model_ws, monkeypatch, tmp_path):
    from distill.generate import ab_pair
    from distill.vocoder import shipped

    griffin, pretrained = ab_pair("drones", 3, ws=model_ws)  # no vocoder of its own: the pretrained one
    assert (griffin.name, pretrained.name) == ("seed-3-griffin-lim.wav", "seed-3-pretrained.wav")
    assert not np.array_equal(read(griffin)[:1000], read(pretrained)[:1000])
    monkeypatch.setattr("distill.vocoder.shipped.SHIPPED", tmp_path / "gone.pt")
    shipped.forget()
    with pytest.warns(RuntimeWarning), pytest.raises(DistillError, match="decodes with Griffin-Lim.*missing"):
        ab_pair("drones", 3, ws=model_ws)
    monkeypatch.undo()
    shipped.forget()

    class FakeVocoder:
        def synthesize(self, log_mels, clamp=True):
            return torch.zeros(log_mels.shape[-1] * 512) + 0.01 * log_mels.mean()

    monkeypatch.setattr("distill.synthesis.load_vocoder", lambda slot, device, settings=None: FakeVocoder())
    attach_vocoder(model_ws.models_dir / "drones.distillgan", vocoder_slot())
    griffin, vocoder = ab_pair(model_ws.models_dir / "drones.distillgan", 3, duration=1.0)
    assert griffin.parent == vocoder.parent == model_ws.generated_dir / "drones" / "ab"
    assert (griffin.name, vocoder.name) == ("seed-3-1s-griffin-lim.wav", "seed-3-1s-vocoder.wav")
    a, b = read(griffin), read(vocoder)
    assert a.shape == b.shape == (44100,) and not np.allclose(a, b)
    alone, _, _ = open_studio(model_ws, "drones", griffin_lim=True, device="cpu").render(SoundSpec(seed=3, duration=1.0))
    np.testing.assert_allclose(a, normalize_peak(alone), atol=1e-4)  # the very sound `generate` makes


def test_cli_generate_modes_and_offsets(model_ws, tmp_path, capsys):
    from distill.cli import main

    base = ["--workspace", str(model_ws.root), "generate", "drones", "--device", "cpu"]
    argv = base + ["-n", "2", "--seed", "5", "--pc1", "1.5", "--offset", "3=-1", "--duration", "1", "--bits", "24",
                   "-o", str(tmp_path)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "dBFS" in lines[0] and "clip" in lines[0]
    path = tmp_path / "drones-seed5-pc1+1.5-pc3-1-1s.wav"
    assert path.exists() and sf.info(str(path)).subtype == "PCM_24"
    assert main(base + ["--like", "clip2.wav", "-n", "3", "--seed", "1", "-o", str(tmp_path / "like")]) == 0
    assert sorted(p.name for p in (tmp_path / "like").iterdir()) == [
        f"drones-like-clip2-d{d}-seed{s}.wav" for d, s in (("0.33", 1), ("0.67", 2), ("1.00", 3))]
    capsys.readouterr()
    assert main(base + ["--morph", "clip1.wav", "seed:4", "--steps", "3", "-o", str(tmp_path / "morph")]) == 0
    assert len(list((tmp_path / "morph").iterdir())) == 3
    for bad, message in ((["--offset", "x"], "--offset 'x'"), (["--steps", "3"], "--steps goes with --morph"),
                         (["--like", "clip1.wav", "--morph", "a", "b"], "two modes"),
                         (["--like", "nothing.wav"], "neither a training clip")):
        assert main(base + bad) == 1
        assert message in capsys.readouterr().err
