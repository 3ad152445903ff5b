"""The worker's side of a cluster session: jobs run by jobmagics' runner in threads of a Dask worker.

Shipped by source like the rest of the agent: a session's worker plugin makes it importable on
every worker as ``_jobmagics.agent.daskworker`` (workers need no jobmagics), and the kernel calls
its functions by name (``jobmagics/cluster/onworker.py``).

A job is one Dask task (:func:`run`): it starts the job in a thread of this
worker's :class:`ThreadHost` and holds its task slot until the job ended, so
the scheduler sees the worker busy. The job's records are kept here, each
with its sequence number, until a kernel acknowledged it received them
(:func:`fetch`); a kernel that reconnects (a new one, after a disconnect)
gets what no kernel received, exactly once. :func:`stop` stops a job with the
thread host's own stop (a pure-Python loop too); the worker carries on.

Runs inside the worker process, reached with ``Client.run``; imports only
jobmagics' agent code (stdlib) besides ``distributed`` (lazily: it is there in a worker).
"""
from __future__ import annotations

import threading
import time

from ..core.job import Job
from ..core.states import JobState
from ..core.threadhost import ThreadHost
from .jobservice import encode_data, work_from

JOB_TYPE = "RemoteJob"

_lock = threading.Lock()
_kept = {}  # key -> _Kept
_host = {"thread": None}


class _Kept:
    """One job of this worker and its records not yet acknowledged: [(seq, values, buffers)]."""

    def __init__(self, key, job, session, session_name):
        self.key = key
        self.job = job
        self.session = session
        self.session_name = session_name
        self.records = []
        self.seq = 0
        self.lock = threading.Lock()

    def sink(self, stream, data):
        buffers = []
        stream, data = encode_data(stream, data, buffers)
        buffers = [bytes(b) for b in buffers]
        with self.lock:
            self.seq += 1
            self.records.append((self.seq, stream, data, time.time(), buffers))

    def since(self, fetched, acked):
        with self.lock:
            if acked:
                self.records = [r for r in self.records if r[0] > acked]
            return [r for r in self.records if r[0] > fetched]

    def status(self, fetched=0, acked=0):
        job = self.job
        return {"state": str(job.state), "reason": job.reason, "name": job.name, "command": job.command,
                "session": self.session, "session_name": self.session_name,
                "records": self.since(fetched, acked), "last": self.seq}


def _thread_host():
    with _lock:
        if _host["thread"] is None:
            _host["thread"] = ThreadHost(sink_for=lambda job: _kept[job._cluster_key].sink)
        return _host["thread"]


def _worker_address():
    from distributed import get_worker

    return get_worker().address


def run(key, session, session_name, request, buffers):
    """The Dask task of one job: run it here and return when it ended (its final state).

    A task Dask starts again after the worker running it died does not run the job twice: the
    job's marker (a Dask Event) says it ran already, and this attempt fails saying so.
    """
    from distributed import Event

    started = Event("jobmagics-ran-" + key)
    if started.is_set():
        raise RuntimeError("the worker running this job ended while it ran; it is not run again")
    started.set()
    job = Job(request.get("command") or "", JOB_TYPE, name=request.get("name"))
    job._cluster_key = key
    kept = _Kept(key, job, session, session_name)
    with _lock:
        _kept[key] = kept
    host = _thread_host()
    try:
        work = work_from(request, buffers)
    except Exception as exc:
        kept.sink("error", {"ename": type(exc).__name__, "evalue": str(exc), "traceback": ""})
        job._set_state(JobState.Failed, "its work could not be loaded on the worker: %s" % exc)
        return str(job.state)
    host.start(job, work)
    job.wait()
    return str(job.state)


def fetch(wanted):
    """{key: status} of the jobs ``wanted`` ({key: (fetched, acked)}) kept on this worker.

    Records up to ``acked`` are dropped here for good; those after ``fetched`` come back.
    """
    out = {}
    with _lock:
        found = {key: _kept[key] for key in wanted if key in _kept}
    for key, kept in found.items():
        fetched, acked = wanted[key]
        out[key] = kept.status(fetched, acked)
    return out


def stop(keys):
    """Stop these jobs with the thread host's own stop (in the background: the worker's loop goes on)."""
    with _lock:
        jobs = [_kept[key].job for key in keys if key in _kept]
    host = _thread_host()
    for job in jobs:
        threading.Thread(target=host.stop, args=(job,), daemon=True, name="jobmagics-stop").start()
    return len(jobs)


def forget(keys):
    """Drop these jobs and what they kept (the kernel removed them); running ones are stopped first."""
    with _lock:
        dropped = [_kept.pop(key) for key in keys if key in _kept]
    host = _thread_host()
    for kept in dropped:
        if not kept.job.finished:
            threading.Thread(target=host.stop, args=(kept.job,), daemon=True, name="jobmagics-stop").start()
    return len(dropped)


def sessions():
    """{session token: {"name": ..., "jobs": {key: status without records}}} of the jobs kept here."""
    out = {}
    with _lock:
        kept = list(_kept.values())
    for entry in kept:
        session = out.setdefault(entry.session, {"name": entry.session_name, "jobs": {}})
        status = entry.status()
        status["records"] = len(status["records"])
        session["jobs"][entry.key] = status
    return out
