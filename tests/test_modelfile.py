"""`.distillgan` files: round trip, validation, v1 rejection, hostile files, the vocoder slot,
and the latent analysis."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from distill import DistillError
from distill.audio import LOG_MEL_FLOOR, AudioSettings
from distill.model import PRESETS, ConvVAE
from distill.trajectories import build_bank
from distill.modelfile import (FORMAT, FORMAT_VERSION, V1_MESSAGE, ModelFile, analyse_latents, attach_vocoder,
                               load_model_file, new_metadata, plain, resolve_model, save_model_file,
                               validate_model_file)

TINY = PRESETS["tiny"]


def tiny_model(seed: int = 0) -> ConvVAE:
    """An untrained tiny ConvVAE whose output depends on its latent: the layers the model
    zero-initialises (so that training starts from the mean feature) get PyTorch's default
    random initialisation, as every other layer has."""
    torch.manual_seed(seed)
    model = ConvVAE(TINY)
    for module in model.modules():
        if isinstance(module, nn.Conv1d) and not module.weight.any():
            module.reset_parameters()
    return model.eval()


def make_segments(count: int = 40, seed: int = 0) -> torch.Tensor:
    """Log-mel-like segments: a few bands of energy over the floor, different per segment."""
    g = torch.Generator().manual_seed(seed)
    base = torch.full((count, TINY.n_mels, TINY.segment_frames), -9.0)
    for i in range(count):
        band = int(torch.randint(0, TINY.n_mels - 8, (1,), generator=g))
        base[i, band:band + 8] = -2.0 + torch.randn(8, TINY.segment_frames, generator=g) * 0.5
    return base


def make_clip_mels(seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """(name, log-mel from the onset) of six one-shots of different lengths and bands, each
    decaying to the floor, and one sustained clip (cut while sounding)."""
    g = torch.Generator().manual_seed(seed)
    clips = []
    for i, frames in enumerate((40, 60, 80, 100, 120, 140, 90)):
        mel = torch.full((TINY.n_mels, frames), LOG_MEL_FLOOR)
        band = int(torch.randint(0, TINY.n_mels - 8, (1,), generator=g))
        fall = torch.linspace(0, 0 if i == 6 else 10.0, frames)  # nats: the last one sustains
        mel[band:band + 8] = (-1.0 - fall + 0.3 * torch.randn(8, frames, generator=g)).clamp(min=LOG_MEL_FLOOR)
        clips.append((f"clip{i}.wav", mel))
    return clips


def make_model_file(path: Path, name: str | None = None, dataset: str = "field recordings", seed: int = 0,
                    vocoder: dict | None = None, epochs: int = 12, val_loss: float = 0.75) -> ModelFile:
    """A real model file from an (untrained) tiny ConvVAE, written to `path`, with the latent
    analysis and the clip trajectories (`make_clip_mels`) an exported model carries."""
    model = tiny_model(seed)
    analysis = analyse_latents(model, make_segments(seed=seed))
    analysis["trajectories"] = build_bank(model, make_clip_mels(seed), AudioSettings(), -24.0).to_plain()
    name = name or Path(path).stem
    metadata = new_metadata(name, dataset={"name": dataset, "clips": 7, "total_seconds": 21.5},
                            experiment={"id": f"{dataset}-exp", "name": dataset, "checkpoint": "best",
                                        "checkpoint_epoch": epochs, "epochs_total": epochs + 3},
                            epochs_trained=epochs, train_loss=0.7, val_loss=val_loss)
    model_file = ModelFile(path=Path(path), model_config=TINY, audio_settings=AudioSettings(),
                           state=model.state_dict(), analysis=analysis, metadata=metadata, vocoder=vocoder)
    save_model_file(path, model_file)
    return model_file


def vocoder_slot(epochs: int = 200, loss: float = 2.3125) -> dict:
    return {"config": {"channels": 16, "upsample": [8, 8, 4]},
            "state": {"conv.weight": torch.randn(4, 4), "conv.bias": torch.zeros(4)},
            "training": {"epochs": epochs, "final_loss": loss, "trained_at": "2025-01-02T03:04:05+00:00",
                         "training_seconds": 812.5}}


class Payload:
    """Unpickling this creates `marker`: what a hostile model file would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    path = tmp_path / "drones.distillgan"
    make_model_file(path)
    return path


def test_round_trip_gives_the_same_outputs_for_the_same_input(tmp_path: Path):
    saved = make_model_file(tmp_path / "m.distillgan")
    original = ConvVAE(TINY).eval()
    original.load_state_dict(saved.state)
    loaded = load_model_file(tmp_path / "m.distillgan")
    model = loaded.build_model("cpu")
    x = make_segments(4, seed=3)
    z = torch.randn(3, TINY.latent_dim, 5)
    with torch.no_grad():
        assert torch.equal(model.encode(x)[0], original.encode(x)[0])
        assert torch.equal(model.decode(z), original.decode(z))
    assert loaded.model_config == TINY
    assert loaded.audio_settings == AudioSettings()
    assert loaded.metadata == saved.metadata
    assert loaded.vocoder is None
    for key in ("latent_mean", "latent_std", "directions", "direction_std", "explained_variance_ratio"):
        assert torch.equal(loaded.analysis[key], saved.analysis[key])


def test_file_holds_the_documented_fields_and_plain_values_only(model_path: Path):
    raw = torch.load(model_path, weights_only=True)
    assert raw["format"] == FORMAT == "distillgan_model" and raw["format_version"] == FORMAT_VERSION == 3
    assert set(raw) == {"format", "format_version", "model_config", "model_state", "audio_settings", "analysis",
                        "metadata", "vocoder"}
    assert "vocoder" in raw and raw["vocoder"] is None  # present and null, never absent
    meta = raw["metadata"]
    for key in ("id", "name", "created", "dataset", "experiment", "epochs_trained", "train_loss", "val_loss"):
        assert key in meta
    assert meta["dataset"] == {"name": "field recordings", "clips": 7, "total_seconds": 21.5}
    assert meta["experiment"]["checkpoint_epoch"] == 12


def test_v1_extension_gets_the_exact_message(tmp_path: Path):
    old = tmp_path / "old.distill"
    make_model_file(tmp_path / "fine.distillgan")
    old.write_bytes((tmp_path / "fine.distillgan").read_bytes())  # even a loadable file: .distill is v1
    with pytest.raises(DistillError) as info:
        load_model_file(old)
    assert str(info.value) == V1_MESSAGE
    assert V1_MESSAGE == "This model was saved in v1 format which is no longer supported. Please retrain your model."


def test_v1_marker_gets_the_exact_message(tmp_path: Path):
    path = tmp_path / "looks-new.distillgan"
    torch.save({"format": "distill_model", "version": 1, "state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(DistillError) as info:
        load_model_file(path)
    assert str(info.value) == V1_MESSAGE


def test_v1_marker_in_a_file_the_safe_loader_refuses_still_gets_the_v1_message(tmp_path: Path):
    path = tmp_path / "numpy-era.distillgan"
    torch.save({"format": "distill_model", "stats": np.float64(1.0)}, path)  # numpy: refused by weights_only
    with pytest.raises(DistillError) as info:
        load_model_file(path)
    assert str(info.value) == V1_MESSAGE


@pytest.mark.parametrize("form", ["plain pickle", "torch zip"])
def test_hostile_pickle_is_refused_and_runs_nothing(tmp_path: Path, form: str):
    marker = tmp_path / "pwned"
    # The control: this payload really does run when unpickled the unsafe way.
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(Payload(control)))
    assert control.exists()

    hostile = tmp_path / "gift.distillgan"
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "metadata": Payload(marker)}
    if form == "plain pickle":
        hostile.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, hostile)
    with pytest.raises(DistillError, match="refused"):
        load_model_file(hostile)
    with pytest.raises(DistillError, match="refused"):
        validate_model_file(hostile)
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    ("truncate", "truncated or corrupt"),
    ("flip", "corrupt"),
    ("empty", "not a Distill model"),
    ("wav", "not a Distill model"),
    ("zip", "not a Distill model"),
])
def test_damaged_or_foreign_files_get_a_clear_message(model_path: Path, damage: str, message: str):
    data = bytearray(model_path.read_bytes())
    if damage == "truncate":
        model_path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip":
        with zipfile.ZipFile(model_path) as archive:
            info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size > 1000)
        data[info.header_offset + 200] ^= 0xFF  # inside the weights: torch alone would load this
        model_path.write_bytes(bytes(data))
    elif damage == "empty":
        model_path.write_bytes(b"")
    elif damage == "wav":
        model_path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100))
    else:
        with zipfile.ZipFile(model_path, "w") as archive:
            archive.writestr("readme.txt", "hello")
    with pytest.raises(DistillError, match=message):
        load_model_file(model_path)


