"""The web app's handlers, called through `gradio_client` against a launched app on a temp
workspace: upload, train, stop, resume, save, list, generate, import, delete, and readable
errors. One app per module; what a test needs (a dataset, a finished experiment, a model) comes
from a fixture that reuses what an earlier test made, or makes it through the engine."""

from __future__ import annotations

import functools
import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402

from distill.catalog import model_details  # noqa: E402
from distill.checkpoints import read_metrics  # noqa: E402
from distill.directions import NAMES as NAMED  # noqa: E402
from distill.datasets import create_dataset, list_datasets  # noqa: E402
from distill.example_corpus import write_example_corpus  # noqa: E402
from distill.export import export_model  # noqa: E402
from distill.generate import model_sounds  # noqa: E402
from distill.modelfile import V1_MESSAGE  # noqa: E402
from distill.experiments import get_experiment, list_experiments  # noqa: E402
from distill.train import current_job, start_training  # noqa: E402
from distill.train_config import TrainConfig  # noqa: E402
from distill.workspace import Workspace  # noqa: E402
from conftest import free_port, running_app, wait_until  # noqa: E402

pytestmark = pytest.mark.slow

TINY = dict(preset="tiny", batch_size=16, learning_rate=0.001, latent_dim=0, preview_every=1, device="cpu",
            name="")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ws = Workspace.open(tmp_path_factory.mktemp("ui-handlers") / "workspace")
    with running_app(ws) as url:
        client = Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("client-downloads")))
        yield ws, client
        client.close()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    files = write_example_corpus(folder, n_clips=6)
    bad = folder / "bad.wav"
    bad.write_text("this is not audio\n")
    return files + [bad]


def train(client: Client, dataset: str, epochs: int, **overrides):
    settings = {**TINY, **overrides}
    return client.submit(dataset, settings["preset"], epochs, settings["batch_size"], settings["learning_rate"],
                         settings["latent_dim"], settings["preview_every"], settings["device"], settings["name"],
                         api_name="/train")


def value(output):
    """A component's value from an output (the client passes gr.update(...) through as a dict)."""
    if isinstance(output, dict) and output.get("__type__") == "update":
        return output.get("value")
    return output


wait_for = functools.partial(wait_until, timeout=120, every=0.3)


# -- what the tests need, made through the engine when an earlier test has not made it ----------

@pytest.fixture
def dataset(app, clips) -> str:
    ws, _ = app
    if "mine" not in [d.name for d in list_datasets(ws)]:
        create_dataset(ws, "mine", clips)
    return "mine"


@pytest.fixture
def experiment(app, dataset) -> str:
    """A completed experiment (the one the Train test made, else a fresh one)."""
    ws, _ = app
    done = [r["id"] for r in list_experiments(ws) if r["status"] == "completed"]
    if done:
        return done[-1]
    job = start_training(ws, TrainConfig(dataset=dataset, preset="tiny", epochs=2, preview_every=1, device="cpu"))
    job.join(300)
    return job.experiment_id


@pytest.fixture
def model(app, experiment) -> str:
    ws, _ = app
    if not (ws.models_dir / "my sounds.distillgan").exists():
        export_model(ws, experiment, "my sounds")
    return "my sounds"


# -- the tests --------------------------------------------------------------------------------

def test_upload_keeps_good_clips_and_lists_the_bad_one_with_its_reason(app, clips):
    ws, client = app
    results, summary, *_ = client.predict(None, "uploaded", [handle_file(str(p)) for p in clips],
                                          api_name="/upload_clips")
    rows = {row[0]: row for row in results["data"]}
    assert len(rows) == 7
    assert rows["bad.wav"][1] == "rejected" and rows["bad.wav"][2]
    assert results["data"][0][0] == "bad.wav"  # problems are listed first
    assert all(rows[p.name][1].startswith("kept") for p in clips[:-1])
    assert "6 kept" in summary and "1 rejected" in summary
    # the dataset now exists with its 6 clips; the clip table says so
    _, table, totals, *_ = client.predict("uploaded", api_name="/show_dataset")
    assert len(table["data"]) == 6 and "6 clips" in totals


