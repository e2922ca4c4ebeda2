"""Datasets: per-file validation, import/remove, the manifest, the feature cache, the split
and segments; and the example corpus. Real audio, written with soundfile on the spot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import write_tone
from distill import DistillError
from distill import clips, datasets, features, segments
from distill.workspace import file_sha256
from distill.audio import LOG_MEL_FLOOR, AudioSettings
from distill.example_corpus import ensure_example_dataset, example_clip_specs, write_example_corpus

SETTINGS = AudioSettings()


def entry_for(report: datasets.ImportReport, file_name: str) -> datasets.ImportEntry:
    return next(e for e in report.entries if Path(e.source).name == file_name)


def make_folder(folder: Path, n: int = 3, seconds: float = 0.6) -> list[Path]:
    return [write_tone(folder / f"tone{i}.wav", seconds=seconds, freq=220.0 * (i + 1)) for i in range(n)]


# --- validation ----------------------------------------------------------------------------

def _text(path: Path) -> None:
    path.write_text("these are my notes, not a sound\n" * 20)


def _truncated_wav(path: Path) -> None:
    write_tone(path, seconds=1.0)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _truncated_flac(path: Path) -> None:
    write_tone(path, seconds=1.0)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _empty(path: Path) -> None:
    sf.write(str(path), np.zeros(0), 22050, subtype="PCM_16")


def _zeros(path: Path) -> None:
    sf.write(str(path), np.zeros(22050), 22050, subtype="PCM_16")


def _below_float_floor(path: Path) -> None:
    write_tone(path, amplitude=10 ** (-130 / 20), subtype="FLOAT")


def _below_one_lsb(path: Path) -> None:
    # A sine of 0.4 of a 16-bit step, quantised as a recorder does (rounding): zeros are left.
    wave = 0.4 * np.sin(np.arange(22050) / 10)
    sf.write(str(path), np.round(wave).astype(np.int16), 22050, subtype="PCM_16")


def _nan(path: Path) -> None:
    wave = 0.5 * np.sin(np.arange(22050) / 10).astype(np.float32)
    wave[1000:1010] = np.nan
    wave[2000] = np.inf
    sf.write(str(path), wave, 22050, subtype="FLOAT")


@pytest.mark.parametrize("file_name, make, expected", [
    ("notes.wav", _text, "not audio"),
    ("cut.wav", _truncated_wav, "truncated: the WAV header promises 44100 bytes of audio (1.00 s)"),
    ("cut.flac", _truncated_flac, "truncated"),
    ("empty.wav", _empty, "empty"),
    ("zeros.wav", _zeros, "silent: every sample is zero"),
    ("nothing.wav", _below_float_floor, "silent: peak -13"),
    ("sub-lsb.wav", _below_one_lsb, "silent: every sample is zero"),
    ("broken.wav", _nan, "11 samples are not a finite number"),
])
def test_bad_file_is_rejected_by_name_and_does_not_block_the_good_ones(ws, tmp_path, file_name, make, expected):
    good = make_folder(tmp_path / "in", n=2)
    make(tmp_path / "in" / file_name)
    report = datasets.create_dataset(ws, "mixed", [tmp_path / "in"])

    bad = entry_for(report, file_name)
    assert bad.status == "rejected" and expected in bad.reason
    assert file_name in bad.describe() and expected in bad.describe()
    assert sorted(e.kept_as for e in report.kept) == sorted(p.name for p in good)
    ds = datasets.load_dataset(ws, "mixed")
    assert not (ds.clips_dir / file_name).exists()
    assert [c.name for c in ds.rejected] == [file_name]
    shown = [c for c in ds.to_dict()["clips"] if c["status"] == "rejected"]
    assert shown[0]["name"] == file_name and expected in shown[0]["reason"]


def test_absurdly_long_file_is_rejected_without_reading_it_whole(ws, tmp_path, monkeypatch):
    monkeypatch.setattr(clips, "MAX_CLIP_SECONDS", 0.5)
    write_tone(tmp_path / "in" / "long.wav", seconds=1.0)
    write_tone(tmp_path / "in" / "fine.wav", seconds=0.4)
    write_tone(tmp_path / "in" / "fine2.wav", seconds=0.45, freq=330)
    report = datasets.create_dataset(ws, "d", [tmp_path / "in"])
    long = entry_for(report, "long.wav")
    assert long.status == "rejected" and long.reason.startswith("too long: 1.0 s (the limit is 0.5 s")
    assert len(report.kept) == 2


def test_short_clip_is_kept_with_a_padding_warning_and_trains_as_one_padded_window(ws, tmp_path):
    write_tone(tmp_path / "in" / "blip.wav", seconds=0.1)
    write_tone(tmp_path / "in" / "note.wav", seconds=1.0)
    report = datasets.create_dataset(ws, "d", [tmp_path / "in"])
    blip = entry_for(report, "blip.wav")
    assert blip.status == "warning" and "padded" in blip.reason and "0.10 s" in blip.reason
    assert any("shorter than one training segment" in w and "blip.wav (0.10 s)" in w
               for w in report.dataset.summary().warnings)
    mel = features.clip_log_mel(ws, "d", "blip.wav", SETTINGS)
    windows = segments.segment_log_mel(mel, 32, 16)
    assert windows.shape == (1, 128, 32)
    assert torch.all(windows[0, :, mel.shape[1]:] == LOG_MEL_FLOOR)


def test_a_quiet_clip_is_kept_with_a_warning_that_says_how_quiet(ws, tmp_path):
    write_tone(tmp_path / "in" / "note.wav")
    write_tone(tmp_path / "in" / "whisper.wav", amplitude=10 ** (-70 / 20), subtype="FLOAT")
    report = datasets.create_dataset(ws, "d", [tmp_path / "in"])
    whisper = entry_for(report, "whisper.wav")
    assert whisper.status == "warning" and "very quiet: peak -70." in whisper.reason
    assert "mostly silence" not in whisper.reason  # quiet is not silence: silence is relative to its peak
    assert any(w.startswith("1 clip very quiet") and "whisper.wav (peak -70." in w
               for w in report.dataset.summary().warnings)
    shown = {c["name"]: c for c in report.dataset.to_dict()["clips"]}
    assert "very quiet" in shown["whisper.wav"]["reason"]
    # training sees it at its own level: its log-mel stands well clear of the floor
    mel = features.clip_log_mel(ws, "d", "whisper.wav", SETTINGS)
    assert float(mel.max()) > LOG_MEL_FLOOR + 5.0


def test_one_step_of_16_bit_audio_is_quiet_not_silent(tmp_path):
    path = write_tone(tmp_path / "lsb.wav", amplitude=1.0 / 32768, seconds=0.05, freq=2000.0)
    clip = clips.check_clip(path)
    assert clip.status == "warning" and "very quiet: peak -90.3 dBFS" in clip.reason
    assert clips.digital_silence_dbfs("PCM_16") == pytest.approx(-90.31, abs=0.01)
    assert clips.digital_silence_dbfs("PCM_24") == pytest.approx(-138.47, abs=0.01)
    assert clips.digital_silence_dbfs("FLOAT") == clips.FLOAT_SILENCE_DBFS


def test_heavy_clipping_is_a_warning_with_a_number(ws, tmp_path):
    write_tone(tmp_path / "in" / "clean.wav")
    t = np.arange(22050) / 22050
    sf.write(str(tmp_path / "in" / "hot.wav"), np.clip(3 * np.sin(2 * np.pi * 110 * t), -1, 1), 22050,
             subtype="PCM_16")
    report = datasets.create_dataset(ws, "d", [tmp_path / "in"])
    hot = entry_for(report, "hot.wav")
    assert hot.status == "warning" and "clipping:" in hot.reason and "% of samples at full scale" in hot.reason
    assert hot.clip.clipping_fraction > 0.5
    assert any(w.startswith("1 clip with clipping: hot.wav (") for w in report.dataset.summary().warnings)


ACCEPTED = [  # (file name, format, subtype)
    ("u8.wav", "WAV", "PCM_U8"), ("i16.wav", "WAV", "PCM_16"), ("i24.wav", "WAV", "PCM_24"),
    ("i32.wav", "WAV", "PCM_32"), ("f32.wav", "WAV", "FLOAT"), ("f64.wav", "WAV", "DOUBLE"),
    ("lossless.flac", "FLAC", "PCM_24"), ("vorbis.ogg", "OGG", "VORBIS"),
]
if "MP3" in sf.available_formats():
    ACCEPTED.append(("lossy.mp3", "MP3", "MPEG_LAYER_III"))


def test_every_accepted_format_depth_rate_and_channel_count_is_imported_and_featurised(ws, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    t = np.arange(int(0.5 * 22050)) / 22050
    tone = 0.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-2 * t)
    for name, fmt, subtype in ACCEPTED:
        sf.write(str(src / name), tone, 22050, format=fmt, subtype=subtype)
    expected_rates = {}
    for rate in (8000, 44100, 48000, 96000):
        write_tone(src / f"rate{rate}.wav", seconds=0.5, rate=rate)
        expected_rates[f"rate{rate}.wav"] = rate
    write_tone(src / "stereo.wav", seconds=0.5, channels=2)
    write_tone(src / "surround.flac", seconds=0.5, channels=6, subtype="PCM_16")

    report = datasets.create_dataset(ws, "formats", [src])
    assert not report.rejected, [e.describe() for e in report.rejected]
    ds = report.dataset
    assert len(ds.clips) == len(ACCEPTED) + 6
    for name, rate in expected_rates.items():
        assert ds.clip(name).sample_rate == rate
    assert ds.clip("stereo.wav").channels == 2 and ds.clip("surround.flac").channels == 6
    assert ds.clip("i24.wav").subtype == "PCM_24" and ds.clip("f64.wav").subtype == "DOUBLE"
    for clip in ds.clips:
        assert clip.duration == pytest.approx(0.5, abs=0.06), clip.name

    prepared = segments.prepare_training_data(ws, "formats", SETTINGS, segment_frames=16)
    for name, mel in prepared.clip_features.items():
        # Every clip is mono here, resampled to 44.1 kHz: about 0.5 s → 44 frames at hop 512.
        assert mel.shape[0] == 128 and abs(mel.shape[1] - 44) <= 4, (name, mel.shape)
        assert torch.isfinite(mel).all()


# --- names, duplicates, adding and removing ------------------------------------------------

def test_names_are_sanitised_and_never_escape_the_clips_folder(ws, tmp_path):
    weird = ["bell\x07ring.wav", "ünïcødé 音.wav", "back\\slash.wav"]
    for name in weird:
        write_tone(tmp_path / "in" / name, freq=200 + 50 * weird.index(name))
    write_tone(tmp_path / "evil.wav", freq=500)
    sneaky = str(tmp_path / "in" / ".." / ".." / tmp_path.name / "evil.wav")
    report = datasets.create_dataset(ws, "../../my\x00set", [tmp_path / "in", sneaky])

    assert report.dataset_name == "my_set" and (ws.datasets_dir / "my_set" / "dataset.json").is_file()
    kept = sorted(e.kept_as for e in report.kept)
    # A backslash counts as a path separator (a Windows path): only its last part is kept.
    assert kept == sorted(["bell_ring.wav", "ünïcødé 音.wav", "slash.wav", "evil.wav"])
    clips_dir = ws.dataset_dir("my_set") / "clips"
    assert sorted(p.name for p in clips_dir.iterdir()) == kept
    assert not (ws.root / "evil.wav").exists() and not (ws.datasets_dir / "evil.wav").exists()


def test_name_clash_gets_a_suffix_and_never_overwrites(ws, tmp_path):
    write_tone(tmp_path / "a" / "kick.wav", freq=100)
    write_tone(tmp_path / "b" / "kick.wav", freq=200)
    report = datasets.create_dataset(ws, "d", [tmp_path / "a", tmp_path / "b"])
    assert [e.kept_as for e in report.kept] == ["kick.wav", "kick-2.wav"]
    first = datasets.load_dataset(ws, "d").clip("kick.wav").sha256

    write_tone(tmp_path / "c" / "KICK.wav", freq=300)
    added = datasets.add_clips(ws, "d", [tmp_path / "c" / "KICK.wav"])
    assert added.kept[0].kept_as == "KICK-3.wav"  # names compare case-insensitively (a Mac folder)
    ds = datasets.load_dataset(ws, "d")
    assert ds.clip("kick.wav").sha256 == first == file_sha256(ds.clip_path("kick.wav"))
    assert len(ds.clips) == 3


def test_byte_identical_file_is_skipped_as_duplicate(ws, tmp_path):
    original = write_tone(tmp_path / "in" / "note.wav")
    copy = tmp_path / "elsewhere" / "same-note.wav"
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    write_tone(tmp_path / "in" / "other.wav", freq=330)
    report = datasets.create_dataset(ws, "d", [tmp_path / "in"])
    added = datasets.add_clips(ws, "d", [copy])
    assert added.entries[0].status == "duplicate" and "note.wav" in added.entries[0].reason
    assert not added.kept and len(datasets.load_dataset(ws, "d").clips) == 2 == len(report.kept)


def test_add_remove_and_delete(ws, tmp_path):
    make_folder(tmp_path / "in", n=2)
    datasets.create_dataset(ws, "d", [tmp_path / "in"])
    with pytest.raises(DistillError, match="already exists"):
        datasets.create_dataset(ws, "d", [tmp_path / "in"])
    write_tone(tmp_path / "more" / "extra.wav", freq=440)
    assert datasets.add_clips(ws, "d", [tmp_path / "more"]).kept[0].kept_as == "extra.wav"

    ds = datasets.remove_clips(ws, "d", ["tone0.wav"])
    assert sorted(c.name for c in ds.clips) == ["extra.wav", "tone1.wav"]
    assert not (ds.clips_dir / "tone0.wav").exists()
    assert datasets.clip_path(ws, "d", "extra.wav") == ds.clips_dir / "extra.wav"
    with pytest.raises(DistillError, match="no clip named 'nope.wav'"):
        datasets.remove_clips(ws, "d", ["nope.wav"])

    datasets.delete_dataset(ws, "d")
    assert datasets.list_datasets(ws) == []
    assert [p.name for p in ws.datasets_dir.iterdir()] == []
    with pytest.raises(DistillError, match=r"no dataset named 'd' \(have: none yet\)"):
        datasets.load_dataset(ws, "d")


def test_missing_dataset_error_lists_the_ones_there_are(ws, tmp_path):
    make_folder(tmp_path / "in", n=2)
    datasets.create_dataset(ws, "b", [tmp_path / "in"])
    datasets.create_dataset(ws, "a", [tmp_path / "in" / "tone0.wav"])
    assert [d.name for d in datasets.list_datasets(ws)] == ["a", "b"]
    with pytest.raises(DistillError, match=r"no dataset named 'x' \(have: a, b\)"):
        datasets.load_dataset(ws, "x")


def test_create_where_every_file_is_bad_creates_nothing_and_says_why(ws, tmp_path):
    _text(tmp_path / "a.wav")
    _zeros(tmp_path / "b.wav")
    with pytest.raises(datasets.ImportFailed, match="not created") as failed:
        datasets.create_dataset(ws, "d", [tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "missing.wav"])
    assert "a.wav: rejected: not audio" in str(failed.value)
    assert [e.status for e in failed.value.report.entries] == ["rejected"] * 3
    assert "no such file or folder" in failed.value.report.entries[2].reason  # in the order given
    assert not ws.dataset_dir("d").exists()


def test_folder_import_skips_non_audio_names_hidden_files_and_the_workspace_and_says_so(tmp_path):
    from distill.workspace import Workspace

    home = tmp_path / "home"
    ws = Workspace.open(home / "distill-workspace")
    write_tone(home / "sounds" / "a.wav")
    write_tone(home / "sounds" / ".hidden.wav", freq=300)
    write_tone(home / "sounds" / "._a.wav", freq=350)  # a real WAV, but named as macOS metadata
    write_tone(home / ".git" / "x.wav", freq=450)
    (home / "sounds" / "readme.txt").write_text("hello")
    write_tone(ws.experiments_dir / "x" / "previews" / "generated.wav", freq=400)
    write_tone(home / "b.flac", freq=500)
    report = datasets.create_dataset(ws, "d", [home])
    assert sorted(e.kept_as for e in report.kept) == ["a.wav", "b.flac"]
    skipped = {e.file: e.reason for e in report.entries if e.status == "skipped"}
    assert set(skipped) == {".git/", "distill-workspace/", "sounds/.hidden.wav", "sounds/._a.wav",
                            "sounds/readme.txt"}
    assert "hidden folder" in skipped[".git/"] and "workspace" in skipped["distill-workspace/"]
    assert "hidden file" in skipped["sounds/.hidden.wav"]
    assert "AppleDouble twin of a.wav" in skipped["sounds/._a.wav"]
    assert "not an audio file by its name (.txt)" in skipped["sounds/readme.txt"]
    assert report.counts() == "2 kept, 0 rejected, 5 skipped"
    assert not datasets.load_dataset(ws, "d").rejected  # skipped files are no refusal of the dataset's


def test_a_file_named_explicitly_gets_the_verdict_it_gets_in_a_folder(ws, tmp_path):
    write_tone(tmp_path / "in" / "keep.wav")
    write_tone(tmp_path / "in" / "._keep.wav", freq=300)
    write_tone(tmp_path / "tone.wav", freq=500).rename(tmp_path / "in" / "tone.dat")  # audio, not by its name
    folder = datasets.create_dataset(ws, "a", [tmp_path / "in"]).verdicts()
    files = datasets.create_dataset(ws, "b", sorted((tmp_path / "in").iterdir())).verdicts()
    assert sorted(folder) == sorted(files)
    assert [v.result for v in sorted(files)] == ["skipped", "kept", "skipped"]


def test_manifest_records_every_field_and_is_rebuilt_if_lost(ws, tmp_path):
    make_folder(tmp_path / "in", n=2)
    _text(tmp_path / "in" / "junk.wav")
    datasets.create_dataset(ws, "d", [tmp_path / "in"])
    manifest = json.loads((ws.dataset_dir("d") / "dataset.json").read_text())
    assert manifest["format"] == "distill-dataset" and manifest["version"] == 1
    assert [c["name"] for c in manifest["clips"]] == ["tone0.wav", "tone1.wav"]
    for clip in manifest["clips"]:
        assert {"name", "status", "reason", "duration", "sample_rate", "channels", "sha256", "peak",
                "clipping_fraction"} <= set(clip)
        assert clip["status"] == "ok" and len(clip["sha256"]) == 64
    assert [c["name"] for c in manifest["last_import"]["rejected"]] == ["junk.wav"]

    (ws.dataset_dir("d") / "dataset.json").write_text("{ half a manif")
    rebuilt = datasets.load_dataset(ws, "d")
    assert [c.name for c in rebuilt.clips] == ["tone0.wav", "tone1.wav"]
    assert rebuilt.clips[0].sha256 == manifest["clips"][0]["sha256"]


def test_missing_clip_file_is_shown_rejected_and_not_used(ws, tmp_path):
    make_folder(tmp_path / "in", n=3)
    datasets.create_dataset(ws, "d", [tmp_path / "in"])
    (ws.dataset_dir("d") / "clips" / "tone1.wav").unlink()
    ds = datasets.load_dataset(ws, "d")
    assert [c.name for c in ds.usable_clips] == ["tone0.wav", "tone2.wav"]
    view = {c["name"]: c for c in ds.to_dict()["clips"]}
    assert view["tone1.wav"]["status"] == "rejected" and view["tone1.wav"]["missing"]
    assert any("missing" in w for w in ds.summary().warnings)


def test_summary_warns_about_too_little_audio_with_numbers(ws, tmp_path):
    write_tone(tmp_path / "only.wav", seconds=1.5)
    report = datasets.create_dataset(ws, "d", [tmp_path / "only.wav"])
    summary = report.dataset.summary()
    assert summary.usable == 1 and summary.total_duration == pytest.approx(1.5)
    assert "only 1 usable clip: training needs at least 2" in summary.warnings[0]
    assert summary["warnings"][1].startswith("1.5 s of usable audio is very little")
    with pytest.raises(DistillError, match="has 1 usable clip; training needs at least 2"):
        segments.prepare_training_data(ws, "d", SETTINGS, 32)


# --- features, cache, split, segments ------------------------------------------------------

def test_feature_cache_is_reused_and_invalidated_only_where_things_changed(ws, tmp_path):
    make_folder(tmp_path / "in", n=3)
    datasets.create_dataset(ws, "d", [tmp_path / "in"])
    first = segments.prepare_training_data(ws, "d", SETTINGS, 32)
    assert first.computed_clips == 3
    assert len(list((ws.cache_dir / "features").glob("*.pt"))) == 3

    again = segments.prepare_training_data(ws, "d", SETTINGS, 32)
    assert again.computed_clips == 0 and again.fingerprint == first.fingerprint
    assert torch.equal(again.train, first.train) and torch.equal(again.val, first.val)

    # Change one clip's bytes in place: only that clip is recomputed, and the fingerprint moves.
    write_tone(ws.dataset_dir("d") / "clips" / "tone1.wav", seconds=0.7, freq=555)
    changed = segments.prepare_training_data(ws, "d", SETTINGS, 32)
    assert changed.computed_clips == 1 and changed.fingerprint != first.fingerprint
    assert datasets.load_dataset(ws, "d").clip("tone1.wav").duration == pytest.approx(0.7, abs=1e-3)

    # Other audio settings: everything recomputed, in the new shape.
    other = AudioSettings(n_mels=64)
    resized = segments.prepare_training_data(ws, "d", other, 32)
    assert resized.computed_clips == 3 and resized.train.shape[1:] == (64, 32)
    assert resized.fingerprint != changed.fingerprint


def test_corrupt_cache_file_is_recomputed_not_fatal(ws, tmp_path):
    make_folder(tmp_path / "in", n=2)
    datasets.create_dataset(ws, "d", [tmp_path / "in"])
    first = segments.prepare_training_data(ws, "d", SETTINGS, 32)
    clip = datasets.load_dataset(ws, "d").clip("tone0.wav")
    cache = features.feature_cache_path(ws, clip.sha256, SETTINGS)
    cache.write_bytes(b"not a tensor at all")
    again = segments.prepare_training_data(ws, "d", SETTINGS, 32)
    assert again.computed_clips == 1
    assert torch.equal(again.clip_features["tone0.wav"], first.clip_features["tone0.wav"])
    assert torch.equal(torch.load(cache, weights_only=True), first.clip_features["tone0.wav"])


def test_split_is_by_clip_deterministic_and_never_empty():
    names = [f"clip{i:02d}.wav" for i in range(20)]
    train, val = segments.split_clips(names, 0.15, seed=3)
    assert (train, val) == segments.split_clips(list(reversed(names)), 0.15, seed=3)
    assert len(val) == 3 and not set(train) & set(val) and sorted(train + val) == names
    assert segments.split_clips(names, 0.15, seed=4) != (train, val)
    assert segments.split_clips(["a", "b"], 0.01, seed=0)[1] and segments.split_clips(["a", "b"], 0.99, seed=0)[0]
    with pytest.raises(DistillError, match="at least 2"):
        segments.split_clips(["a"], 0.15)


def test_prepared_windows_come_from_disjoint_clips(ws, tmp_path):
    make_folder(tmp_path / "in", n=5, seconds=1.0)
    datasets.create_dataset(ws, "d", [tmp_path / "in"])
    prepared = segments.prepare_training_data(ws, "d", SETTINGS, 32, val_fraction=0.4, seed=1)
    assert len(prepared.val_clips) == 2 and len(prepared.train_clips) == 3
    assert not set(prepared.train_clips) & set(prepared.val_clips)
    assert prepared.train.dtype == torch.float32 and prepared.train.shape[1:] == (128, 32)
    expected_train = sum(segments.segment_log_mel(prepared.clip_features[n], 32, 32 // segments.TRAIN_WINDOW_OVERLAP).shape[0]
                         for n in prepared.train_clips)
    expected_val = sum(segments.segment_log_mel(prepared.clip_features[n], 32, 32).shape[0]
                       for n in prepared.val_clips)
    assert prepared.train.shape[0] == expected_train and prepared.val.shape[0] == expected_val
    assert prepared.preparation_seconds > 0 and len(prepared.fingerprint) == 64


def test_segments_overlap_for_training_pad_the_end_and_drop_pure_silence():
    loud = torch.full((4, 100), 0.0)
    train = segments.segment_log_mel(loud, 32, 16)
    assert train.shape == (6, 4, 32)  # starts 0, 16, …, 80; the last one padded to 112 frames
    assert torch.equal(train[1, :, :16], train[0, :, 16:])
    val = segments.segment_log_mel(loud, 32, 32)
    assert val.shape == (4, 4, 32) and torch.all(val[3, :, 4:] == LOG_MEL_FLOOR)

    mel = torch.full((4, 96), LOG_MEL_FLOOR)
    mel[:, 40:50] = 0.0  # sound only in the second window
    assert segments.segment_log_mel(mel, 32, 32).shape[0] == 1
    silent = torch.full((4, 96), LOG_MEL_FLOOR)
    assert segments.segment_log_mel(silent, 32, 32).shape[0] == 1  # a clip always keeps a window


# --- the example corpus --------------------------------------------------------------------

def test_example_corpus_is_in_tune_clean_and_at_the_promised_level(tmp_path):
    shipped = write_example_corpus(tmp_path)  # as the app and examples/ make it
    specs = example_clip_specs(len(shipped))
    assert len(shipped) == 24 and [p.name for p in shipped] == [s.name for s in specs]
    assert {s.kind for s in specs} == {"pluck", "drum"} and specs[0].name == "pluck-A2-01.wav"
    for spec, path in zip(specs, shipped):
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
        stereo, rate = sf.read(str(path))
        assert 1.5 <= len(stereo) / rate <= 3.0
        peak_db = 20 * np.log10(np.max(np.abs(stereo)))
        assert -4.6 <= peak_db <= -2.9, (path.name, peak_db)
        assert np.mean(np.abs(stereo) >= 0.999) == 0 and abs(np.mean(stereo)) < 1e-3
        # a width of its own: the side well under the mid, the two ears not copies of each other
        wave, side = stereo.mean(axis=1), (stereo[:, 0] - stereo[:, 1]) / 2
        side_db = 10 * np.log10(np.sum(side ** 2) / np.sum(wave ** 2))
        assert -24 < side_db < -6, (path.name, side_db)
        rms_db = 20 * np.log10(np.sqrt(np.mean(wave[: rate // 2] ** 2)))
        assert -30 < rms_db < -12, (path.name, rms_db)
        assert np.all(wave[-200:] == 0.0)  # fades out to true silence
        n = 4 * len(wave)
        spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave)), n))
        peak_hz = np.fft.rfftfreq(n, 1 / rate)[np.argmax(spectrum)]
        assert abs(1200 * np.log2(peak_hz / spec.frequency)) < 10, (path.name, peak_hz, spec.frequency)


def test_example_corpus_is_deterministic_and_a_prefix_of_a_bigger_one(tmp_path, example_corpus):
    small = write_example_corpus(tmp_path / "small", n_clips=4, sample_rate=22050, channels=1)  # as the fixture's
    assert [p.read_bytes() for p in small] == [p.read_bytes() for p in example_corpus[:4]]
    other = write_example_corpus(tmp_path / "other", n_clips=2, sample_rate=22050, channels=1, seed=1)
    assert other[0].read_bytes() != small[0].read_bytes()


def test_example_dataset_is_created_once_on_a_fresh_workspace(ws):
    created = ensure_example_dataset(ws)
    assert created is not None and created.name == "example" and len(created.clips) == 24
    assert all(c.status == "ok" for c in created.clips), [c.reason for c in created.clips]
    assert created.summary().warnings == []
    assert ensure_example_dataset(ws) is None
    datasets.delete_dataset(ws, "example")
    assert ensure_example_dataset(ws) is None  # deleted on purpose: not brought back


def test_a_folder_without_audio_is_a_clear_error(ws, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hi")
    with pytest.raises(DistillError, match=r"not created: no file could be imported: readme.txt: skipped: "
                                           r"not an audio file by its name \(.txt\)"):
        datasets.create_dataset(ws, "d", [tmp_path / "docs"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillError, match=r"no files found in .*empty"):
        datasets.create_dataset(ws, "d", [tmp_path / "empty"])
    assert datasets.list_datasets(ws) == []


def test_stats_are_streamed_in_blocks_and_do_not_depend_on_the_block_size(tmp_path, monkeypatch):
    rate = 22050
    t = np.arange(3 * rate) / rate
    wave = np.clip(1.5 * np.sin(2 * np.pi * 150 * t) * (t < 1.0), -1, 1)  # 1 s hot, then 2 s silence
    path = tmp_path / "hot-then-quiet.wav"
    sf.write(str(path), np.stack([wave, 0.5 * wave], axis=1), rate, subtype="PCM_24")
    whole = clips.check_clip(path)
    reads = []
    original = sf.SoundFile.read

    def counting_read(self, frames=-1, *args, **kwargs):
        reads.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    monkeypatch.setattr(clips, "READ_BLOCK_FRAMES", 4096)
    streamed = clips.check_clip(path)
    assert reads and all(0 < n <= 4096 for n in reads)
    assert streamed.frames == whole.frames == 3 * rate and streamed.peak == whole.peak
    assert streamed.clipping_fraction == pytest.approx(whole.clipping_fraction)
    assert streamed.silent_fraction == pytest.approx(whole.silent_fraction, abs=0.01)
    assert streamed.silent_fraction == pytest.approx(2 / 3, abs=0.02)
    assert streamed.status == "warning" and "clipping" in streamed.reason
