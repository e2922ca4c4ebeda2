"""`distill dataset ...` end to end through `distill.cli.main`: exit codes, output, JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import write_tone
from distill.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sources(folder: Path) -> Path:
    write_tone(folder / "low.wav", seconds=0.6, freq=110)
    write_tone(folder / "high.flac", seconds=0.6, freq=440, channels=2)
    (folder / "notes.wav").write_text("not a sound")
    return folder


def test_create_reports_each_file_and_show_json_has_the_promised_shape(ws, tmp_path, capsys):
    code, out, err = run(capsys, "dataset", "create", "birds", str(sources(tmp_path / "in")),
                         "--workspace", str(ws.root))
    assert code == 0, err
    assert "low.wav: kept (0.60 s, 22050 Hz, 1 ch)" in out
    assert "high.flac: kept (0.60 s, 22050 Hz, 2 ch)" in out
    assert "notes.wav: rejected: not audio" in out
    assert "2 kept, 1 rejected" in out and "dataset 'birds': 2 usable clips" in out

    code, out, _ = run(capsys, "--workspace", str(ws.root), "dataset", "show", "birds", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["name"] == "birds"
    by_name = {c["name"]: c for c in shown["clips"]}
    assert set(by_name) == {"low.wav", "high.flac", "notes.wav"}
    for clip in shown["clips"]:
        assert {"name", "status", "reason", "duration", "sample_rate", "channels"} <= set(clip)
        assert clip["status"] in ("ok", "warning", "rejected")
    assert by_name["high.flac"]["channels"] == 2 and by_name["low.wav"]["duration"] > 0.5
    assert by_name["notes.wav"]["status"] == "rejected" and "not audio" in by_name["notes.wav"]["reason"]

    code, out, _ = run(capsys, "dataset", "show", "birds", "--workspace", str(ws.root))
    assert code == 0 and "low.wav" in out and "rejected at the last import" in out and "warning:" in out


def test_list_add_remove_delete(ws, tmp_path, capsys):
    w = ("--workspace", str(ws.root))
    assert run(capsys, "dataset", "list", *w)[1].startswith("no datasets yet")
    assert run(capsys, "dataset", "create", "d", str(sources(tmp_path / "in")), *w)[0] == 0

    code, out, _ = run(capsys, "dataset", "list", "--json", *w)
    listed = json.loads(out)
    assert code == 0 and [d["name"] for d in listed] == ["d"] and listed[0]["usable"] == 2
    assert "d" in run(capsys, "dataset", "list", *w)[1]

    write_tone(tmp_path / "more" / "mid.wav", freq=220)
    code, out, _ = run(capsys, "dataset", "add", "d", str(tmp_path / "more" / "mid.wav"), *w)
    assert code == 0 and "mid.wav: kept" in out

    code, out, err = run(capsys, "dataset", "remove", "d", "low.wav", *w)
    assert code == 0 and "removed 1 clip" in out
    code, _, err = run(capsys, "dataset", "remove", "d", "low.wav", *w)
    assert code == 1 and "no clip named 'low.wav'" in err and "Traceback" not in err

    code, _, err = run(capsys, "dataset", "delete", "d", *w)  # stdin is not a terminal under pytest
    assert code == 1 and "--yes" in err
    assert run(capsys, "dataset", "delete", "d", "--yes", *w)[0] == 0
    assert json.loads(run(capsys, "dataset", "list", "--json", *w)[1]) == []


def test_create_with_only_bad_files_fails_and_creates_nothing(ws, tmp_path, capsys):
    (tmp_path / "a.wav").write_text("text")
    sf.write(str(tmp_path / "b.wav"), np.zeros(1000), 22050)
    code, out, err = run(capsys, "dataset", "create", "bad", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"),
                         "--workspace", str(ws.root))
    assert code == 1
    assert "a.wav: rejected: not audio" in out and "b.wav: rejected: silent" in out
    assert err.startswith("error: dataset 'bad' not created") and "Traceback" not in err
    assert not ws.dataset_dir("bad").exists()


def test_add_with_only_bad_files_exits_nonzero(ws, tmp_path, capsys):
    w = ("--workspace", str(ws.root))
    assert run(capsys, "dataset", "create", "d", str(sources(tmp_path / "in")), *w)[0] == 0
    code, out, err = run(capsys, "dataset", "add", "d", str(tmp_path / "in" / "notes.wav"), *w)
    assert code == 1 and "notes.wav: rejected" in out and "nothing added" in err


def test_unknown_dataset_is_a_one_line_error(ws, capsys):
    code, out, err = run(capsys, "dataset", "show", "nope", "--workspace", str(ws.root))
    assert code == 1 and out == ""
    assert err.strip() == "error: no dataset named 'nope' (have: none yet)"


def test_create_json_report(ws, tmp_path, capsys):
    (tmp_path / "in" / "readme.txt").parent.mkdir(parents=True)
    (tmp_path / "in" / "readme.txt").write_text("not a sound, by its name")
    code, out, _ = run(capsys, "dataset", "create", "d", str(sources(tmp_path / "in")), "--json",
                       "--workspace", str(ws.root))
    report = json.loads(out)
    assert code == 0 and report["kept"] == 2 and report["rejected"] == 1 and report["skipped"] == 1
    assert {f["status"] for f in report["files"]} == {"ok", "rejected", "skipped"}
    assert {f["file"]: f["result"] for f in report["files"]} == {
        "high.flac": "kept", "low.wav": "kept", "notes.wav": "rejected", "readme.txt": "skipped"}
    assert report["dataset"]["name"] == "d"


def test_add_of_only_skipped_files_exits_nonzero_and_says_why(ws, tmp_path, capsys):
    w = ("--workspace", str(ws.root))
    assert run(capsys, "dataset", "create", "d", str(sources(tmp_path / "in")), *w)[0] == 0
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "readme.txt").write_text("hello")
    code, out, err = run(capsys, "dataset", "add", "d", str(tmp_path / "more"), *w)
    assert code == 1 and "readme.txt: skipped: not an audio file by its name (.txt)" in out
    assert "0 kept, 0 rejected, 1 skipped" in out and "nothing added" in err
