import sys

import pytest

from jobmagics.core.delivery import collapse, deliver
from jobmagics.core.errors import JobError
from jobmagics.core.job import Job
from jobmagics.core.records import Record


@pytest.fixture(autouse=True)
def no_ipython_shell(monkeypatch):
    """Delivery as outside IPython: no running shell can be found (delivery never starts one)."""
    monkeypatch.delitem(sys.modules, "IPython.core.interactiveshell", raising=False)


def records(*items):
    return [Record(seq, stream, data) for seq, (stream, data) in enumerate(items, 1)]


def test_text_goes_to_stdout_and_stderr(capsys):
    deliver(records(("stdout", "out 1\n"), ("stderr", "err 1\n"), ("stdout", "out 2\n"),
                    ("warning", "w.py:1: UserWarning: careful\n")))
    captured = capsys.readouterr()
    assert captured.out == "out 1\nout 2\n"
    assert captured.err == "err 1\nw.py:1: UserWarning: careful\n"


def test_output_objects_are_returned_in_order_and_not_printed(capsys):
    first, second = {"a": 1}, [1, 2]
    outputs = deliver(records(("output", first), ("stdout", "text\n"), ("output", second), ("output", None)))
    assert outputs == [first, second, None]
    assert outputs[0] is first and outputs[1] is second
    assert capsys.readouterr().out == "text\n"


def test_outputs_are_appended_to_a_given_list():
    outputs = ["earlier"]
    result = deliver(records(("output", 1), ("output", 2)), outputs)
    assert result is outputs
    assert outputs == ["earlier", 1, 2]


def test_nothing_to_deliver(capsys):
    assert deliver([]) == []
    assert capsys.readouterr() == ("", "")


def test_an_error_is_shown_as_its_traceback_text_on_stderr(capsys):
    error = JobError("ValueError", "bad", "Traceback (most recent call last):\n  File \"<job-1>\", line 1, in "
                     "<module>\nValueError: bad\n", computer="far-host", job_name="Job3")
    outputs = deliver(records(("stdout", "before\n"), ("error", error), ("stdout", "after\n")))
    assert outputs == []
    captured = capsys.readouterr()
    assert captured.out == "before\nafter\n"
    assert captured.err == ("Error in job Job3 on far-host:\nTraceback (most recent call last):\n"
                            "  File \"<job-1>\", line 1, in <module>\nValueError: bad\n")


def test_an_error_without_traceback_text_shows_its_message(capsys):
    deliver(records(("error", JobError("KeyError", "'x'"))))
    assert capsys.readouterr().err == "KeyError: 'x'\n"


def test_an_error_record_of_a_job_is_delivered_as_a_job_error(capsys):
    job = Job("x", "ThreadJob", name="Job9")
    job._record("error", {"ename": "ZeroDivisionError", "evalue": "division by zero",
                          "traceback": "Traceback (most recent call last):\nZeroDivisionError: division by zero\n"})
    job._record("output", 5)
    assert deliver(job.records(keep=False)) == [5]
    err = capsys.readouterr().err
    assert err == "Error in job Job9:\nTraceback (most recent call last):\nZeroDivisionError: division by zero\n"
    assert not job.has_more_data


def test_display_items_print_their_plain_text(capsys):
    item = {"data": {"text/plain": "<Chart 3 bars>", "text/html": "<svg>...</svg>"}, "metadata": {}}
    deliver(records(("stdout", "a\n"), ("display", item), ("stdout", "b\n")))
    assert capsys.readouterr().out == "a\n<Chart 3 bars>\nb\n"


def test_a_display_item_without_plain_text_prints_an_empty_line(capsys):
    deliver(records(("display", {"data": {"image/png": "iVBOR..."}})))
    assert capsys.readouterr().out == "\n"


def test_progress_records_are_not_shown(capsys):
    outputs = deliver(records(("progress", {"percent": 50.0, "status": "half"})))
    assert outputs == []
    assert capsys.readouterr() == ("", "")


def test_collapse():
    assert collapse([]) is None
    assert collapse(None) is None
    assert collapse([42]) == 42
    several = [1, 2, 3]
    assert collapse(several) is several
    assert collapse([[1, 2]]) == [1, 2]  # one list is that list, not a list of one list
    assert collapse([None]) is None


class CountingStream:
    def __init__(self):
        self.written, self.flushes = [], 0

    def write(self, text):
        self.written.append(text)

    def flush(self):
        self.flushes += 1


def test_streams_are_flushed_only_when_something_was_shown(monkeypatch):
    out, err = CountingStream(), CountingStream()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    deliver(records(("output", 1), ("progress", {"percent": 50.0})))
    assert (out.flushes, err.flushes) == (0, 0)  # in a kernel each flush waits for the IO thread
    deliver(records(("output", 1), ("stdout", "text\n")))
    assert out.written == ["text\n"] and (out.flushes, err.flushes) == (1, 1)
