"""Ending the process group an agent leads, and the groups its thread jobs' children lead:
what its jobs started must not outlive it.

Stdlib only (the agent runs on a bare ``python3``). On Linux the group's
members are read from ``/proc``, so the agent can kill the others and still
choose how it ends itself; elsewhere the whole group is killed at the end.
"""
from __future__ import annotations

import os
import signal
import threading
import time

from . import watcher

#: Seconds a terminated process gets before it is killed (the kernel's own stop uses the same).
KILL_GRACE = 3.0
_POLL = 0.05

_adopted = set()  # groups led by children of this process's thread jobs (children.py), maybe ended since
_adopted_lock = threading.Lock()
#: Adopted groups noted before those already ended are forgotten.
_ADOPTED_PRUNE = 256


def _live_processes():
    """(pid, pgid) of every live (non-zombie) process; None where /proc cannot tell."""
    if not os.path.isdir("/proc/self"):
        return None
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if fields[0] != b"Z":
            found.append((int(name), int(fields[2])))
    return found


def others_in_group(pgid):
    """Live (non-zombie) processes of group ``pgid`` besides this one; None where /proc cannot tell."""
    live = _live_processes()
    if live is None:
        return None
    me = os.getpid()
    return [pid for pid, group in live if group == pgid and pid != me]


def end_own_group(grace=KILL_GRACE):
    """SIGTERM this process's group (if it leads one); with a ``grace``, SIGKILL what is still
    there after it, and return when no other member is left (None: the kernel sees to the rest).

    This process receives the SIGTERM too: its handler (``signals.py``) only wakes a thread, which
    sees the process is already ending.
    """
    end_adopted(grace)
    pgid = os.getpgrp()
    if pgid != os.getpid():
        return
    _killpg(pgid, signal.SIGTERM)
    if grace is None:
        return
    deadline = time.monotonic() + grace
    others = others_in_group(pgid)
    while others and time.monotonic() < deadline:
        time.sleep(_POLL)
        others = others_in_group(pgid)
    if others is None:  # nothing tells who is left: after the grace, the whole group, this process too
        time.sleep(max(0.0, deadline - time.monotonic()))
        _killpg(pgid, signal.SIGKILL)
    for _ in range(10):  # a member that forked just before its SIGKILL left a child: kill that one too
        if not others:
            return
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(_POLL)
        others = others_in_group(pgid)


def adopt(pgid):
    """Note a process group a thread job's child leads: it is ended with this process
    (:func:`end_adopted`), or by the watcher when this process is killed (:mod:`.watcher`)."""
    ended = []
    with _adopted_lock:
        if len(_adopted) >= _ADOPTED_PRUNE:
            live = _live_processes()  # one look at /proc for all of them
            if live is not None:
                alive = {group for _pid, group in live}
                ended = [g for g in _adopted if g not in alive]
                _adopted.difference_update(ended)
        _adopted.add(pgid)
    watcher.forget(ended)
    watcher.watch(pgid, KILL_GRACE)


def terminate_groups(pgids):
    """SIGTERM each of these process groups (no longer ended with this process: their ender is called)."""
    with _adopted_lock:
        _adopted.difference_update(pgids)
    for pgid in pgids:
        _killpg(pgid, signal.SIGTERM)


def kill_what_is_left(pgids, grace=KILL_GRACE):
    """Wait until no live member of ``pgids`` is left, at most ``grace`` seconds; SIGKILL the groups left."""
    deadline = time.monotonic() + grace
    left = [pgid for pgid in pgids if others_in_group(pgid) != []]  # None (no /proc): wait the grace
    while left and time.monotonic() < deadline:
        time.sleep(_POLL)
        left = [pgid for pgid in left if others_in_group(pgid) != []]
    for pgid in left:
        _killpg(pgid, signal.SIGKILL)
    watcher.forget(pgids)


def end_adopted(grace=KILL_GRACE):
    """End the groups of this process's thread jobs' children (``grace`` None: SIGTERM only)."""
    with _adopted_lock:
        pgids = list(_adopted)
    terminate_groups(pgids)
    if pgids and grace is not None:
        kill_what_is_left(pgids, grace)


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass
