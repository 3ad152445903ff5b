"""The hosts every job-contract test runs against: one test body, many backends."""
from __future__ import annotations

import pytest

import jobmagics

HOSTS = ["thread", "process"]


class Host:
    """Starts jobs on one kind of host, with a namespace standing in for the notebook's."""

    def __init__(self, kind):
        self.kind = kind
        self.namespace = {}

    @property
    def thread(self):
        return self.kind == "thread"

    def start(self, work, *args, **kwargs):
        if isinstance(work, str):
            kwargs.setdefault("namespace", self.namespace)
        return jobmagics.start_job(work, *args, thread=self.thread, **kwargs)

    def run(self, work, *args, timeout=60, **kwargs):
        """Start a job and wait for it to finish (failing the test if it does not)."""
        job = self.start(work, *args, **kwargs)
        assert job.wait(timeout), "job did not finish: %r" % job
        return job


@pytest.fixture(params=HOSTS)
def host(request):
    return Host(request.param)