def browser_upload(url: str, paths: list[Path]) -> list[dict]:
    """Upload files as the page does: Gradio keeps each under a cleaned-up name, and the file
    data the page sends on carries the name the file had (gradio_client would clean that too)."""
    import httpx

    handles = [open(p, "rb") for p in paths]
    try:
        response = httpx.post(f"{url.rstrip('/')}/gradio_api/upload",
                              files=[("files", (p.name, h)) for p, h in zip(paths, handles)], timeout=60)
    finally:
        for handle in handles:
            handle.close()
    response.raise_for_status()
    return [{"path": stored, "orig_name": p.name, "meta": {"_type": "gradio.FileData"}}
            for p, stored in zip(paths, response.json())]


def call_as_a_browser(url: str, api_name: str, *data) -> list:
    """An event through Gradio's HTTP API with raw file data (see browser_upload); its outputs."""
    import httpx

    base = f"{url.rstrip('/')}/gradio_api/call/{api_name}"
    event = httpx.post(base, json={"data": list(data)}, timeout=60).raise_for_status().json()["event_id"]
    with httpx.stream("GET", f"{base}/{event}", timeout=120) as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                payload = json.loads(line.split(":", 1)[1])
                if kind == "error":
                    raise AssertionError(f"{api_name} failed: {payload}")
                return payload
    raise AssertionError(f"{api_name} gave no result")


def odd_folder(folder: Path) -> Path:
    """A new user's folder as it comes: clips, their macOS metadata twins, a name that holds a
    Windows path, Finder and notes files, a text file called .wav, silence, a duplicate, a clip
    without an extension."""
    import shutil

    import numpy as np
    import soundfile as sf
    from conftest import write_tone

    write_tone(folder / "alarm_clock.wav", freq=330)
    write_tone(folder / "LOUD.WAV", freq=550, amplitude=0.9)
    write_tone(folder.parent / "evil.wav", freq=440).rename(folder / "..\\evil.wav")
    write_tone(folder.parent / "kick.wav", freq=60).rename(folder / "kick")
    shutil.copyfile(folder / "alarm_clock.wav", folder / "alarm copy.wav")
    sf.write(str(folder / "silence.wav"), np.zeros(8000), 22050)
    (folder / "._alarm_clock.wav").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64))
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    (folder / "readme.txt").write_text("my sounds\n")
    (folder / "notes.wav").write_text("not a sound\n")
    return folder


def test_the_cli_and_the_upload_give_every_file_of_an_odd_folder_the_same_verdict(app, tmp_path, capsys):
    from distill.cli import main

    ws, client = app
    folder = odd_folder(tmp_path / "odd")
    files = sorted(folder.iterdir())
    assert main(["--workspace", str(ws.root), "dataset", "create", "door-cli", str(folder), "--json"]) == 0
    by_cli = sorted([f["file"], f["result"], f["details"]] for f in json.loads(capsys.readouterr().out)["files"])
    results, summary, *_ = call_as_a_browser(client.src, "upload_clips", None, "door-page", browser_upload(client.src, files))
    by_page = sorted(results["data"])

    assert by_page == by_cli
    assert sorted(row[0] for row in by_page) == sorted(p.name for p in files)  # every file, by its own name
    verdicts = {row[0]: (row[1], row[2]) for row in by_page}
    assert verdicts["..\\evil.wav"][0] == "kept" and "saved as evil.wav" in verdicts["..\\evil.wav"][1]
    assert verdicts["._alarm_clock.wav"] == ("skipped", "macOS metadata (the AppleDouble twin of alarm_clock.wav), "
                                                        "not audio")
    assert verdicts[".DS_Store"][0] == verdicts["readme.txt"][0] == verdicts["kick"][0] == "skipped"
    assert verdicts["notes.wav"][0] == verdicts["silence.wav"][0] == "rejected"
    assert verdicts["alarm_clock.wav"][1].startswith("same content as alarm copy.wav")
    assert "3 kept, 2 rejected, 5 skipped" in summary


