"""``--foreach``: one parent job, one child per item, throttled (spec section 4; ForEach-Object -Parallel -AsJob)."""
from __future__ import annotations

import threading

import pytest

import jobmagics
from jobmagics import api
from jobmagics.errors import UserInputError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True, scope="module")
def job_store():
    api.registry()  # this process's job store, as loading jobmagics makes it


@pytest.mark.parametrize("thread", [True, False], ids=["thread", "process"])
def test_one_child_per_item_and_the_outputs_in_item_order(thread, capsys):
    parent = jobmagics.start_job("print('item', _)\n_ * 10", foreach=[3, 1, 2], thread=thread, namespace={})
    assert len(parent.child_jobs) == 3
    assert parent.wait(60)
    assert parent.state == "Completed"
    assert all(child.state == "Completed" for child in parent.child_jobs)
    assert jobmagics.receive_job(parent) == [30, 10, 20]
    assert capsys.readouterr().out == "item 3\nitem 1\nitem 2\n"
    assert not parent.has_more_data
    jobmagics.remove_job(parent)


def test_a_callable_gets_the_item_as_its_argument():
    parent = jobmagics.start_job(lambda item, extra: item + extra, 100, foreach=range(4), thread=True)
    assert parent.wait(30)
    assert jobmagics.receive_job(parent) == [100, 101, 102, 103]
    jobmagics.remove_job(parent)


def test_at_most_throttle_limit_children_run_at_once():
    gate, changed, running, peak = threading.Event(), threading.Condition(), [0], [0]

    def work(item):
        with changed:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            changed.notify_all()
        gate.wait(30)
        with changed:
            running[0] -= 1
        return item

    parent = jobmagics.start_job(work, foreach=range(5), throttle_limit=2, thread=True)
    with changed:
        assert changed.wait_for(lambda: running[0] == 2, 30)
    assert [c.state for c in parent.child_jobs[2:]] == ["NotStarted"] * 3
    assert parent.state == "Running"
    gate.set()
    assert parent.wait(30)
    assert peak[0] == 2
    assert jobmagics.receive_job(parent) == [0, 1, 2, 3, 4]
    jobmagics.remove_job(parent)


def test_a_failed_child_fails_the_parent_and_the_others_go_on():
    parent = jobmagics.start_job("1 / _", foreach=[1, 0, 2], thread=True, namespace={})
    assert parent.wait(30)
    assert [c.state for c in parent.child_jobs] == ["Completed", "Failed", "Completed"]
    assert parent.state == "Failed"
    jobmagics.remove_job(parent)


def test_stopping_the_parent_stops_running_and_waiting_children():
    parent = jobmagics.start_job("import time\nwhile True:\n    time.sleep(0.05)", foreach=range(3),
                                 throttle_limit=1, namespace={})
    first = parent.child_jobs[0]
    while first.state == "NotStarted":
        first.wait_for_activity(first.activity, 5)
    jobmagics.stop_job(parent)
    assert parent.state == "Stopped"
    assert [c.state for c in parent.child_jobs] == ["Stopped"] * 3
    jobmagics.remove_job(parent)


@pytest.mark.parametrize("kwargs, message", [
    (dict(foreach="abc"), "--foreach takes a collection"),
    (dict(foreach=[]), "--foreach has no items"),
    (dict(foreach=5), "--foreach takes a collection of items, not int"),
    (dict(foreach=[1], throttle_limit=0), "--throttle-limit must be at least 1"),
    (dict(throttle_limit=2), "--throttle-limit goes with --foreach"),
])
def test_bad_input_is_one_line_and_starts_nothing(kwargs, message):
    before = len(api.registry())
    with pytest.raises(UserInputError, match=message):
        jobmagics.start_job("_", thread=True, namespace={}, **kwargs)
    assert len(api.registry()) == before


@pytest.mark.kernel
def test_the_magic_takes_a_notebook_expression(kernel):
    assert kernel.run("items = ['a', 'b']\nparent = %start_job --thread --foreach items --name each _ * 2").ok
    assert kernel.run("%wait_job each").ok
    received = kernel.run("%receive_job each")
    assert received.ok and received.text == "['aa', 'bb']", received.stderr
    listed = kernel.run("%get_job each --include-child-jobs")
    assert listed.ok and listed.text.count("Completed") == 3
    ranged = kernel.run("%start_job --foreach 'range(3)' --throttle-limit 1 --name r -- _ + 1\n%wait_job r\n"
                        "%receive_job r")
    assert ranged.ok and ranged.text == "[1, 2, 3]", ranged.stderr
    bad = kernel.run("%start_job --foreach nothing_here _")
    assert bad.stderr.startswith("UsageError: --foreach nothing_here: NameError"), bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
