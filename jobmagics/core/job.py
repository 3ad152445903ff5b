"""The Job: one state machine, its streams, and what a user does with it.

State changes happen under one condition; callbacks run outside the lock
(model: ``concurrent.futures.Future``). The ``_set_state``/``_record`` setters
belong to hosts; users call ``receive``, ``wait``, ``stop``, ``remove``.
"""
from __future__ import annotations

import collections
import datetime
import itertools
import threading
import uuid

from .callbacks import invoke_callbacks
from .errors import JobError
from .records import Record, RecordLog
from .states import FINISHED, TRANSITIONS, JobState, derive_parent_state


#: How much recent stdout/stderr a job keeps for views (characters), and how many lines they show.
TAIL_CHARS = 8192
TAIL_LINES = 12


class Job:
    """A piece of work running in the background, and everything it produced."""

    def __init__(self, command, job_type, *, name=None, location="localhost", host=None):
        self.id = None  # given by the registry
        self.name = name
        self.instance_id = uuid.uuid4()
        self.job_type = job_type
        self.location = location
        self.command = command
        self.begin_time = None
        self.end_time = None
        self.reason = None
        self.child_jobs = []
        self.parent = None
        self.shipped = {}
        self.stop_event = threading.Event()
        self._state = JobState.NotStarted
        self._host = host
        self._registry = None
        self._cond = threading.Condition()
        self._log = RecordLog()
        self._seq = itertools.count(1)
        self._state_callbacks = []
        self._record_callbacks = []
        self._drain_callbacks = []
        self._activity = 0  # bumped on every record and state change, for streaming waits
        self._tail = collections.deque(maxlen=TAIL_LINES)  # (stream, line): the latest whole lines, for views
        self._tail_partial = ("stdout", "")  # the line being written
        self.last_progress = None  # the latest progress record's data, for views
        self.exports = {}  # name -> value of the variables handed back (--export), kept after receiving

    # ----- reading -----------------------------------------------------------------
    @property
    def state(self) -> JobState:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state in FINISHED

    @property
    def has_more_data(self) -> bool:
        """True while the job runs or holds data not yet received (PowerShell's HasMoreData), so
        ``while job.has_more_data: receive`` collects everything."""
        running = self._state not in FINISHED and self._state != JobState.NotStarted
        return running or bool(self._log) or any(child.has_more_data for child in self.child_jobs)

    def snapshot(self) -> dict:
        """The job's fields read together, for views."""
        with self._cond:
            return {
                "id": self.id, "name": self.name, "instance_id": str(self.instance_id),
                "job_type": self.job_type, "state": self._state, "location": self.location,
                "command": self.command, "has_more_data": self.has_more_data,
                "begin_time": self.begin_time, "end_time": self.end_time, "reason": self.reason,
                "child_ids": [c.id for c in self.child_jobs],
            }

    def __reduce__(self):
        # A job leaving its process (an entered cell's value, a job's output) is shown, not rebuilt.
        from .table import JobInfo

        return JobInfo.of(self).__reduce__()

    def records(self, keep=True):
        """Every record held (own, then each child's), in order; drained unless ``keep``.

        Draining tells the drain callbacks the highest agent sequence number
        taken, so an agent that keeps output until it is received can let go.
        """
        last = None
        for record in self._log.take(keep=keep):
            if record.origin is not None:
                last = record.origin
            yield record
        if not keep and last is not None:
            with self._cond:
                callbacks = list(self._drain_callbacks)
            invoke_callbacks(callbacks, self, last)
        for child in self.child_jobs:
            yield from child.records(keep=keep)

    def add_drain_callback(self, callback):
        """``callback(job, origin_seq)`` after a receive took records up to that agent sequence number."""
        with self._cond:
            self._drain_callbacks.append(callback)

    def _stream(self, stream):
        return [r.data for r in self.records(keep=True) if r.stream == stream]

    @property
    def output(self):
        return self._stream("output")

    @property
    def stdout(self) -> str:
        return "".join(self._stream("stdout"))

    @property
    def stderr(self) -> str:
        return "".join(self._stream("stderr"))

    @property
    def warning(self):
        return self._stream("warning")

    @property
    def progress(self):
        """The progress records not yet received; after a receive, the latest one (a bar is a state)."""
        held = self._stream("progress")
        return held if held or self.last_progress is None else [self.last_progress]

    @property
    def display(self):
        return self._stream("display")

    @property
    def error(self):
        return [r.data for r in self.records(keep=True) if r.stream == "error"]

    # ----- acting ------------------------------------------------------------------
    def wait(self, timeout=None) -> bool:
        """Block until the job finished (True) or ``timeout`` seconds passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._state in FINISHED, timeout)

    def receive(self, keep=False, export_into=None):
        """Deliver what the job produced (text to stdout/stderr) and return its output objects.

        Variables the job handed back (``--export``) are set in ``export_into``, a namespace, if given.
        """
        from .delivery import deliver
        return deliver(self.records(keep=keep), exports=export_into)

    def stop(self):
        """Stop the job (and its children); returns once it is Stopped or finished anyway."""
        for child in self.child_jobs:
            child.stop()
        if self._host is not None and not self.finished:
            self._host.stop(self)
        return self

    def remove(self, force=False):
        """Forget the job in its registry; a running job needs ``force`` (it is stopped first)."""
        if self._registry is None:
            raise LookupError("job %s is not in a registry" % self.name)
        self._registry.remove(self, force=force)

    # ----- hosts' side -------------------------------------------------------------
    def _set_state(self, new, reason=None, if_legal=False) -> bool:
        """Move to ``new``; False (and nothing changes) if the job had already finished.

        An illegal transition raises RuntimeError, or with ``if_legal`` returns False.
        """
        new = JobState(new)
        with self._cond:
            old = self._state
            if old in FINISHED or old == new:
                return False
            if new not in TRANSITIONS[old]:
                if if_legal:
                    return False
                raise RuntimeError("illegal job state transition %s -> %s" % (old, new))
            self._state = new
            now = datetime.datetime.now()
            if new == JobState.Running and self.begin_time is None:
                self.begin_time = now
            if new in FINISHED:
                self.end_time = now
                if self.begin_time is None:
                    self.begin_time = now
            if reason is not None:
                self.reason = reason
            self._activity += 1
            self._cond.notify_all()
            callbacks = list(self._state_callbacks)
        invoke_callbacks(callbacks, self, old, new)
        return True

    def _set_state_if_legal(self, new, reason=None) -> bool:
        """Apply a state reported from elsewhere, ignoring one overtaken by a local change.

        (A remote "Running" may arrive after the kernel already began stopping the job.)
        The check and the change are one step: a stop cannot come between them.
        """
        return self._set_state(new, reason, if_legal=True)

    def _fail(self, exc) -> bool:
        """A host could not run the job (no process, a broken link): ``exc`` as its error, state Failed.

        Nothing changes for a job that already finished: it may have run to its end before
        the failure reached its host (a start that returned after its session closed).
        """
        if self.finished:
            return False
        self._record("error", {"ename": type(exc).__name__, "evalue": str(exc), "traceback": ""})
        return self._set_state(JobState.Failed, str(exc), if_legal=True)

    def _begin_stop(self):
        """A host's first step of stopping: state Stopping, and the stop flag the job's code can see."""
        self._set_state(JobState.Stopping)
        self.stop_event.set()

    def _record(self, stream, data, time_=None, computer=None, origin=None):
        """Append one item to a stream (error items become JobError objects)."""
        if stream == "error" and isinstance(data, dict):
            data = JobError.from_record_data(data, computer or self._remote_computer(), self.name)
        record = Record(next(self._seq), stream, data, time_, computer, origin)
        self._log.append(record)
        if stream in ("stdout", "stderr"):
            self._keep_tail(stream, data)
        elif stream == "progress":
            self.last_progress = data
        elif stream == "export":
            self.exports[data[0]] = data[1]
        with self._cond:
            self._activity += 1
            self._cond.notify_all()
            callbacks = list(self._record_callbacks)
        invoke_callbacks(callbacks, self, record)

    def _keep_tail(self, stream, text):
        # Whole lines, split once as they come: a view redrawing the tail costs nothing per write.
        with self._cond:
            partial_stream, partial = self._tail_partial
            if partial and partial_stream != stream:  # the other stream's unfinished line ends here
                self._tail.append((partial_stream, partial))
                partial = ""
            pieces = (partial + text).split("\n")
            for line in pieces[-TAIL_LINES - 1:-1]:
                self._tail.append((stream, line[-TAIL_CHARS:]))
            self._tail_partial = (stream, pieces[-1][-TAIL_CHARS:])

    def tail(self, lines=TAIL_LINES):
        """The last ``lines`` (at most TAIL_LINES) lines the job wrote to stdout/stderr, as (stream, line) pairs.

        Kept apart from the streams: receiving does not clear it.
        """
        with self._cond:
            out = list(self._tail)
            if self._tail_partial[1]:
                out.append(self._tail_partial)
        return out[-lines:] if lines > 0 else []

    def _remote_computer(self):
        return None if self.location == "localhost" else self.location

    def add_state_callback(self, callback):
        """``callback(job, old, new)`` after every state change, outside the lock, once per change.

        A callback that raises is logged; the other callbacks and the thread that changed the state go on.
        """
        with self._cond:
            self._state_callbacks.append(callback)

    def add_record_callback(self, callback):
        """``callback(job, record)`` after every new record, outside the lock (one that raises is logged)."""
        with self._cond:
            self._record_callbacks.append(callback)

    @property
    def activity(self) -> int:
        """A counter that grows with every record and state change."""
        return self._activity

    def wait_for_activity(self, since, timeout=None) -> bool:
        """Block until ``activity`` moved past ``since`` (True) or ``timeout`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._activity != since, timeout)

    def _add_child(self, child):
        child.parent = self
        self.child_jobs.append(child)
        child.add_state_callback(self._on_child_state)
        child.add_record_callback(lambda child, record: self._bump_activity())

    def _bump_activity(self):
        """A child's news counts as the parent's: streaming the parent wakes for it."""
        with self._cond:
            self._activity += 1
            self._cond.notify_all()

    def _on_child_state(self, child, old, new):
        self._bump_activity()
        derived = derive_parent_state(c.state for c in self.child_jobs)
        if derived != self._state and derived in TRANSITIONS[self._state]:
            failed = [c for c in self.child_jobs if c.state == JobState.Failed]
            reason = None
            if derived == JobState.Failed and failed:
                reason = "; ".join("%s: %s" % (c.location, c.reason) for c in failed)
            self._set_state(derived, reason)

    # ----- display -----------------------------------------------------------------
    def __repr__(self):
        return "<%s %s %r %s>" % (self.job_type, self.id, self.name, self._state)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .rich import live_views

        views = live_views()
        return None if views is None else views.job_view(self)._repr_mimebundle_(include, exclude)

    def _repr_pretty_(self, p, cycle):
        from .table import text_table
        p.text(text_table([self]))

    def _repr_html_(self):
        from .table import html_table
        return html_table([self])


