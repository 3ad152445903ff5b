"""Running jobs in threads of this process: ``ThreadJob`` in the kernel, every job in an agent."""
from __future__ import annotations

import ctypes
import threading
import time

from . import context, rich, runner, tqdm_hook
from .runner import StopJob, outcome_of, run_work
from .states import JobState

#: Seconds a stopped thread job gets to end before it is declared Stopped and abandoned.
STOP_GRACE = 2.0
#: Seconds to let a stopped job end at its next write before StopJob is raised in its thread.
COOPERATIVE_WAIT = 0.1

runner.INTERNAL_FILES.add(__file__)


class _Running:
    """Book-keeping for one job's thread."""

    def __init__(self, job, context_, thread):
        self.job = job
        self.context = context_
        self.thread = thread
        self.in_user_code = False
        self.in_sink = False
        self.abandoned = False


class ThreadHost:
    """Starts a job's work in a daemon thread and stops it on request.

    ``sink_for(job)`` gives the callable the job's streams are written to; by
    default the job's own record log. ``before_finish(job)`` runs in the job's
    thread just before its final state is set. Stopping sets the job's stop event (for
    code that checks ``stop_requested()``) and raises ``StopJob`` in the thread,
    which interrupts pure-Python loops; a thread blocked in a C call is waited
    for ``STOP_GRACE`` seconds, then abandoned and its further output dropped.
    """

    job_type = "ThreadJob"

    def __init__(self, sink_for=None, stop_grace=STOP_GRACE, before_finish=None):
        self._sink_for = sink_for or (lambda job: job._record)
        self._before_finish = before_finish
        self._stop_grace = stop_grace
        self._lock = threading.Lock()
        self._running = {}

    def start(self, job, work):
        context.install_routing()
        rich.route_ipython_display()  # a thread job's display() must not land in the running cell
        rich.install_display_hook()
        tqdm_hook.install()
        sink = self._sink_for(job)

        def guarded_sink(stream, data):
            # A stop is taken here, before any lock of ours is held; and while the sink runs,
            # no asynchronous stop is raised in this thread (it could leave a lock held for ever).
            if job.stop_event.is_set() and threading.current_thread() is entry.thread:
                raise StopJob()
            entry.in_sink = True
            try:
                if not entry.abandoned:
                    sink(stream, data)
            finally:
                entry.in_sink = False

        ctx = context.JobContext(guarded_sink, job.stop_event)
        thread = threading.Thread(target=self._run, args=(job, work, ctx), daemon=True,
                                  name="jobmagics-%s" % (job.name or "job"))
        entry = _Running(job, ctx, thread)
        with self._lock:
            self._running[job.instance_id] = entry
        job._host = self
        thread.start()
        return job

    def _run(self, job, work, ctx):
        entry = self._running[job.instance_id]
        context.bind(ctx)
        exc = None
        try:
            try:
                job._set_state(JobState.Running)
                with self._lock:
                    entry.in_user_code = True
                run_work(work, ctx.emit)
            except BaseException as error:  # the job's failure is data, not ours to raise
                exc = error
            finally:
                with self._lock:
                    entry.in_user_code = False
        except StopJob as late_stop:  # an asynchronous stop that landed after the work
            exc = exc or late_stop
        try:
            state, reason, error_record = outcome_of(exc, job.stop_event.is_set())
            if error_record is not None:
                ctx.record("error", error_record)
            self._finish(job, state, reason)
        finally:
            context.bind(None)
            with self._lock:
                self._running.pop(job.instance_id, None)

    def _finish(self, job, state, reason):
        if self._before_finish is not None:
            self._before_finish(job)  # e.g. collect the job's last output written below Python
        job._set_state(state, reason)

    def stop(self, job):
        with self._lock:
            entry = self._running.get(job.instance_id)
        if entry is None or job.finished:
            return
        job._begin_stop()
        if entry.thread is threading.current_thread():
            return  # a job stopping itself ends at its next write, or when its code checks stop_requested()
        # Code that writes stops at its next write; a loop that never writes gets StopJob raised in it.
        deadline = time.monotonic() + self._stop_grace
        entry.thread.join(COOPERATIVE_WAIT)
        while entry.thread.is_alive() and time.monotonic() < deadline:
            with self._lock:
                if entry.in_user_code and not entry.in_sink and entry.thread.ident is not None:
                    _raise_in_thread(entry.thread.ident, StopJob)
            entry.thread.join(min(COOPERATIVE_WAIT, max(0.0, deadline - time.monotonic())))
        if entry.thread.is_alive():
            entry.abandoned = True
            job._set_state(JobState.Stopped, "stopped; its thread was blocked in a call and was abandoned")


def _raise_in_thread(ident, exc_type):
    """Raise ``exc_type`` in thread ``ident`` at its next Python instruction."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
