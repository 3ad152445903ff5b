"""Running one piece of work on several sessions at once, at most ``throttle_limit`` at a time.

A parent job has one child job per computer. Children wait ``NotStarted``
until a slot is free; a child's computer may be a session of the user, or a
temporary session opened for that child and closed when it finished. A
computer that cannot be reached fails its child only.
"""
from __future__ import annotations

import threading

from ..core.states import JobState
from ..ship.shipping import ShippedWork

DEFAULT_THROTTLE = 32


class FanOut:
    """Starts children as slots free up; is their host until they run in a session."""

    def __init__(self, request, buffers, throttle_limit=DEFAULT_THROTTLE, open_session=None, close_session=None):
        self.request = request
        self.buffers = buffers
        self.throttle_limit = max(1, int(throttle_limit))
        self.open_session = open_session  # computer name -> opened temporary Session
        self.close_session = close_session
        self._lock = threading.Lock()
        self._waiting = []  # (child, session or computer name)
        self._running = 0
        self._started = {}  # child instance id -> its temporary session (None if the user's own)

    def add(self, child, target):
        """``target`` is an open Session, or a computer name for a temporary session."""
        child._host = self
        child.add_state_callback(self._on_child_state)
        with self._lock:
            self._waiting.append((child, target))

    def start(self):
        self._fill()

    def _fill(self):
        while True:
            with self._lock:
                if self._running >= self.throttle_limit or not self._waiting:
                    return
                child, target = self._waiting.pop(0)
                self._running += 1
                self._started[child.instance_id] = None
            threading.Thread(target=self._run_child, args=(child, target), daemon=True,
                             name="jobmagics-fanout-%s" % child.location).start()

    def _run_child(self, child, target):
        try:
            if isinstance(target, str):
                session = self.open_session(target)
                with self._lock:
                    kept = child.instance_id in self._started  # not if it was stopped meanwhile
                    if kept:
                        self._started[child.instance_id] = session
                if not kept:
                    self.close_session(session)
                    return
            else:
                session = target
            if child.state == JobState.NotStarted:
                session.host.start(child, ShippedWork(self.request, self.buffers))
        except Exception as exc:  # this computer failed; the others carry on
            child._fail(exc)

    def _on_child_state(self, child, old, new):
        if not new.finished:
            return
        with self._lock:
            if child.instance_id not in self._started:
                return  # stopped while waiting: it never held a slot
            temporary = self._started.pop(child.instance_id)
            self._running -= 1
        if temporary is not None and self.close_session is not None:
            threading.Thread(target=self.close_session, args=(temporary,), daemon=True,
                             name="jobmagics-close-%s" % child.location).start()
        self._fill()

    def stop(self, child):
        """Stop a child: one still waiting never starts; a running one is stopped in its session."""
        with self._lock:
            waiting = [entry for entry in self._waiting if entry[0] is child]
            for entry in waiting:
                self._waiting.remove(entry)
        if waiting or child._host is self:  # not started in a session (yet): it never will be
            child._set_state(JobState.Stopped, "stopped before it started")
        else:
            child._host.stop(child)
