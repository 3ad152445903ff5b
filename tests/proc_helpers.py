"""Waiting for processes to end, for tests that check nothing is left behind."""
from __future__ import annotations

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
