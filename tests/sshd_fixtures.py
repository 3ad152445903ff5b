"""Fixtures for the SSH tests: a real sshd on 127.0.0.1 and 127.0.0.2, and a throwaway client HOME.

``sshd_server`` (session): an ``sshd.SSHServer``, started once; every test using it is skipped
when there is no sshd/ssh-keygen or we are not root. ``ssh_home`` (per test): an
``sshd.SSHHome`` whose directory is ``$HOME`` for the test. When a test using the server
fails, the sshd log lines it produced are added to the report (section "sshd log").
"""
from __future__ import annotations

import pytest

import sshd

_LOG_MARK = pytest.StashKey()


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory):
    reason = sshd.missing_requirements()
    if reason:
        pytest.skip(reason)
    server = sshd.SSHServer(tmp_path_factory.mktemp("sshd"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def ssh_home(sshd_server, tmp_path, monkeypatch):
    home = sshd.SSHHome(sshd_server, tmp_path / "home")
    monkeypatch.setenv("HOME", home.home)
    return home


@pytest.fixture(autouse=True)
def _sshd_log_mark(request):
    """Note where the sshd log stood when a test using the server began."""
    if "sshd_server" in request.fixturenames:
        server = request.getfixturevalue("sshd_server")
        request.node.stash[_LOG_MARK] = (server, server.log_size())
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    mark = item.stash.get(_LOG_MARK, None)
    if report.failed and mark is not None:
        server, offset = mark
        report.sections.append(("sshd log (%s)" % report.when, server.log_since(offset) or "(empty)"))
    return report
