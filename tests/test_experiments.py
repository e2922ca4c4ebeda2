"""Which experiment a user means: an id, a name, or an id prefix (`resolve_experiment`), the
same for the CLI, export and the UI; and the status word for a run the user stopped."""

from __future__ import annotations

import json

import pytest

from distill import DistillError
from distill.checkpoints import write_experiment
from distill.cli import main
from distill.export import find_experiment
from distill.experiments import experiments_table, get_experiment, list_experiments, resolve_experiment
from distill.workspace import Workspace


def add(ws: Workspace, experiment_id: str, name: str, status: str, created: str) -> None:
    folder = ws.experiment_dir(experiment_id)
    folder.mkdir(parents=True)
    write_experiment(folder, {"id": experiment_id, "name": name, "dataset": "d", "config": {"dataset": "d", "epochs": 3},
                              "status": status, "created": created, "epoch": 1})


@pytest.fixture
def several(ws: Workspace) -> Workspace:
    add(ws, "cut-20261201-100000", "cut", "stopped", "2026-12-01T10:00:00")
    add(ws, "cut-20261202-100000", "cut", "failed", "2026-12-02T10:00:00")
    add(ws, "cut-20261203-100000", "cut", "completed", "2026-12-03T10:00:00")
    add(ws, "pad-20261201-100000", "pad", "completed", "2026-12-01T11:00:00")
    add(ws, "pad-20261202-100000", "pad", "completed", "2026-12-02T11:00:00")
    add(ws, "kick-20261201-100000", "kick", "cancelled", "2026-12-01T12:00:00")
    return ws


def test_an_id_resolves_to_itself(several: Workspace) -> None:
    match = resolve_experiment(several, "cut-20261201-100000")
    assert match.id == "cut-20261201-100000" and match.note is None


def test_a_unique_name_resolves(several: Workspace) -> None:
    match = resolve_experiment(several, "kick")
    assert match.id == "kick-20261201-100000" and match.note is None
    assert find_experiment(several, "kick") == several.experiment_dir("kick-20261201-100000")


def test_a_repeated_name_picks_the_newest_resumable_one_and_says_so(several: Workspace) -> None:
    match = resolve_experiment(several, "cut")
    # the completed one is newer, but a person naming "cut" means the run they can continue
    assert match.id == "cut-20261202-100000"
    assert match.note and "cut-20261202-100000" in match.note and "3 experiments" in match.note


def test_a_repeated_name_with_nothing_resumable_is_ambiguous_and_lists_them(several: Workspace) -> None:
    with pytest.raises(DistillError, match="named 'pad'") as caught:
        resolve_experiment(several, "pad")
    assert "pad-20261201-100000" in str(caught.value) and "pad-20261202-100000" in str(caught.value)


def test_a_unique_id_prefix_resolves(several: Workspace) -> None:
    assert resolve_experiment(several, "pad-20261202").id == "pad-20261202-100000"
    assert get_experiment(several, "kick-2026")["id"] == "kick-20261201-100000"


def test_an_ambiguous_prefix_lists_the_candidates(several: Workspace) -> None:
    with pytest.raises(DistillError, match="starts 2 experiment ids") as caught:
        resolve_experiment(several, "pad-2026")
    assert "pad-20261201-100000 (completed)" in str(caught.value)


def test_an_unknown_reference_names_what_there_is(several: Workspace) -> None:
    with pytest.raises(DistillError, match="no experiment 'snare' \\(have: "):
        resolve_experiment(several, "snare")


def test_an_old_cancelled_record_reads_stopped_everywhere(several: Workspace) -> None:
    assert get_experiment(several, "kick")["status"] == "stopped"
    assert {r["id"]: r["status"] for r in list_experiments(several)}["kick-20261201-100000"] == "stopped"
    assert "cancelled" not in set(experiments_table(several)["status"])


def test_the_cli_says_which_experiment_a_repeated_name_chose(several: Workspace,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # These records have no checkpoints: export fails, but only after choosing, and on the
    # experiment it chose.
    code = main(["--workspace", str(several.root), "export", "cut"])
    captured = capsys.readouterr()
    assert "using cut-20261202-100000, the newest failed one" in captured.out
    assert code == 1 and "cut-20261202-100000" in captured.err, captured.err


def test_the_cli_listing_shows_stopped(several: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workspace", str(several.root), "experiments", "--json"]) == 0
    statuses = {r["id"]: r["status"] for r in json.loads(capsys.readouterr().out)}
    assert statuses["kick-20261201-100000"] == "stopped"


def test_the_ui_view_resolves_a_name_and_says_stopped(several: Workspace) -> None:
    from ui.training_view import training_view

    view = training_view(several, "kick")
    assert view.experiment_id == "kick-20261201-100000" and view.status == "stopped"
    assert "**stopped**" in view.status_line and "Resume" in view.status_line