def test_an_upload_on_a_full_disk_is_one_message_and_the_dataset_stays_as_it_was(app, dataset, monkeypatch, tmp_path):
    from conftest import write_tone
    from distill import atomic
    from test_disk_full import FullDisk

    ws, client = app
    clips = [write_tone(tmp_path / f"new {i}.wav", freq=300.0 + 50 * i) for i in range(3)]
    manifest = ws.dataset_dir(dataset) / "dataset.json"
    before = manifest.read_bytes(), sorted(p.name for p in (ws.dataset_dir(dataset) / "clips").iterdir())
    monkeypatch.setattr(atomic, "_open_raw", FullDisk(file=2).open)  # one clip fits, the second does not
    with pytest.raises(Exception) as failure:
        client.predict(dataset, "", [handle_file(str(p)) for p in clips[:3]], api_name="/upload_clips")
    assert "the disk is full" in str(failure.value) and "Traceback" not in str(failure.value)
    assert (manifest.read_bytes(), sorted(p.name for p in (ws.dataset_dir(dataset) / "clips").iterdir())) == before


def test_upload_to_a_picked_dataset_adds_and_remove_takes_out(app, dataset, clips, tmp_path):
    ws, client = app
    from conftest import write_tone

    extra = write_tone(tmp_path / "extra tone.wav", seconds=1.0)
    results, summary, *_ = client.predict(dataset, "", [handle_file(str(extra))], api_name="/upload_clips")
    assert results["data"][0][1].startswith("kept") and "Added to" in summary
    _, table, *_ = client.predict(dataset, ["extra tone.wav"], api_name="/remove_clips")
    names = [row[0] for row in table["data"]]
    assert "extra tone.wav" not in names and sorted(names) == sorted(p.name for p in clips[:-1])
    assert not (ws.dataset_dir(dataset) / "clips" / "extra tone.wav").exists()


def test_train_runs_to_the_end_and_reports_completed(app, dataset):
    ws, client = app
    status, chart, *_ = train(client, dataset, 2).result(timeout=300)
    assert "completed" in status and "2 / 2" in status, status
    experiment = list_experiments(ws)[0]
    assert experiment["status"] == "completed" and len(read_metrics(ws.experiment_dir(experiment["id"]))) == 2
    assert experiment["id"] in status


def test_stop_ends_the_run_stopped_and_resume_finishes_it(app, dataset):
    ws, client = app
    job = train(client, dataset, 20)
    experiment_id = wait_for(lambda: current_job(ws) and not current_job(ws).done and current_job(ws).experiment_id)
    wait_for(lambda: read_metrics(ws.experiment_dir(experiment_id)))
    # a second page sees the running job (rebuilt from disk, not from the training handler)
    status, *_ = Client(client.src, verbose=False).predict(experiment_id, api_name="/show_experiment")
    assert "running" in status and "epoch" in status
    client.predict(api_name="/stop")
    status, *_ = job.result(timeout=120)
    assert "stopped" in status, status
    assert get_experiment(ws, experiment_id)["status"] == "stopped"
    done = read_metrics(ws.experiment_dir(experiment_id))[-1]["epoch"]

    status, *_ = client.submit(experiment_id, done + 1, api_name="/resume").result(timeout=200)
    assert "completed" in status and f"{done + 1} / {done + 1}" in status, status
    assert [row["epoch"] for row in read_metrics(ws.experiment_dir(experiment_id))] == list(range(1, done + 2))


def test_list_experiments_gives_each_with_its_status(app, experiment):
    ws, client = app
    records = {r["id"]: r for r in client.predict(api_name="/list_experiments")}
    assert records.keys() == {r["id"] for r in list_experiments(ws)}
    assert records[experiment]["status"] == "completed" and records[experiment]["epochs"] >= 1


