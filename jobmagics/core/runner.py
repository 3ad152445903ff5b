"""Running a job's work in the calling thread: code with a last expression, or a callable."""
from __future__ import annotations

import ast
import functools
import itertools
import linecache
import traceback

from . import shell_escape
from .states import JobState

_code_numbers = itertools.count(1)

#: Files whose frames lead into a job's code; tracebacks start below them.
INTERNAL_FILES = {__file__}


class StopJob(BaseException):
    """Raised inside a job's thread to stop it (cooperatively or asynchronously)."""


class Work:
    """What a job runs: ``code`` (+ optional ``init``) in ``namespace``, or ``fn(*args, **kwargs)``.

    The namespace is copied, so a job's assignments stay in the job, unless
    ``shared_namespace`` is given: then the code runs in that very dict (the
    namespace of an entered session, which lives from one cell to the next).
    """

    def __init__(self, code=None, init=None, namespace=None, fn=None, args=(), kwargs=None, shared_namespace=None,
                 export=()):
        self.code = code
        self.export = tuple(export or ())  # names whose values go back when the code ends (--export)
        self.init = init
        self.namespace = shared_namespace if shared_namespace is not None else dict(namespace or {})
        self.fn = fn
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})


def compile_cell(code, filename):
    """Compile ``code`` like a notebook cell: body, and the last expression apart (or None)."""
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, filename, "exec")
    return body, (compile(last, filename, "eval") if last is not None else None)


def _register_source(code, label):
    # Tracebacks from job code then show its lines, as they do for a cell. The cache is the
    # process's: a name another copy of this module took (a shipped core loaded beside the
    # installed one) is skipped, never overwritten.
    lines = code.splitlines(True)
    while True:
        filename = "<%s-%d>" % (label, next(_code_numbers))
        entry = (len(code), None, lines, filename)
        if linecache.cache.setdefault(filename, entry) is entry:
            return filename


def run_work(work, emit):
    """Run ``work``; ``emit(value)`` gets the result. Returns the result value (None if none).

    Figures the work left open are shown first, as at the end of a cell.
    """
    from . import figures

    value = None
    try:
        if work.fn is not None:
            value = work.fn(*work.args, **work.kwargs)
        else:
            namespace = work.namespace
            namespace.setdefault("__name__", "__main__")
            from .rich import display
            namespace.setdefault("display", display)  # a figure displays as its image, in every kind of job
            if shell_escape.SHELL_NAME in (work.code or "") + (work.init or ""):
                namespace.setdefault(shell_escape.SHELL_NAME, shell_escape.SHELL)  # the code has !commands
            if work.init:
                _run_code(work.init, namespace, "job-init")
            value = _run_code(work.code or "", namespace, "job")
    finally:
        figures.job_ended(value)
        if work.export:
            export_names(work.export, work.namespace)
    if value is not None:
        emit(value)
    return value


def export_names(names, namespace):
    """Send back the values the job's code left in ``names`` (export records); a name never set is a warning."""
    from . import context

    ctx = context.current()
    missing = [name for name in names if name not in namespace]
    for name in names:
        if name in namespace:
            ctx.record("export", (name, namespace[name]))
    if missing:
        ctx.record("warning", "--export: the job never set %s\n" % ", ".join(missing))


#: How many compiled code strings are kept (a notebook starts the same code again and again).
COMPILE_CACHE_SIZE = 256


@functools.lru_cache(maxsize=COMPILE_CACHE_SIZE)
def _compiled(code, label):
    # Compiling costs more than the rest of a small job. Code objects are immutable, so jobs running
    # the same code share one (and its source registered once, under one file name).
    return compile_cell(code, _register_source(code, label))


def _run_code(code, namespace, label):
    body, last = _compiled(code, label)
    exec(body, namespace)
    return eval(last, namespace) if last is not None else None


def describe_exception(exc):
    """The error record of an exception: name, message and traceback text without our frames."""
    if isinstance(exc, SyntaxError):  # the job's code did not compile: where in it is all that matters
        text = "".join(traceback.format_exception_only(type(exc), exc))
        return {"ename": type(exc).__name__, "evalue": str(exc), "traceback": text}
    tb = exc.__traceback__
    # Drop the frames that lead into the job so the traceback starts in the job's code.
    while tb is not None and tb.tb_frame.f_code.co_filename in INTERNAL_FILES:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return {"ename": type(exc).__name__, "evalue": str(exc), "traceback": text}


def outcome_of(exc, stop_requested):
    """(state, reason, error record or None) for how a job's work ended."""
    if exc is None:
        if stop_requested:
            return JobState.Stopped, "stopped on request", None
        return JobState.Completed, None, None
    if isinstance(exc, StopJob) or (stop_requested and isinstance(exc, KeyboardInterrupt)):
        return JobState.Stopped, "stopped on request", None
    if isinstance(exc, SystemExit):
        reason = "the job called sys.exit(%r)" % (exc.code,)
        record = describe_exception(exc)
        return JobState.Failed, reason, record
    record = describe_exception(exc)
    return JobState.Failed, "%s: %s" % (record["ename"], record["evalue"]), record
