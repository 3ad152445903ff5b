"""Running jobs in threads of this process: ``ThreadJob`` in the kernel, every job in an agent."""
from __future__ import annotations

import ctypes
import threading
import time

from . import children, context, figures, group, rich, runner, tqdm_hook, workers
from .runner import StopJob, outcome_of, run_work
from .states import JobState

#: Seconds a stopped thread job gets to end before it is declared Stopped and abandoned.
STOP_GRACE = 2.0
#: Seconds to let a stopped job end at its next write before StopJob is raised in its thread.
COOPERATIVE_WAIT = 0.1

runner.INTERNAL_FILES.add(__file__)


class _Running:
    """Book-keeping for one job in its thread."""

    __slots__ = ("job", "context", "ident", "in_user_code", "in_sink", "raised", "abandoned")

    def __init__(self, job, context_):
        self.job = job
        self.context = context_
        self.ident = None  # the thread running the job, once it began
        self.in_user_code = False
        self.in_sink = False
        self.raised = False  # a StopJob was raised in the thread asynchronously
        self.abandoned = False


class ThreadHost:
    """Runs a job's work in a daemon thread and stops it on request.

    ``sink_for(job)`` gives the callable the job's streams are written to; by
    default the job's own record log. ``before_finish(job)`` runs in the job's
    thread just before its final state is set. Stopping sets the job's stop event (for
    code that checks ``stop_requested()``) and raises ``StopJob`` in the thread,
    which interrupts pure-Python loops; a thread blocked in a C call is waited
    for ``STOP_GRACE`` seconds, then abandoned and its further output dropped.

    With ``own_children`` (where this process outlives its jobs: a kernel, a
    session's agent, a Dask worker), each process a job's thread starts leads a
    process group of its own (:mod:`.children`), which its stop ends too: a job
    blocked waiting for one goes on and is stopped.

    Threads are reused (:class:`~.workers.Workers`): a thread whose job ended
    normally serves the next job; one whose job was abandoned ends with it.
    """

    ships = False  # its work runs in this process: a Work, its variables the caller's own objects

    job_type = "ThreadJob"

    def __init__(self, sink_for=None, stop_grace=STOP_GRACE, before_finish=None, own_children=True):
        self._sink_for = sink_for or (lambda job: job._record)
        self._own_children = own_children
        self._before_finish = before_finish
        self._stop_grace = stop_grace
        self._lock = threading.Lock()
        self._running = {}
        self._workers = workers.Workers()

    def start(self, job, work):
        context.install_routing()
        rich.route_ipython_display()  # a thread job's display() must not land in the running cell
        rich.install_display_hook()
        tqdm_hook.install()
        figures.install()
        if self._own_children:
            children.install()
        sink = self._sink_for(job)

        def guarded_sink(stream, data):
            # A stop is taken here, before any lock of ours is held; and while the sink runs,
            # no asynchronous stop is raised in this thread (it could leave a lock held for ever).
            # Once the work returned, its error record is written, not interrupted.
            if job.stop_event.is_set() and entry.in_user_code and threading.get_ident() == entry.ident:
                raise StopJob()
            entry.in_sink = True
            try:
                if not entry.abandoned:
                    sink(stream, data)
            finally:
                entry.in_sink = False

        ctx = context.JobContext(guarded_sink, job.stop_event)
        if self._own_children:
            ctx.children = children.JobChildren()
        entry = _Running(job, ctx)
        with self._lock:
            self._running[job.instance_id] = entry
        job._host = self
        self._workers.run(lambda: self._run(entry, work))
        return job

    def _run(self, entry, work):
        """Run one job in this thread; True when the thread is clean for another job."""
        job, ctx = entry.job, entry.context
        entry.ident = threading.get_ident()
        threading.current_thread().name = "jobmagics-%s" % (job.name or "job")
        context.bind(ctx)
        exc, began = None, False
        try:
            # A job stopped before its thread took it up is Stopping already: it does not begin.
            began = job._set_state_if_legal(JobState.Running)
            if began:
                with self._lock:
                    entry.in_user_code = True
                run_work(work, ctx.emit)
        except BaseException as error:  # the job's failure is data, not ours to raise
            exc = error
        while True:  # until no StopJob can land in this thread any more: it may serve another job next
            try:
                with self._lock:
                    # stop() raises only while in_user_code, holding this lock: once it is False here,
                    # none comes, and one raised before that has not landed yet is cancelled.
                    entry.in_user_code = False
                    if entry.raised:
                        _raise_in_thread(entry.ident, None)
                break
            except StopJob as late_stop:  # it landed before it could be cancelled
                exc = exc or late_stop
        try:
            ctx.flush_text()  # a last line without its newline
            state, reason, error_record = outcome_of(exc, job.stop_event.is_set() or not began)
            if error_record is not None:
                ctx.record("error", error_record)
            self._finish(job, state, reason)
        finally:
            context.bind(None)
            with self._lock:
                self._running.pop(job.instance_id, None)
        return not entry.abandoned  # an abandoned job's thread may hold anything: it ends

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
        if entry.ident == threading.get_ident():
            return  # a job stopping itself ends at its next write, or when its code checks stop_requested()
        # Its processes end (a job waiting for one goes on); code that writes stops at its next write;
        # a loop that never writes gets StopJob raised in it.
        ending = entry.context.children is not None and entry.context.children.end_in_background()
        deadline = time.monotonic() + self._stop_grace + (group.KILL_GRACE if ending else 0.0)
        job.wait(COOPERATIVE_WAIT)
        while not job.finished and time.monotonic() < deadline:
            with self._lock:
                if entry.in_user_code and not entry.in_sink and entry.ident is not None:
                    entry.raised = True
                    _raise_in_thread(entry.ident, StopJob)
            job.wait(min(COOPERATIVE_WAIT, max(0.0, deadline - time.monotonic())))
        if not job.finished:
            entry.abandoned = True
            job._set_state(JobState.Stopped, "stopped; its thread was blocked in a call and was abandoned")


def _raise_in_thread(ident, exc_type):
    """Raise ``exc_type`` in thread ``ident`` at its next Python instruction (None: cancel a pending one)."""
    exc = ctypes.py_object(exc_type) if exc_type is not None else None  # NULL cancels
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc)
