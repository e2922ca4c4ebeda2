#!/usr/bin/env bash
# Create .venv (once) and install Distill into it. Usage: scripts/setup.sh [--test]
# torch is pinned to the CUDA build that runs on the CPU here (and on a GPU when there is one);
# torchaudio 2.11 loads beside it.
#
# Installing costs ~15 s even when nothing changed, so it runs only when the project's
# dependencies did: a stamp in .venv holds the hash of pyproject.toml and this script (the
# package itself is installed editable, so code changes need no reinstall).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-app}"; [ "$MODE" = "--test" ] && MODE="test"
STAMP=".venv/.installed-$MODE"
KEY="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$KEY" ]; then
  echo "installing Distill's dependencies into .venv (first start, or they changed) ..."
  # -qq: pip's notes about this machine's local package folders are noise; errors still print.
  PIP=(.venv/bin/pip install -qq --disable-pip-version-check)
  "${PIP[@]}" "torch==2.14.1" "torchaudio==2.11.0"
  if [ "$MODE" = "test" ]; then
    "${PIP[@]}" -e ".[test]"
  else
    "${PIP[@]}" -e .
  fi
  echo "$KEY" > "$STAMP"
fi
if [ "$MODE" = "test" ] && ! command -v chromium >/dev/null 2>&1; then
  # The browser tests drive Debian's Chromium (Playwright cannot download its own here).
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
