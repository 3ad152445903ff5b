"""Shared fixtures: leak checks after every test, and the hosts the job contract runs on."""
from __future__ import annotations

import contextlib
import os
import sys
import threading

import psutil
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from proc_helpers import assert_processes_end, tagged_children, wait_ended, watchers  # noqa: E402  (needs the path above)

pytest_plugins = ["sshd_fixtures"]  # sshd_server and ssh_home, for the SSH tests and the contract tests


def _children():
    return [p.pid for p in psutil.Process().children(recursive=True)]


def fork_servers(parents):
    """Pids of the fork servers (``jobmagics/transport/forkserver.py``) that ``parents`` started,
    and of the spares they forked that wait for a job (``jobmagics/transport/spares.py``)."""
    from jobmagics.transport.forkserver import PROCESS_TAG
    from jobmagics.transport.spares import SPARE_NAME

    found = []
    for server in tagged_children(parents, PROCESS_TAG):
        found.append(server.pid)
        try:
            found += [p.pid for p in server.children() if p.name() == SPARE_NAME]
        except psutil.Error:
            continue
    return found


@pytest.fixture(autouse=True)
def no_leaked_processes(request):
    """After each test, every process the test started must be gone (kernels of module fixtures aside)."""
    before = set(_children())
    yield
    allowed = set(before)
    for name in request.fixturenames:
        if name.endswith("kernel"):
            try:
                value = request.getfixturevalue(name)
            except AssertionError:  # a function-scoped kernel is already shut down
                continue
            pid = getattr(value, "pid", None)
            if pid:
                allowed.add(pid)
    children = _children()  # first: a spare forked after it is not among them, one forked before is found below
    allowed.update(fork_servers(allowed | {os.getpid()}))  # they live as long as their kernel, by design
    allowed.update(watchers(allowed | {os.getpid()}))  # likewise, this process's and its kernels'
    # Processes of a finished job are reaped by the job's link thread: wait for those exits.
    assert_processes_end([pid for pid in children if pid not in allowed], timeout=15)


def _detached_sessions():
    from jobmagics.transport.local_socket import find_sessions

    return {info["pid"]: info.get("name") for _files, info in find_sessions()}


@pytest.fixture(autouse=True)
def no_leaked_sessions():
    """Detached sessions a test started are gone after it (they are not our children: checked apart)."""
    before = _detached_sessions()
    yield
    left = {pid: name for pid, name in _detached_sessions().items() if pid not in before}
    still = wait_ended(list(left), timeout=15)
    for proc in still:  # reported below, and ended now rather than left running for its idle timeout
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    wait_ended(still, timeout=15)
    assert not still, "detached sessions left running: %s" % [left[p.pid] for p in still]


#: jobmagics threads that outlive a test by design: one per process (the fork server's reader, the
#: widgets' updater), or a thread job's thread idle in its pool until its idle timeout.
LONG_LIVED_THREADS = ("jobmagics-fork-server", "jobmagics-views", "jobmagics-worker")


@pytest.fixture(autouse=True)
def no_leaked_job_threads():
    """Every thread jobmagics started in a test has ended by its end (the long-lived ones aside)."""
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        if not thread.name.startswith("jobmagics") or thread.name in LONG_LIVED_THREADS:
            continue
        thread._started.wait(15)  # one started as the test ended (a spare's replacement) may not run yet
        thread.join(15)  # a thread job's thread takes its pool's name once its job ended
        assert not thread.is_alive() or thread.name in LONG_LIVED_THREADS, \
            "jobmagics thread still running: %s" % thread.name
