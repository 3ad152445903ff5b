"""The plain Python API: everything the magics do, as functions (spec section 7)."""
from __future__ import annotations

import atexit
import contextlib
import inspect
import signal
import sys
import threading

from . import capture, jobcode, shipping
from .agent.delivery import ComputerTagger, collapse, deliver, show_error
from .agent.job import Job
from .agent.registry import JobRegistry
from .agent.runner import Work
from .agent.table import JobList
from .agent.threadhost import ThreadHost
from .agent.states import JobState
from .errors import JobError, JobStateError, UserInputError
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
    # Job processes are told first, all at once: stopping jobs one by one can take longer than
    # the kernel is given to exit (a restart sends SIGTERM after 2.5 s, and then nothing runs here).
    _process_host.terminate_all()
    _registry.shutdown()
    _process_host.shutdown()


def _command_of(fn, args, kwargs):
    parts = [repr(a) for a in args] + ["%s=%r" % kv for kv in kwargs.items()]
    return "%s(%s)" % (getattr(fn, "__qualname__", repr(fn)), ", ".join(parts))


def start_job(work, *args, name=None, thread=False, init=None, using=None, capture_names=True,
              namespace=None, hidden=None, kwargs=None, python=None, export=None):
    """Start ``work`` (code as a string, or a callable called with ``args``) and return its Job.

    Code reads the variables of ``namespace`` (default: the caller's globals)
    that it uses: the same objects in a thread job, copies in a process job.
    ``using`` names the variables explicitly; ``capture_names=False`` sends none.
    ``export`` names variables whose values the code leaves are handed back
    (``job.exports``, and ``receive_job(..., export_into=namespace)``).
    ``python`` runs a process job with another interpreter (a path, or [path, flags...]).
    """
    registry()
    if namespace is None and isinstance(work, str):
        namespace = inspect.currentframe().f_back.f_globals
    host = _thread_host if thread else (_process_host if python is None else ProcessHost(python))
    return start_on(host, work, *args, name=name, init=init, using=using, capture_names=capture_names,
                    namespace=namespace, hidden=hidden, kwargs=kwargs, export=export)


def start_on(host, work, *args, name=None, init=None, using=None, capture_names=True, namespace=None,
             hidden=None, kwargs=None, export=None):
    """Start ``work`` on ``host`` (a thread host, or a host that runs jobs in an agent) and register it.

    Nothing is registered or started when the code does not parse or a
    variable cannot be sent.
    """
    reg = registry()
    kwargs = dict(kwargs or {})
    export = export_names(export, callable(work))
    if callable(work):
        command, variables = _command_of(work, args, kwargs), {}
    elif isinstance(work, str):
        command, work, init = work, jobcode.prepare(work), jobcode.prepare(init, "init code")
        variables = variables_for(work, init, namespace or {}, using, capture_names, hidden)
    else:
        raise UserInputError("start_job needs code (a string) or a callable, not %s" % type(work).__name__)
    job = Job(command, host.job_type, name=name)
    if isinstance(host, ThreadHost):
        job.shipped = shipping.references(variables)
        job_work = Work(fn=work, args=args, kwargs=kwargs) if callable(work) else \
            Work(code=work, init=init, namespace=variables, export=export)
        reg.add(job)
        return host.start(job, job_work)
    if callable(work):
        request, buffers, job.shipped = shipping.call_request(work, args, kwargs, command, name)
    else:
        request, buffers, job.shipped = shipping.code_request(work, init, variables, command, name, export)
    reg.add(job)
    try:
        host.start(job, request, buffers)
    except Exception:
        reg.discard(job)  # nothing started: the registry is as it was (the id stays used)
        raise
    return job


def name_list(value, flag):
    """The variable names a flag lists (a comma-separated string, or a list); each a Python name."""
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise UserInputError("%s takes variable names: %s is not one" % (flag, ", ".join(map(repr, bad))))
    return names


def export_names(export, for_callable=False):
    """The names ``export`` lists (none when it is None); a callable has no variables to hand back."""
    if not export:
        return []
    if for_callable:
        raise UserInputError("--export needs code: a callable job has no variables to hand back")
    return name_list(export, "--export")


def variables_for(code, init, namespace, using, capture_names, hidden):
    """The notebook variables a job gets: ``using`` names them, else those the code reads."""
    capture.check(code)
    if init:
        capture.check(init, "init code")
    if using is not None:
        names = name_list(using, "--using")
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


def receive_job(*jobs, keep=False, wait=False, auto_remove=False, export_into=None):
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
    targets = registry().resolve_all(jobs)
    if not targets:
        raise UserInputError("receive_job needs at least one job")
    outputs, exported = [], {}
    try:
        for job in targets:
            if wait:
                stream_until_done(job, outputs, exports=exported)
            else:
                _deliver_all(job, outputs, keep=keep, exports=exported)
    except KeyboardInterrupt:
        # What was taken from the jobs has been shown; its objects are the value, not lost.
        print("receive_job: interrupted; returning what was received, the jobs keep running", file=sys.stderr)
        set_exports(exported, export_into)
        return collapse(outputs)
    set_exports(exported, export_into)
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


def set_exports(exported, namespace):
    """Set the variables jobs handed back in ``namespace`` and say which, in one line."""
    if namespace is None or not exported:
        return
    namespace.update(exported)
    print("set %s (exported by the job)" % ", ".join(exported))


def _deliver_all(job, outputs, keep=False, tagger=None, exports=None, errors=None):
    with _interrupt_deferred():
        deliver(job.records(keep=keep), outputs, tagger, exports, errors)


def stream_until_done(job, outputs, tag_computers=False, exports=None, fail=False):
    """Deliver as the job (and its children) go, until all finished.

    With ``fail`` an error in the job fails the caller as an error in a cell
    would (so "Run All" stops there): its errors are shown and the last is raised.
    """
    tagger = ComputerTagger() if tag_computers else None
    errors = [] if fail else None
    while True:
        seen = job.activity  # children's records and states count as the parent's activity
        _deliver_all(job, outputs, tagger=tagger, exports=exports, errors=errors)
        if job.finished and all(c.finished for c in job.child_jobs):
            _deliver_all(job, outputs, tagger=tagger, exports=exports, errors=errors)
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
    # A child goes with its parent: "%remove_job *" names both.
    targets = [j for j in targets if j.parent is None or not any(j.parent is t for t in targets)]
    running = [j for j in targets if not j.finished]
    if running and not force:
        raise JobStateError("job %s is %s: stop it first or use --force" % (running[0].name, running[0].state))
    for job in targets:
        reg.remove(job, force=force)
    return targets
