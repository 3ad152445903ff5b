#!/usr/bin/env bash
# The jobmagics demo, in one command on a fresh machine:
#   bash scripts/demo.sh
# sets up .venv (scripts/setup.sh), then runs notebooks/local_jobs.ipynb headless,
# printing each cell's output. It fails if any cell fails, including the final checks.
# The executed notebook is left in notebooks/local_jobs.out.ipynb.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== Setting up .venv (scripts/setup.sh)"
bash scripts/setup.sh
echo "== Running notebooks/local_jobs.ipynb"
.venv/bin/python scripts/run_notebook.py notebooks/local_jobs.ipynb "$@"
