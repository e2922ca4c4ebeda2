"""The history: every sound the page makes, per model, surviving a restart; made again sample
for sample; deleted with its files and nothing else; kept ones packed."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from distill import DistillError
from distill import history
from distill.catalog import rename_model
from distill.generate import generate_sounds
from distill.history import (HISTORY_FILE, delete_entry, history_dir, keep_entry, list_history, make_again, pack_kept,
                             record_sounds, record_transforms)
from distill.pack import PACK_FILE, regenerate
from distill.transform import transform_files
from distill.workspace import Workspace
from conftest import write_tone
from test_modelfile import make_model_file


@pytest.fixture
def model(ws) -> str:
    make_model_file(ws.models_dir / "drones.distillgan")
    return "drones"


def generated(ws, model: str, **kwargs):
    """Sounds made as the page makes them (16-bit WAVs in generated/), then put in the history."""
    griffin_lim = kwargs.pop("griffin_lim", False)
    sounds = generate_sounds(ws, model, device="cpu", griffin_lim=griffin_lim, **kwargs)
    return sounds, record_sounds(ws, model, sounds, griffin_lim=griffin_lim)


def files_under(root: Path) -> dict[str, str]:
    """Every file under `root` → a hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_entries_survive_a_restart_and_make_again_is_sample_exact(ws, model, tmp_path):
    upload = write_tone(tmp_path / "upload" / "my pluck.wav", seconds=0.6, rate=44100)
    _, randoms = generated(ws, model, n=2, seed=7, duration=0.5, temperature=0.7, offsets={1: 0.5})
    _, varied = generated(ws, model, n=1, seed=3, mode="variation", like=str(upload), temperature=0.4)
    _, morphs = generated(ws, model, n=3, seed=2, mode="morph", morph_ends=("clip1.wav", str(upload)),
                          griffin_lim=True)
    shutil.rmtree(upload.parent)  # the page's upload folder is temporary: the history keeps a copy
    made = randoms + varied + morphs

    again_ws = Workspace.open(ws.root)  # a restart: a new Workspace, the history read from disk
    listed = list_history(again_ws, model)
    assert [e.id for e in listed] == [e.id for e in morphs + varied + randoms]  # newest batch first
    assert sorted(listed, key=lambda e: e.id) == sorted(made, key=lambda e: e.id)
    assert [e.kind for e in listed] == ["morph"] * 3 + ["variation", "random", "random"]
    assert all(e.audio_path.is_file() and e.thumbnail_path.read_bytes()[:4] == b"\x89PNG" for e in listed)
    assert listed[-1].spec["offsets"] == {"1": 0.5} and listed[0].griffin_lim
    assert listed[3].spec["like"] == str(upload)  # as it was asked for; the copy beside it makes it
    assert listed[-2].settings_text() == "random · seed 7 · temperature 0.7 · pc1 +0.5 · 0.50 s"

    for entry in (listed[-1], listed[3], listed[1]):  # a random sound, the variation, a morph step
        again = make_again(again_ws, model, entry.id, device="cpu")
        assert again.identical and again.entry.again_of == entry.id
        ours, _ = sf.read(str(again.path), dtype="int16")
        theirs, _ = sf.read(str(entry.audio_path), dtype="int16")
        assert np.array_equal(ours, theirs)  # sample for sample
        assert again.path.parent == ws.generated_dir / model and again.entry.spec == entry.spec
    assert list_history(again_ws, model)[0].again_of == listed[1].id  # the new one is on top


def test_a_transformed_clip_is_kept_with_its_input_and_made_again_exactly(ws, model, tmp_path):
    clip = write_tone(tmp_path / "in" / "voice.wav", seconds=0.7, rate=44100, freq=330)
    results = transform_files(ws, model, [clip, tmp_path / "missing.wav"], device="cpu", strength=0.5)
    entries = record_transforms(ws, model, results, strength=0.5)
    assert len(entries) == 1  # the failed one is not a sound
    entry = entries[0]
    assert entry.kind == "transform" and entry.transform["strength"] == 0.5
    assert entry.settings_text().startswith("transform of voice.wav · strength 0.5")
    shutil.rmtree(clip.parent)
    again = make_again(ws, model, entry.id[:12], device="cpu")  # the start of an id is enough
    assert again.identical and again.path.parent == ws.transformed_dir / model


def test_a_deleted_entry_deletes_its_files_and_nothing_else(ws, model):
    sounds, entries = generated(ws, model, n=3, seed=1, duration=0.4)
    keep_entry(ws, model, entries[2].id)
    before = files_under(ws.root)
    gone = delete_entry(ws, model, entries[1].id)
    after = files_under(ws.root)
    entry_files = {k for k in before if k.startswith(f"{gone.folder.relative_to(ws.root)}/")}
    listing = str((gone.folder.parent / HISTORY_FILE).relative_to(ws.root))
    assert entry_files and not gone.folder.exists()
    assert set(before) - set(after) == entry_files  # its own files went, no other
    assert set(after) <= set(before)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {listing}  # only the list changed
    assert all(s.path.is_file() for s in sounds)  # generated/ untouched, the deleted sound's file included
    assert [e.id for e in list_history(ws, model)] == [entries[0].id, entries[2].id]
    assert list_history(ws, model)[1].kept  # the others as they were
    with pytest.raises(DistillError, match="no history entry"):
        delete_entry(ws, model, gone.id)


