"""`scripts/setup.sh` installs only when the project's dependencies changed: a second start
skips pip entirely (it cost ~15 s a start). Run against a copy with a stand-in pip."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_copy(tmp_path: Path) -> tuple[Path, Path]:
    """(project root, pip call log): setup.sh and pyproject.toml, and a .venv whose pip only
    writes down how it was called."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "pip-calls.log"
    for name, body in (("python", "exit 0"), ("pip", f'echo "$*" >> "{log}"')):
        (bin_dir / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return root, log


def setup(root: Path) -> None:
    subprocess.run(["bash", "scripts/setup.sh"], cwd=root, check=True, capture_output=True, timeout=60)


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_the_second_start_skips_installing_and_a_changed_project_installs_again(tmp_path):
    root, log = project_copy(tmp_path)
    setup(root)
    first = calls(log)
    assert any("torch==2.14.1" in c for c in first) and any("-e ." in c for c in first)
    assert all("-qq" in c for c in first)  # pip's notes about local folders stay quiet
    setup(root)
    assert calls(log) == first  # nothing changed: no pip at all
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n# a new pin\n")
    setup(root)
    assert len(calls(log)) == 2 * len(first)


def test_a_failed_install_is_tried_again_next_start(tmp_path):
    root, log = project_copy(tmp_path)
    pip = root / ".venv" / "bin" / "pip"
    pip.write_text(f'#!/usr/bin/env bash\necho "$*" >> "{log}"\nexit 1\n')
    result = subprocess.run(["bash", "scripts/setup.sh"], cwd=root, capture_output=True, timeout=60)
    assert result.returncode != 0
    assert not list((root / ".venv").glob(".installed-*"))  # no stamp: the next start installs
