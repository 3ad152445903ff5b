"""The job registry: ids, names, look-up, filters, waiting, removal and shutdown.

One per kernel (and one inside each agent). It imports nothing from IPython so
the plain Python API and the agent use this same class.
"""
from __future__ import annotations

import itertools
import threading
import uuid

from .callbacks import invoke_callbacks
from .errors import JobNotFoundError, JobStateError
from .names import is_pattern, matching, suggestion
from .states import FINISHED, parse_state


class JobRegistry:
    """Every job of one kernel (or agent), in the order they were created."""

    def __init__(self):
        self._lock = threading.Lock()
        self._jobs = {}  # id -> Job, insertion-ordered; children included
        self._ids = itertools.count(1)  # never reused in this registry's lifetime
        self._listeners = []
        self._waiters = set()  # the _Waiter of each wait() under way

    def add_listener(self, callback):
        """``callback(event, job)`` with event "added" or "removed", outside the lock (one that raises is logged)."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback):
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _notify(self, event, job):
        with self._lock:
            listeners = list(self._listeners)
        invoke_callbacks(listeners, event, job)

    def add(self, job):
        """Give ``job`` (and its children) an id and a default name, and keep it."""
        with self._lock:
            self._add_locked(job)
        self._notify("added", job)
        return job

    def _add_locked(self, job):
        job.id = next(self._ids)
        if not job.name:
            job.name = "Job%d" % job.id
        job._registry = self
        self._jobs[job.id] = job
        job.add_state_callback(self._on_state)
        for child in job.child_jobs:
            self._add_locked(child)

    def _on_state(self, job, old, new):
        if new in FINISHED:
            with self._lock:
                for waiter in self._waiters:
                    waiter.finished(job)

    def __len__(self):
        return len(self._jobs)

    def jobs(self, include_children=False):
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if include_children or j.parent is None]

    # ----- look-up -----------------------------------------------------------------
    def resolve(self, ref):
        """The jobs ``ref`` names: a Job, an id, an instance id, or a name (wildcards allowed)."""
        if hasattr(ref, "instance_id") and hasattr(ref, "job_type"):
            if self._jobs.get(ref.id) is not ref:
                raise JobNotFoundError("job %s is not in this registry (removed?)" % ref.name)
            return [ref]
        if isinstance(ref, int) and not isinstance(ref, bool):
            job = self._jobs.get(ref)
            if job is None:
                raise JobNotFoundError("no job with id %d" % ref)
            return [job]
        text = str(ref).strip()
        if text.isdigit():
            return self.resolve(int(text))
        jobs = self.jobs(include_children=True)
        try:
            wanted = uuid.UUID(text)
        except ValueError:
            wanted = None
        if wanted is not None:
            found = [j for j in jobs if j.instance_id == wanted]
        else:
            found = matching(jobs, text, lambda job: job.name)
        if not found and not is_pattern(text):  # a pattern that matches nothing selects nothing, as in PowerShell
            raise JobNotFoundError("no job with id or name %r%s" % (text, suggestion(text, [j.name for j in jobs])))
        return found

    def resolve_all(self, refs):
        """The jobs several refs name, each once, in order; the first unknown ref raises."""
        seen, out = set(), []
        for ref in refs:
            for job in self.resolve(ref):
                if job.id not in seen:
                    seen.add(job.id)
                    out.append(job)
        return out

    def select(self, jobs=None, state=None, job_type=None, has_more_data=None, include_children=False):
        """Filter ``jobs`` (default: all top-level jobs) like Get-Job's parameters."""
        if jobs is None:
            jobs = self.jobs(include_children=include_children)
        elif include_children:
            jobs = [x for j in jobs for x in [j] + list(j.child_jobs)]
        if state is not None:
            state = parse_state(state)
            jobs = [j for j in jobs if j.state == state]
        if job_type is not None:
            jobs = [j for j in jobs if j.job_type.lower() == str(job_type).lower()]
        if has_more_data is not None:
            jobs = [j for j in jobs if j.has_more_data == has_more_data]
        return jobs

    # ----- waiting -----------------------------------------------------------------
    def wait(self, jobs, any_=False, timeout=None):
        """Block until all (or any) of ``jobs`` finished or ``timeout`` passed; the finished ones.

        Each finish is counted once as it happens (no scan of all the jobs per change).
        """
        jobs = list(jobs)
        with self._lock:  # jobs finishing from here on are counted by _on_state
            waiter = _Waiter(jobs, any_)
            self._waiters.add(waiter)
        try:
            waiter.done.wait(timeout)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
        return [j for j in jobs if j.finished]

    # ----- removal -----------------------------------------------------------------
    def remove(self, job, force=False):
        """Forget ``job`` and its children; a running job needs ``force`` (stopped first)."""
        if job.parent is not None:
            raise JobStateError("job %s is a child job: remove its parent %s" % (job.name, job.parent.name))
        if not job.finished:
            if not force:
                raise JobStateError("job %s is %s: stop it first or use force" % (job.name, job.state))
            job.stop()
        with self._lock:
            for j in [job] + list(job.child_jobs):
                self._jobs.pop(j.id, None)
                j._registry = None
        for _record in job.records(keep=False):
            pass  # release spilled output now, and tell an agent keeping it that it may let go
        self._notify("removed", job)

    def discard(self, job):
        """Forget a job that never started, without the checks of :meth:`remove`."""
        with self._lock:
            self._jobs.pop(job.id, None)
            job._registry = None
        self._notify("removed", job)

    def shutdown(self):
        """Stop every unfinished job; called when the kernel or agent ends."""
        for job in self.jobs():
            if not job.finished:
                try:
                    job.stop()
                except Exception:
                    pass


class _Waiter:
    """One wait(): the jobs it still waits for; ``done`` is set when it need not wait any longer."""

    __slots__ = ("pending", "count", "any_", "done")

    def __init__(self, jobs, any_):
        distinct = set(jobs)
        self.pending = {job for job in distinct if not job.finished}
        self.count = len(distinct)
        self.any_ = any_
        self.done = threading.Event()
        self._check()

    def finished(self, job):
        if job in self.pending:
            self.pending.discard(job)
            self._check()

    def _check(self):
        if not self.pending or (self.any_ and len(self.pending) < self.count):
            self.done.set()
