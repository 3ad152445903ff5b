"""A real Dask cluster on loopback: ``dask scheduler`` and two ``dask worker`` processes (one thread each).

Started once per test module and ended with it (it does not idle through the rest of the suite); the tests skip (with the
reason) where ``distributed`` is not installed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from jobmagics import api
from jobmagics.sessions import remote

distributed = pytest.importorskip("distributed", reason="cluster sessions need distributed: pip install 'jobmagics[dask]'")

DASK = os.path.join(os.path.dirname(sys.executable), "dask")


class DaskCluster:
    """A scheduler and its workers, as processes of this test session."""

    def __init__(self, workers=2, worker_env=None, nanny_workers=0):
        self.worker_env = worker_env
        self.dir = tempfile.mkdtemp(prefix="jobmagics-dask-")
        self.scheduler_file = os.path.join(self.dir, "scheduler.json")
        self.processes = []
        self.logs = []
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--scheduler-file", self.scheduler_file)
        self.workers = [self.start_worker() for _ in range(workers)]
        self.nannies = [self.start_worker(nanny=True) for _ in range(nanny_workers)]
        with distributed.Client(scheduler_file=self.scheduler_file, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers + nanny_workers, timeout=60)
            self.address = client.scheduler.address
            self.worker_addresses = sorted(client.scheduler_info()["workers"])

    def _start(self, *args, env=None):
        log = open(os.path.join(self.dir, "%s-%d.log" % (args[0], len(self.processes))), "wb")
        self.logs.append(log)
        process = subprocess.Popen([DASK, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env)
        self.processes.append(process)
        return process

    def start_worker(self, nanny=False):
        """A worker of one thread (``nanny``: under a nanny, which starts it again when it dies)."""
        return self._start("worker", "--scheduler-file", self.scheduler_file, "--nthreads", "1",
                           "--nanny" if nanny else "--no-nanny", "--host", "127.0.0.1", "--no-dashboard",
                           env=self.worker_env)

    def close(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()


@pytest.fixture(scope="module")
def dask_cluster():
    cluster = DaskCluster()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def nanny_cluster():
    """A cluster of its own: one worker without a nanny, one under a nanny (restarted by the test)."""
    cluster = DaskCluster(workers=1, nanny_workers=1)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def one_worker_cluster():
    """A cluster of its own (one worker, killed by the test that uses it)."""
    cluster = DaskCluster(workers=1)
    try:
        yield cluster
    finally:
        cluster.close()


# A worker's sitecustomize: this Python cannot import jobmagics (installed or not, as on a cluster without it).
REFUSE_JOBMAGICS = """
import sys


class _RefuseJobmagics:
    def find_spec(self, name, path=None, target=None):
        if name == "jobmagics" or name.startswith("jobmagics."):
            raise ModuleNotFoundError("No module named %r (refused by the test's sitecustomize)" % name, name=name)
        return None


sys.meta_path.insert(0, _RefuseJobmagics())
"""


@pytest.fixture
def bare_worker_cluster(tmp_path):
    """A cluster of its own whose one worker cannot import jobmagics."""
    import importlib.util

    assert importlib.util.find_spec("sitecustomize") is None, "the venv has a sitecustomize this would shadow"
    (tmp_path / "sitecustomize.py").write_text(REFUSE_JOBMAGICS)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    cluster = DaskCluster(workers=1, worker_env=env)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def cluster_session(dask_cluster):
    api.registry()
    session = remote.new_session(cluster=dask_cluster.address, name="C%d" % os.getpid())
    try:
        yield session
    finally:
        remote.remove_session(session)


@pytest.fixture(scope="session", autouse=True)
def resource_tracker():
    """multiprocessing's resource tracker lives as long as this process once a LocalCluster started it:
    started before the tests, it is no process a test left behind."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
