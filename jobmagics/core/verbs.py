"""The six job verbs, written once: start_job, get_job, receive_job, wait_job, stop_job, remove_job.

Every place a verb runs calls these functions: the notebook's API
(``jobmagics.start_job``), the magics, job code (``from jobmagics import
start_job`` inside a thread job, a process job, a session or an entered cell),
and the agent's service answering a kernel. So a verb has one signature and
one set of errors wherever it runs (spec section 7).

A verb acts on a *job store*, chosen by its ``session`` argument: this
process's own jobs (:class:`LocalJobs`), or the jobs kept in a session,
reached over CALL frames (``jobmagics.session_jobs.SessionJobs``). A store
offers a few primitives; the verbs check the request, combine them and
deliver what comes back. Each process says once which stores it has
(:func:`use_stores`): the kernel the two kinds, an agent its own.

Standard library only: this module is shipped with the agent.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading

from .delivery import ComputerTagger, collapse, deliver, show_error
from .errors import JobError, JobStateError, UserInputError
from .states import JobState
from .table import JobList

_stores = {"for_session": None}


def use_stores(for_session):
    """Say how this process finds the store of a verb: ``for_session(session_or_None) -> store``."""
    _stores["for_session"] = for_session


def store_for(session=None):
    if _stores["for_session"] is None:
        raise RuntimeError("no job store here: load jobmagics first")
    return _stores["for_session"](session)


class LocalJobs:
    """This process's jobs: a registry, and a function that starts a job on the right host.

    ``start(work, args, options)`` returns the registered, started Job; the
    kernel's ships variables to a process, an agent's runs a thread.
    """

    def __init__(self, registry, start):
        self.registry = registry
        self._start = start

    def start(self, work, args, options):
        return self._start(work, args, options)

    def find(self, refs):
        return self.registry.resolve_all(refs)

    def all(self):
        return self.registry.jobs()

    def select(self, jobs, **query):
        try:
            return self.registry.select(jobs, **query)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None

    def listing(self, jobs, query=None):
        # Without named jobs the list is a query: its live view follows jobs started or removed later.
        return JobList(jobs, query=query, registry=self.registry if query is not None else None)

    def wait(self, jobs, any_, timeout):
        return self.registry.wait(jobs, any_=any_, timeout=timeout)

    def stop(self, jobs):
        for job in jobs:
            job.stop()
        return jobs

    def remove(self, jobs, force):
        for job in jobs:
            self.registry.remove(job, force=force)

    def take(self, job, keep):
        return job.records(keep=keep)

    def follow(self, job, outputs, exports):
        stream_until_done(job, outputs, exports=exports)


# ----- the verbs ---------------------------------------------------------------------
def start_job(work, *args, name=None, thread=False, init=None, using=None, capture_names=True, namespace=None,
              hidden=None, kwargs=None, python=None, export=None, session=None, foreach=None, throttle_limit=None,
              reuse=False):
    """Start ``work`` (code as a string, or a callable called with ``args``) and return its Job.

    Code reads the variables of ``namespace`` (default: the caller's globals)
    that it uses: the same objects in a thread job, copies in a process job.
    ``using`` names the variables explicitly; ``capture_names=False`` sends none.
    ``export`` names variables whose values the code leaves are handed back
    (``job.exports``, and ``receive_job(..., export_into=namespace)``).
    ``python`` runs a process job with another interpreter (a path, or [path, flags...]).
    ``session`` starts it in a session's own registry, where its results stay.
    ``foreach`` (a collection) starts one parent job with a child per item (the item is ``_`` in
    code, the first argument of a callable), at most ``throttle_limit`` running at once.
    ``reuse`` runs a process job in a warm process that may have served earlier jobs (throughput
    over isolation: what a job leaves in its process, the next one there sees).
    """
    if not callable(work) and not isinstance(work, str):
        raise UserInputError("start_job needs code (a string) or a callable, not %s" % type(work).__name__)
    if session is not None and (thread or python is not None):
        raise UserInputError("--thread and --session cannot be used together (jobs in a session run there)"
                             if thread else "python= and session= cannot be used together (jobs in a session run there)")
    if reuse and (thread or python is not None or session is not None):
        raise UserInputError("--reuse is for process jobs of this kernel: not with --thread, python= or --session")
    if namespace is None and isinstance(work, str):
        namespace = sys._getframe(1).f_globals
    options = dict(name=name, thread=thread, reuse=reuse, init=init, using=using, capture_names=capture_names,
                   namespace=namespace, hidden=hidden, kwargs=dict(kwargs or {}), python=python, export=export)
    if foreach is not None:
        options.update(foreach=foreach_items(foreach), throttle_limit=throttle_limit)
    elif throttle_limit is not None:
        raise UserInputError("--throttle-limit goes with --foreach")
    return store_for(session).start(work, args, options)


def get_job(*jobs, state=None, job_type=None, has_more_data=None, include_child_jobs=False, session=None):
    """The jobs named (default: all), filtered like Get-Job."""
    store = store_for(session)
    selected = store.find(jobs) if jobs else None
    query = dict(state=state, job_type=job_type, has_more_data=has_more_data, include_children=include_child_jobs)
    return store.listing(store.select(selected, **query), None if jobs else query)


def receive_job(*jobs, keep=False, wait=False, auto_remove=False, export_into=None, session=None):
    """Deliver what the jobs produced since the last receive; their output objects as the value.

    One object comes back as itself, several as a list, none as None. Text
    streams are written to stdout/stderr, errors shown as tracebacks.
    ``wait`` streams until the jobs finished; ``auto_remove`` then removes them.
    Variables the jobs handed back (``--export``) are set in ``export_into``
    (a namespace), and one line says which.
    """
    if wait and keep:
        raise UserInputError("--wait and --keep cannot be used together (the job would be drained)")
    if auto_remove and not wait:
        raise UserInputError("--auto-remove needs --wait")
    store = store_for(session)
    targets = store.find(jobs)
    if not targets:
        raise UserInputError("receive_job needs at least one job")
    outputs, exported = [], {}
    try:
        for job in targets:
            if wait:
                store.follow(job, outputs, exported)
            else:
                with interrupt_deferred():
                    deliver(store.take(job, keep), outputs, exports=exported)
    except KeyboardInterrupt:
        # What was taken from the jobs has been shown; its objects are the value, not lost.
        print("receive_job: interrupted; returning what was received, the jobs keep running", file=sys.stderr)
        set_exports(exported, export_into)
        return collapse(outputs)
    set_exports(exported, export_into)
    if auto_remove:
        store.remove(targets, force=False)
    return collapse(outputs)


def wait_job(*jobs, any=False, timeout=None, session=None):  # noqa: A002 - the flag's name in the spec
    """Block until all (or ``any``) of the jobs finished; the finished ones (a timeout is no error).

    Interrupting (KeyboardInterrupt) stops the waiting, never the jobs.
    """
    if timeout is not None and timeout < 0:
        raise UserInputError("--timeout must not be negative")
    store = store_for(session)
    targets = store.find(jobs) if jobs else store.all()
    try:
        return store.listing(store.wait(targets, any, timeout))
    except KeyboardInterrupt:
        print("wait_job: interrupted; the jobs keep running", file=sys.stderr)
        return store.listing([j for j in targets if j.finished])


def stop_job(*jobs, session=None):
    """Stop the jobs: process trees terminated then killed, thread jobs cancelled."""
    store = store_for(session)
    targets = store.find(jobs)
    if not targets:
        raise UserInputError("stop_job needs at least one job")
    return store.listing(store.stop(targets))


def remove_job(*jobs, force=False, state=None, session=None):
    """Forget finished jobs; running ones only with ``force`` (stopped first)."""
    if not jobs and state is None:
        raise UserInputError("remove_job needs jobs or a state")
    store = store_for(session)
    targets = store.find(jobs) if jobs else None
    if state is not None:
        targets = store.select(targets, state=state)
    # A child goes with its parent: "%remove_job *" names both.
    targets = [j for j in targets if j.parent is None or not any(j.parent is t for t in targets)]
    running = [j for j in targets if not j.finished]
    if running and not force:
        raise JobStateError("job %s is %s: stop it first or use --force" % (running[0].name, running[0].state))
    store.remove(targets, force)
    return store.listing(targets)


def foreach_items(foreach):
    """The items of ``foreach`` as a list; a mistake is a one-line error."""
    if isinstance(foreach, (str, bytes)):
        raise UserInputError("--foreach takes a collection of items (a list, a range, ...), not a string")
    try:
        items = list(foreach)
    except TypeError:
        raise UserInputError("--foreach takes a collection of items, not %s" % type(foreach).__name__) from None
    if not items:
        raise UserInputError("--foreach has no items")
    return items


# ----- delivering ------------------------------------------------------------------
def set_exports(exported, namespace):
    """Set the variables jobs handed back in ``namespace`` and say which, in one line."""
    if namespace is None or not exported:
        return
    namespace.update(exported)
    print("set %s (exported by the job)" % ", ".join(exported))


@contextlib.contextmanager
def interrupt_deferred():
    """Hold Ctrl-C back until the block ends: records taken from a job must all be delivered."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def stream_until_done(job, outputs, tag_computers=False, exports=None, fail=False):
    """Deliver as the job (and its children) go, until all finished.

    With ``fail`` an error in the job fails the caller as an error in a cell
    would (so "Run All" stops there): its errors are shown and the last is raised.
    """
    tagger = ComputerTagger() if tag_computers else None
    errors = [] if fail else None

    def deliver_now():
        with interrupt_deferred():
            deliver(job.records(keep=False), outputs, tagger, exports, errors)

    while True:
        seen = job.activity  # children's records and states count as the parent's activity
        deliver_now()
        if job.finished and all(c.finished for c in job.child_jobs):
            deliver_now()
            break
        job.wait_for_activity(seen)
    if fail:
        _raise_failure(job, errors)


def _raise_failure(job, errors):
    """Raise the job's last error (the others shown first); a failure without one raises its reason."""
    if not errors and job.state == JobState.Failed:
        errors = [JobError("JobFailed", job.reason or "the job failed", job_name=job.name)]
    for error in errors[:-1]:
        show_error(error)
    if errors:
        raise errors[-1]


VERBS = ("start_job", "get_job", "receive_job", "wait_job", "stop_job", "remove_job")
