"""Ending the process group an agent leads: what its jobs started must not outlive it.

Stdlib only (the agent runs on a bare ``python3``). On Linux the group's
members are read from ``/proc``, so the agent can kill the others and still
choose how it ends itself; elsewhere the whole group is killed at the end.
"""
from __future__ import annotations

import os
import signal
import time

#: Seconds a terminated process gets before it is killed (the kernel's own stop uses the same).
KILL_GRACE = 3.0
_POLL = 0.05


def others_in_group(pgid):
    """Live (non-zombie) processes of group ``pgid`` besides this one; None where /proc cannot tell."""
    if not os.path.isdir("/proc/self"):
        return None
    me, found = os.getpid(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            found.append(int(name))
    return found


def end_own_group(grace=KILL_GRACE):
    """SIGTERM this process's group (if it leads one); with a ``grace``, SIGKILL what is still
    there after it, and return when no other member is left (None: the kernel sees to the rest).

    This process receives the SIGTERM too: its handler (``signals.py``) only wakes a thread, which
    sees the process is already ending.
    """
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


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass
