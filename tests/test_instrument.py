"""Packs as playable instruments: pitch found, keys laid out, and the SFZ played for real through
sfizz (pysfizz) and checked by sfzlint; the DecentSampler preset parsed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from distill import DistillError
from distill.audio import OutputFormat
from distill.instrument import Sound, layout, parse_formats
from distill.pack import PackSound, make_pack, write_pack
from distill.pitch import Pitch, detect_pitch

RATE = 44100


def note(midi: float, seconds: float = 1.5, level: float = 0.3, rate: int = RATE) -> np.ndarray:
    """A plucked tone: 8 harmonics (the second the loudest, as plucked strings often have it), decaying."""
    t = np.arange(round(seconds * rate)) / rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum((0.6 if k == 2 else 1.0 / k) * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 9) if k * f0 < rate / 2)
    return (level * wave * np.exp(-t * 3) * np.minimum(1, t / 0.005)).astype(np.float32)


def burst(bright: float, seconds: float = 0.6) -> np.ndarray:
    """A noise hit, low-passed more or less: a kick-ish (0) to a hat-ish (1) sound."""
    rng = np.random.default_rng(int(bright * 100))
    noise = rng.standard_normal(round(seconds * RATE))
    alpha = 0.02 + 0.95 * bright
    out = np.zeros_like(noise)
    for i in range(1, noise.shape[0]):
        out[i] = out[i - 1] + alpha * (noise[i] - out[i - 1])
    t = np.arange(noise.shape[0]) / RATE
    return (0.3 * out / np.abs(out).max() * np.exp(-t * 12)).astype(np.float32)


@pytest.mark.parametrize("midi", [40.0, 45.5, 57.0, 64.2, 72.0, 81.0, 88.0])
def test_yin_finds_the_fundamental_not_the_loud_second_harmonic(midi: float) -> None:
    found = detect_pitch(note(midi), RATE)
    assert found.midi is not None and abs(found.midi - midi) * 100 < 10, found
    assert found.confidence > 0.8


def test_noise_has_no_confident_pitch() -> None:
    found = detect_pitch(np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1, RATE)
    assert found.hz is None or found.confidence < 0.5


def sound(file: str, midi: float | None, loudness: float = -20.0, centroid: float = 1000.0) -> Sound:
    hz = None if midi is None else 440.0 * 2 ** ((midi - 69) / 12)
    return Sound(file, Pitch(hz, 0.95 if hz else 0.0), loudness, centroid, 0.4)


def test_layouts_pitched_layers_round_robins_kit_and_sequence() -> None:
    kind, zones = layout([sound("a", 48.2), sound("b", 55), sound("c", 60, -30), sound("d", 60, -20),
                          sound("e", 67, -20), sound("f", 67.1, -20.5)], "random")
    assert kind == "pitched"
    by = {z.file: z for z in zones}
    assert (by["a"].lo, by["a"].hi, by["a"].root) == (36, 51, 48)  # an octave below the lowest root
    assert (by["b"].lo, by["b"].hi) == (52, 57) and by["e"].hi == 79
    assert (by["c"].vel_lo, by["c"].vel_hi, by["d"].vel_lo, by["d"].vel_hi) == (1, 63, 64, 127)  # soft, loud
    assert (by["e"].turns, {by["e"].turn, by["f"].turn}) == (2, {1, 2})  # alike in level: they take turns
    keys = sorted({k for z in zones for k in range(z.lo, z.hi + 1)})
    assert keys == list(range(36, 80))  # no gaps between roots
    kind, zones = layout([sound("hat", None, centroid=8000), sound("kick", None, centroid=80),
                          sound("snare", None, centroid=2000)], "random")
    assert kind == "kit" and [(z.file, z.lo, z.keytrack) for z in zones] == [("kick", 36, False), ("snare", 37, False),
                                                                              ("hat", 38, False)]
    kind, zones = layout([sound(str(i), 60 + i) for i in range(4)], "morph")
    assert kind == "sequence" and [z.lo for z in zones] == [36, 37, 38, 39]
    assert parse_formats("SFZ, dspreset") == ("sfz", "dspreset")
    with pytest.raises(DistillError, match="unknown instrument format 'wav'"):
        parse_formats("sfz,wav")


def write(tmp_path: Path, waves: list[np.ndarray], mode: str = "random") -> dict:
    head = {"loudness_target_lufs": -20.0, "settings": {"mode": mode}, "sample_rate": RATE}
    sounds = [PackSound(w, f"s{i}", {}) for i, w in enumerate(waves)]
    result = write_pack(tmp_path / "pack", tmp_path / "pack.zip", sounds, len(sounds), RATE, OutputFormat("wav", 24),
                        head, instruments=("sfz", "dspreset"))
    return result.manifest


def synth(folder: Path):
    pysfizz = pytest.importorskip("pysfizz")
    player = pysfizz.Synth(sample_rate=RATE, block_size=512)
    assert player.load_sfz_file(folder / "pack.sfz")
    return player


def lint(path: Path) -> str:
    linter = Path(sys.executable).parent / "sfzlint"
    if not linter.exists():
        pytest.skip("sfzlint is not installed")
    run = subprocess.run([str(linter), str(path)], capture_output=True, text=True, cwd=path.parent)
    return run.stdout + run.stderr


def test_a_pitched_instrument_plays_its_samples_at_their_roots_and_in_tune_above(tmp_path) -> None:
    notes = [43, 50, 57, 62, 69, 74]
    manifest = write(tmp_path, [note(m, level=0.1 + 0.05 * i) for i, m in enumerate(notes)])
    folder = tmp_path / "pack"
    inst = manifest["instrument"]
    assert inst["layout"] == "pitched" and inst["files"] == ["pack.sfz", "pack.dspreset"]
    assert sorted(k["root"] for k in inst["keys"]) == notes and all(k["confidence"] > 0.8 for k in inst["keys"])
    assert lint(folder / "pack.sfz") == ""
    player = synth(folder)
    low, high = min(k["lo"] for k in inst["keys"]), max(k["hi"] for k in inst["keys"])
    assert player.playable_keys == list(range(low, high + 1))
    for key in player.playable_keys:  # every key in the range sounds
        assert np.abs(player.render_note(key, 100, 0.3, 0.3)).max() > 1e-3, key
    for entry in inst["keys"]:
        sample, rate = sf.read(folder / entry["file"], always_2d=True, dtype="float32")
        played = np.asarray(player.render_note(entry["root"], 127, 2.0, 2.0))
        n = min(played.shape[1], sample.shape[0], RATE) - 16
        # the root plays the sample back (sfizz starts a voice a sample or two late)
        assert max(np.corrcoef(played[0, lag:lag + n], sample[:n, 0])[0, 1] for lag in range(8)) > 0.99
        if entry["root"] + 7 <= high:
            up = detect_pitch(np.asarray(player.render_note(entry["root"] + 7, 127, 1.5, 1.5)), RATE)
            assert abs(1200 * np.log2(up.hz / entry["pitch_hz"]) - 700) < 20, (entry, up)  # 7 semitones up
    with zipfile.ZipFile(tmp_path / "pack.zip") as archive:
        assert {"pack/pack.sfz", "pack/pack.dspreset", "pack/pack.json"} <= set(archive.namelist())


def test_a_kit_and_its_decentsampler_preset(tmp_path) -> None:
    manifest = write(tmp_path, [burst(b) for b in (0.9, 0.05, 0.4)])
    folder = tmp_path / "pack"
    inst = manifest["instrument"]
    assert inst["layout"] == "kit" and [k["lo"] for k in inst["keys"]] == [36, 37, 38]
    assert [k["file"] for k in inst["keys"]] == ["002-s1.wav", "003-s2.wav", "001-s0.wav"]  # dark to bright
    assert lint(folder / "pack.sfz") == ""
    player = synth(folder)
    assert player.playable_keys == [36, 37, 38]
    tree = ET.parse(folder / "pack.dspreset")
    paths = [s.get("path") for s in tree.iter("sample")]
    assert sorted(paths) == sorted(f["file"] for f in manifest["files"])
    assert all((folder / p).is_file() for p in paths)
    assert [int(s.get("loNote")) for s in tree.iter("sample")] == [36, 37, 38]


def test_pack_from_a_model_with_instruments_through_the_cli(ws, trained_example, tmp_path, capsys) -> None:
    from distill.cli import main

    shutil.copyfile(trained_example[2].path, ws.models_dir / "ex.distillgan")
    assert main(["--workspace", str(ws.root), "pack", "ex", "-n", "4", "--seed", "1", "--instrument", "sfz,dspreset",
                 "-o", str(tmp_path)]) == 0
    assert "playable as ex-random-seed1.sfz and ex-random-seed1.dspreset" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "ex-random-seed1" / "pack.json").read_text())
    assert len(manifest["instrument"]["keys"]) == 4 and manifest["instrument"]["pitch_method"].startswith("YIN")
    morph = make_pack(ws, "ex", n=3, mode="morph", morph_ends=tuple(trained_example[2].analysis["trajectories"]
                                                                   ["names"][:2]),
                      out_dir=tmp_path / "m", device="cpu", instruments=("dspreset",))
    assert morph.manifest["instrument"]["layout"] == "sequence"
    assert not list(morph.folder.glob("*.sfz")) and list(morph.folder.glob("*.dspreset"))
