"""The hosts every job-contract test runs against: one test body, many backends."""
from __future__ import annotations

import os

import pytest

import jobmagics
from jobmagics import api
from jobmagics.sessions import remote

HOSTS = ["thread", "process", "local-session", "ssh"]

#: The remote interpreter of the SSH host: a bare Python where neither jobmagics nor dill is importable.
BARE_PYTHON = "/usr/bin/python3 -S"


class Host:
    """Starts jobs on one kind of host, with a namespace standing in for the notebook's."""

    def __init__(self, kind, session=None):
        self.kind = kind
        self.session = session
        self.namespace = {}

    @property
    def thread(self):
        return self.kind == "thread"

    @property
    def location(self):
        return self.session.computer_name if self.session else "localhost"

    def start(self, work, *args, **kwargs):
        if isinstance(work, str):
            kwargs.setdefault("namespace", self.namespace)
        if self.session is not None:
            return api.start_on(self.session.host, work, *args, **kwargs)
        return jobmagics.start_job(work, *args, thread=self.thread, **kwargs)

    def run(self, work, *args, timeout=60, **kwargs):
        """Start a job and wait for it to finish (failing the test if it does not)."""
        job = self.start(work, *args, **kwargs)
        assert job.wait(timeout), "job did not finish: %r" % job
        return job


@pytest.fixture(params=HOSTS)
def host(request):
    if request.param in ("thread", "process"):
        yield Host(request.param)
        return
    if request.param == "ssh":
        request.getfixturevalue("ssh_home")  # HOME with the loopback sshd's config and keys
        session = remote.new_session("one", python=BARE_PYTHON)
    else:  # a detached session on this machine: sessions are tested where no sshd can start too
        session = remote.new_session(local=True, name="contract-%d" % os.getpid())
    try:
        yield Host(request.param, session)
    finally:
        remote.remove_session(session)