def test_save_model_puts_it_in_the_catalog(app, experiment):
    ws, client = app
    message = client.predict(experiment, "best", "saved in the ui", False, api_name="/save_model")
    assert "saved in the ui" in message and (ws.models_dir / "saved in the ui.distillgan").is_file()
    assert "saved in the ui" in [m["name"] for m in client.predict("", api_name="/list_models")]
    # the same name again is refused with a readable suggestion
    with pytest.raises(Exception, match="already exists"):
        client.predict(experiment, "last", "saved in the ui", False, api_name="/save_model")
    table, *_ = client.predict("saved in", "", api_name="/search_models")
    assert [row[0] for row in table["data"]] == ["saved in the ui"]


def generate(client, model, mode="Random", n=2, seed=7, temperature=1.0, duration=0, clip=None, a=None, b=None,
             steps=3, pc1=0.0, api_name="/generate"):
    return client.predict(model, mode, n, seed, temperature, duration, clip, None, a, b, steps, False, pc1, 0, 0, 0,
                          api_name=api_name)


def test_generate_makes_playable_wavs_with_the_chosen_seed_and_direction(app, model):
    ws, client = app
    outputs = generate(client, model, pc1=0.5)
    audio = [value(p) for p in outputs if value(p)]
    assert len(outputs) == 8 and len(audio) == 2 and all(Path(p).stat().st_size > 1000 for p in audio)
    written = sorted((ws.root / "generated" / model).glob("*.wav"))
    assert [p.name for p in written] == ["my_sounds-seed7-pc1+0.5.wav", "my_sounds-seed8-pc1+0.5.wav"]


def test_a_preset_is_saved_used_renamed_and_deleted_from_the_page_and_the_cli_plays_it(app, model, tmp_path, capsys):
    from distill.cli import main
    from distill.presets import list_presets

    ws, client = app
    clip = model_sounds(ws, model).clips[1]
    shown = next(d["name"] for d in model_details(ws, model)["directions"] if d["shown"])
    named = [0.5 if name == shown else 0.0 for name in NAMED]  # the page's named sliders, in order
    update = client.predict(model, "close ones", "Variations of a clip", 0.4, 0.8, clip, None, None, None, True,
                            1.5, 0, -0.5, 0, *named, api_name="/save_preset")
    assert value(update) == "close ones"
    kept = list_presets(ws, model)["close ones"]
    assert (kept.mode, kept.like, kept.temperature, kept.duration, kept.offsets, kept.directions, kept.griffin_lim) == \
        ("variation", clip, 0.4, 0.8, {1: 1.5, 3: -0.5}, {shown: 0.5}, True)
    mode, temperature, duration, like, _, _, griffin, name, *sliders = client.predict(model, "close ones",
                                                                                      api_name="/use_preset")
    assert (value(mode), temperature, duration, value(like), griffin, name) == \
        ("Variations of a clip", 0.4, 0.8, clip, True, "close ones")
    assert sliders == [1.5, 0.0, -0.5, 0.0, *named]
    # the CLI with the preset makes what the page made with those settings: the same sounds
    page = client.predict(model, "Variations of a clip", 2, 3, 0.4, 0.8, clip, None, None, None, 3, True,
                          1.5, 0, -0.5, 0, *named, api_name="/generate")
    assert all(f"{shown}+0.5" in Path(value(p)).name for p in page if value(p))
    assert main(["--workspace", str(ws.root), "generate", model, "--preset", "close ones", "-n", "2", "--seed", "3",
                 "-o", str(tmp_path)]) == 0
    capsys.readouterr()
    made = [Path(value(p)) for p in page if value(p)]
    assert len(made) == 2 and all((tmp_path / p.name).read_bytes() == p.read_bytes() for p in made)
    assert value(client.predict(model, "close ones", "near", api_name="/rename_preset")) == "near"
    assert list(list_presets(ws, model)) == ["near"]
    assert value(client.predict(model, "near", api_name="/delete_preset")) is None
    assert list_presets(ws, model) == {}


