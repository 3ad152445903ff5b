"""The processes a thread job starts are the job's: each leads a process group its stop ends.

A thread job shares its process (a kernel, a session's agent, a Dask worker) with others, so that
process's own group cannot stand for the job. Instead every child the job's thread starts --
through ``subprocess`` (and what is built on it: ``os.popen``, asyncio, ``!cmd``) or ``os.fork``
(multiprocessing's default on Linux) -- leads a process group of its own, noted on the job's
context (:class:`JobChildren`). Stopping the job ends those groups (SIGTERM, SIGKILL after a
grace: ``group.terminate_groups``, ``group.kill_what_is_left``), with whatever the children started
in turn; children still running when the process ends are ended then (``group.end_adopted``), or
by its watcher when it is killed outright (:mod:`.watcher`; a fork's child holds no copy of the
watcher's pipe, or the watcher would wait for the very processes it must end).
A ``Popen`` whose caller chose ``start_new_session`` or ``process_group`` itself is left alone (a
daemon, or jobmagics' own fork server started from a job). ``os.system`` and the spawn/forkserver
start methods of multiprocessing start processes this does not see.
"""
from __future__ import annotations

import atexit
import functools
import os
import subprocess
import threading

from . import context, group

#: Positional arguments of Popen before ``start_new_session`` (a call passing that many chose it).
_POPEN_ARGS_BEFORE_SESSION = 15

_install_lock = threading.Lock()
_at_exit = []


class JobChildren:
    """The process groups one job's children lead, in the process that started them."""

    def __init__(self):
        self.pid = os.getpid()  # a forked copy of this process does not own them
        self._groups = []
        self._lock = threading.Lock()

    def add(self, pgid):
        with self._lock:
            self._groups.append(pgid)
        group.adopt(pgid)
        with _install_lock:
            if not _at_exit:  # a kernel or worker that exits normally ends them (an agent does it itself)
                _at_exit.append(atexit.register(group.end_adopted, 1.0))

    def end_in_background(self, grace=group.KILL_GRACE):
        """Start ending the job's groups; False when it started none."""
        with self._lock:
            groups, self._groups = self._groups, []
        if not groups:
            return False
        group.terminate_groups(groups)  # at once: what a blocked job waits for ends now
        threading.Thread(target=group.kill_what_is_left, args=(groups, grace), daemon=True,
                         name="jobmagics-stop-children").start()
        return True


def _owner():
    """The calling thread's job's children, when this process owns what that job starts; else None."""
    children = getattr(context.current(), "children", None)
    if children is None or children.pid != os.getpid():
        return None
    return children


def _leads_own_group(pid):
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _wrap_popen_init(original):
    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        # A caller that chose a session or group of its own (jobmagics' fork server, a daemon) keeps it.
        children = _owner()
        if children is not None and (len(args) > _POPEN_ARGS_BEFORE_SESSION or "start_new_session" in kwargs
                                     or kwargs.get("process_group") is not None):
            children = None
        if children is not None:
            kwargs["start_new_session"] = True  # set up before exec: the group exists once Popen returns
        original(self, *args, **kwargs)
        if children is not None and _leads_own_group(self.pid):
            children.add(self.pid)

    __init__._jobmagics_children = True
    return __init__


def _wrap_fork(original):
    @functools.wraps(original)
    def fork():
        children = _owner()
        pid = original()
        if children is not None:
            try:  # both sides: whichever runs first, the group exists before anyone signals it
                os.setpgid(0 if pid == 0 else pid, 0)
            except OSError:
                pass
            if pid != 0 and _leads_own_group(pid):
                children.add(pid)
        return pid

    fork._jobmagics_children = True
    return fork


def install():
    """Make children started by job threads lead their own groups (once per process, for every copy)."""
    with _install_lock:
        if not getattr(subprocess.Popen.__init__, "_jobmagics_children", False):
            subprocess.Popen.__init__ = _wrap_popen_init(subprocess.Popen.__init__)
        if hasattr(os, "fork") and not getattr(os.fork, "_jobmagics_children", False):
            os.fork = _wrap_fork(os.fork)