def test_unknown_version_and_non_model_dicts_are_named(tmp_path: Path):
    newer = tmp_path / "newer.distillgan"
    torch.save({"format": FORMAT, "format_version": 4}, newer)
    with pytest.raises(DistillError, match="newer.distillgan has model format version 4.*reads version 3.*"
                                           "Update Distill"):
        load_model_file(newer)
    odd = tmp_path / "odd.distillgan"
    torch.save({"format": FORMAT, "format_version": "2"}, odd)
    with pytest.raises(DistillError, match="version '2'.*reads version 3\\.$"):
        load_model_file(odd)
    other = tmp_path / "checkpoint.distillgan"
    torch.save({"format": "distill_checkpoint", "format_version": 1}, other)
    with pytest.raises(DistillError, match="not a Distill model file.*distill_checkpoint"):
        load_model_file(other)
    bare = tmp_path / "weights.distillgan"
    torch.save({"w": torch.zeros(3)}, bare)
    with pytest.raises(DistillError, match="no format marker"):
        load_model_file(bare)


def test_a_file_without_the_vocoder_key_is_damaged(model_path: Path):
    raw = torch.load(model_path, weights_only=True)
    del raw["vocoder"]
    torch.save(raw, model_path)
    with pytest.raises(DistillError, match="missing vocoder"):
        load_model_file(model_path)


def test_weights_that_do_not_fit_the_architecture_are_refused(model_path: Path):
    raw = torch.load(model_path, weights_only=True)
    raw["model_config"]["latent_dim"] = 16
    torch.save(raw, model_path)
    model_file = load_model_file(model_path)  # loads: nothing is built yet
    with pytest.raises(DistillError, match="do not fit"):
        model_file.build_model()
    with pytest.raises(DistillError, match="do not fit"):
        validate_model_file(model_path)


