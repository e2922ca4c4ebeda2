"""The model catalog: an index that is only a cache of the files, search, the table, and
import / delete / rename."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from distill import DistillError, catalog
from distill.audio import AudioSettings
from distill.catalog import TABLE_COLUMNS, index_path, list_models, models_table
from distill.modelfile import FORMAT, V1_MESSAGE, ModelExistsError, attach_vocoder, load_model_file
from test_modelfile import Payload, make_model_file, vocoder_slot


@pytest.fixture
def three(ws):
    make_model_file(ws.models_dir / "Rain on Tin.distillgan", dataset="Rooftops", epochs=40, val_loss=0.61)
    make_model_file(ws.models_dir / "gravel.distillgan", dataset="footsteps", epochs=12, val_loss=0.9)
    make_model_file(ws.models_dir / "Birdsong.distillgan", dataset="Dawn chorus", epochs=200, val_loss=0.4321)
    return ws


def names(ws, search: str = "") -> set[str]:
    return {entry.name for entry in list_models(ws, search)}


def count_reads(monkeypatch) -> list[Path]:
    reads: list[Path] = []
    original = catalog.load_model_file

    def counting(path, *args, **kwargs):
        reads.append(Path(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(catalog, "load_model_file", counting)
    return reads


def test_listing_builds_an_index_of_every_model_with_its_metadata(three):
    entries = {e.name: e for e in list_models(three)}
    assert set(entries) == {"Rain on Tin", "gravel", "Birdsong"}
    rain = entries["Rain on Tin"]
    assert (rain.dataset, rain.clips, rain.epochs, rain.val_loss) == ("Rooftops", 7, 40, 0.61)
    assert (rain.sample_rate, rain.channels) == (44100, 1) and rain.latent_dim == 8 and rain.vocoder == {"kind": "pretrained"}
    assert rain.size_bytes == (three.models_dir / "Rain on Tin.distillgan").stat().st_size
    index = json.loads(index_path(three).read_text())
    assert index["format"] == "distill_catalog" and len(index["models"]) == 3


def test_an_unchanged_folder_is_listed_from_the_index_without_opening_a_file(three, monkeypatch):
    list_models(three)
    reads = count_reads(monkeypatch)
    assert names(three) == {"Rain on Tin", "gravel", "Birdsong"}
    assert reads == []


@pytest.mark.parametrize("damage", ["deleted", "garbage", "wrong shape", "truncated json"])
def test_a_missing_or_corrupt_index_is_rebuilt(three, damage):
    list_models(three)
    path = index_path(three)
    if damage == "deleted":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(os.urandom(300))
    elif damage == "wrong shape":
        path.write_text(json.dumps({"format": "distill_catalog", "version": 1, "models": {"a": 1}}))
    else:
        path.write_text(path.read_text()[:100])
    assert names(three) == {"Rain on Tin", "gravel", "Birdsong"}
    assert len(json.loads(path.read_text())["models"]) == 3


def test_files_added_removed_or_changed_by_hand_update_the_index(three, monkeypatch, tmp_path):
    list_models(three)
    reads = count_reads(monkeypatch)
    make_model_file(tmp_path / "kettle.distillgan", dataset="kitchen")
    shutil.copy(tmp_path / "kettle.distillgan", three.models_dir / "kettle.distillgan")  # added by hand
    (three.models_dir / "gravel.distillgan").unlink()  # removed by hand
    assert names(three) == {"Rain on Tin", "Birdsong", "kettle"}
    assert [p.name for p in reads] == ["kettle.distillgan"]  # only the new file was read
    attach_vocoder(three.models_dir / "Birdsong.distillgan", vocoder_slot(epochs=50))  # changed
    entry = {e.name: e for e in list_models(three)}["Birdsong"]
    assert entry.vocoder["epochs"] == 50
    stored = json.loads(index_path(three).read_text())["models"]
    assert {row["file"] for row in stored} == {"Rain on Tin.distillgan", "Birdsong.distillgan", "kettle.distillgan"}


def test_search_matches_name_or_dataset_case_insensitively(three):
    assert names(three, "RAIN") == {"Rain on Tin"}
    assert names(three, "chorus") == {"Birdsong"}
    assert names(three, "o") == {"Rain on Tin", "gravel", "Birdsong"}  # rOoftops, fOotsteps, birdsOng
    assert names(three, "  foot ") == {"gravel"}
    assert names(three, "nothing like it") == set()
    assert list(models_table(three, "nothing like it").columns) == TABLE_COLUMNS


def test_the_vocoder_a_model_decodes_with_is_named():
    fine_tuned = {"training": {"kind": "fine-tuned", "epochs": 10, "best_epoch": 6, "final_loss": 0.4312,
                               "griffin_lim_loss": 0.5718}}
    own = SimpleNamespace(vocoder=fine_tuned, audio_settings=AudioSettings())
    assert catalog.vocoder_label(catalog.vocoder_stats(own)) == "fine-tuned · epoch 6/10 · MR-STFT 0.43 vs GL 0.57"
    none = SimpleNamespace(vocoder=None, audio_settings=AudioSettings())
    assert catalog.vocoder_label(catalog.vocoder_stats(none)) == "pretrained"
    other = SimpleNamespace(vocoder=None, audio_settings=AudioSettings(sample_rate=22050, f_max=11025.0))
    stats = catalog.vocoder_stats(other)
    assert catalog.vocoder_label(stats) == "Griffin-Lim" and "sample_rate 22050" in stats["why"]


def test_table_shows_the_vocoder_slot(three):
    attach_vocoder(three.models_dir / "Birdsong.distillgan", vocoder_slot(epochs=200, loss=2.3125))
    table = models_table(three).set_index("Name")
    assert list(models_table(three).columns) == TABLE_COLUMNS
    assert table.loc["Birdsong", "Vocoder"] == "own · 200 ep · MR-STFT 2.31"
    assert table.loc["gravel", "Vocoder"] == "pretrained"  # no vocoder of its own: the one Distill ships
    assert table.loc["Birdsong", "Epochs"] == 200 and table.loc["Birdsong", "Val loss"] == pytest.approx(0.4321)
    assert table.loc["gravel", "Dataset"] == "footsteps" and table.loc["gravel", "Clips"] == 7
    assert table.loc["gravel", "Audio"] == "44.1 kHz mono" and table.loc["gravel", "Size (MB)"] > 0
    assert len(table.loc["gravel", "Created"]) == 16  # YYYY-MM-DD HH:MM
    details = catalog.model_details(three, "Birdsong")
    assert details["vocoder"]["training"]["epochs"] == 200 and "state" not in details["vocoder"]
    analysis = details["analysis"]
    assert analysis["generation_clips"] == 7 and analysis["default_seconds"] > 0.5
    assert analysis["loudness_lufs"] == -24.0
    json.dumps(details)  # JSON-plain, for `models info --json`


def test_old_and_broken_files_are_kept_out_of_the_listing(three, tmp_path):
    shutil.copy(three.models_dir / "gravel.distillgan", three.models_dir / "old.distill")  # invisible
    (three.models_dir / "notes.txt").write_text("hello")
    (three.models_dir / "broken.distillgan").write_bytes(b"\x80\x04not really")
    torch.save({"format": "distill_model"}, three.models_dir / "v1inside.distillgan")
    assert names(three) == {"Rain on Tin", "gravel", "Birdsong"}
    problems = catalog.problems(three)
    assert set(problems) == {"broken.distillgan", "v1inside.distillgan"}
    assert problems["v1inside.distillgan"] == V1_MESSAGE


def earlier_format(path: Path) -> Path:
    """The model file at `path` as the previous build wrote it: model format version 1."""
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = 1
    torch.save(raw, path)
    return path


def test_a_format_1_model_is_a_problem_that_says_retrain(three):
    earlier_format(three.models_dir / "gravel.distillgan")
    assert names(three) == {"Rain on Tin", "Birdsong"}
    assert catalog.problems(three)["gravel.distillgan"].startswith(
        "gravel.distillgan was made by an earlier version of Distill; retrain it")
    with pytest.raises(DistillError, match="earlier version of Distill; retrain it"):
        catalog.import_model(three, three.models_dir / "gravel.distillgan", name="again")


def test_a_22khz_mono_model_of_the_previous_format_is_a_problem_that_says_retrain(three):
    path = three.models_dir / "gravel.distillgan"
    raw = torch.load(path, weights_only=True)
    # what Distill wrote before full band: format 2, 22,050 Hz mono, 80 mels to 11,025 Hz
    raw["format_version"] = 2
    raw["audio_settings"] = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "n_mels": 80,
                             "f_min": 0.0, "f_max": 11025.0}
    torch.save(raw, path)
    assert names(three) == {"Rain on Tin", "Birdsong"}
    assert catalog.problems(three)["gravel.distillgan"] == (
        "gravel.distillgan was made by an earlier version of Distill; retrain it (train on its dataset again "
        "and save the new model)")
    assert {e.name for e in list_models(three)} == {"Rain on Tin", "Birdsong"}  # the others are untouched


def test_an_index_from_the_previous_build_is_not_trusted(three):
    list_models(three)
    # The previous build indexed its own (format 1) files as models, under index version 1.
    earlier = earlier_format(three.models_dir / "gravel.distillgan")
    index = json.loads(index_path(three).read_text())
    row = next(r for r in index["models"] if r["file"] == earlier.name)
    stat = earlier.stat()
    row.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns, ino=stat.st_ino)
    index_path(three).write_text(json.dumps({**index, "version": 1}))
    assert names(three) == {"Rain on Tin", "Birdsong"}
    assert "earlier version" in catalog.problems(three)["gravel.distillgan"]


def test_import_validates_then_copies_in(three, tmp_path):
    source = tmp_path / "from a friend.distillgan"
    make_model_file(source, dataset="Tape hiss")
    entry = catalog.import_model(three, source)
    assert entry.name == "from a friend" and entry.dataset == "Tape hiss"
    assert (three.models_dir / "from a friend.distillgan").read_bytes() == source.read_bytes()
    with pytest.raises(ModelExistsError) as clash:
        catalog.import_model(three, source)
    assert clash.value.suggestion == "from a friend-2"
    renamed = catalog.import_model(three, source, name="hiss")
    assert load_model_file(three.models_dir / "hiss.distillgan").metadata["name"] == "hiss"
    assert renamed.name == "hiss"
    catalog.import_model(three, source, name="hiss", overwrite=True)
    assert names(three) >= {"from a friend", "hiss"}


def test_import_refuses_v1_hostile_and_broken_files(three, tmp_path):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "gift.distillgan"
    hostile.write_bytes(pickle.dumps({"format": FORMAT, "format_version": 1, "x": Payload(marker)}))
    with pytest.raises(DistillError, match="refused"):
        catalog.import_model(three, hostile)
    shutil.copy(hostile, three.models_dir / "planted.distillgan")  # planted straight into the folder
    assert names(three) == {"Rain on Tin", "gravel", "Birdsong"}
    assert "refused" in catalog.problems(three)["planted.distillgan"]
    assert not marker.exists()
    old = tmp_path / "old.distill"
    old.write_bytes(b"anything")
    with pytest.raises(DistillError) as info:
        catalog.import_model(three, old)
    assert str(info.value) == V1_MESSAGE
    assert not (three.models_dir / "gift.distillgan").exists() and not (three.models_dir / "old.distillgan").exists()


def test_delete_removes_file_and_entry(three):
    catalog.delete_model(three, "gravel")
    assert not (three.models_dir / "gravel.distillgan").exists()
    assert names(three) == {"Rain on Tin", "Birdsong"}
    assert "gravel.distillgan" not in index_path(three).read_text()
    with pytest.raises(DistillError, match="no model named 'gravel'"):
        catalog.delete_model(three, "gravel")


def test_rename_changes_the_file_and_the_name_inside_it(three):
    before = load_model_file(three.models_dir / "gravel.distillgan")
    entry = catalog.rename_model(three, "gravel", "Gravel path")
    assert entry.name == "Gravel path" and entry.id == before.metadata["id"]
    assert not (three.models_dir / "gravel.distillgan").exists()
    after = load_model_file(three.models_dir / "Gravel path.distillgan")
    assert after.metadata["name"] == "Gravel path"
    assert all(torch.equal(after.state[k], before.state[k]) for k in before.state)
    assert names(three) == {"Rain on Tin", "Gravel path", "Birdsong"}
    with pytest.raises(ModelExistsError):
        catalog.rename_model(three, "Gravel path", "Birdsong")
    assert names(three) == {"Rain on Tin", "Gravel path", "Birdsong"}
    with pytest.raises(DistillError, match="not a usable model name"):
        catalog.rename_model(three, "Gravel path", "../escape")


def test_index_writes_are_atomic_and_leave_no_temporary_files(three):
    list_models(three)
    catalog.delete_model(three, "gravel")
    leftovers = [p.name for p in three.models_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []


# -- the CLI ------------------------------------------------------------------------------

def cli(ws, *argv: str) -> int:
    from distill.cli import main

    return main(["--workspace", str(ws.root), *argv])


def test_cli_list_info_and_json(three, capsys):
    attach_vocoder(three.models_dir / "Birdsong.distillgan", vocoder_slot(epochs=200, loss=2.3125))
    (three.models_dir / "broken.distillgan").write_bytes(b"nope")
    assert cli(three, "models", "list") == 0
    out, err = capsys.readouterr()
    assert "Rain on Tin" in out and "own · 200 ep · MR-STFT 2.31" in out and "Size (MB)" in out
    assert "warning: broken.distillgan: " in err
    assert cli(three, "models", "list", "--search", "FOOT", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["gravel"] and rows[0]["dataset"] == "footsteps"
    assert cli(three, "models", "info", "birdsong") == 0
    out = capsys.readouterr().out
    assert "Dawn chorus (7 clips, 21.5 s)" in out and "own · 200 ep · MR-STFT 2.31" in out
    assert "latent 8 channels, one frame per 4 mel frames (21.53 a second), training window 32 frames" in out
    assert "320 latent frames of 40 segments" in out
    assert cli(three, "models", "info", "Birdsong", "--json") == 0
    details = json.loads(capsys.readouterr().out)
    assert details["metadata"]["epochs_trained"] == 200
    assert details["analysis"]["time_stride"] == 4 and details["analysis"]["latent_frames"] == 320
    assert cli(three, "models", "info", "birdsnog") == 1
    assert "did you mean 'Birdsong'" in capsys.readouterr().err


def test_cli_import_rename_delete(three, tmp_path, capsys):
    source = tmp_path / "kettle.distillgan"
    make_model_file(source, dataset="kitchen")
    assert cli(three, "models", "import", str(source)) == 0
    assert "imported 'kettle'" in capsys.readouterr().out
    assert cli(three, "models", "import", str(source)) == 1  # not a terminal: no prompt, a clear error
    err = capsys.readouterr().err
    assert "'kettle' already exists" in err and "'kettle-2'" in err and "--overwrite" in err
    assert cli(three, "models", "rename", "kettle", "Kettle boil") == 0
    assert load_model_file(three.models_dir / "Kettle boil.distillgan").metadata["name"] == "Kettle boil"
    assert cli(three, "models", "delete", "Kettle boil") == 0
    assert not (three.models_dir / "Kettle boil.distillgan").exists()
    old = tmp_path / "old.distill"
    old.write_bytes(b"v1")
    capsys.readouterr()
    assert cli(three, "models", "import", str(old)) == 1
    assert capsys.readouterr().err.strip() == f"error: {V1_MESSAGE}"