def test_keep_survives_a_restart_and_a_renamed_model_keeps_its_history(ws, model):
    _, entries = generated(ws, model, n=2, seed=4, duration=0.3)
    assert keep_entry(ws, model, entries[1].id).kept
    rename_model(ws, model, "renamed")
    listed = list_history(Workspace.open(ws.root), "renamed")
    assert [e.kept for e in listed] == [False, True]
    assert not keep_entry(ws, "renamed", entries[1].id, kept=False).kept
    assert not any(e.kept for e in list_history(ws, "renamed"))


def test_the_cap_drops_the_oldest_unkept_sounds_never_a_kept_one(ws, model, monkeypatch):
    monkeypatch.setattr(history, "MAX_UNKEPT", 2)
    _, first = generated(ws, model, n=2, seed=10, duration=0.3)
    keep_entry(ws, model, first[1].id)
    _, second = generated(ws, model, n=2, seed=20, duration=0.3)
    listed = list_history(ws, model)
    assert [e.id for e in listed] == [second[0].id, second[1].id, first[1].id]
    assert not first[0].folder.exists() and first[1].folder.exists()
    assert sorted(p.name for p in history_dir(ws, first[0].folder.parent.name).iterdir()) == \
        sorted([HISTORY_FILE] + [e.id for e in listed])


def test_a_damaged_history_file_is_named_and_never_wiped(ws, model):
    _, entries = generated(ws, model, n=1, seed=1, duration=0.3)
    path = entries[0].folder.parent / HISTORY_FILE
    path.write_text("{not json")
    for action in (lambda: list_history(ws, model), lambda: keep_entry(ws, model, entries[0].id),
                   lambda: generated(ws, model, n=1, seed=2, duration=0.3)):
        with pytest.raises(DistillError, match=f"{path}.*cannot be read.*fix or remove it"):
            action()
    assert path.read_text() == "{not json"
    path.write_text(json.dumps({"format": "distill-history", "entries": [{"id": "../../models", "kind": "random"}]}))
    with pytest.raises(DistillError, match="cannot be read"):
        delete_entry(ws, model, "../../models")  # an id that is a path is refused, nothing removed
    assert (ws.models_dir / "drones.distillgan").is_file()


def test_a_pack_of_the_kept_sounds(ws, model, tmp_path):
    with pytest.raises(DistillError, match="no kept sounds"):
        pack_kept(ws, model, device="cpu")
    _, entries = generated(ws, model, n=3, seed=5, duration=0.5)
    clip = write_tone(tmp_path / "voice.wav", seconds=0.5, rate=44100)
    transformed = record_transforms(ws, model, transform_files(ws, model, [clip], device="cpu"), griffin_lim=False)
    for entry in (entries[0], entries[2], transformed[0]):
        keep_entry(ws, model, entry.id)
    result = pack_kept(ws, model, device="cpu")
    assert result.folder.name == "drones-kept" and result.zip_path.name == "drones-kept.zip"
    names = [f["file"] for f in result.files]  # as the history lists them
    assert names == ["001-voice-drones.wav", "002-drones-seed5-0.5s.wav", "003-drones-seed7-0.5s.wav"]
    assert [f["history_id"] for f in result.files] == [transformed[0].id, entries[0].id, entries[2].id]
    assert result.manifest["settings"] == {"from": "history", "kept": 3}
    assert all(sf.info(str(result.folder / n)).subtype == "PCM_24" for n in names)
    with zipfile.ZipFile(result.zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(f"drones-kept/{n}" for n in names + [PACK_FILE])
    stored, _ = sf.read(str(result.folder / names[2]), dtype="float64")
    made, _ = regenerate(ws, result.folder / PACK_FILE, names[2], device="cpu")  # pack.json makes it again
    np.testing.assert_allclose(made, stored, atol=1.5 / 2**23)
    with pytest.raises(DistillError, match="not generated"):
        regenerate(ws, result.folder / PACK_FILE, names[0], device="cpu")


def test_cli_history_list_keep_delete_again_pack(ws, model, capsys):
    from distill.cli import main

    _, entries = generated(ws, model, n=2, seed=3, duration=0.3)
    base = ["--workspace", str(ws.root), "history"]
    assert main(base + ["list", model]) == 0
    out = capsys.readouterr().out
    assert entries[0].id in out and "random · seed 3" in out
    assert main(base + ["keep", model, entries[1].id[:-2]]) == 0
    assert main(base + ["list", model, "--kept", "--json"]) == 0
    out = capsys.readouterr().out
    assert [e["id"] for e in json.loads(out[out.index("["):])] == [entries[1].id]
    assert main(base + ["again", model, entries[1].id, "--device", "cpu"]) == 0
    assert "the same samples as the original" in capsys.readouterr().out
    assert main(base + ["delete", model, entries[0].id]) == 0
    assert main(base + ["pack", model, "--device", "cpu", "--bits", "16"]) == 0
    out = capsys.readouterr().out
    assert "1 kept sounds packed" in out and (ws.root / "packs" / "drones-kept.zip").is_file()
    assert main(base + ["delete", model, "nope"]) == 1
    assert "no history entry 'nope'" in capsys.readouterr().err
