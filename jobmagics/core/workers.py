"""Threads kept between thread jobs: starting a thread costs more than running a small job.

:class:`Workers` runs each call at once in a thread of its own, as starting a
thread per call would (a call never waits behind another one), but a thread
whose call returned ``True`` waits a while for the next call instead of ending.
Each call runs in a fresh ``contextvars`` context, like the first call of a new
thread. Keeping a thread clean for the next call (no job context bound, no
stop still pending) is the caller's part; a call that cannot promise it returns
False, and its thread ends.
"""
from __future__ import annotations

import contextvars
import os
import threading
import weakref

#: Seconds an idle thread waits for its next call before it ends.
IDLE_TIMEOUT = 30.0
#: Idle threads kept at most; a thread finding this many already idle ends.
MAX_IDLE = 16


class _Worker:
    """One thread's slot: the call handed to it, and the lock it sleeps on until then."""

    __slots__ = ("call", "wake")

    def __init__(self):
        self.call = None
        self.wake = threading.Lock()
        self.wake.acquire()  # released once per call handed over


class Workers:
    """Runs calls in threads named ``name`` (while idle), reusing threads that are idle."""

    def __init__(self, name="jobmagics-worker", idle_timeout=IDLE_TIMEOUT, max_idle=MAX_IDLE):
        self.name = name
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle = []  # a stack: the most recently idle thread is handed the next call
        _all_pools.add(self)

    @property
    def idle(self) -> int:
        """How many threads wait for a call right now."""
        return len(self._idle)

    def run(self, call):
        """Run ``call()`` in an idle thread, or a new one if none is idle; return at once.

        ``call`` returns True when its thread may serve another call.
        """
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _Worker()
            worker.call = call
            # The thread gets the slot, not the call: a Thread keeps its arguments while it lives.
            threading.Thread(target=self._serve, args=(worker,), name=self.name, daemon=True).start()
        else:
            worker.call = call
            worker.wake.release()

    def _serve(self, worker):
        call, worker.call = worker.call, None
        while call is not None:
            reusable = contextvars.Context().run(call)  # an exception ends this thread (excepthook reports it)
            call = None  # drop the call (and the job it holds) before sleeping
            if not reusable:
                return
            threading.current_thread().name = self.name
            call = self._next_call(worker)

    def _next_call(self, worker):
        """The next call handed to ``worker``, or None when it should end (idle too long, or enough idle)."""
        with self._lock:
            if len(self._idle) >= self.max_idle:
                return None
            self._idle.append(worker)
        if not worker.wake.acquire(timeout=self.idle_timeout):
            with self._lock:
                if worker in self._idle:
                    self._idle.remove(worker)
                    return None
            worker.wake.acquire()  # a call was handed over just as the wait timed out: take it
        call, worker.call = worker.call, None
        return call

    def _forget_idle(self):
        # In a forked child only the forking thread exists: the idle ones are gone.
        self._lock = threading.Lock()
        self._idle = []


_all_pools = weakref.WeakSet()


def _after_fork_in_child():
    for pool in list(_all_pools):
        pool._forget_idle()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
