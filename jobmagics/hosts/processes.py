"""Ending process trees: terminate, wait a grace period, kill; and saying how a process ended."""
from __future__ import annotations

import os
import signal

def _psutil():
    # Imported on use: job code that imports jobmagics in a bare process must not need psutil.
    import psutil

    return psutil


_SIGNAL_HINTS = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGKILL: "killed; the out-of-memory killer does this when memory runs out",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating-point exception",
    signal.SIGTERM: "terminated",
}


def describe_returncode(code, subject="the job's process") -> str:
    """A user's sentence for a process's return code (negative: the signal that ended it)."""
    if code is None:
        return "the process is still running"
    if code >= 0:
        return "%s exited with code %d" % (subject, code)
    number = -code
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = "signal %d" % number
    hint = _SIGNAL_HINTS.get(number)
    return "%s was ended by %s%s" % (subject, name, " (%s)" % hint if hint else "")


def group_members(pgid):
    """Live (non-zombie) processes in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []  # an empty group: no need to look at every process of the machine
    except PermissionError:
        pass
    psutil = _psutil()
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return members


def wait_ended(pid, poll=0.1):
    """Wait until ``pid`` is gone or a zombie (someone else's child: it cannot be waited for)."""
    psutil = _psutil()
    try:
        proc = psutil.Process(pid)
        while proc.status() != psutil.STATUS_ZOMBIE:
            try:
                proc.wait(poll)
                return
            except psutil.TimeoutExpired:
                continue
    except psutil.NoSuchProcess:
        return


def tree(pid):
    """The process ``pid`` and all its descendants, as far as they still exist."""
    psutil = _psutil()
    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def signal_group(pgid, sig=signal.SIGTERM):
    """Send ``sig`` to every member of process group ``pgid`` at once (one system call, no look-up)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def end_tree(pid, pgid=None, grace=3.0):
    """Terminate ``pid``, its descendants and its process group; kill what is left after ``grace``."""
    end_trees([(pid, pgid)], grace)


def end_trees(roots, grace=3.0):
    """:func:`end_tree` for several ``(pid, pgid)`` at once: one grace period for all of them."""
    psutil = _psutil()
    groups = [pgid for _pid, pgid in roots if pgid is not None]
    for pgid in groups:
        # The group first, atomically: if this process is killed while it is still looking up the
        # rest (a kernel told to end can be), no member was left out because it came later in a list.
        signal_group(pgid)
    procs = {}
    for pid, pgid in roots:
        procs.update({p.pid: p for p in tree(pid)})
        if pgid is not None:
            procs.update({p.pid: p for p in group_members(pgid)})
    for proc in procs.values():
        _signal(proc, signal.SIGTERM)
    _gone, alive = psutil.wait_procs(list(procs.values()), timeout=grace)
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    if alive:
        for pgid in groups:  # and whatever joined a group after it was listed
            signal_group(pgid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=grace)


def _signal(proc, sig):
    psutil = _psutil()
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
