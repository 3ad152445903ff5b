"""Every notebook in notebooks/ runs headless from top to bottom, as a user would run it.

Each one is executed by ``scripts/run_notebook.py`` (nbclient, a real kernel of this Python): a
cell that ends in an error fails the run unless it is tagged ``raises-exception``, and so does a
process left running after the kernel has shut down. The remote-sessions notebook runs twice: on
the computers of ``JOBMAGICS_DEMO_HOSTS`` (the test sshd's two addresses, by their
``~/.ssh/config`` names), and without that variable, on the local sessions it falls back to. The
cluster notebook's ``LocalCluster`` belongs to its session: its worker processes end when the
session is removed (the notebook shows it), and the leftover check would catch any that outlived
the kernel.
"""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

import sshd

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(400)]

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNNER = ROOT / "scripts" / "run_notebook.py"
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb") if not p.name.endswith(".out.ipynb"))
HOSTS_VARIABLE = "JOBMAGICS_DEMO_HOSTS"


def run_notebook(name, env):
    proc = subprocess.run([sys.executable, str(RUNNER), str(ROOT / "notebooks" / name), "--timeout", "180"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=380)
    report = "exit status %d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 0, report
    assert "OK: " in proc.stdout, report
    return proc.stdout


def without_demo_hosts():
    return {key: value for key, value in os.environ.items() if key != HOSTS_VARIABLE}


def test_the_notebooks_are_the_ones_the_docs_list():
    assert {"tour.ipynb", "teaching.ipynb", "data-science.ipynb", "remote-sessions.ipynb", "cluster.ipynb"} \
        <= set(NOTEBOOKS)
    in_the_toctree = re.findall(r"^/notebooks/([\w-]+)$", (ROOT / "docs" / "notebooks.md").read_text(), re.M)
    assert sorted(name + ".ipynb" for name in in_the_toctree) == NOTEBOOKS
    linked_from_the_index = re.findall(r"\(\.\./notebooks/([\w-]+\.ipynb)\)", (ROOT / "docs" / "index.md").read_text())
    assert sorted(linked_from_the_index) == NOTEBOOKS
    named_in_the_readme = re.findall(r"notebooks/([\w-]+\.ipynb)", (ROOT / "README.md").read_text())
    assert set(named_in_the_readme) == set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name):
    output = run_notebook(name, without_demo_hosts())
    if name == "remote-sessions.ipynb":
        assert "JOBMAGICS_DEMO_HOSTS is not set: using two local sessions" in output
    if name == "cluster.ipynb":
        workers = int(re.search(r"^ *(\d+) workers: ", output, re.M).group(1))
        spread = int(re.search(r"children ran on (\d+) workers", output).group(1))
        assert spread >= min(workers, 2), output  # the children spread over the workers
        assert "worker processes still running: []" in output, output


def test_remote_notebook_on_ssh_computers(sshd_server, tmp_path):
    home = sshd.SSHHome(sshd_server, tmp_path / "home")
    output = run_notebook("remote-sessions.ipynb", home.env(**{HOSTS_VARIABLE: ",".join(home.aliases)}))
    assert "Computers from JOBMAGICS_DEMO_HOSTS: one, two" in output
    assert "[in demo-1 on one]" in output, output
