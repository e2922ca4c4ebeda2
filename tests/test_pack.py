"""Sample packs: one folder and one zip, trimmed, faded, loudness-matched 24-bit WAVs that sort,
and a pack.json that makes any sound again."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

from distill import DistillError
from distill.audio import OutputFormat, loudness_lufs, true_peak_dbtp
from distill.pack import PACK_FILE, TRUE_PEAK_CEILING_DBTP, make_pack, packs_dir, regenerate, trim_tail
from test_modelfile import make_model_file


@pytest.fixture
def model_ws(ws):
    make_model_file(ws.models_dir / "drones.distillgan")
    return ws


def test_a_pack_is_a_folder_and_a_zip_of_sorted_24_bit_wavs_and_pack_json(model_ws):
    result = make_pack(model_ws, "drones", n=4, seed=11, device="cpu")
    assert result.folder.parent == packs_dir(model_ws) and result.folder.name == "drones-random-seed11"
    names = sorted(p.name for p in result.folder.iterdir())
    assert names == ["001-drones-seed11.wav", "002-drones-seed12.wav", "003-drones-seed13.wav",
                     "004-drones-seed14.wav", PACK_FILE]
    for name in names[:-1]:
        assert sf.info(str(result.folder / name)).subtype == "PCM_24"
    with zipfile.ZipFile(result.zip_path) as archive:
        assert sorted(archive.namelist()) == [f"drones-random-seed11/{n}" for n in names]
    assert not [p for p in packs_dir(model_ws).iterdir() if p.name.startswith(".")]  # no half-made leftovers
    again = make_pack(model_ws, "drones", n=1, seed=11, device="cpu")
    assert again.folder.name == "drones-random-seed11-2" and result.folder.exists()  # never over a pack


def test_sounds_are_matched_to_the_datasets_loudness_not_peak_normalised(model_ws):
    result = make_pack(model_ws, "drones", n=4, seed=2, device="cpu")
    manifest = json.loads((result.folder / PACK_FILE).read_text())
    target = manifest["loudness_target_lufs"]
    assert target == pytest.approx(-24.0)
    peaks = []
    for entry in manifest["files"]:
        wave, rate = sf.read(str(result.folder / entry["file"]), dtype="float32")
        peaks.append(float(np.abs(wave).max()))
        measured = loudness_lufs(torch.from_numpy(wave.T if wave.ndim == 2 else wave), rate)
        true_peak = true_peak_dbtp(wave.T if wave.ndim == 2 else wave, rate)
        assert true_peak <= TRUE_PEAK_CEILING_DBTP + 0.01 and entry["true_peak_dbtp"] == pytest.approx(true_peak, abs=0.05)
        if entry["peak_limited"]:
            assert measured < target and true_peak == pytest.approx(TRUE_PEAK_CEILING_DBTP, abs=0.05)
        else:
            assert measured == pytest.approx(target, abs=0.3)
    assert max(peaks) - min(peaks) > 0.01  # not every sound's peak pushed to one level


def test_pack_json_makes_every_sound_again_sample_for_sample(model_ws):
    result = make_pack(model_ws, "drones", n=3, seed=5, mode="variation", like="clip3.wav", temperature=1.5,
                       device="cpu")
    manifest = json.loads((result.folder / PACK_FILE).read_text())
    assert manifest["model"]["name"] == "drones" and len(manifest["model"]["sha256"]) == 64
    assert [e["spec"]["temperature"] for e in manifest["files"]] == [0.5, 1.0, 1.5]
    for entry in manifest["files"]:
        stored, rate = sf.read(str(result.folder / entry["file"]), dtype="float64")
        made, made_rate = regenerate(model_ws, result.folder / PACK_FILE, entry["file"], device="cpu")
        assert made_rate == rate and made.shape == stored.shape
        np.testing.assert_allclose(made, stored, atol=1.5 / 2**23)  # the same, up to 24-bit rounding


def test_regenerate_refuses_a_different_model_file(model_ws):
    result = make_pack(model_ws, "drones", n=1, seed=1, device="cpu")
    make_model_file(model_ws.models_dir / "drones.distillgan", seed=4)  # retrained under the same name
    with pytest.raises(DistillError, match="not the model file this pack was made with"):
        regenerate(model_ws, result.folder / PACK_FILE, result.files[0]["file"], device="cpu")


def test_trim_keeps_the_sound_and_drops_the_silence_after_it():
    rate = 22050
    wave = np.zeros(rate * 2, dtype=np.float32)
    wave[:rate // 2] = 0.5 * np.sin(np.arange(rate // 2) * 0.1) * np.exp(-np.arange(rate // 2) / 3000)
    trimmed = trim_tail(wave, rate)
    assert rate // 4 < trimmed.shape[0] < rate // 2 + rate // 50
    assert abs(trimmed[-1]) < 1e-4 and np.array_equal(trimmed[:1000], wave[:1000])
    silent = np.zeros(100, dtype=np.float32)
    assert np.array_equal(trim_tail(silent, rate), silent)


def test_cli_pack(model_ws, tmp_path, capsys):
    from distill.cli import main

    argv = ["--workspace", str(model_ws.root), "pack", "drones", "--morph", "clip1.wav", "clip4.wav", "--steps", "3",
            "--seed", "2", "--name", "my pack", "-o", str(tmp_path), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "my pack") in out and str(tmp_path / "my pack.zip") in out
    manifest = json.loads((tmp_path / "my pack" / PACK_FILE).read_text())
    assert [e["spec"]["position"] for e in manifest["files"]] == [0.0, 0.5, 1.0]
    assert manifest["settings"]["mode"] == "morph" and manifest["settings"]["morph"] == ["clip1.wav", "clip4.wav"]


@pytest.mark.parametrize("fmt, subtype", [(OutputFormat("wav", 16, 48000), "PCM_16"),
                                          (OutputFormat("wav", 32), "FLOAT"),
                                          (OutputFormat("flac", 24, 44100), "PCM_24")])
def test_a_pack_is_written_at_the_rate_bits_and_format_asked_at_a_loudness_under_a_true_peak_ceiling(
        model_ws, fmt, subtype):
    result = make_pack(model_ws, "drones", n=3, seed=4, device="cpu", fmt=fmt, loudness_lufs_target=-18.0)
    manifest = json.loads((result.folder / PACK_FILE).read_text())
    rate = fmt.sample_rate or 44100
    assert manifest["format"] == {"container": fmt.container, "bits": fmt.bits, "float": fmt.bits == 32,
                                  "sample_rate": rate}
    assert manifest["loudness_target_lufs"] == -18.0 and manifest["true_peak_ceiling_dbtp"] == -1.0
    for entry in manifest["files"]:
        path = result.folder / entry["file"]
        info = sf.info(str(path))
        assert path.suffix == f".{fmt.container}" and info.format == fmt.container.upper()
        assert (info.samplerate, info.subtype, info.channels) == (rate, subtype, manifest["channels"])
        wave, _ = sf.read(str(path), dtype="float32", always_2d=True)
        assert true_peak_dbtp(wave.T, rate) <= -1.0 + 0.01
        if not entry["peak_limited"]:
            assert loudness_lufs(torch.from_numpy(wave.T), rate) == pytest.approx(-18.0, abs=0.5)
        again, again_rate = regenerate(model_ws, result.folder / PACK_FILE, entry["file"], device="cpu")
        assert again_rate == rate and again.shape[-1] == wave.shape[0]


def test_a_format_no_file_type_can_hold_is_refused():
    with pytest.raises(DistillError, match="32-bit float is WAV only"):
        OutputFormat("flac", 32)
    with pytest.raises(DistillError, match="44100 or 48000"):
        OutputFormat("wav", 24, 96000)
