"""``BackgroundJob``s that trade isolation for throughput: warm job processes serve one job after another.

``start_job(..., reuse=True)`` (``%start_job --reuse``). A fresh process per
job costs this machine about 8 ms of CPU (forking, the pages a new process
copies as it touches them, ending it), so 50 small jobs at once cost about
0.3 s on two cores whatever is done ahead. Here up to one process per core
serves jobs one at a time, each job in it as in a process of its own: its own
streams, variables and result. What a job leaves behind in its process
(imported modules, module state, threads, child processes) the next job there
sees. A job that crashes its process fails alone, as any process job; stopping
a job ends its process and its tree, and a new process serves the jobs after
it. Processes idle for :data:`IDLE` seconds end, and all end with the kernel.
"""
from __future__ import annotations

import collections
import os
import threading
import time

from . import processes
from ..core.group import KILL_GRACE
from ..core.states import JobState
from ..transport import spares
from .process import EXIT_GRACE, connected_agent, end_of_process

#: Seconds a warm process waits for another job before it ends.
IDLE = 2.0


class _Worker:
    """One warm process: its link, and the job it runs now (None while it waits)."""

    def __init__(self):
        self.transport = None
        self.link = None
        self.job = None
        self.idle_since = None

    def deliver(self, stream, text):
        """What the process writes to fds 1 and 2 belongs to the job it runs."""
        job = self.job
        if job is not None and not job.finished:
            job._record(stream, text)


class WarmProcessHost:
    """Queues jobs and runs each in a free warm process, at most ``size`` processes at once."""

    job_type = "BackgroundJob"
    ships = True  # its work travels to another process: ShippedWork

    def __init__(self, size=None, kill_grace=KILL_GRACE, idle=IDLE):
        self.size = size or os.cpu_count() or 1
        self.kill_grace = kill_grace
        self.idle = idle
        self._queue = collections.deque()  # (job, request, buffers) waiting for a process
        self._workers = []  # every process, busy or waiting (a new one before it has started too)
        self._cond = threading.Condition()
        self._retiring = False  # a thread ends processes that have waited too long

    def start(self, job, work):
        """Queue ``work`` (a ShippedWork); the job runs once a warm process is free (NotStarted until then)."""
        request, buffers = work
        job._host = self
        request = dict(request, exit_when_done=False, job_type=self.job_type)
        with self._cond:
            self._queue.append((job, request, buffers))
        self._dispatch()
        return job

    def _dispatch(self):
        """Give queued jobs to waiting processes; start processes while there are fewer than ``size``."""
        while True:
            with self._cond:
                if not self._queue:
                    return
                worker = next((w for w in self._workers if w.job is None and w.link is not None), None)
                if worker is None and len(self._workers) >= self.size:
                    return
                job, request, buffers = self._queue.popleft()
                if worker is None:
                    worker = _Worker()
                    self._workers.append(worker)
                worker.job = job
            if worker.link is None:
                threading.Thread(target=self._serve, args=(worker, request, buffers), daemon=True,
                                 name="jobmagics-warm-process").start()
            else:
                self._run(worker, request, buffers)

    def _run(self, worker, request, buffers):
        job = worker.job
        if job.finished:  # stopped while its process was starting
            self._job_done(worker, job)
            return
        if not job._set_state_if_legal(JobState.Running):
            return  # being stopped: its process is being ended, and its end finishes the job
        job.add_state_callback(lambda job_, old, new: new.finished and self._job_done(worker, job_))
        try:
            worker.link.start(job, request, buffers)
        except OSError:  # the process died while it waited: its end fails the job (_serve)
            pass

    def _serve(self, worker, request, buffers):
        """A new warm process: start it, give it its first job, apply its frames until it ends."""
        try:
            ready = spares.take(connected_agent, os.getcwd(), dict(os.environ)) if spares.enabled() else None
            worker.transport, worker.link = ready or connected_agent(spare=None)
        except Exception as exc:  # noqa: BLE001  (no process: the job fails with the reason, others go on)
            with self._cond:
                self._workers.remove(worker)
            job, worker.job = worker.job, None
            job._fail(exc)
            self._dispatch()
            return
        worker.transport.text.start(worker.deliver)
        self._run(worker, request, buffers)
        try:
            worker.link.serve()
        finally:
            self._ended(worker)

    def _job_done(self, worker, job):
        with self._cond:
            if worker.job is not job:
                return
            worker.job = None
            worker.idle_since = time.monotonic()
            retire = not self._retiring
            self._retiring = True
        if retire:
            threading.Thread(target=self._retire_idle, daemon=True, name="jobmagics-warm-idle").start()
        self._dispatch()

    def _retire_idle(self):
        """End processes that waited :attr:`idle` seconds for a job; return once none is left."""
        with self._cond:
            while True:
                now = time.monotonic()
                waiting = [w for w in self._workers if w.job is None and w.link is not None]
                for worker in waiting:
                    if now - worker.idle_since >= self.idle:
                        worker.job = _RETIRED  # never given a job again
                        worker.transport.close()  # it reads the end of its input and exits
                if not self._workers:
                    self._retiring = False
                    return
                self._cond.wait(self.idle / 2)

    def _ended(self, worker):
        """The process ended: its job (if one ran) fails or is stopped; queued jobs go on elsewhere."""
        with self._cond:
            self._workers.remove(worker)
            job, worker.job = worker.job, None
            self._cond.notify_all()
        if job is not None and job is not _RETIRED:
            end_of_process(job, worker.transport)
        worker.transport.reap(self.kill_grace)
        self._dispatch()

    def stop(self, job):
        with self._cond:
            queued = [item for item in self._queue if item[0] is job]
            for item in queued:
                self._queue.remove(item)
            worker = next((w for w in self._workers if w.job is job), None)
        if queued or (worker is not None and worker.link is None):  # it has not started: nothing to end
            job._set_state_if_legal(JobState.Stopped, "stopped on request")
            return
        if worker is None or job.finished:
            return
        job._begin_stop()
        worker.link.killing = True
        worker.transport.kill(self.kill_grace)  # its process and tree; jobs after it get a new one
        job.wait(self.kill_grace + 5)

    def kill_all(self, grace=EXIT_GRACE):
        """Kernel exit: every warm process group terminated at once, and killed after one ``grace``."""
        with self._cond:
            queued, self._queue = list(self._queue), collections.deque()
            pids = [w.transport.pid for w in self._workers if w.transport is not None]
        for job, _request, _buffers in queued:
            job._set_state_if_legal(JobState.Stopped, "the kernel is shutting down")
        processes.end_trees([(pid, pid) for pid in pids if pid is not None], grace)


_RETIRED = object()  # the "job" of a process told to end: no job is given to it any more

