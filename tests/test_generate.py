"""Generation from a saved model: seeds, where latent frames are drawn, long sounds without
clicks, the vocoder switch, and where the files go."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, levels, normalize_peak
from distill.generate import ANCHOR_SECONDS, generate, generate_sounds, latent_walk, offset_vector, render
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


def synthetic_analysis(dim: int = 8, mean: float = 3.0, spread: float = 0.1) -> dict:
    directions = torch.eye(dim)
    return {"latent_mean": torch.full((dim,), mean), "latent_std": torch.full((dim,), spread),
            "directions": directions, "direction_std": torch.linspace(1.0, 0.1, dim),
            "explained_variance_ratio": torch.full((dim,), 1 / dim), "n_segments": 100}


CHUNK_LATENTS = 4  # decode_long's chunk in the tests: many joins in a few seconds


def join_samples(model_file, n_samples: int) -> list[int]:
    """Sample positions where a long sound could have a seam: where `decode_long`'s chunks of
    CHUNK_LATENTS latent frames meet, and where the walk passes an anchor."""
    settings, stride = model_file.audio_settings, model_file.model_config.time_stride
    per_anchor = max(1, round(settings.seconds_to_frames(ANCHOR_SECONDS) / stride))
    latents = math.ceil((math.ceil(n_samples / settings.hop_length) + 1) / stride)
    joins = set(range(CHUNK_LATENTS, latents, CHUNK_LATENTS)) | set(range(per_anchor, latents, per_anchor))
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


def load_as(kind: type[ConvVAE], model_file) -> ConvVAE:
    model = kind(model_file.model_config)
    model.load_state_dict(model_file.state)
    return model.eval()


def test_same_seed_same_sound_and_sound_i_uses_seed_plus_i(model_ws, tmp_path):
    first = generate(model_ws, "drones", n=3, seed=10, out_dir=tmp_path / "a", device="cpu")
    again = generate(model_ws, "drones", n=3, seed=10, out_dir=tmp_path / "b", device="cpu")
    alone = generate(model_ws, "drones", n=1, seed=12, out_dir=tmp_path / "c", device="cpu")
    assert [p.name for p in first] == ["drones-seed10.wav", "drones-seed11.wav", "drones-seed12.wav"]
    for a, b in zip(first, again):
        assert np.array_equal(read(a), read(b))
    assert np.array_equal(read(first[2]), read(alone[0]))
    assert not np.array_equal(read(first[0]), read(first[1]))


def test_latents_are_drawn_where_the_training_latents_are_not_from_the_prior():
    analysis = synthetic_analysis(mean=3.0, spread=0.1)
    g = torch.Generator().manual_seed(0)
    # Many walks; chunk 2 of 4 per anchor sits halfway between anchors (the cos/sin blend).
    walks = torch.stack([latent_walk(analysis, 9, 4, g) for _ in range(400)])
    for chunk in (0, 2, 5):
        z = walks[:, chunk]
        assert float(z.mean()) == pytest.approx(3.0, abs=0.02)
        assert float(z.std()) == pytest.approx(0.1, rel=0.1)
    assert torch.equal(latent_walk(analysis, 5, 2, g, temperature=0.0), analysis["latent_mean"].expand(5, 8))
    cold = torch.stack([latent_walk(analysis, 1, 1, g, temperature=0.5)[0] for _ in range(400)])
    assert float(cold.std()) == pytest.approx(0.05, rel=0.1)


def test_walk_is_smooth_and_its_start_does_not_depend_on_length():
    analysis = synthetic_analysis(mean=0.0, spread=1.0)
    short = latent_walk(analysis, 1, 4, torch.Generator().manual_seed(5))
    long = latent_walk(analysis, 40, 4, torch.Generator().manual_seed(5))
    assert torch.equal(short[0], long[0])
    steps = (long[1:] - long[:-1]).norm(dim=1)
    anchor_gap = (long[4] - long[0]).norm()
    assert float(steps.max()) < float(anchor_gap)  # a walk, not a jump from anchor to anchor


def test_offsets_move_along_the_principal_directions_in_units_of_spread():
    analysis = synthetic_analysis()
    vector = offset_vector(analysis, {1: 2.0, 3: -1.0}, 8)
    expected = torch.zeros(8)
    expected[0], expected[2] = 2.0 * 1.0, -1.0 * float(analysis["direction_std"][2])
    torch.testing.assert_close(vector, expected)
    g = torch.Generator().manual_seed(1)
    base = latent_walk(analysis, 3, 2, torch.Generator().manual_seed(1))
    moved = latent_walk(analysis, 3, 2, g, offset=vector)
    torch.testing.assert_close(moved - base, vector.expand(3, 8))
    with pytest.raises(DistillError, match="pc1..pc8"):
        offset_vector(analysis, {9: 1.0}, 8)


def test_offsets_change_the_sound(model_ws, tmp_path):
    plain, = generate(model_ws, "drones", n=1, seed=3, out_dir=tmp_path, device="cpu")
    moved, = generate(model_ws, "drones", n=1, seed=3, offsets={1: 3.0}, out_dir=tmp_path, device="cpu")
    assert moved.name == "drones-seed3-pc1+3.wav"
    assert not np.array_equal(read(plain), read(moved))


def test_a_long_sound_is_one_decode_and_one_inversion(model_ws):
    model_file = load_model_file(model_ws.models_dir / "drones.distillgan")
    whole, whole_mel = render(model_file, model_file.build_model(), seed=6, duration=3.0)
    chunked, chunked_mel = render(model_file, load_as(ChunkyDecoder, model_file), seed=6, duration=3.0)
    settings = model_file.audio_settings
    assert whole_mel.shape == (settings.n_mels, math.ceil(3.0 * settings.sample_rate / settings.hop_length) + 1)
    assert whole_mel.std() > 0.1  # the walk moves: the sound is not one frame repeated
    torch.testing.assert_close(chunked_mel, whole_mel, atol=1e-4, rtol=0)  # chunks leave no seam in the mel
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_long_sound_has_no_jumps_at_the_joins(model_ws, tmp_path):
    sound, = generate_sounds(model_ws, "drones", n=1, seed=7, duration=3.0, out_dir=tmp_path, device="cpu")
    wave = read(sound.path)
    model_file = load_model_file(model_ws.models_dir / "drones.distillgan")
    assert wave.shape[0] == round(3.0 * model_file.audio_settings.sample_rate) and sound.seconds == 3.0
    assert np.isfinite(wave).all() and np.abs(wave).max() <= 1.0
    peak, rms = levels(wave)
    # An untrained model decodes near the dataset's mean log-mel: quiet, but not silence.
    assert -60.0 < peak <= 0.0 and rms > -80.0
    chunked, _ = render(model_file, load_as(ChunkyDecoder, model_file), seed=7, duration=3.0)
    joins = join_samples(model_file, chunked.shape[0])
    assert len(joins) > 10
    near, elsewhere = jump_near_and_elsewhere(normalize_peak(chunked), joins)
    assert near <= 1.25 * elsewhere, (near, elsewhere)


def test_tonal_frames_join_without_clicks_and_the_measure_catches_a_click(model_ws):
    model_file = load_model_file(model_ws.models_dir / "drones.distillgan")
    wave, mel = render(model_file, load_as(ToneDecoder, model_file), seed=4, duration=3.0)
    wave = normalize_peak(wave)
    joins = join_samples(model_file, wave.shape[0])
    near, elsewhere = jump_near_and_elsewhere(wave, joins)
    assert near <= 1.25 * elsewhere, (near, elsewhere)
    # A bad join, as per-chunk inversion makes one: the phase jumps (here: flips) at a join.
    join = joins[len(joins) // 2]
    at = join - 64 + int(np.argmax(np.abs(wave[join - 64:join + 64])))
    clicked = np.concatenate([wave[:at], -wave[at:]])
    near, elsewhere = jump_near_and_elsewhere(clicked, joins)
    assert near > 3 * elsewhere, (near, elsewhere)


def test_duration_defaults_to_one_segment(model_ws, tmp_path):
    path, = generate(model_ws, "drones", n=1, seed=1, out_dir=tmp_path, device="cpu")
    model_file = load_model_file(model_ws.models_dir / "drones.distillgan")
    expected = model_file.audio_settings.frames_to_seconds(model_file.model_config.segment_frames)
    assert read(path).shape[0] == round(expected * model_file.audio_settings.sample_rate)


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
    with pytest.raises(DistillError, match="16 or 24"):
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
                            ({"duration": 0}, "duration"), ({"duration": 10_000}, "duration")]:
        with pytest.raises(DistillError, match=message):
            generate(model_ws, "drones", **kwargs)


def test_the_models_vocoder_is_used_unless_griffin_lim_is_forced(model_ws, tmp_path, monkeypatch):
    calls, loads = [], []

    class FakeVocoder:
        def synthesize(self, log_mels, clamp=True):
            calls.append((tuple(log_mels.shape), clamp))
            t = torch.arange(log_mels.shape[-1] * 256) / 22050
            return 0.5 * torch.sin(2 * math.pi * 440 * t)

    def fake_load(slot, device, settings=None):
        loads.append(settings)
        return FakeVocoder()

    monkeypatch.setattr("distill.synthesis.load_vocoder", fake_load)
    gl_only, = generate(model_ws, "drones", n=1, seed=2, out_dir=tmp_path / "gl", device="cpu")
    assert calls == [] and loads == []  # no slot: Griffin-Lim, no vocoder loaded
    attach_vocoder(model_ws.models_dir / "drones.distillgan", vocoder_slot())
    voiced = generate(model_ws, "drones", n=2, seed=2, out_dir=tmp_path / "voc", device="cpu")
    assert len(calls) == 2 and calls[0][0][0] == 80 and calls[0][1] is False
    assert len(loads) == 1  # loaded once for the batch, with the model's mel settings to check against
    assert loads[0] == load_model_file(model_ws.models_dir / "drones.distillgan").audio_settings
    t = np.arange(read(voiced[0]).shape[0]) / 22050
    assert np.corrcoef(read(voiced[0]), np.sin(2 * np.pi * 440 * t))[0, 1] > 0.99
    forced, = generate(model_ws, "drones", n=1, seed=2, griffin_lim=True, out_dir=tmp_path / "forced", device="cpu")
    assert len(calls) == 2
    assert np.array_equal(read(forced), read(gl_only))


def test_ab_pair_is_one_sound_decoded_both_ways(model_ws, monkeypatch):
    from distill.generate import ab_pair

    with pytest.raises(DistillError, match="has no vocoder yet"):
        ab_pair("drones", 3, ws=model_ws)

    class FakeVocoder:
        def synthesize(self, log_mels, clamp=True):
            return torch.zeros(log_mels.shape[-1] * 256) + 0.01 * log_mels.mean()

    monkeypatch.setattr("distill.synthesis.load_vocoder", lambda slot, device, settings=None: FakeVocoder())
    attach_vocoder(model_ws.models_dir / "drones.distillgan", vocoder_slot())
    griffin, vocoder = ab_pair(model_ws.models_dir / "drones.distillgan", 3, duration=1.0)
    assert griffin.parent == vocoder.parent == model_ws.generated_dir / "drones" / "ab"
    assert (griffin.name, vocoder.name) == ("seed-3-1s-griffin-lim.wav", "seed-3-1s-vocoder.wav")
    a, b = read(griffin), read(vocoder)
    assert a.shape == b.shape == (22050,) and not np.allclose(a, b)
    model_file = load_model_file(model_ws.models_dir / "drones.distillgan")
    alone, _ = render(model_file, model_file.build_model(), 3, 1.0,
                      synthesize=Synthesizer.for_model(model_file, griffin_lim=True))
    np.testing.assert_allclose(a, normalize_peak(alone), atol=1e-4)  # the very sound `generate` makes


def test_cli_generate_with_offsets(model_ws, tmp_path, capsys):
    from distill.cli import main

    argv = ["--workspace", str(model_ws.root), "generate", "drones", "-n", "2", "--seed", "5", "--pc1", "1.5",
            "--offset", "3=-1", "--duration", "1", "--bits", "24", "-o", str(tmp_path), "--device", "cpu"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "seed 5" in lines[0] and "dBFS" in lines[0]
    path = tmp_path / "drones-seed5-pc1+1.5-pc3-1-1s.wav"
    assert path.exists() and sf.info(str(path)).subtype == "PCM_24"
    assert main(["--workspace", str(model_ws.root), "generate", "drones", "--offset", "x"]) == 1
    assert "--offset 'x'" in capsys.readouterr().err