def test_attach_vocoder_sets_and_clears_the_slot(model_path: Path):
    before = load_model_file(model_path)
    slot = vocoder_slot()
    slot["training"]["final_loss"] = np.float32(2.3125)  # a numpy scalar is made plain, not pickled
    attach_vocoder(model_path, slot)
    loaded = load_model_file(model_path)
    assert loaded.vocoder["training"]["epochs"] == 200
    assert loaded.vocoder["training"]["final_loss"] == pytest.approx(2.3125)
    assert torch.equal(loaded.vocoder["state"]["conv.bias"], torch.zeros(4))
    assert all(torch.equal(loaded.state[k], before.state[k]) for k in before.state)
    attach_vocoder(model_path, None)
    assert load_model_file(model_path).vocoder is None
    assert not [p for p in model_path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_a_vocoder_slot_with_objects_is_refused(model_path: Path):
    slot = vocoder_slot()
    slot["config"]["activation"] = torch.nn.ReLU()
    with pytest.raises(DistillError, match=r"vocoder\.config\.activation is a ReLU"):
        attach_vocoder(model_path, slot)
    with pytest.raises(DistillError, match="config, state and training"):
        attach_vocoder(model_path, {"state": {}})
    assert load_model_file(model_path).vocoder is None


def test_plain_clones_views_so_a_slice_does_not_save_its_parent():
    big = torch.zeros(1000, 1000)
    small = plain({"row": big[0]})["row"]
    assert small.untyped_storage().nbytes() == 1000 * 4


def latent_rows(model: ConvVAE, segments: torch.Tensor) -> torch.Tensor:
    """Every latent frame of every segment as a (B·L, D) row, encoded in one pass."""
    with torch.no_grad():
        mu = model.encode(segments)[0].double()
    return mu.transpose(1, 2).reshape(-1, mu.shape[1])


def test_analysis_describes_the_latent_frames():
    model = tiny_model()
    segments = make_segments(60, seed=1)
    analysis = analyse_latents(model, segments, batch_size=7)  # batching changes nothing
    rows = latent_rows(model, segments)
    assert rows.shape == (60 * TINY.segment_frames // TINY.time_stride, TINY.latent_dim)
    assert analysis["n_segments"] == 60 and analysis["n_frames"] == rows.shape[0]
    torch.testing.assert_close(analysis["latent_mean"], rows.mean(0).float(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(analysis["latent_std"], rows.std(0).float(), atol=1e-5, rtol=1e-4)
    directions = analysis["directions"].double()
    torch.testing.assert_close(directions @ directions.T, torch.eye(directions.shape[0], dtype=torch.float64),
                               atol=1e-4, rtol=0)
    ratio = analysis["explained_variance_ratio"]
    assert torch.all(ratio[:-1] >= ratio[1:]) and float(ratio.sum()) == pytest.approx(1.0, abs=1e-4)
    # The spread along pc1 is the std of the frames' projections on it.
    projection = (rows - rows.mean(0)) @ directions[0]
    assert float(analysis["direction_std"][0]) == pytest.approx(float(projection.std()), rel=1e-4)
    # Signs are fixed: the largest component of every direction is positive.
    assert torch.all(directions.gather(1, directions.abs().argmax(1, keepdim=True)) > 0)


def test_analysis_leaves_out_latent_frames_of_pure_silence():
    model = tiny_model()
    segments = make_segments(10, seed=2)
    stride, frames = TINY.time_stride, TINY.segment_frames
    segments[:, :, frames // 2:] = LOG_MEL_FLOOR  # the second half of each: padding after a clip's end
    segments[0, 3, frames - 1] = -2.0  # one loud mel value keeps its latent frame (the last one)
    analysis = analyse_latents(model, segments)
    rows = latent_rows(model, segments).reshape(10, frames // stride, -1)
    kept = torch.cat([rows[:, : frames // 2 // stride].reshape(-1, rows.shape[-1]), rows[0, -1:]])
    assert analysis["n_frames"] == kept.shape[0] == 10 * frames // 2 // stride + 1
    torch.testing.assert_close(analysis["latent_mean"], kept.mean(0).float(), atol=1e-5, rtol=1e-4)
    # All silence: nothing would be left, so every frame is described rather than none.
    silent = analyse_latents(model, torch.full((2, TINY.n_mels, frames), LOG_MEL_FLOOR))
    assert silent["n_frames"] == 2 * frames // stride


def test_analysis_of_a_single_latent_frame_has_no_spread():
    model = tiny_model()
    analysis = analyse_latents(model, make_segments(1)[:, :, :TINY.time_stride])
    assert analysis["n_frames"] == 1
    assert torch.all(analysis["latent_std"] == 0)
    assert torch.all(analysis["explained_variance_ratio"] == 0)
    with pytest.raises(DistillError):
        analyse_latents(model, make_segments(1)[:0])


def test_a_version_1_distillgan_is_refused_by_its_version_and_names_the_file(model_path: Path, monkeypatch):
    raw = torch.load(model_path, weights_only=True)
    raw["format_version"] = 1  # what the previous build wrote, with its global-latent network
    torch.save(raw, model_path)
    built = []
    monkeypatch.setattr(ConvVAE, "load_state_dict", lambda *args, **kwargs: built.append(args))
    for load in (load_model_file, validate_model_file, lambda p: load_model_file(p, mmap=True)):
        with pytest.raises(DistillError) as info:
            load(model_path)
        assert str(info.value).startswith("drones.distillgan was made by an earlier version of Distill; retrain it")
    assert built == []  # no weights went anywhere
    assert V1_MESSAGE != str(info.value)


def test_resolve_model_by_name_path_and_with_close_names(ws, tmp_path: Path):
    make_model_file(ws.models_dir / "Rain on Tin.distillgan")
    make_model_file(ws.models_dir / "rainfall.distillgan")
    assert resolve_model(ws, "Rain on Tin") == ws.models_dir / "Rain on Tin.distillgan"
    assert resolve_model(ws, "rain on tin") == ws.models_dir / "Rain on Tin.distillgan"
    outside = tmp_path / "elsewhere" / "x.distillgan"
    outside.parent.mkdir()
    make_model_file(outside)
    assert resolve_model(ws, str(outside)) == outside.resolve()
    with pytest.raises(DistillError, match="no model named 'rain on tim'.*'Rain on Tin'"):
        resolve_model(ws, "rain on tim")
    with pytest.raises(DistillError) as info:
        resolve_model(ws, "old.distill")
    assert str(info.value) == V1_MESSAGE


# -- export from a real training run --------------------------------------------------------

@pytest.mark.slow
def test_export_from_a_trained_experiment_then_generate(ws, example_corpus, capsys):
    from distill.checkpoints import load_checkpoint, resolve_checkpoint
    from distill.cli import main
    from distill.datasets import create_dataset
    from distill.train import start_training
    from distill.train_config import TrainConfig

    create_dataset(ws, "plucks", example_corpus[::4][:6])
    job = start_training(ws, TrainConfig(dataset="plucks", preset="tiny", epochs=2, batch_size=8, preview_every=0,
                                         seed=3, device="cpu"))
    list(job.events(timeout=300))
    job.join(30)
    exp = job.experiment_id
    cli = lambda *argv: main(["--workspace", str(ws.root), *argv])  # noqa: E731

    assert cli("export", exp, "--name", "Plucks", "--device", "cpu") == 0
    assert "exported 'Plucks'" in capsys.readouterr().out
    path = ws.models_dir / "Plucks.distillgan"
    model_file = validate_model_file(path)
    ckpt = load_checkpoint(resolve_checkpoint(ws.experiment_dir(exp), "best"))
    meta = model_file.metadata
    assert meta["name"] == "Plucks" and meta["dataset"]["name"] == "plucks" and meta["dataset"]["clips"] == 6
    assert meta["dataset"]["total_seconds"] > 0
    assert meta["experiment"]["id"] == exp and meta["experiment"]["checkpoint_epoch"] == ckpt["epoch"]
    assert meta["epochs_trained"] == ckpt["epoch"] and meta["val_loss"] == pytest.approx(ckpt["metrics"]["val_loss"])
    assert model_file.analysis["matches_training_data"] is True and model_file.vocoder is None
    # Round trip: the exported model computes exactly what the checkpoint's weights compute.
    original = ConvVAE(model_file.model_config).eval()
    original.load_state_dict(ckpt["model_state"])
    x = torch.randn(3, model_file.model_config.n_mels, model_file.model_config.segment_frames) - 5
    with torch.no_grad():
        assert torch.equal(model_file.build_model().encode(x)[0], original.encode(x)[0])

    assert cli("export", exp, "--name", "Plucks") == 1  # a clash is never a silent replace
    assert "'Plucks' already exists" in capsys.readouterr().err
    assert cli("export", exp, "--name", "Plucks", "--checkpoint", "last", "--overwrite", "--device", "cpu") == 0
    assert load_model_file(path).metadata["experiment"]["checkpoint"] == "last"
    assert cli("export", "no-such-experiment") == 1

    assert cli("generate", "plucks", "-n", "2", "--seed", "1", "--duration", "2", "--device", "cpu") == 0
    written = sorted((ws.root / "generated" / "Plucks").glob("*.wav"))
    assert [p.name for p in written] == ["Plucks-seed1-2s.wav", "Plucks-seed2-2s.wav"]
    assert not list(ws.datasets_dir.rglob("*seed*"))
