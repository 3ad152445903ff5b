"""The demo notebook runs headless, end to end, and its final checks pass."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(REPO_ROOT, "scripts", "run_notebook.py")
NOTEBOOK = os.path.join(REPO_ROOT, "notebooks", "local_jobs.ipynb")
SUCCESS_MARKER = "DEMO OK: all local job checks passed"


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_local_jobs_notebook_runs_clean():
    proc = subprocess.run([sys.executable, RUNNER, NOTEBOOK, "--timeout", "120"], cwd=REPO_ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=280)
    report = "exit status %d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 0, report
    assert SUCCESS_MARKER in proc.stdout, report
    assert "FAILED" not in proc.stdout + proc.stderr, report