def test_variations_morphs_and_a_pack_from_the_page(app, model):
    ws, client = app
    clips = model_sounds(ws, model).clips
    outputs = generate(client, model, mode="Variations of a clip", n=3, clip=clips[0])
    assert len([p for p in outputs if value(p)]) == 3
    outputs = generate(client, model, mode="Morph A → B", a=clips[0], b=clips[-1], steps=4)
    assert len([p for p in outputs if value(p)]) == 4
    with pytest.raises(Exception, match="pick a training clip to vary"):
        generate(client, model, mode="Variations of a clip")
    download, summary = client.predict(model, 3, "FLAC 24-bit", "48 kHz", ["SFZ", "DecentSampler"], "Random", 2, 5,
                                       1.0, 0, None, None, None, None, 3, False, 0, 0, 0, 0, api_name="/pack")
    zip_path = Path(value(download))
    assert zip_path.suffix == ".zip" and "3 sounds" in summary and "FLAC 24-bit, 48 kHz" in summary
    folder = ws.root / "packs" / f"{model}-random-seed5"
    assert (folder / "pack.json").is_file() and "playable as" in summary
    assert (folder / f"{folder.name}.sfz").is_file() and (folder / f"{folder.name}.dspreset").is_file()
    files = sorted(folder.glob("*.flac"))
    assert len(files) == 3 and all((sf.info(str(f)).samplerate, sf.info(str(f)).subtype) == (48000, "PCM_24")
                                   for f in files)


def test_the_live_export_gives_a_torchscript_file_to_download(app, model):
    import torch

    _, client = app
    download, text = client.predict(model, api_name="/export_live")
    path = Path(value(download))
    assert path.suffix == ".ts" and "latency" in text and "samples" in text
    live = torch.jit.load(str(path))
    assert "forward" in live.get_methods() and int(live.sampling_rate) == 44100


def test_a_full_disk_during_a_pack_is_the_cli_s_one_line_on_the_page(app, model, monkeypatch):
    from distill import atomic
    from test_disk_full import FullDisk

    ws, client = app
    packs = ws.root / "packs"
    before = sorted(p.name for p in packs.iterdir()) if packs.exists() else []
    monkeypatch.setattr(atomic, "_open_raw", FullDisk(file=2).open)
    with pytest.raises(Exception) as failure:
        client.predict(model, 3, "WAV 24-bit", "44.1 kHz", [], "Random", 2, 6, 1.0, 0, None, None, None,
                       None, 3, False, 0, 0, 0, 0, api_name="/pack")
    message = str(failure.value)
    assert "could not write" in message and "the disk is full" in message and "Traceback" not in message
    assert sorted(p.name for p in packs.iterdir()) == before  # no folder, no zip, no temporary litter


def test_a_refused_import_is_one_message_and_leaves_the_rest_of_the_tab_alone(app, tmp_path):
    ws, client = app
    old = tmp_path / "old.distill"
    old.write_bytes(b"PK\x03\x04 an old model")
    box, message, table, picker, details, *_ = client.predict(handle_file(str(old)), "", api_name="/import_model")
    assert message.startswith("⚠ **Not imported**") and V1_MESSAGE in message
    assert box is None  # the import box is empty, ready for the next file (and offers no download)
    assert all(output == {"__type__": "update"} for output in (table, picker, details))  # left as they were
    hostile = tmp_path / "hostile.distillgan"
    hostile.write_bytes(b"PK\x03\x04 not a model at all")
    _, message, *_ = client.predict(handle_file(str(hostile)), "", api_name="/import_model")
    assert "Not imported" in message and "hostile.distillgan" in message and "Traceback" not in message


