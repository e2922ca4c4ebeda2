"""Any audio through a model: exact length, the model's own level (no normalisation), one
WAV per input named after it, never over another file or into a dataset, loud outputs turned
down and said so, one bad file reported on its own; and `distill transform`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import write_tone
from distill import DistillError
from distill.audio import AudioSettings, levels
from distill.cli import main
from distill.model import ConvVAE
from distill.modelfile import attach_vocoder
from distill.synthesis import Synthesizer
from distill.transform import LEAD_IN_HOPS, PEAK_CEILING_DBFS, TransformResult, read_input, transform_files, transform_wave
from test_modelfile import TINY, make_model_file, vocoder_slot

SETTINGS = AudioSettings()


class Identity(ConvVAE):
    """Gives every log-mel back as it came: what a perfectly trained model would do."""

    def reconstruct(self, log_mel):
        return log_mel


@pytest.fixture
def model_ws(ws):
    make_model_file(ws.models_dir / "drones.distillgan")
    return ws


def rms_db(wave) -> float:
    return levels(wave)[1]


def read(path):
    return sf.read(str(path), dtype="float32")[0]


@pytest.mark.parametrize("samples", [100, 2047, 44100, 44100 + 77])
def test_the_output_has_exactly_the_inputs_length(samples):
    wave = 0.3 * torch.sin(2 * math.pi * 220 * torch.arange(samples) / SETTINGS.sample_rate)
    seen = []

    def synthesize(mel):
        seen.append(tuple(mel.shape))
        return Synthesizer(SETTINGS)(mel)

    out = transform_wave(ConvVAE(TINY).eval(), wave, SETTINGS, synthesize)
    assert out.shape == (samples,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    # the clip's frames, and the lead-in of silence the analysis puts before it
    assert seen == [(SETTINGS.n_mels, max(samples, SETTINGS.n_fft) // SETTINGS.hop_length + 1 + LEAD_IN_HOPS)]


def test_the_level_is_the_models_not_normalised():
    t = torch.arange(SETTINGS.sample_rate) / SETTINGS.sample_rate
    tone = torch.sin(2 * math.pi * 330 * t) + 0.5 * torch.sin(2 * math.pi * 660 * t)
    model = Identity(TINY).eval()
    for gain_db in (-36.0, -12.0):
        wave = tone * 10 ** (gain_db / 20)
        out = transform_wave(model, wave, SETTINGS, Synthesizer(SETTINGS))
        assert rms_db(out) == pytest.approx(rms_db(wave), abs=1.5), gain_db


def test_transform_wave_refuses_what_is_not_one_clip():
    with pytest.raises(DistillError, match="non-empty waveform"):
        transform_wave(ConvVAE(TINY).eval(), torch.zeros(2, 2, 1000), SETTINGS, Synthesizer(SETTINGS))
    with pytest.raises(DistillError, match="non-empty waveform"):
        transform_wave(ConvVAE(TINY).eval(), torch.zeros(0), SETTINGS, Synthesizer(SETTINGS))
    with pytest.raises(DistillError, match="non-empty waveform"):
        transform_wave(ConvVAE(TINY).eval(), torch.zeros(2, 0), SETTINGS, Synthesizer(SETTINGS))


def test_files_are_written_one_per_input_at_the_inputs_length_and_never_over_another(model_ws, tmp_path):
    a = write_tone(tmp_path / "in" / "pluck one.wav", seconds=1.0)
    b = write_tone(tmp_path / "in" / "stereo.flac", seconds=0.7, rate=44100, channels=2, amplitude=0.2)
    results = transform_files(model_ws, "drones", [a, b], device="cpu")
    assert [r.ok for r in results] == [True, True] and [r.input for r in results] == [a, b]
    folder = model_ws.transformed_dir / "drones"
    assert [r.path for r in results] == [folder / "pluck_one-drones.wav", folder / "stereo-drones.wav"]
    for result, source, seconds in zip(results, (a, b), (1.0, 0.7)):
        info, given = sf.info(str(result.path)), sf.info(str(source))
        # a mono model's files are mono at 44.1 kHz, as long as the input (resampled when it is not 44.1)
        assert info.samplerate == 44100 and info.subtype == "PCM_16" and info.channels == 1
        assert info.frames == round(given.frames * 44100 / given.samplerate)
        assert result.seconds == pytest.approx(seconds, abs=1e-3)
        assert result.clipped_db == 0.0 and result.note == ""
        assert result.output_rms_dbfs == pytest.approx(rms_db(read(result.path)), abs=0.1)
    assert results[0].input_rms_dbfs == pytest.approx(rms_db(sf.read(str(a))[0]), abs=0.1)
    assert results[1].input_rms_dbfs < results[0].input_rms_dbfs - 6  # quieter in, and measured so
    again, = transform_files(model_ws, "drones", [a], device="cpu")
    assert again.path == folder / "pluck_one-drones-2.wav"
    assert np.array_equal(read(again.path), read(results[0].path))  # same input, same model: same sound


def test_one_bad_input_is_reported_by_name_and_the_others_are_written(model_ws, tmp_path, monkeypatch):
    good = write_tone(tmp_path / "good.wav", seconds=0.5)
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio\n")
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(22050, dtype=np.float32), 22050)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype=np.float32), 22050)
    long = write_tone(tmp_path / "long.wav", seconds=2.0)
    monkeypatch.setattr("distill.transform.MAX_SECONDS", 1.5)
    results = transform_files(model_ws, "drones", [notes, good, silent, tmp_path / "gone.wav", empty, long,
                                                   tmp_path], device="cpu")
    assert [r.ok for r in results] == [False, True, False, False, False, False, False]
    errors = [r.error for r in results]
    assert errors[0].startswith("notes.wav: not audio, or unreadable")
    assert errors[2].startswith("silent.wav: silent")
    assert errors[3].startswith("gone.wav: no such file")
    assert errors[4].startswith("empty.wav: empty")
    assert errors[5].startswith("long.wav: too long (2 s): a transform takes at most 1.5 s at a time")
    assert errors[6].endswith("is a folder; name the audio files in it")
    assert all(r.path is None and r.note == r.error for r in results if not r.ok)
    assert [p.name for p in (model_ws.transformed_dir / "drones").iterdir()] == ["good-drones.wav"]


def test_a_file_longer_than_the_datasets_limit_gets_the_transform_limit(model_ws, tmp_path, monkeypatch):
    long = write_tone(tmp_path / "long.wav", seconds=2.0)
    monkeypatch.setattr("distill.clips.MAX_CLIP_SECONDS", 1.0)  # the dataset would say "the limit is 1 s"
    monkeypatch.setattr("distill.transform.MAX_SECONDS", 1.5)
    result, = transform_files(model_ws, "drones", [long], device="cpu")
    assert "a transform takes at most" in result.error and "the limit is" not in result.error


def test_a_model_or_folder_problem_is_an_error_before_any_file(model_ws, tmp_path):
    clip = write_tone(tmp_path / "a.wav")
    with pytest.raises(DistillError, match="inside the datasets folder"):
        transform_files(model_ws, "drones", [clip], out_dir=model_ws.datasets_dir / "birds" / "clips")
    with pytest.raises(DistillError, match="no model named 'drone'"):
        transform_files(model_ws, "drone", [clip])
    with pytest.raises(DistillError, match="nothing to transform"):
        transform_files(model_ws, "drones", [])
    out, = transform_files(model_ws, str(model_ws.models_dir / "drones.distillgan"), [clip],
                           out_dir=tmp_path / "mine", device="cpu")
    assert out.path == tmp_path / "mine" / "a-drones.wav"
    assert not model_ws.transformed_dir.exists()


class LoudVocoder:
    """A vocoder whose output peaks at 2.0 (+6 dBFS): a model that came out too loud."""

    calls = 0

    def synthesize(self, log_mels, clamp=True):
        LoudVocoder.calls += 1
        t = torch.arange(log_mels.shape[-1] * SETTINGS.hop_length) / SETTINGS.sample_rate
        wave = 2.0 * torch.sin(2 * math.pi * 440 * t)
        return wave.clamp(-1, 1) if clamp else wave


def test_an_output_above_full_scale_is_turned_down_and_said_so(model_ws, tmp_path, monkeypatch):
    monkeypatch.setattr("distill.synthesis.load_vocoder", lambda slot, device, settings=None: LoudVocoder())
    attach_vocoder(model_ws.models_dir / "drones.distillgan", vocoder_slot())
    clip = write_tone(tmp_path / "a.wav", seconds=0.5)
    LoudVocoder.calls = 0
    result, = transform_files(model_ws, "drones", [clip], device="cpu")
    assert LoudVocoder.calls == 1
    assert result.clipped_db == pytest.approx(20 * math.log10(2.0), abs=0.01)
    assert "turned down 6.0 dB" in result.note and "+6.0 dBFS" in result.note
    wave = read(result.path)
    assert levels(wave)[0] == pytest.approx(PEAK_CEILING_DBFS, abs=0.05)  # just under full scale, not clipped
    assert result.output_peak_dbfs == pytest.approx(PEAK_CEILING_DBFS, abs=0.01)
    assert np.count_nonzero(np.abs(wave) >= 0.999) == 0
    plain, = transform_files(model_ws, "drones", [clip], griffin_lim=True, device="cpu")
    assert LoudVocoder.calls == 1 and plain.clipped_db == 0.0  # Griffin-Lim: the vocoder is not used


def test_results_are_json_plain():
    ok = TransformResult(input=Path("a.wav"), path=Path("out/a.wav"), seconds=1.5, input_rms_dbfs=-20.004,
                         output_rms_dbfs=-math.inf, clipped_db=0.0)
    assert json.loads(json.dumps(ok.to_dict())) == {
        "input": "a.wav", "path": "out/a.wav", "seconds": 1.5, "input_rms_dbfs": -20.0, "output_rms_dbfs": None,
        "output_peak_dbfs": None, "clipped_db": 0.0, "note": "", "error": None}


# -- the CLI ------------------------------------------------------------------------------------

def test_cli_prints_a_line_per_input_and_fails_when_one_did(model_ws, tmp_path, capsys):
    good = write_tone(tmp_path / "good.wav", seconds=0.5)
    bad = tmp_path / "bad.wav"
    bad.write_text("no")
    cli = ["--workspace", str(model_ws.root), "transform", "drones"]
    assert main(cli + [str(good), "-o", str(tmp_path / "out"), "--device", "cpu"]) == 0
    line, = capsys.readouterr().out.strip().splitlines()
    # the default plays it halfway with the model's own sounds, and the name says so
    assert line.startswith(f"{tmp_path / 'out' / 'good-drones-strength0.5.wav'}  0.50 s  rms ") and line.endswith("dBFS")
    assert " → " in line
    assert main(cli + [str(bad), str(good), "--griffin-lim", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 1 and "good-drones-strength0.5.wav" in captured.out
    assert "error: bad.wav: not audio, or unreadable" in captured.err and "1 of 2 inputs failed" in captured.err
    assert main(cli + [str(good), str(bad), "--json", "--device", "cpu"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [r["error"] is None for r in rows] == [True, False] and rows[0]["path"].endswith("good-drones-strength0.5-2.wav")
    assert main(cli + [str(good), "--strength", "0", "--json", "--device", "cpu"]) == 0  # as the model hears it
    assert json.loads(capsys.readouterr().out)[0]["path"].endswith("good-drones.wav")
    assert main(cli + [str(good), "--strength", "1.5"]) == 1
    assert "strength must be" in capsys.readouterr().err
    assert main(cli + [str(good), "-o", str(model_ws.datasets_dir / "x")]) == 1
    assert "inside the datasets folder" in capsys.readouterr().err


def test_a_quiet_input_is_read_as_the_dataset_keeps_it_and_digital_silence_is_refused(tmp_path: Path) -> None:
    quiet = write_tone(tmp_path / "whisper.wav", amplitude=10 ** (-70 / 20), subtype="FLOAT")
    wave = read_input(quiet, 22050)
    assert 20 * math.log10(float(wave.abs().max())) == pytest.approx(-70, abs=1.0)  # its own level, not lifted
    zeros = tmp_path / "zeros.wav"
    sf.write(str(zeros), np.zeros(22050), 22050, subtype="PCM_16")
    with pytest.raises(DistillError, match="zeros.wav: silent"):
        read_input(zeros, 22050)
