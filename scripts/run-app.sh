#!/usr/bin/env bash
# Set up (first time only) and start the Distill web app. Extra arguments go to distill-ui,
# e.g. scripts/run-app.sh --workspace ~/my-sounds --no-browser
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/distill-ui "$@"
