"""Job processes made ahead of their jobs: forked, set up and greeted, each waiting for one START.

Forking a job process, setting up its capture and link and reading its HELLO
took about 8 ms of the 12 ms a trivial process job cost from start to result;
with a spare waiting, a job's start is one START frame. Each spare is still a
fresh process that serves one job and ends with it (isolation is unchanged);
a spare taken is replaced in the background. A spare is forked with the
kernel's working directory and environment of the moment: when either has
changed since, the spares are ended and the job forks a process of its own.

Spares belong to the kernel as its jobs' processes do: they read the end of
their socket when it closes (the kernel ended, even by ``kill -9``) and exit;
:func:`close` ends them at the kernel's exit. While waiting, a spare is named
``jobmagics-spare`` (``/proc/PID/comm``, what ``ps -o comm`` and ``top`` show).
"""
from __future__ import annotations

import atexit
import os
import threading

from . import forkserver

#: Spares kept waiting: one serves a lone job at once; a second covers the next start while the
#: first is being replaced. More measured no better for bursts (see docs/performance.md).
SPARES = 2
#: The name of a waiting spare (at most 15 characters: the kernel cuts a comm there).
SPARE_NAME = "jobmagics-spare"


def enabled():
    """Spares need the fork server; ``JOBMAGICS_SPARES=0`` turns them off (each job forks its own)."""
    return forkserver.available() and os.environ.get("JOBMAGICS_SPARES") != "0"


class Spares:
    """Connected agents ``make()`` gives, kept ``size`` ready; :meth:`take` one for a job."""

    def __init__(self, make, size=SPARES):
        self._make = make  # (cwd, env) -> (LocalTransport, AgentLink) connected: HELLO read
        self.size = size
        self._ready = []  # [(transport, link)], oldest first
        self._lock = threading.Lock()
        self._filling = False
        self._closed = False

    def take(self, cwd, env):
        """A spare forked with this ``cwd`` and ``env``, or None (the caller forks its own)."""
        stale = []
        with self._lock:
            found = None
            while self._ready and found is None:
                transport, link = self._ready.pop(0)
                if transport.cwd != cwd or transport.env != env or transport.process.poll() is not None \
                        or transport.process.orphaned:
                    stale.append(transport)
                else:
                    found = (transport, link)
                    transport.process.spare = False  # it has a job: it lives on if its server ends
            if stale:
                stale.extend(t for t, _l in self._ready)  # forked from the same old state
                self._ready = []
        for transport in stale:
            _discard(transport)
        return found

    def fill(self, cwd, env):
        """Make spares up to ``size`` in the background (called once a job has ended: made while a
        job runs, they would take the cores it runs on)."""
        with self._lock:
            if self._filling or self._closed or len(self._ready) >= self.size:
                return
            self._filling = True
        threading.Thread(target=self._fill_up, args=(cwd, env), daemon=True, name="jobmagics-spares").start()

    def _fill_up(self, cwd, env):
        try:
            while True:
                with self._lock:
                    if self._closed or len(self._ready) >= self.size:
                        return
                try:
                    made = self._make(cwd, env)
                except Exception:  # noqa: BLE001  (no fork server now: jobs fork their own, and say why)
                    return
                with self._lock:
                    if not self._closed:
                        self._ready.append(made)
                        continue
                _discard(made[0])
                return
        finally:
            with self._lock:
                self._filling = False

    def pids(self):
        with self._lock:
            return [transport.pid for transport, _link in self._ready]

    def close(self):
        """End every spare (the kernel is ending): they read the end of their input and exit."""
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, []
        for transport, _link in ready:
            _discard(transport)

    def forget(self):
        """In a fork of the kernel: the spares are the parent's; close only this process's copies."""
        ready, self._ready = self._ready, []
        self._lock, self._closed = threading.Lock(), True
        for transport, _link in ready:
            transport.forget()


def _discard(transport):
    transport.close()
    threading.Thread(target=transport.reap, daemon=True, name="jobmagics-spare-end").start()


_spares = None
_spares_lock = threading.Lock()


def _pool(make):
    global _spares
    with _spares_lock:
        if _spares is None:
            _spares = Spares(make)
        return _spares


def take(make, cwd, env):
    """A waiting spare for a job in ``cwd`` with ``env`` (None: there is none to take yet)."""
    return _pool(make).take(cwd, env)


def fill(make, cwd, env):
    """Replace the spares taken, with ``make(cwd, env)``, in the background."""
    _pool(make).fill(cwd, env)


def pids():
    """The process ids of the spares waiting now."""
    return _spares.pids() if _spares is not None else []


@atexit.register
def close():
    global _spares
    with _spares_lock:
        spares, _spares = _spares, None
    if spares is not None:
        spares.close()


def _forget_in_child():
    global _spares, _spares_lock
    if _spares is not None:
        _spares.forget()
    _spares, _spares_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
