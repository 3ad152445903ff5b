import contextlib
import importlib.util
import io
import sys
import threading
import warnings

import pytest

import jobmagics
from jobmagics.core import context
from jobmagics.core.context import JobContext, RoutingStream


class Sink:
    """Collects what a job context records, as (stream, data) pairs."""

    def __init__(self):
        self.items = []
        self._lock = threading.Lock()

    def __call__(self, stream, data):
        with self._lock:
            self.items.append((stream, data))


def in_job(ctx, fn):
    """Run ``fn()`` in a new thread bound to ``ctx``; its result, or its exception re-raised here."""
    result = {}

    def work():
        context.bind(ctx)
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc
        finally:
            context.bind(None)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@contextlib.contextmanager
def routed_sys():
    """sys.stdout/sys.stderr as StringIOs with routing installed; all three hooks restored afterwards.

    (In the test body, not a fixture: pytest's capture swaps sys.stdout between setup and call.)
    """
    saved = sys.stdout, sys.stderr, warnings.showwarning
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    targets = sys.stdout, sys.stderr
    try:
        context.install_routing()
        yield targets
    finally:
        sys.stdout, sys.stderr, warnings.showwarning = saved


# ----- RoutingStream -------------------------------------------------------------------------

def test_writes_of_a_job_thread_go_to_its_context():
    sink, target = Sink(), io.StringIO()
    stream = RoutingStream(target, "stdout")
    written = in_job(JobContext(sink), lambda: stream.write("in the job\n"))
    assert written == len("in the job\n")
    assert sink.items == [("stdout", "in the job\n")]
    assert target.getvalue() == ""


def test_writes_of_other_threads_go_to_the_target():
    sink, target = Sink(), io.StringIO()
    stream = RoutingStream(target, "stderr")
    stream.write("main thread\n")
    other = threading.Thread(target=lambda: stream.write("unbound thread\n"))
    other.start()
    other.join()
    in_job(JobContext(sink), lambda: stream.write("job\n"))
    assert target.getvalue() == "main thread\nunbound thread\n"
    assert sink.items == [("stderr", "job\n")]


def test_two_jobs_write_to_their_own_contexts_at_the_same_time():
    target = io.StringIO()
    stream = RoutingStream(target, "stdout")
    sinks = [Sink(), Sink()]
    both_bound = threading.Barrier(2)

    def job(index):
        context.bind(JobContext(sinks[index]))
        try:
            both_bound.wait()
            for i in range(100):
                stream.write("%d:%d\n" % (index, i))
        finally:
            context.bind(None)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, sink in enumerate(sinks):
        assert sink.items == [("stdout", "%d:%d\n" % (index, i)) for i in range(100)]
    assert target.getvalue() == ""


def test_writelines_flush_and_isatty_follow_the_thread():
    sink, target = Sink(), io.StringIO()
    stream = RoutingStream(target, "stdout")

    def job():
        stream.writelines(["a", "b\n"])
        stream.flush()
        return stream.isatty()

    assert in_job(JobContext(sink), job) is False
    assert sink.items == [("stdout", "ab\n")]  # one line, one record
    stream.writelines(["c", "d"])
    assert target.getvalue() == "cd"
    assert stream.writable() and stream.encoding == getattr(target, "encoding", "utf-8")


def test_empty_writes_record_nothing():
    sink = Sink()
    stream = RoutingStream(io.StringIO(), "stdout")
    assert in_job(JobContext(sink), lambda: stream.write("")) == 0
    assert sink.items == []


def test_other_attributes_come_from_the_target():
    target = io.StringIO("already there")
    stream = RoutingStream(target, "stdout")
    assert stream.getvalue() == "already there"


# ----- install_routing -------------------------------------------------------------------------

def test_install_routing_routes_print_and_is_idempotent():
    sink = Sink()

    def job():
        print("from the job")
        print("job error", file=sys.stderr)

    with routed_sys() as (out, err):
        routed_out = sys.stdout
        assert isinstance(routed_out, RoutingStream) and routed_out.target is out
        context.install_routing()
        assert sys.stdout is routed_out and sys.stderr.target is err
        in_job(JobContext(sink), job)
        print("from the cell")
    assert sink.items == [("stdout", "from the job\n"), ("stderr", "job error\n")]
    assert out.getvalue() == "from the cell\n" and err.getvalue() == ""


def test_warnings_of_a_job_go_to_its_warning_stream():
    sink = Sink()

    def job():
        warnings.warn("careful in the job", UserWarning)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with routed_sys():
            assert warnings.showwarning._jobmagics_routing
            in_job(JobContext(sink), job)
            warnings.warn("careful in the cell", UserWarning)
    [(stream, text)] = sink.items
    assert stream == "warning" and "UserWarning: careful in the job" in text
    assert [str(w.message) for w in caught] == ["careful in the cell"]


# ----- emit / progress / stop_requested -------------------------------------------------------

