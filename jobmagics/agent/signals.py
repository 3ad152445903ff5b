"""Signal handling that cannot deadlock: the handler does nothing, a thread does the work.

A Python signal handler runs in the main thread between any two bytecodes, so
a handler that takes a lock can interrupt code holding that very lock and wait
for itself forever (a job process was once found stuck that way, in its own
SIGTERM handler). The handlers set here take no lock and call no Python code:
CPython's C-level handler writes the signal's number to a wake-up pipe
(``signal.set_wakeup_fd``) and the ``jobmagics-signals`` thread, an ordinary
thread, runs the action.
"""
from __future__ import annotations

import os
import signal
import threading
import time

#: Seconds :func:`die_of` waits for the main thread to take its signal before the process exits anyway.
DIE_WAIT = 2.0

_actions = {}  # signal number -> action(); written from the main thread only
_dying = []  # the signal this process now dies of (a list: testing it takes no lock)


def _handler(signum, frame):
    # The wake-up pipe carries the signal to the watcher. Only once the watcher has decided the
    # process dies of it does the handler act, with C calls alone.
    if _dying:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def on_signal(signum, action):
    """Run ``action()`` in the watcher thread whenever ``signum`` arrives (call from the main thread)."""
    if not _actions:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)  # the C handler must never block
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        threading.Thread(target=_watch, args=(read_end,), name="jobmagics-signals", daemon=True).start()
        os.register_at_fork(after_in_child=_forget_in_child)
    _actions[signum] = action
    signal.signal(signum, _handler)


def _forget_in_child():
    # A child forked by job code (multiprocessing) has no watcher thread: with these handlers a
    # SIGTERM would do nothing there. It gets the default actions back, as a fresh process has.
    signal.set_wakeup_fd(-1)
    for signum in _actions:
        signal.signal(signum, signal.SIG_DFL)
    _actions.clear()


def die_of(signum):
    """End this process as ``signum``'s default action would (its parent sees that signal); any thread."""
    _dying.append(signum)
    signal.pthread_kill(threading.main_thread().ident, signum)  # interrupts what the main thread waits on
    time.sleep(DIE_WAIT)
    os._exit(128 + signum)  # the main thread never ran Python code again: end all the same


def _watch(read_end):
    while True:
        for signum in os.read(read_end, 512):
            action = _actions.get(signum)
            if action is not None:
                action()
