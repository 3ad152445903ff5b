"""Every notebook example in README.md and docs/ runs, as written, in a real kernel.

Each document's ```python blocks that hold a magic run in order, one cell per block, in a
kernel of their own (a block after "in a new kernel" starts the next kernel, as the text
says). A block that fails fails the suite: an example pasted from our docs must work.

What an example takes for granted is given before it, and listed here:

- ``PRELUDE``: the notebook's own functions and data the examples call (``collect_logs()``,
  ``data``, ...), defined in every kernel;
- the computers: the kernels' ``~/.ssh/config`` names ``web1``, ``web2``, ``web3``, ``gpu1``
  and ``newbox`` for the test sshd's two addresses; ``SUBSTITUTIONS`` puts the test sshd
  in place of the few literal addresses, users, ports, keys and interpreters of other
  machines;
- ``SETUP``: state an example starts from (the job or session it names).
"""
from __future__ import annotations

import pathlib
import re

import pytest

import sshd
from kernel_driver import Kernel

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")
                                   if "_build" not in p.parts)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
MAGIC_LINE = re.compile(r"^\s*(?:\w+\s*=\s*)?%", re.M)
NEW_KERNEL = re.compile(r"in a new kernel", re.I)

PRELUDE = '''
%load_ext jobmagics
import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

data = list(range(1, 11))
pages = ["<html>one</html>", "<html>two</html>"]
chunks = [data[:5], data[5:]]
X, y = load_iris(return_X_y=True)
df = pd.DataFrame(X[:, :2], columns=["sepal length", "sepal width"])
factor = 7
hosts = ["web1", "web2"]

class Scale(BaseEstimator, TransformerMixin):
    """A step of the notebook's own."""
    def fit(self, X, y=None):
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
        return self
    def transform(self, X):
        return (X - self.mean_) / self.scale_

def summarize(values):
    return {"n": len(values), "total": sum(values)}

def process(chunk):
    return sum(chunk)
'''
# Functions examples call where the work runs: in the notebook, and in an entered session.
WORK = '''
def collect_logs():
    import platform
    return "logs of " + platform.node()

def run_scan():
    return "scan done"

def long_computation():
    return sum(range(1000))

def long_run():
    return "ran"

def train_model():
    return "model.pt"
'''

ALIASES = {"web1": 0, "web2": 1, "web3": 0, "gpu1": 1, "newbox": 1}  # -> index of the sshd's address


def substitutions(home):
    return [
        ("10.0.0.5 --user deploy --port 2222", "%s --user %s --port %d" % (home.addresses[0], home.user, home.port)),
        ("--user deploy", "--user %s" % home.user),
        ("~/.ssh/deploy_ed25519", home.key),
        ("/opt/conda/bin/python", "/usr/bin/python3"),
        ("/opt/py/bin/python3", "/usr/bin/python3"),
    ]


FOREVER = "%%%%start_job --thread --name %s\nimport time\nwhile True:\n    time.sleep(0.02)"
#: (document, how the example starts) -> cells run just before it: the state the example starts from.
SETUP = {
    ("README.md", "s = %new_session --local --name nightly"): ["%exit_session"],
    ("docs/detached.md", "%new_session --local "): ["%remove_session train"],
    ("docs/detached.md", "%load_ext jobmagics\ns = %new_session --local --name train"): ["%remove_session *"],
    ("docs/remote.md", "%enter_session web-1"): ["%new_session --computer web1 web2 --name web"],
    ("docs/magics/connect_session.md", "%connect_session"): ["%new_session --local --name nightly\n"
                                                          "%disconnect_session nightly"],
    ("docs/magics/enter_session.md", "%enter_session"): ["%new_session --computer web1 --name web-1"],
    ("docs/magics/exit_session.md", "%exit_session"): ["%new_session --local --name here\n%enter_session here"],
    ("docs/magics/get_job.md", "%get_job\n"): ["job = %start_job --thread --name report 1\n%start_job --thread 2"],
    ("docs/magics/get_session.md", "%get_session\n"): ["%new_session --computer web1 --name web-1"],
    ("docs/magics/invoke.md", "%invoke --session web-1"): ["%new_session --computer web1 --name web-1"],
    ("docs/magics/receive_job.md", "result = %receive_job"): ["%start_job --thread --name report 'r'\n"
                                                             "%start_job --thread 2\n%wait_job"],
    ("docs/magics/receive_session.md", "%get_session --local"): ["%new_session --local --name nightly\n"
                                                                "%invoke --session nightly --as-job long_run()\n"
                                                                "%disconnect_session nightly"],
    ("docs/magics/remove_job.md", "%remove_job report"): ["%start_job --thread --name report 1\n%wait_job report",
                                                          FOREVER % "fetch"],
    ("docs/magics/remove_session.md", "%remove_session"): ["%new_session --computer web1 web2 --name web"],
    ("docs/magics/stop_job.md", "%stop_job report"): [FOREVER % "report", FOREVER % "fetch-1"],
    ("docs/magics/stop_job.md", "%stop_job 3"): ["%start_job --thread --name third 3"],
    ("docs/magics/wait_job.md", "%wait_job report fetch"): ["%start_job --thread --name report 1\n"
                                                            "%start_job --thread --name fetch 2"],
}