@pytest.mark.parametrize("call, name", [(lambda: context.emit(1), "emit"), (lambda: context.progress(50), "progress")])
def test_emit_and_progress_outside_a_job_raise_a_clear_error(call, name):
    with pytest.raises(RuntimeError, match=r"^%s\(\) only works inside a job started by jobmagics$" % name):
        call()


def test_emit_inside_a_job_records_an_output_object():
    sink = Sink()
    value = {"a": 1}
    assert in_job(JobContext(sink), lambda: context.emit(value)) is None
    assert sink.items == [("output", value)] and sink.items[0][1] is value


def test_progress_computes_the_percentage_from_current_and_total():
    sink = Sink()
    in_job(JobContext(sink), lambda: context.progress(current=3, total=4, status="working", activity="copy"))
    assert sink.items == [("progress", {"percent": 75.0, "status": "working", "activity": "copy", "current": 3,
                                        "total": 4, "completed": False})]


@pytest.mark.parametrize("kwargs, percent", [
    ({"percent": 40}, 40.0),
    ({"percent": 40, "current": 1, "total": 2}, 40.0),  # an explicit percentage wins
    ({"current": 0, "total": 10}, 0.0),
    ({"current": 5, "total": 0}, None),  # no total: no percentage rather than a ZeroDivisionError
    ({"status": "just text"}, None),
    ({"completed": True}, None),
])
def test_progress_percent(kwargs, percent):
    sink = Sink()
    in_job(JobContext(sink), lambda: context.progress(**kwargs))
    [(stream, data)] = sink.items
    assert stream == "progress" and data["percent"] == percent
    assert data["completed"] is bool(kwargs.get("completed"))


def test_stop_requested_reflects_the_stop_event():
    assert context.stop_requested() is False  # outside a job
    stop = threading.Event()
    ctx = JobContext(Sink(), stop_event=stop)
    assert in_job(ctx, context.stop_requested) is False
    stop.set()
    assert in_job(ctx, context.stop_requested) is True


def test_a_context_gets_its_own_stop_event_by_default():
    first, second = JobContext(Sink()), JobContext(Sink())
    first.stop_event.set()
    assert not second.stop_event.is_set()


def test_the_package_exports_the_same_functions():
    assert jobmagics.emit is context.emit
    assert jobmagics.progress is context.progress
    assert jobmagics.stop_requested is context.stop_requested


# ----- bind / current and the shared state --------------------------------------------------

def test_bind_and_current_are_per_thread():
    ctx = JobContext(Sink())
    assert context.current() is None
    assert in_job(ctx, context.current) is ctx
    assert context.current() is None
    assert in_job(ctx, lambda: threading.get_ident()) not in context._state.by_thread


def test_a_second_copy_of_the_module_shares_the_job_contexts():
    # Like the shipped _jobmagics.core.context next to the installed jobmagics.core.context.
    spec = importlib.util.spec_from_file_location("_jobmagics_test_context_copy", context.__file__)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    assert copy is not context
    assert copy._state is context._state is sys.modules[context._STATE_MODULE]
    sink = Sink()

    def job():
        return copy.current(), copy.emit("from the copy")

    ctx = JobContext(sink)
    assert in_job(ctx, job) == (ctx, None)
    assert sink.items == [("output", "from the copy")]


def test_importing_again_keeps_the_shared_state():
    state = sys.modules[context._STATE_MODULE]
    assert importlib.import_module("jobmagics.core.context") is context
    assert context._shared_state() is state


def test_text_is_recorded_a_line_at_a_time_and_partial_lines_in_order():
    sink = Sink()
    ctx = JobContext(sink)
    for piece in ("noise", " ", "1", "\n", "two\nthree"):
        ctx.write("stdout", piece)
    assert sink.items == [("stdout", "noise 1\n"), ("stdout", "two\nthree")]
    ctx.write("stdout", "partial")
    ctx.write("stderr", "err\n")  # the other stream: the partial line goes first
    ctx.write("stdout", "more")
    ctx.emit(42)  # any other record: the partial line goes first
    ctx.write("stdout", "last")
    ctx.flush_text()
    assert sink.items[2:] == [("stdout", "partial"), ("stderr", "err\n"), ("stdout", "more"),
                              ("output", 42), ("stdout", "last")]


def test_a_partial_line_is_recorded_once_it_waited_or_grew(monkeypatch):
    sink = Sink()
    ctx = JobContext(sink)
    ctx.write("stdout", "x" * context.PARTIAL_LINE_CHARS)
    assert sink.items == [("stdout", "x" * context.PARTIAL_LINE_CHARS)]
    monkeypatch.setattr(context, "PARTIAL_LINE_DELAY", 0.0)
    ctx.write("stdout", ".")
    ctx.write("stdout", ".")  # a progress dot after the delay: shown without waiting for the line
    assert sink.items[1:] == [("stdout", "..")]
