#!/usr/bin/env bash
# Set everything up, then run the benchmark (extra arguments go to bench/run.py, e.g. --quick, --json FILE).
# The SSH rows use a throwaway sshd on loopback: OpenSSH's server is installed when missing (needs root then).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${EXTRAS:-test,demo},bench" bash scripts/setup.sh  # bench: Dask, for the peer rows
bash scripts/install_ssh.sh || echo "bench.sh: no OpenSSH server; the SSH rows are skipped" >&2
exec .venv/bin/python bench/run.py "$@"
