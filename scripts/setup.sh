#!/usr/bin/env bash
# Create .venv (once) and install Distill into it. Usage: scripts/setup.sh [--test]
# torch is pinned to the CUDA build that runs on the CPU here (and on a GPU when there is one);
# torchaudio 2.11 loads beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
PIP=(.venv/bin/pip install --quiet --disable-pip-version-check)
"${PIP[@]}" "torch==2.14.1" "torchaudio==2.11.0"
if [ "${1:-}" = "--test" ]; then
  "${PIP[@]}" -e ".[test]"
  if ! command -v chromium >/dev/null 2>&1; then
    # The browser tests drive Debian's Chromium (Playwright cannot download its own here).
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
else
  "${PIP[@]}" -e .
fi
