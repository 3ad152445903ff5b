#!/usr/bin/env bash
# Set everything up, then run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test,demo,browser bash scripts/setup.sh
bash scripts/install_browser.sh  # Chromium for the browser tests (needs root when it is missing)
exec .venv/bin/python -m pytest "$@"
