#!/usr/bin/env bash
# Set everything up, then run the whole test suite (extra arguments go to pytest).
# Installs what the tests need from the system's packages when it is missing (needs root then):
# an OpenSSH server for the SSH tests and Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test,demo,browser,docs bash scripts/setup.sh
bash scripts/install_ssh.sh
if [ -f scripts/install_browser.sh ]; then
    bash scripts/install_browser.sh
fi
exec .venv/bin/python -m pytest "$@"
