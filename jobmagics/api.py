"""The plain Python API of this kernel's jobs (spec section 7).

The six verbs are written once, in :mod:`jobmagics.core.verbs`, and exported
here; this module gives them this process's job store (its registry, a thread
host and a process host) and, for ``session=S``, a session's
(:mod:`jobmagics.session_jobs`).
"""
from __future__ import annotations

import atexit
import threading

from .ship import capture, jobcode, shipping
from .core import rich, verbs
from .core.job import Job
from .core.registry import JobRegistry
from .core.runner import Work
from .core.threadhost import ThreadHost
from .core.verbs import (  # noqa: F401  (the public verbs, and what remote.py and entered.py use)
    get_job,
    receive_job,
    remove_job,
    set_exports,
    start_job,
    stop_job,
    stream_until_done,
    wait_job,
)
from .errors import UserInputError
from .hosts.process import ProcessHost
from .hosts.warm import WarmProcessHost

def _widget_views():
    """The widget views (ipywidgets imported lazily by them), or None where they cannot be imported."""
    try:
        from .widgets import views
    except ImportError:
        return None
    return views


rich.use_live_views(_widget_views)  # the job core shows jobs as widgets through this, naming no view itself

_lock = threading.Lock()
_registry = None
_thread_host = None
_process_host = None
_warm_host = None
_store = None
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
    global _registry, _thread_host, _process_host, _warm_host, _store
    with _lock:
        if _registry is None:
            _registry = JobRegistry()
            _thread_host = ThreadHost()
            _process_host = ProcessHost()
            _warm_host = WarmProcessHost()
            _store = verbs.LocalJobs(_registry, _start_here)
            atexit.register(shutdown)
    return _registry


def _store_for(session):
    """The job store a verb acts on: this kernel's, or the one inside ``session`` (a Session, id or name)."""
    if session is None:
        registry()
        return _store
    from .sessions import remote, jobs as session_jobs

    session = remote.sessions().resolve(session)
    own = getattr(session, "job_store", None)  # a session that keeps its jobs here (a cluster session)
    return own() if own is not None else session_jobs.SessionJobs(session)


verbs.use_stores(_store_for)  # the verbs act on this kernel's jobs, or on a session's


def _start_here(work, args, options):
    """Start a job of this kernel: a thread job, or a process job (with ``python``, that interpreter)."""
    python, reuse = options.pop("python"), options.pop("reuse", False)
    if options.pop("thread"):
        host = _thread_host
    elif reuse:
        host = _warm_host
    else:
        host = _process_host if python is None else ProcessHost(python)
    if "foreach" in options:
        from .hosts import foreach

        return foreach.start_local(host, work, args, options)
    return start_on(host, work, *args, **options)


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
    _warm_host.kill_all()
    _registry.shutdown()


def _command_of(fn, args, kwargs):
    parts = [repr(a) for a in args] + ["%s=%r" % kv for kv in kwargs.items()]
    return "%s(%s)" % (getattr(fn, "__qualname__", repr(fn)), ", ".join(parts))


def start_on(host, work, *args, name=None, init=None, using=None, capture_names=True, namespace=None,
             hidden=None, kwargs=None, export=None):
    """Start ``work`` on ``host`` (a thread host, or a host that runs jobs in an agent) and register it.

    Nothing is registered or started when the code does not parse or a
    variable cannot be sent.
    """
    reg = registry()
    prepared = prepare(work, args, init, using, capture_names, namespace, hidden, kwargs, export)
    command, work, init, variables, kwargs, export = prepared
    job = Job(command, host.job_type, name=name)
    if not host.ships:
        job.shipped = shipping.references(variables)
        job_work = Work(fn=work, args=args, kwargs=kwargs) if callable(work) else \
            Work(code=work, init=init, namespace=variables, export=export)
        reg.add(job)
        return host.start(job, job_work)
    request, buffers, job.shipped = shipped_request(prepared, args, name)
    reg.add(job)
    try:
        host.start(job, shipping.ShippedWork(request, buffers))
    except Exception:
        reg.discard(job)  # nothing started: the registry is as it was (the id stays used)
        raise
    return job


def prepare(work, args=(), init=None, using=None, capture_names=True, namespace=None, hidden=None, kwargs=None,
            export=None):
    """A job's work, checked, with what it takes: (command, work, init, variables, kwargs, export).

    Raises before anything starts when the code does not parse, a variable is
    missing or a flag names something that is not a variable.
    """
    kwargs = dict(kwargs or {})
    export = export_names(export, callable(work))
    if callable(work):
        return _command_of(work, args, kwargs), work, None, {}, kwargs, export
    command, work, init = work, jobcode.prepare(work), jobcode.prepare(init, "init code")
    return command, work, init, variables_for(work, init, namespace or {}, using, capture_names, hidden), kwargs, export


def shipped_request(prepared, args, name):
    """(request, buffers, shipped): what starts a prepared job in another process."""
    command, work, init, variables, kwargs, export = prepared
    if callable(work):
        return shipping.call_request(work, args, kwargs, command, name)
    return shipping.code_request(work, init, variables, command, name, export)


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
