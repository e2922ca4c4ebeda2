#!/usr/bin/env bash
# Set up (first time only) and run every test: unit, integration and browser. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