def test_import_then_delete_a_model(app, model, tmp_path):
    ws, client = app
    copy = tmp_path / "shared by a friend.distillgan"
    copy.write_bytes((ws.models_dir / f"{model}.distillgan").read_bytes())
    _, message, table, *_ = client.predict(handle_file(str(copy)), "", api_name="/import_model")
    assert "shared by a friend" in message
    assert {model, "shared by a friend"} <= {row[0] for row in table["data"]}
    table, *_ = client.predict("shared by a friend", "", api_name="/delete_model")  # (the Row is no output)
    names = [row[0] for row in table["data"]]
    assert "shared by a friend" not in names and model in names
    assert not (ws.models_dir / "shared by a friend.distillgan").exists()


def test_failures_reach_the_user_as_readable_messages(app):
    ws, client = app
    with pytest.raises(Exception, match="pick a dataset to train on"):
        train(client, None, 2).result(timeout=60)
    with pytest.raises(Exception, match="nothing is training"):
        client.predict(api_name="/stop")
    with pytest.raises(Exception, match="no model named"):
        generate(client, "nope", n=1)
    with pytest.raises(Exception) as failure:
        client.predict("nope", api_name="/model_details")
    assert "Traceback" not in str(failure.value)


def test_a_training_started_from_the_command_line_shows_as_running_and_the_stop_button_stops_it(app, dataset):
    import subprocess
    import sys

    from distill.cli.progress import EXIT_STOP_REQUESTED

    ws, client = app
    before = {r["id"] for r in list_experiments(ws)}
    cli = Path(sys.executable).with_name("distill")
    process = subprocess.Popen([str(cli), "--workspace", str(ws.root), "train", dataset, "--preset", "tiny",
                                "--epochs", "50", "--preview-every", "1", "--device", "cpu"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        record = wait_for(lambda: next((r for r in list_experiments(ws)
                                        if r["id"] not in before and r["status"] == "running"), None), timeout=120)
        status, *_ = client.predict(record["id"], api_name="/show_experiment")
        assert "running" in status and record["id"] in status, status
        with pytest.raises(Exception, match="already running"):
            train(client, dataset, 2).result(timeout=60)
        status, *_ = client.predict(api_name="/stop")
        assert "Stopping after the current batch" in status and record["id"] in status, status
    finally:
        stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == EXIT_STOP_REQUESTED, stderr
    assert "stop requested by the web app" in stdout
    status, *_ = client.predict(record["id"], api_name="/show_experiment")
    assert "stopped" in status and "Stopping" not in status, status


def test_a_first_start_brings_the_example_dataset_and_only_once(tmp_path):
    from distill.datasets import list_datasets, remove_clips
    from ui.app import open_workspace

    ws = open_workspace(str(tmp_path / "fresh"))
    [example] = list_datasets(ws)
    assert example.name == "example" and len(example.usable_clips) >= 2
    remove_clips(ws, "example", [c.name for c in example.clips])
    assert len(list_datasets(open_workspace(str(tmp_path / "fresh")))[0].clips) == 0  # not re-created


def test_distill_ui_starts_on_localhost_prints_url_and_workspace_and_serves_no_outside_files(tmp_path):
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    script = Path(sys.executable).with_name("distill-ui")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ui.app"]
    port = free_port()
    process = subprocess.Popen(command + ["--workspace", str(tmp_path / "ws"), "--host", "127.0.0.1", "--port", str(port),
                                          "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Workspace:"):
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text and str(tmp_path / "ws") in text, text
        assert "example" in text  # the first start made the example dataset
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200
        outside = tmp_path / "secret.txt"
        outside.write_text("not for the web")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/file={outside}", timeout=30)
        assert refused.value.code in (403, 404)
    finally:
        process.terminate()
        process.wait(30)


# -- the Catalog tab's vocoder panel ------------------------------------------------------------

def train_vocoder(client: Client, model: str, epochs: int, replace: bool = False):
    # model, preset, epochs, device, "Replace the existing vocoder", search (the page state is no input)
    return client.submit(model, "tiny", epochs, "cpu", replace, "", api_name="/train_vocoder")


def test_vocoder_trains_to_the_end_and_the_catalog_shows_it(app, model):
    from distill.vocoder import read_run

    ws, client = app
    griffin, pretrained = client.predict(model, 3, api_name="/vocoder_ab")  # no vocoder of its own yet: the shipped one
    assert Path(value(pretrained)).name.endswith("-pretrained.wav")
    status, chart, original, griffin, vocoder, _, table, details, _ = \
        train_vocoder(client, model, 2).result(timeout=300)
    assert "completed" in status and "2 / 2" in status and "MR-STFT" in status, status
    assert read_run(ws, model)["status"] == "completed"
    svg = value(chart)  # the Training tab's chart: one point per epoch and curve
    assert len(re.findall(r'data-curve="train"', svg)) == 2 and len(re.findall(r'data-curve="validation"', svg)) == 2
    # the newest previews: the held-out clip three ways
    assert all(value(p) and Path(value(p)).stat().st_size > 100 for p in (original, griffin, vocoder))
    # the catalog table and the details carry the vocoder's stats
    row = next(r for r in table["data"] if r[0] == model)
    assert row[-1].startswith("own · 2 ep"), row  # the tiny preset trains from scratch
    assert "**Vocoder** its own, trained from scratch: own · 2 ep" in details
    assert next(m for m in client.predict("", api_name="/list_models") if m["name"] == model)["vocoder"]


def test_vocoder_retraining_needs_the_confirmation(app, model):
    from distill.vocoder import read_run

    ws, client = app
    if read_run(ws, model) is None or read_run(ws, model)["status"] != "completed":
        train_vocoder(client, model, 1).result(timeout=300)
    before = read_run(ws, model)["run_id"]
    with pytest.raises(Exception, match="already has a vocoder.*Replace the existing vocoder"):
        train_vocoder(client, model, 1).result(timeout=60)
    assert read_run(ws, model)["run_id"] == before  # nothing started
    status, *_ = train_vocoder(client, model, 1, replace=True).result(timeout=300)
    assert "completed" in status and "1 / 1" in status, status
    assert read_run(ws, model)["run_id"] != before


def test_vocoder_ab_gives_two_playable_wavs_of_one_seed(app, model):
    import soundfile as sf
    from distill.vocoder import read_run

    ws, client = app
    if read_run(ws, model) is None or read_run(ws, model)["status"] != "completed":
        train_vocoder(client, model, 1).result(timeout=300)
    griffin, vocoder = (value(p) for p in client.predict(model, 5, api_name="/vocoder_ab"))
    assert "griffin-lim" in Path(griffin).name and "vocoder" in Path(vocoder).name
    assert "seed-5" in Path(griffin).name and "seed-5" in Path(vocoder).name
    a, b = sf.info(griffin), sf.info(vocoder)
    assert a.frames > 1000 and a.frames == b.frames and a.samplerate == b.samplerate


def test_vocoder_stop_and_resume(app, model):
    from distill.vocoder import current_vocoder_job, read_run

    ws, client = app
    with pytest.raises(Exception, match="no vocoder is training"):
        client.predict(api_name="/stop_vocoder")
    running = client.submit(model, "tiny", 30, "cpu", True, "", api_name="/train_vocoder")
    wait_for(lambda: current_vocoder_job(ws) and read_run(ws, model).get("run_id") == current_vocoder_job(ws).run_id
             and read_vocoder_epochs(ws, model) >= 1)
    # a second page sees it running (rebuilt from disk)
    status, *_ = Client(client.src, verbose=False).predict(model, "", api_name="/show_vocoder")
    assert "training" in status and "/ 30" in status, status
    client.predict(api_name="/stop_vocoder")
    status, *_ = running.result(timeout=120)
    assert "stopped" in status and "Resume" in status, status
    done = read_vocoder_epochs(ws, model)
    # the run replaces the model's earlier vocoder: resuming it needs the confirmation too
    with pytest.raises(Exception, match="already has a vocoder"):
        client.submit(model, done + 1, "cpu", False, "", api_name="/resume_vocoder").result(timeout=60)
    status, *_ = client.submit(model, done + 1, "cpu", True, "", api_name="/resume_vocoder").result(timeout=300)
    assert "completed" in status and f"{done + 1} / {done + 1}" in status, status


def read_vocoder_epochs(ws, model: str) -> int:
    from distill.vocoder import read_vocoder_metrics

    rows = read_vocoder_metrics(ws, model)
    return int(rows[-1]["epoch"]) if rows else 0


# -- the Catalog tab's transform panel ----------------------------------------------------------

@pytest.fixture
def plain_model(app) -> str:
    """A model file written straight into the catalog (untrained: what the panel does with
    it does not depend on training)."""
    from test_modelfile import make_model_file

    ws, _ = app
    if not (ws.models_dir / "plain.distillgan").exists():
        make_model_file(ws.models_dir / "plain.distillgan")
    return "plain"


def transform(client: Client, model: str | None, uploads: list[Path], dataset: str | None = None,
              clips: list[str] | None = None, griffin_lim: bool = False, strength: float = 0.5):
    """summary, the originals, the transformed players, the download links (the Rows are no outputs)."""
    outputs = client.predict(model, [handle_file(str(p)) for p in uploads], dataset, clips or [], griffin_lim,
                             "WAV 16-bit", "44.1 kHz", strength, api_name="/transform")
    summary, rest = outputs[0], outputs[1:]
    slots = (len(rest) - 1) // 2
    return summary, [value(p) for p in rest[:slots]], [value(p) for p in rest[slots:2 * slots]], value(rest[-1])


def test_transform_plays_each_uploaded_or_picked_clip_beside_its_transformed_version(app, plain_model, dataset, clips):
    import soundfile as sf
    from distill.datasets import load_dataset

    ws, client = app
    picked = next(c.name for c in load_dataset(ws, dataset).usable_clips if c.name != clips[0].name)
    summary, originals, outputs, files = transform(client, plain_model, [clips[0]], dataset, [picked])
    assert "Transformed **2 of 2** clips" in summary and clips[0].name in summary and picked in summary
    shown = [(o, t) for o, t in zip(originals, outputs) if t]
    folder = ws.transformed_dir / plain_model
    written = sorted([f"{clips[0].stem}-plain-strength0.5.wav", f"{Path(picked).stem}-plain-strength0.5.wav"])
    assert len(shown) == 2 and sorted(p.name for p in folder.iterdir()) == written
    links = re.findall(r'href="gradio_api/file=([^"]+)" download="([^"]+)"', files)
    assert sorted(name for _, name in links) == written
    for target, name in links:  # each link fetches its file from the app
        with urllib.request.urlopen(f"{client.src.rstrip('/')}/gradio_api/file={target}", timeout=30) as response:
            assert response.read() == (folder / name).read_bytes()
    for original, transformed in shown:
        assert sf.info(original).duration == pytest.approx(sf.info(transformed).duration, abs=0.01)
    assert Path(shown[1][0]).name == picked  # the dataset's own clip plays as the original


def test_transform_lists_a_bad_file_and_still_shows_the_good_ones(app, plain_model, clips):
    ws, client = app
    summary, _, outputs, files = transform(client, plain_model, [clips[-1], clips[1]], griffin_lim=True)
    assert "Transformed **1 of 2** clips" in summary
    assert "✗ bad.wav: not audio, or unreadable" in summary
    assert sum(1 for p in outputs if p) == 1 and files.count("download=") == 1


def test_transform_asks_for_a_model_and_for_clips(app, plain_model, clips):
    ws, client = app
    with pytest.raises(Exception, match="pick a model first"):
        transform(client, None, [clips[0]])
    with pytest.raises(Exception, match="add clips to transform"):
        transform(client, plain_model, [])
    with pytest.raises(Exception, match="pick the dataset the clips come from"):
        transform(client, plain_model, [], None, ["a.wav"])
