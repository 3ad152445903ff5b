"""Waiting for processes to end, for tests that check nothing is left behind."""
from __future__ import annotations

import time

import psutil


def _existing(pids):
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass  # already gone
    return procs


def assert_processes_end(pids, timeout=30):
    """Wait (on their exit, up to ``timeout``) until none of ``pids`` runs; fail naming the rest."""
    _gone, alive = psutil.wait_procs(_existing(pids), timeout=timeout)
    running = []
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                running.append((proc.pid, proc.cmdline()))
        except psutil.NoSuchProcess:
            pass
    assert not running, "still running: %s" % running


def _ended(proc):
    """True when ``proc`` (a psutil.Process) has exited; a zombie counts (pid 1 may not reap)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _as_processes(procs):
    result = []
    for proc in procs:
        if isinstance(proc, int):
            try:
                proc = psutil.Process(proc)
            except psutil.NoSuchProcess:
                continue  # already gone
        result.append(proc)
    return result


def wait_ended(procs, timeout):
    """Wait (up to ``timeout``) until every one of ``procs`` (pids or psutil.Process) has exited;
    returns the ones still running. Zombies count as ended: pid 1 of a container may not reap."""
    deadline = time.monotonic() + timeout
    alive = [p for p in _as_processes(procs) if not _ended(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not _ended(p)]
    return alive
