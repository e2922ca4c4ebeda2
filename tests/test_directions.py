"""Named directions: a shown slider moves its property monotonically in the sounds it makes,
they are stored in the model file (and found on load for a file without them), and the CLI's
`--set` and `models info --json` speak of them."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

from distill import DistillError
from distill.audio import features
from distill.descriptors import Describer
from distill.directions import ANALYSIS_KEY, NAMES, Directions, directions_of
from distill.generate import SoundSpec, generate_sounds, open_studio
from distill.modelfile import load_model_file, save_model_file
from distill.presets import Preset, get_preset
from distill.synthesis import Synthesizer

STEPS = (-1.0, -0.5, 0.0, 0.5, 1.0)
SEEDS = (0, 1, 2, 3)


@pytest.fixture
def model(ws, trained_example) -> str:
    """A copy of the example model in a fresh workspace's catalog, as "ex"."""
    shutil.copyfile(trained_example[2].path, ws.models_dir / "ex.distillgan")
    return "ex"


def cli(ws, *argv: str) -> int:
    from distill.cli import main

    return main(["--workspace", str(ws.root), *argv])


def test_every_shown_direction_moves_its_property_monotonically_in_the_sounds_made(ws, model) -> None:
    """Measured on the rendered audio (its features taken again from the wave), at 5 slider
    steps, the mean over 4 random sounds: what a listener hears, not what the search decoded."""
    studio = open_studio(ws, model, device="cpu")
    shown = studio.directions.shown
    assert len(shown) >= 2, [(d.name, d.reason) for d in studio.directions.items]
    describer = Describer(studio.settings, studio.config.time_stride)
    for direction in shown:
        means = []
        for step in STEPS:
            values = []
            for seed in SEEDS:
                wave, _, _ = studio.render(SoundSpec(seed=seed, directions={direction.name: step} if step else {}))
                values.append(describer.clip_values(features(torch.from_numpy(wave), studio.settings))[direction.name])
            means.append(float(np.mean(values)))
        assert all(b > a for a, b in zip(means, means[1:])), (direction.name, means)


def test_directions_are_stored_and_found_again_for_a_file_without_them(ws, model, tmp_path) -> None:
    stored = directions_of(load_model_file(ws.models_dir / "ex.distillgan"), None)
    assert [d.name for d in stored.items] == list(NAMES)
    assert Directions.from_plain(stored.to_plain()).to_plain()["items"][0]["span"] == stored.items[0].span
    old = load_model_file(ws.models_dir / "ex.distillgan")
    analysis = {k: v for k, v in old.analysis.items() if k != ANALYSIS_KEY}
    older = save_model_file(tmp_path / "older.distillgan", dataclasses.replace(old, analysis=analysis,
                                                                               path=tmp_path / "older.distillgan"))
    older_file = load_model_file(older)
    found = directions_of(older_file, Synthesizer.for_model(older_file))
    assert [(d.name, d.shown, d.span) for d in found.items] == [(d.name, d.shown, d.span) for d in stored.items]


def test_sliders_are_checked_and_tail_stretches_the_default_length(ws, model, tmp_path) -> None:
    studio = open_studio(ws, model, device="cpu")
    with pytest.raises(DistillError, match="no direction named 'sparkle'"):
        studio.directions.check({"sparkle": 1.0})
    with pytest.raises(DistillError, match="runs from -1 to 1"):
        studio.directions.check({studio.directions.shown[0].name: 1.5})
    if any(d.name == "tail" for d in studio.directions.shown):
        base = studio.seconds(SoundSpec())
        assert studio.seconds(SoundSpec(directions={"tail": 1.0})) > 1.2 * base
        assert studio.seconds(SoundSpec(directions={"tail": -1.0})) < base / 1.2
    name = studio.directions.shown[0].name
    sounds = generate_sounds(ws, model, n=2, seed=3, directions={name: 0.5}, out_dir=tmp_path / "a", device="cpu")
    again = generate_sounds(ws, model, n=2, seed=3, directions={name: 0.5}, out_dir=tmp_path / "b", device="cpu")
    plain = generate_sounds(ws, model, n=2, seed=3, out_dir=tmp_path / "c", device="cpu")
    assert [s.path.read_bytes() for s in sounds] == [s.path.read_bytes() for s in again]
    assert [s.path.read_bytes() for s in sounds] != [s.path.read_bytes() for s in plain]
    assert f"{name}+0.5" in sounds[0].path.name and sounds[0].spec.directions == {name: 0.5}
    assert SoundSpec.from_dict(sounds[0].spec.to_dict()) == sounds[0].spec


def test_cli_set_preset_and_info_json(ws, model, tmp_path, capsys) -> None:
    assert cli(ws, "models", "info", model, "--json") == 0
    listed = json.loads(capsys.readouterr().out)["directions"]
    assert [d["name"] for d in listed] == list(NAMES)
    shown = [d["name"] for d in listed if d["shown"]]
    assert all(d["reason"] for d in listed if not d["shown"])
    assert cli(ws, "generate", model, "-n", "1", "--seed", "2", "--set", f"{shown[0]}=-0.5", "--save-preset", "dark",
               "-o", str(tmp_path / "gen")) == 0
    assert get_preset(ws, model, "dark") == Preset(directions={shown[0]: -0.5})
    assert next((tmp_path / "gen").iterdir()).name.endswith(f"{shown[0]}-0.5.wav")
    capsys.readouterr()
    assert cli(ws, "generate", model, "--set", "sparkle=1", "-o", str(tmp_path / "bad")) == 1
    assert "no direction named 'sparkle'" in capsys.readouterr().err
    assert cli(ws, "generate", model, "--set", "brightness", "-o", str(tmp_path / "bad")) == 1
    assert "write NAME=V" in capsys.readouterr().err
    assert cli(ws, "models", "info", model) == 0
    assert "directions  " in capsys.readouterr().out
