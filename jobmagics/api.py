"""The plain Python API: everything the magics do, as functions (spec section 7)."""
from __future__ import annotations

import atexit
import contextlib
import inspect
import signal
import sys
import threading

from . import capture, shipping
from .agent.delivery import ComputerTagger, collapse, deliver
from .agent.job import Job
from .agent.registry import JobRegistry
from .agent.runner import Work
from .agent.table import JobList
from .agent.threadhost import ThreadHost
from .errors import JobStateError, UserInputError
from .hosts.process import ProcessHost

_lock = threading.Lock()
_registry = None
_thread_host = None
_process_host = None
_shutdown_hooks = []


def shutdown_first():
    """Run this process's job shutdown before exit handlers registered so far (paramiko's, which
    would otherwise close SSH connections first, so sessions could not be told to end)."""
    registry()
    atexit.unregister(shutdown)
    atexit.register(shutdown)


def on_shutdown(hook):
    """Call ``hook()`` when this process's jobs are shut down (before the jobs are stopped)."""
    _shutdown_hooks.append(hook)


def registry() -> JobRegistry:
    """This process's job registry (one per kernel), created on first use."""
    global _registry, _thread_host, _process_host
    with _lock:
        if _registry is None:
            _registry = JobRegistry()
            _thread_host = ThreadHost()
            _process_host = ProcessHost()
            atexit.register(shutdown)
    return _registry


def shutdown():
    """Stop every job of this process and end every process they started."""
    for hook in _shutdown_hooks:
        try:
            hook()
        except Exception:
            pass
    if _registry is None:
        return
    # Job processes are told first, all at once, and killed after one short grace: stopping jobs
    # one by one can take longer than the kernel is given to exit (a restart sends SIGTERM after
    # 2.5 s, and then nothing runs here; the job processes then end their groups themselves).
    _process_host.kill_all()
    _registry.shutdown()


def _command_of(fn, args, kwargs):
    parts = [repr(a) for a in args] + ["%s=%r" % kv for kv in kwargs.items()]
    return "%s(%s)" % (getattr(fn, "__qualname__", repr(fn)), ", ".join(parts))


def start_job(work, *args, name=None, thread=False, init=None, using=None, capture_names=True,
              namespace=None, hidden=None, kwargs=None, python=None):
    """Start ``work`` (code as a string, or a callable called with ``args``) and return its Job.

    Code reads the variables of ``namespace`` (default: the caller's globals)
    that it uses: the same objects in a thread job, copies in a process job.
    ``using`` names the variables explicitly; ``capture_names=False`` sends none.
    ``python`` runs a process job with another interpreter (a path, or [path, flags...]).
    """
    registry()
    if namespace is None and isinstance(work, str):
        namespace = inspect.currentframe().f_back.f_globals
    host = _thread_host if thread else (_process_host if python is None else ProcessHost(python))
    return start_on(host, work, *args, name=name, init=init, using=using, capture_names=capture_names,
                    namespace=namespace, hidden=hidden, kwargs=kwargs)


def start_on(host, work, *args, name=None, init=None, using=None, capture_names=True, namespace=None,
             hidden=None, kwargs=None):
    """Start ``work`` on ``host`` (a thread host, or a host that runs jobs in an agent) and register it.

    Nothing is registered or started when the code does not parse or a
    variable cannot be sent.
    """
    reg = registry()
    kwargs = dict(kwargs or {})
    if callable(work):
        command, variables = _command_of(work, args, kwargs), {}
    elif isinstance(work, str):
        command = work
        variables = variables_for(work, init, namespace or {}, using, capture_names, hidden)
    else:
        raise UserInputError("start_job needs code (a string) or a callable, not %s" % type(work).__name__)
    job = Job(command, host.job_type, name=name)
    if isinstance(host, ThreadHost):
        job.shipped = shipping.references(variables)
        job_work = Work(fn=work, args=args, kwargs=kwargs) if callable(work) else \
            Work(code=work, init=init, namespace=variables)
        reg.add(job)
        return host.start(job, job_work)
    if callable(work):
        request, buffers, job.shipped = shipping.call_request(work, args, kwargs, command, name)
    else:
        request, buffers, job.shipped = shipping.code_request(work, init, variables, command, name)
    reg.add(job)
    try:
        host.start(job, request, buffers)
    except Exception:
        reg.discard(job)  # nothing started: the registry is as it was (the id stays used)
        raise
    return job


