"""The watcher: a small process that ends this process's adopted process groups when this process
dies, however it dies (``kill -9``, the out-of-memory killer).

The children of thread jobs lead groups of their own (:mod:`.children`), outside this process's
group, so a signal to that group (Jupyter's ``killpg`` of a dead kernel's group) no longer reaches
them, and ``atexit`` does not run when this process is killed. The watcher closes that gap. It is
started with the first adopted group, as ``python -c LOADER`` reading :data:`PROGRAM` first
from its stdin (the standard library only: this module travels by source to bare Pythons and may
run loaded from memory, with no file to run; and ``ps`` shows a short line), in a session of its
own (a restart's ``killpg`` of the kernel's group must not end it before it works). Only this
process holds the write end of its stdin (not inherited by exec; closed in a fork's child). After
the program, one line per event:

* ``+ pgid start``: a group adopted; ``start`` is its leader's start time (``/proc/<pid>/stat``
  field 22), so a group whose pgid was reused by an unrelated process is never signalled;
* ``- pgid``: a group known to have ended.

At end of file (this process has ended, any way) the watcher ends each group still listed that has
live members and whose leader is the one recorded, or is gone (a pgid is not reused while members
exist): ``SIGTERM``, ``SIGKILL`` for what is left after the grace; then it exits. A normal exit has
ended the groups already (``group.end_adopted``), so the watcher then finds none and exits at once.
Linux only (it reads ``/proc``); elsewhere there is no watcher.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading

#: The watcher's last argument, and (cut to 15 characters) its name in ``ps -o comm``.
PROCESS_TAG = "jobmagics-watcher"

#: What the watcher runs first: it reads its program from stdin (its length, a newline, the source).
LOADER = "import sys; r = sys.stdin.buffer; exec(compile(r.read(int(r.readline())), 'jobmagics-watcher', 'exec'))"

#: The watcher's program; its arguments are the grace in seconds and the tag.
PROGRAM = r'''# jobmagics watcher: ends the process groups listed on stdin once stdin closes
import os, signal, sys, time

def stat_fields(pid):
    """The fields of /proc/<pid>/stat after the name: [state, ppid, pgrp, ...]; None when gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            stat = fh.read()
    except (OSError, ValueError):
        return None
    return stat[stat.rindex(b")") + 2:].split()

def live_groups():
    """The process groups that have a live (not zombie) member."""
    found = set()
    for name in os.listdir("/proc"):
        fields = stat_fields(int(name)) if name.isdigit() else None
        if fields and fields[0] != b"Z":
            found.add(int(fields[2]))
    return found

def ours(pgid, start, live):
    if pgid not in live:
        return False
    leader = stat_fields(pgid)
    return leader is None or leader[19] == start  # gone, or the very leader (field 22) adopted

grace, name = float(sys.argv[1]), sys.argv[2]
try:
    with open("/proc/self/comm", "w") as fh:
        fh.write(name[:15])
except OSError:
    pass
groups = {}
for line in sys.stdin.buffer:  # until the adopting process has ended: it alone holds the write end
    try:
        event, pgid = line.split()[:2]
        if event == b"+":
            groups[int(pgid)] = line.split()[2]
        elif event == b"-":
            groups.pop(int(pgid), None)
    except (ValueError, IndexError):
        continue
live = live_groups()
left = [pgid for pgid, start in groups.items() if ours(pgid, start, live)]
for pgid in left:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except OSError:
        pass
deadline = time.monotonic() + grace
while left and time.monotonic() < deadline:
    time.sleep(0.05)
    live = live_groups()
    left = [pgid for pgid in left if pgid in live]
for pgid in left:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
'''

_lock = threading.Lock()  # also held across fork (below): a child sees the watcher started or not
_watcher = None  # the watcher's Popen, once started
_write_fd = None  # the write end of its stdin, held by this process alone
_failed = False  # it could not start here: not tried again


def watch(pgid, grace):
    """Tell the watcher (started now if need be, with ``grace`` seconds before SIGKILL) of an adopted group."""
    _send(b"+ %d %s\n" % (pgid, start_time(pgid) or b"0"), grace)


def forget(pgids):
    """Tell the watcher these groups have ended."""
    if pgids:
        _send(b"".join(b"- %d\n" % pgid for pgid in pgids))


def start_time(pid):
    """The start time of process ``pid`` (``/proc/<pid>/stat`` field 22, as bytes); None when unknown."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()[19]


def command(grace):
    """The watcher's argv; write :func:`program` first to its stdin."""
    return [sys.executable, "-I", "-S", "-c", LOADER, repr(float(grace)), PROCESS_TAG]


def program():
    """What the watcher reads first: its program."""
    source = PROGRAM.encode()
    return b"%d\n" % len(source) + source


def pid():
    """The pid of this process's watcher; None when none runs."""
    return _watcher.pid if _watcher is not None else None


def _send(line, grace=None):
    with _lock:
        if _write_fd is None and grace is not None:
            _start(grace)
        _send_locked(line)


def _send_locked(data):
    if _write_fd is None:
        return
    try:
        os.write(_write_fd, data)  # far less than the pipe holds, and the watcher reads it at once
    except OSError:
        pass  # the watcher is gone (killed by hand): nothing to tell


def _start(grace):
    global _watcher, _write_fd, _failed
    if _failed or not sys.executable or not os.path.isdir("/proc/self"):
        return
    read_fd, write_fd = os.pipe()  # both close-on-exec: only the watcher's stdin is a copy
    try:
        # Its own session: not in the group a restart kills. Nothing else of ours: cwd /, no output.
        _watcher = subprocess.Popen(
            command(grace), stdin=read_fd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
            start_new_session=True)
    except OSError:
        os.close(write_fd)
        _failed = True
        return
    finally:
        os.close(read_fd)
    _write_fd = write_fd
    atexit.register(_close)
    _send_locked(program())


def _close():
    """At a normal exit, after the groups were ended: the watcher finds none and ends; reap it."""
    global _watcher, _write_fd
    with _lock:
        watcher, fd = _watcher, _write_fd
        _watcher = _write_fd = None
    if fd is None:
        return
    os.close(fd)
    try:
        watcher.wait(10)
    except subprocess.TimeoutExpired:
        pass


def _forget_in_child():
    """In a fork's child: close its copy of the pipe, or the watcher would wait for the child too
    (the child, a job's multiprocessing worker, is one of the processes it must end)."""
    global _lock, _watcher, _write_fd
    _lock = threading.Lock()
    if _write_fd is not None:
        os.close(_write_fd)
    _watcher = _write_fd = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=lambda: _lock.acquire(), after_in_parent=lambda: _lock.release(),
                        after_in_child=_forget_in_child)