def setup_for(document, code):
    """The set-up cells for the example of ``document`` that starts with ``code``."""
    text = code.lstrip()
    return [cell for (doc, start), cells in SETUP.items() if doc == document and text.startswith(start)
            for cell in cells]


CLEAN_UP = '''
from jobmagics.sessions import remote as _remote
from jobmagics.transport.local_socket import find_sessions as _find
for _files, _info in _find():
    if _info.get("name") in %r and _files.id not in [s.files.id for s in _remote.sessions().sessions() if s.files]:
        _remote.connect_session(_files.id)
for _session in _remote.sessions().sessions():
    _remote.remove_session(_session)
%%remove_job * --force
'''


def examples(document):
    """The document's blocks with a magic, each with whether it starts a new kernel."""
    text = (ROOT / document).read_text(encoding="utf-8")
    found, previous_end = [], 0
    for match in FENCE.finditer(text):
        language, body = match.groups()
        prose = text[previous_end:match.start()]
        previous_end = match.end()
        if language != "python" or not MAGIC_LINE.search(body):
            continue
        head, new_kernel_here, tail = _split_at_new_kernel(body)
        if head.strip():
            found.append((head, bool(NEW_KERNEL.search(prose))))
            if new_kernel_here:
                found.append((tail, True))
        else:
            found.append((tail if new_kernel_here else body, new_kernel_here or bool(NEW_KERNEL.search(prose))))
    return found


def _split_at_new_kernel(body):
    lines = body.split("\n")
    for index, line in enumerate(lines):
        if line.lstrip().startswith("#") and NEW_KERNEL.search(line):
            return "\n".join(lines[:index]), True, "\n".join(lines[index + 1:])
    return body, False, ""


@pytest.fixture(scope="module")
def doc_home(sshd_server, tmp_path_factory):
    home = sshd.SSHHome(sshd_server, tmp_path_factory.mktemp("doc-home") / "home")
    home.hosts.update({alias: home.addresses[index] for alias, index in ALIASES.items()})
    home._write_config()
    return home


def documents_with_examples():
    return [d for d in DOCUMENTS if examples(d)]


class Notebook:
    """The kernels one document's examples run in, one after another."""

    def __init__(self, home, workdir, session_names=()):
        self.home = home
        self.workdir = str(workdir)  # what the examples write (model.joblib) goes there
        self.kernel = None
        self.session_names = sorted(session_names)  # the detached sessions its examples may leave

    def new_kernel(self):
        self.close(keep_sessions=True)
        self.kernel = Kernel(cwd=self.workdir, env=self.home.env()).start()
        self.run(PRELUDE + WORK, "the prelude")

    def run(self, code, what):
        result = self.kernel.run(code, timeout=120)
        assert result.ok, "%s failed:\n%s\n--- stderr:\n%s%s" % (what, code, result.stderr, result.error_text())
        return result

    def close(self, keep_sessions=False):
        """Shut the kernel down; unless ``keep_sessions``, end every job and session it reaches first."""
        if self.kernel is None:
            return
        kernel, self.kernel = self.kernel, None
        try:
            if not keep_sessions:
                kernel.run("%exit_session")  # when a session is entered; a UsageError otherwise
                result = kernel.run(CLEAN_UP % self.session_names, timeout=120)
                assert result.ok, "the clean-up failed:\n%s%s" % (result.stderr, result.error_text())
        finally:
            kernel.shutdown()


@pytest.mark.parametrize("document", documents_with_examples())
def test_every_example_runs_as_written(doc_home, document, tmp_path):
    names = re.findall(r"--name\s+(\S+)", (ROOT / document).read_text(encoding="utf-8") + repr(SETUP))
    notebook = Notebook(doc_home, tmp_path, names)
    try:
        for index, (code, new_kernel) in enumerate(examples(document)):
            if notebook.kernel is None or new_kernel:
                notebook.new_kernel()
            for cell in setup_for(document, code):
                notebook.run(cell, "the set-up of example %d" % index)
            for theirs, ours in substitutions(doc_home):
                code = code.replace(theirs, ours)
            notebook.run(code, "example %d of %s" % (index, document))
            if "%enter_session" in code:
                notebook.run(WORK, "the functions, in the entered session")
    finally:
        notebook.close()


def test_a_failing_example_fails_the_check(doc_home, tmp_path):
    notebook = Notebook(doc_home, tmp_path)
    notebook.new_kernel()
    try:
        with pytest.raises(AssertionError, match="no job with id or name 'nosuch'"):
            notebook.run("%receive_job nosuch", "an example")
    finally:
        notebook.close()
