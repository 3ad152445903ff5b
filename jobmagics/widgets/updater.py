"""One background thread that refreshes every live view, coalesced and throttled.

Jobs change from many threads (their own, link threads, agents' frames); a
view is only marked dirty there, in O(1), and this thread redraws it from a
snapshot at most ``rate`` times a second. The last change of a job is always
drawn, because a dirty view stays dirty until it has been drawn after the
change. Views of running jobs are also redrawn once a second for the clock.
"""
from __future__ import annotations

import threading
import time


class ViewUpdater:
    def __init__(self, rate=4.0, clock_interval=1.0):
        self.interval = 1.0 / rate
        self.clock_interval = clock_interval
        self._cond = threading.Condition()
        self._dirty = {}  # view -> None, insertion-ordered
        self._ticking = set()  # views redrawn for their clock
        self._thread = None

    def mark_dirty(self, view):
        """Ask for ``view`` to be redrawn soon; cheap, callable from any thread."""
        if view in self._dirty:
            # Already waiting to be drawn, and its drawing reads the job after this change:
            # the common case of a chatty job costs no lock and no wake-up.
            return
        with self._cond:
            self._dirty[view] = None
            self._start_locked()
            self._cond.notify()

    def tick(self, view, on=True):
        """Redraw ``view`` every ``clock_interval`` while ``on`` (a running job's elapsed time)."""
        with self._cond:
            (self._ticking.add if on else self._ticking.discard)(view)
            self._start_locked()
            self._cond.notify()

    def _start_locked(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="jobmagics-views", daemon=True)
            self._thread.start()

    def _run(self):
        next_clock = time.monotonic() + self.clock_interval
        while True:
            with self._cond:
                while not self._dirty:
                    timeout = next_clock - time.monotonic() if self._ticking else None
                    if timeout is not None and timeout <= 0:
                        break
                    self._cond.wait(timeout)
                views = list(self._dirty)
                self._dirty.clear()
                if time.monotonic() >= next_clock:
                    views += [v for v in self._ticking if v not in views]
                    next_clock = time.monotonic() + self.clock_interval
            for view in views:
                try:
                    view.redraw()
                except Exception:  # a broken view must not stop the others' updates
                    pass
            time.sleep(self.interval)  # the throttle: at most `rate` redraws a second per view


_updater = None
_lock = threading.Lock()


def updater():
    """The process's view updater, created on first use."""
    global _updater
    with _lock:
        if _updater is None:
            _updater = ViewUpdater()
    return _updater
