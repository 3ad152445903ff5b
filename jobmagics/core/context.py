"""Which job the current thread works for, and the stream routing that follows from it.

``print`` inside a job must land in that job's stdout, never in whatever cell is
running, while ``print`` in the cell keeps working. ``sys.stdout``/``sys.stderr``
are therefore replaced once by :class:`RoutingStream`, which asks the thread's
job context where a write belongs and otherwise passes it through.

The thread -> context map lives in one module object registered in
``sys.modules`` so that every copy of this file in a process (the installed
``jobmagics.core.context`` and the shipped ``_jobmagics.core.context``) sees
the same contexts: ``from jobmagics import emit`` works in either.
"""
from __future__ import annotations

import io
import sys
import threading
import time
import types
import warnings

_STATE_MODULE = "_jobmagics_job_context"


def _shared_state():
    state = sys.modules.get(_STATE_MODULE)
    if state is None:
        state = types.ModuleType(_STATE_MODULE, "jobmagics job contexts (shared by every copy)")
        state.by_thread = {}
        state.lock = threading.Lock()
        sys.modules[_STATE_MODULE] = state
    return state


_state = _shared_state()


#: A partial line waits at most this long (checked at the next write) and this big before it is recorded.
PARTIAL_LINE_DELAY = 0.2
PARTIAL_LINE_CHARS = 8192


class JobContext:
    """What a running job writes to: ``sink(stream, data)`` records one item.

    Text is recorded a line at a time: ``print("a", b)`` makes four writes and
    one record. A partial line is recorded when its line ends, at ``flush()``,
    before any other record, when the job ends, or at a write after
    ``PARTIAL_LINE_DELAY`` -- as a line-buffered terminal would show it.
    """

    def __init__(self, sink, stop_event=None):
        self.sink = sink
        self.stop_event = stop_event or threading.Event()
        self._pending_stream = None
        self._pending = []
        self._pending_chars = 0
        self._pending_since = 0.0
        self.figures = None  # the job's open pyplot figures, once it makes one (figures.py)
        self.shown_figures = None  # figures the job displayed (figures.py)
        self.children = None  # the process groups the job's children lead, where it owns them (children.py)

    def write(self, stream, text):
        if not text:
            return
        if stream != self._pending_stream:
            self.flush_text()
        if "\n" not in text and self._pending_chars + len(text) < PARTIAL_LINE_CHARS:
            if not self._pending:
                self._pending_stream, self._pending_since = stream, time.monotonic()
            elif time.monotonic() - self._pending_since >= PARTIAL_LINE_DELAY:
                self._pending.append(text)
                self.flush_text()
                return
            self._pending.append(text)
            self._pending_chars += len(text)
            return
        if self._pending:
            self._pending.append(text)
            text = "".join(self._pending)
            self._pending, self._pending_chars, self._pending_stream = [], 0, None
        self.sink(stream, text)

    def flush_text(self):
        """Record the partial line held back, if any."""
        if self._pending:
            stream, text = self._pending_stream, "".join(self._pending)
            self._pending, self._pending_chars, self._pending_stream = [], 0, None
            self.sink(stream, text)

    def emit(self, obj):
        self.flush_text()
        self.sink("output", obj)

    def record(self, stream, data):
        self.flush_text()
        self.sink(stream, data)


def current():
    """The job context of the calling thread, or None outside a job."""
    return _state.by_thread.get(threading.get_ident())


def bind(context):
    """Make the calling thread work for ``context`` (None to unbind)."""
    ident = threading.get_ident()
    with _state.lock:
        if context is None:
            _state.by_thread.pop(ident, None)
        else:
            _state.by_thread[ident] = context


class RoutingStream(io.TextIOBase):
    """A text stream that sends a job thread's writes to its job and the rest to ``target``."""

    def __init__(self, target, stream_name):
        self.target = target
        self.stream_name = stream_name

    def write(self, text):
        ctx = current()
        if ctx is None:
            return self.target.write(text)
        ctx.write(self.stream_name, str(text))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        ctx = current()
        if ctx is None:
            self.target.flush()
        else:
            ctx.flush_text()

    def isatty(self):
        return current() is None and self.target.isatty()

    def fileno(self):
        return self.target.fileno()

    def writable(self):
        return True

    @property
    def encoding(self):
        return getattr(self.target, "encoding", "utf-8")

    def __getattr__(self, name):
        return getattr(self.target, name)


def install_routing():
    """Route sys.stdout/sys.stderr and warnings through job contexts (idempotent)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not getattr(stream, "_jobmagics_routing", False) and stream is not None:
            routed = RoutingStream(stream, name)
            routed._jobmagics_routing = True
            setattr(sys, name, routed)
    if not getattr(warnings.showwarning, "_jobmagics_routing", False):
        original = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None, line=None):
            ctx = current()
            if ctx is None:
                return original(message, category, filename, lineno, file, line)
            text = warnings.formatwarning(message, category, filename, lineno, line)
            ctx.record("warning", text)

        showwarning._jobmagics_routing = True
        warnings.showwarning = showwarning


def _require_context(what):
    ctx = current()
    if ctx is None:
        raise RuntimeError("%s() only works inside a job started by jobmagics" % what)
    return ctx


def emit(obj):
    """Add ``obj`` to the current job's output stream (like writing to the pipeline)."""
    _require_context("emit").emit(obj)
    return None


def progress(percent=None, status=None, activity=None, current=None, total=None, completed=False):
    """Report progress of the current job: a percentage or current/total, with status text."""
    if percent is None and current is not None and total:
        percent = 100.0 * current / total
    data = {"percent": None if percent is None else float(percent), "status": status,
            "activity": activity, "current": current, "total": total, "completed": bool(completed)}
    _require_context("progress").record("progress", data)


def stop_requested():
    """True once someone asked the current job to stop: long loops may check it and return."""
    ctx = current()
    return bool(ctx and ctx.stop_event.is_set())
