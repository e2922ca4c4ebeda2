"""Presets: a model's generate settings under a name; round trip, rename, delete, and the
same seed then making the same sounds."""

from __future__ import annotations

import shutil

import pytest

from distill import DistillError
from distill.catalog import rename_model
from distill.generate import generate_sounds
from distill.presets import Preset, delete_preset, get_preset, list_presets, presets_path, rename_preset, save_preset


@pytest.fixture
def model(ws, trained_example) -> str:
    """A copy of the example model in a fresh workspace's catalog, as "ex"."""
    shutil.copyfile(trained_example[2].path, ws.models_dir / "ex.distillgan")
    return "ex"


def test_presets_round_trip_and_make_the_same_sounds(ws, model, tmp_path) -> None:
    preset = Preset(mode="random", temperature=0.3, duration=0.6, offsets={1: 1.0, 2: 0.0}, griffin_lim=True)
    assert preset.offsets == {1: 1.0}  # a zero offset is no setting
    save_preset(ws, model, "  soft   and short ", preset)
    assert list(list_presets(ws, model)) == ["soft and short"]
    again = get_preset(ws, model, "soft and short")
    assert again == preset and Preset.from_dict(again.to_dict()) == preset
    first = generate_sounds(ws, model, n=2, seed=5, out_dir=tmp_path / "a", device="cpu", **again.kwargs())
    second = generate_sounds(ws, model, n=2, seed=5, out_dir=tmp_path / "b", device="cpu", **preset.kwargs())
    assert [s.path.read_bytes() for s in first] == [s.path.read_bytes() for s in second]


def test_rename_delete_and_refusals(ws, model) -> None:
    save_preset(ws, model, "a", Preset())
    save_preset(ws, model, "b", Preset(temperature=0.5))
    with pytest.raises(DistillError, match="exists"):
        rename_preset(ws, model, "a", "b")
    with pytest.raises(DistillError, match="exists"):
        save_preset(ws, model, "a", Preset(), overwrite=False)
    assert rename_preset(ws, model, "a", "c") == "c"
    delete_preset(ws, model, "b")
    assert list(list_presets(ws, model)) == ["c"]
    with pytest.raises(DistillError, match=r"no preset named 'b' for this model \(have: c\)"):
        get_preset(ws, model, "b")
    for bad in (dict(mode="drone"), dict(temperature=-1.0), dict(duration=0.0)):
        with pytest.raises(DistillError):
            Preset(**bad)


def test_a_renamed_model_keeps_its_presets_and_a_damaged_file_is_named(ws, model) -> None:
    save_preset(ws, model, "kept", Preset(temperature=0.2))
    rename_model(ws, model, "renamed")
    assert list(list_presets(ws, "renamed")) == ["kept"]
    path = next(presets_path(ws, "x").parent.iterdir())
    path.write_text("{not json")
    with pytest.raises(DistillError, match="cannot be read"):
        list_presets(ws, "renamed")
