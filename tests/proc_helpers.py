"""Waiting for processes to end, for tests that check nothing is left behind."""
from __future__ import annotations

import os
import sys
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


def tagged_children(parents, tag):
    """The children (psutil.Process) of ``parents`` whose last argument is ``tag``: how jobmagics
    names the helpers it keeps as long as their parent lives (``ps`` shows it)."""
    found = []
    for pid in parents:
        try:
            children = psutil.Process(pid).children()
        except psutil.NoSuchProcess:
            continue
        for child in children:
            try:
                if child.cmdline()[-1:] == [tag]:
                    found.append(child)
            except psutil.Error:
                continue
    return found


def watchers(parents):
    """Pids of the watchers (``jobmagics/core/watcher.py``) that ``parents`` started: each lives as
    long as its parent, to end the parent's thread jobs' children if the parent is killed."""
    from jobmagics.core.watcher import PROCESS_TAG

    return [watcher.pid for watcher in tagged_children(parents, PROCESS_TAG)]


def stack_dumps(procs):
    """A Python stack dump (py-spy) of each of ``procs`` still running: where it hangs, for a failure."""
    import shutil
    import subprocess

    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    dumps = []
    for proc in _as_processes(procs):
        try:
            head = "pid %d %s" % (proc.pid, proc.cmdline()[-1:])
        except psutil.Error:
            continue
        if not os.path.exists(spy):
            dumps.append(head + ": (install py-spy for its stack)")
            continue
        result = subprocess.run([spy, "dump", "--pid", str(proc.pid)], capture_output=True, text=True, timeout=60)
        dumps.append("%s:\n%s%s" % (head, result.stdout, result.stderr))
    return "\n".join(dumps)


def assert_all_end(procs, timeout=30):
    """Every one of ``procs`` (pids or psutil.Process) ends within ``timeout``; else fail with their stacks."""
    alive = wait_ended(procs, timeout)
    assert not alive, "still running:\n" + stack_dumps(alive)


#: Job code whose child and grandchild ignore SIGTERM (ignoring is inherited): only SIGKILL ends
#: them. It emits [the job's process, child, grandchild] and waits.
STUBBORN_TREE = """import os, subprocess, sys
from jobmagics import emit
stubborn = ("import signal, subprocess\\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
            "grandchild = subprocess.Popen(['sleep', '600'])\\n"
            "print(grandchild.pid, flush=True)\\n"
            "grandchild.wait()\\n")
child = subprocess.Popen([sys.executable, '-c', stubborn], stdout=subprocess.PIPE)
emit([os.getpid(), child.pid, int(child.stdout.readline())])
child.wait()
"""
