"""The History panel's handlers, called through `gradio_client` against a launched app: a
Generate or a Transform on the page lands in the model's history; keep, A/B, vary, delete and
the pack of kept sounds act on it as its buttons do."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client, handle_file  # noqa: E402

from distill.history import list_history  # noqa: E402
from distill.workspace import Workspace  # noqa: E402
from conftest import running_app, write_tone  # noqa: E402
from test_modelfile import make_model_file  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = "plain"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ws = Workspace.open(tmp_path_factory.mktemp("ui-history") / "workspace")
    make_model_file(ws.models_dir / f"{MODEL}.distillgan")
    with running_app(ws) as url:
        client = Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
        yield ws, client
        client.close()


def value(output):
    if isinstance(output, dict) and output.get("__type__") == "update":
        return output.get("value")
    return output


def test_page_sounds_land_in_the_history_and_its_buttons_act_on_them(app, tmp_path):
    ws, client = app
    # Generate; the direction sliders at their defaults (however many the page has).
    outputs = client.predict(MODEL, "Random", 2, 7, 1.0, 0.4, None, None, None, None, 3, False, api_name="/generate")
    made = [Path(value(p)) for p in outputs if value(p)]
    history = client.predict(MODEL, api_name="/history")
    assert [Path(e["audio_path"]).name for e in history] == [p.name for p in made]  # the sounds the players play
    assert [e["spec"]["seed"] for e in history] == [7, 8] and all(e["kind"] == "random" for e in history)

    clip = write_tone(tmp_path / "voice.wav", seconds=0.5, rate=44100)
    client.predict(MODEL, [handle_file(str(clip))], None, [], False, "WAV 16-bit", "44.1 kHz", 0.0,
                   api_name="/transform")
    newest = client.predict(MODEL, api_name="/history")[0]
    assert newest["kind"] == "transform" and newest["transform"]["input"] == "voice.wav"

    seven = history[0]["id"]
    after = client.predict(MODEL, "keep", seven, api_name="/history_action")
    assert [e["kept"] for e in after] == [False, True, False]
    client.predict(MODEL, "keep", newest["id"], api_name="/history_action")
    download, summary = client.predict(MODEL, "WAV 16-bit", "44.1 kHz", [], api_name="/history_pack")
    assert "2 kept sounds" in summary
    with zipfile.ZipFile(value(download)) as archive:
        assert len([n for n in archive.namelist() if n.endswith(".wav")]) == 2
    after = client.predict(MODEL, "delete", history[1]["id"], api_name="/history_action")
    assert [e["id"] for e in after] == [newest["id"], seven]
    assert made[1].is_file()  # the sound in generated/ stays
    again = client.predict(MODEL, "again", seven, api_name="/history_action")
    assert again[0]["again_of"] == seven and len(list_history(ws, MODEL)) == 3
    with pytest.raises(Exception, match="no history entry"):
        client.predict(MODEL, "keep", "nope", api_name="/history_action")