def variables_for(code, init, namespace, using, capture_names, hidden):
    """The notebook variables a job gets: ``using`` names them, else those the code reads."""
    capture.check(code)
    if init:
        capture.check(init, "init code")
    if using is not None:
        names = [n.strip() for n in (using.split(",") if isinstance(using, str) else using) if n.strip()]
        missing = [n for n in names if n not in namespace]
        if missing:
            raise UserInputError("--using names variables that are not defined: %s" % ", ".join(missing))
        return {n: namespace[n] for n in names}
    if not capture_names:
        return {}
    return capture.notebook_names([init, code], namespace, hidden)


def _jobs(refs):
    reg = registry()
    return reg.resolve_all(refs) if refs else reg.jobs()


def get_job(*jobs, state=None, job_type=None, has_more_data=None, include_child_jobs=False):
    """The jobs named (default: all), filtered like Get-Job."""
    reg = registry()
    selected = reg.resolve_all(jobs) if jobs else None
    query = dict(state=state, job_type=job_type, has_more_data=has_more_data, include_children=include_child_jobs)
    try:
        found = reg.select(selected, **query)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    # Without named jobs the list is a query: its live view follows jobs started or removed later.
    return JobList(found, query=None if jobs else query, registry=reg)


def receive_job(*jobs, keep=False, wait=False, auto_remove=False):
    """Deliver what the jobs produced since the last receive; their output objects as the value.

    One object comes back as itself, several as a list, none as None. Text
    streams are written to stdout/stderr, errors shown as tracebacks.
    ``wait`` streams until the jobs finished; ``auto_remove`` then removes them.
    """
    if wait and keep:
        raise UserInputError("--wait and --keep cannot be used together (the job would be drained)")
    if auto_remove and not wait:
        raise UserInputError("--auto-remove needs --wait")
    targets = registry().resolve_all(jobs)
    if not targets:
        raise UserInputError("receive_job needs at least one job")
    outputs = []
    try:
        for job in targets:
            if wait:
                stream_until_done(job, outputs)
            else:
                _deliver_all(job, outputs, keep=keep)
    except KeyboardInterrupt:
        # What was taken from the jobs has been shown; its objects are the value, not lost.
        print("receive_job: interrupted; returning what was received, the jobs keep running", file=sys.stderr)
        return collapse(outputs)
    if auto_remove:
        for job in targets:
            job.remove()
    return collapse(outputs)


@contextlib.contextmanager
def _interrupt_deferred():
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


def _deliver_all(job, outputs, keep=False, tagger=None):
    with _interrupt_deferred():
        deliver(job.records(keep=keep), outputs, tagger)


def stream_until_done(job, outputs, tag_computers=False):
    """Deliver as the job (and its children) go, until all finished."""
    tagger = ComputerTagger() if tag_computers else None
    while True:
        seen = job.activity  # children's records and states count as the parent's activity
        _deliver_all(job, outputs, tagger=tagger)
        if job.finished and all(c.finished for c in job.child_jobs):
            _deliver_all(job, outputs, tagger=tagger)
            return
        job.wait_for_activity(seen)


def wait_job(*jobs, any=False, timeout=None):  # noqa: A002 - the flag's name in the spec
    """Block until all (or ``any``) of the jobs finished; the finished ones (a timeout is no error).

    Interrupting (KeyboardInterrupt) stops the waiting, never the jobs.
    """
    targets = _jobs(jobs)
    if timeout is not None and timeout < 0:
        raise UserInputError("--timeout must not be negative")
    try:
        return JobList(registry().wait(targets, any_=any, timeout=timeout))
    except KeyboardInterrupt:
        print("wait_job: interrupted; the jobs keep running", file=sys.stderr)
        return JobList(j for j in targets if j.finished)


def stop_job(*jobs):
    """Stop the jobs: process trees terminated then killed, thread jobs cancelled."""
    targets = registry().resolve_all(jobs)
    if not targets:
        raise UserInputError("stop_job needs at least one job")
    for job in targets:
        job.stop()
    return targets


def remove_job(*jobs, force=False, state=None):
    """Forget finished jobs; running ones only with ``force`` (stopped first)."""
    reg = registry()
    if jobs:
        targets = reg.resolve_all(jobs)
        if state is not None:
            targets = get_job(*jobs, state=state)
    elif state is not None:
        targets = get_job(state=state)
    else:
        raise UserInputError("remove_job needs jobs or a state")
    running = [j for j in targets if not j.finished]
    if running and not force:
        raise JobStateError("job %s is %s: stop it first or use --force" % (running[0].name, running[0].state))
    for job in targets:
        reg.remove(job, force=force)
    return targets
