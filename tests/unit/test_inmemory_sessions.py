"""Sessions, fan-out and the session-side verbs over an in-memory transport (a socket pair).

The kernel's side is the real one (Session, SessionRegistry, AgentLink,
invoke, FanOut, SessionJobs); the far side is the shipped agent serving the
other end of the socket pair in a thread of this process
(``tests/inmemory_session.py``). Tests synchronise on job and session states
and on :class:`Gate`, where job code waits until the test lets it go.
"""
from __future__ import annotations

import os
import sys
import threading

import pytest

import jobmagics
from jobmagics import JobError, JobState, api
from jobmagics.errors import JobStateError, UserInputError
from jobmagics.sessions import remote
# The job core's names as the session module has them: they stay put wherever the core's folder moves.
from jobmagics.sessions.session import SESSION_TRANSITIONS, Session, SessionState, wire
from jobmagics.transport.bootstrap import agent_bundle

from inmemory_session import (WAIT, Gate, InMemoryTransport, in_memory_session, read_bundle, session_state_reached,
                              shipped_agent, state_reached)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def session():
    with in_memory_session("mem-a") as opened:
        yield opened


@pytest.fixture
def gate():
    opened = Gate()
    yield opened
    opened.close()


@pytest.fixture
def kernel_jobs():
    """Jobs this test adds to the kernel's own registry are removed after it."""
    before = set(api.registry().jobs())
    yield
    for job in set(api.registry().jobs()) - before:
        api.registry().remove(job, force=True)


def _names(listing):
    return sorted(job.name for job in listing)


def _thread_named(name):
    return [thread for thread in threading.enumerate() if thread.name == name]


# ----- the agent at the far end ----------------------------------------------------------

def test_the_agent_is_the_shipped_copy_and_leaves_the_kernel_as_it_was(session):
    bundle = read_bundle(agent_bundle())
    agent = shipped_agent()
    assert agent.__name__ == bundle["entry"] and not agent.__name__.startswith("jobmagics")
    assert session.hello["pid"] == os.getpid()  # in this very process
    # The agent bound its own verbs; the kernel's verbs and the ``jobmagics`` module are untouched.
    assert sys.modules["jobmagics"] is jobmagics
    assert api.verbs._stores["for_session"] is api._store_for


# ----- session states and callbacks ------------------------------------------------------

def test_a_session_opens_then_closes_with_each_move_told_once(gate, kernel_jobs):
    transport = InMemoryTransport("mem-open")
    session = Session(transport, remote.sessions().next_id(), name="mem-open", transport="InMemory")
    seen = []
    session.add_state_callback(lambda s: seen.append((s.state, s.availability)))
    try:
        session.open()
        session.start_reading()
        assert session.state == SessionState.Opened and session.availability == "Available"
        assert session.hello["protocol"] and session.hello["durable"] is False
        job = api.start_on(session.host, gate.code, namespace={})  # a job of this kernel, run there
        assert state_reached(job, JobState.Running).wait(WAIT)
    finally:
        session.close()
        transport.agent_thread.join(WAIT)
    assert not transport.agent_thread.is_alive()
    assert session.state == SessionState.Closed and session.link.ended.is_set()
    assert seen == [(SessionState.Opened, "Available"), (SessionState.Closed, "None")]
    assert job.state == JobState.Stopped  # its agent stopped it, or the closing did
    assert SESSION_TRANSITIONS[SessionState.Closed] == set() and not session._move(SessionState.Opened)


def test_the_far_end_closing_breaks_the_session_and_releases_jobs_and_waiters(gate, kernel_jobs, monkeypatch,
                                                                               caplog):
    with in_memory_session("mem-lost") as session:
        session.add_state_callback(lambda s: 1 / 0)  # a raising callback: logged, the ones after it still run
        broken = session_state_reached(session, SessionState.Broken)
        forwarded = api.start_on(session.host, gate.code, namespace={})  # its records come back here
        kept = jobmagics.start_job(gate.code, session=session, namespace={})  # kept there
        assert gate.arrived() and gate.arrived()

        wait_sent = threading.Event()
        send = session.link.writer.send

        def noting_send(kind, control=None, *args, **kwargs):
            send(kind, control, *args, **kwargs)
            if isinstance(control, dict) and control.get("op") == "wait":
                wait_sent.set()

        monkeypatch.setattr(session.link.writer, "send", noting_send)
        outcome = {}

        def wait_there():
            try:
                outcome["value"] = jobmagics.wait_job(kept, session=session)
            except Exception as exc:
                outcome["error"] = exc

        waiter = threading.Thread(target=wait_there, name="test-waiter")
        waiter.start()
        assert wait_sent.wait(WAIT)  # the wait is under way there, with no timeout

        with caplog.at_level("ERROR", logger="jobmagics"):
            session._connection.end_far_side()
            assert broken.wait(WAIT)
            waiter.join(WAIT)
            assert forwarded.wait(WAIT)

        assert not waiter.is_alive()
        assert isinstance(outcome.get("error"), UserInputError) and "mem-lost" in str(outcome["error"])
        assert "\n" not in str(outcome["error"])
        assert session.reason == "the connection to mem-lost was lost" and session.availability == "None"
        assert forwarded.state == JobState.Failed and forwarded.reason == session.reason
        assert [e.ename for e in forwarded.error] == ["SessionBroken"]
        assert any(isinstance(r.exc_info[1], ZeroDivisionError) for r in caplog.records if r.exc_info)
        with pytest.raises(UserInputError, match="session mem-lost is Broken: the connection to mem-lost was lost"):
            jobmagics.get_job(session=session)
        # Nothing is left running: the agent's thread and the session's reader ended.
        session._connection.agent_thread.join(WAIT)
        assert not session._connection.agent_thread.is_alive()
        for reader in _thread_named("jobmagics-session-mem-lost"):
            reader.join(WAIT)
            assert not reader.is_alive()
    assert session.state == SessionState.Closed  # Broken -> Closed, as the table allows


def test_a_call_on_a_link_whose_reader_ended_fails_at_once_instead_of_waiting_for_a_reply():
    from jobmagics.errors import LinkEndedError

    with in_memory_session("mem-gone") as session:
        link = session.link
        session._connection.end_far_side()
        assert link.ended.wait(WAIT)  # the reader has released the calls it saw, and left
        with pytest.raises(LinkEndedError, match="the connection ended before the agent answered"):
            link.call("find", {"refs": []})  # no timeout: without the check this would wait forever


def test_a_raising_job_callback_is_logged_and_the_reader_lives_on(session, gate, kernel_jobs, caplog):
    with caplog.at_level("ERROR", logger="jobmagics"):
        job = api.start_on(session.host, gate.code, namespace={})
        job.add_state_callback(lambda *args: 1 / 0)  # runs on the session's reader thread
        told_finished = threading.Event()
        job.add_state_callback(lambda job, old, new: new.finished and told_finished.set())  # runs after it
        assert gate.arrived()
        gate.let_through()
        assert told_finished.wait(WAIT)
    assert job.state == JobState.Completed
    assert any(isinstance(r.exc_info[1], ZeroDivisionError) for r in caplog.records if r.exc_info)
    assert not session.link.ended.is_set()
    assert remote.invoke("6 * 7", session=session, namespace={}) == 42  # frames are still applied


# ----- invoke and fan-out ----------------------------------------------------------------

def test_invoke_streams_output_and_returns_the_value(session, capsys):
    code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')\n40 + 2"
    assert remote.invoke(code, session=session, namespace={}) == 42
    out = capsys.readouterr()
    assert out.out == "one\nthree\n" and out.err == "two\n"


def test_invoke_raises_the_jobs_error_after_its_output(session, capsys):
    with pytest.raises(JobError) as raised:
        remote.invoke("print('before')\nraise ValueError('bad value')", session=session, namespace={})
    assert raised.value.ename == "ValueError" and "bad value" in str(raised.value)
    assert capsys.readouterr().out == "before\n"


def test_invoke_as_job_keeps_the_records_in_order(session, kernel_jobs):
    code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')\nraise ValueError('last')"
    parent = remote.invoke(code, session=session, as_job=True, namespace={})
    assert parent.wait(WAIT) and parent.state == JobState.Failed
    records = [(r.stream, r.data if r.stream != "error" else r.data.ename) for r in parent.records(keep=True)]
    assert records == [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n"), ("error", "ValueError")]


def test_invoke_on_two_sessions_tags_each_line_with_its_computer(capsys):
    with in_memory_session("mem-a") as first, in_memory_session("mem-b") as second:
        assert remote.invoke("print('hello')\n1", session=[first, second], namespace={}) == [1, 1]
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == ["[mem-a] hello", "[mem-b] hello"]


def test_as_job_fans_out_one_child_at_a_time_under_throttle_limit_1(gate, kernel_jobs):
    code = gate.code + "if _pass == 2:\n    raise ValueError('second fails')\n"
    with in_memory_session("mem-a") as first, in_memory_session("mem-b") as second:
        parent = remote.invoke(code, session=[first, second], as_job=True, throttle_limit=1, namespace={})
        assert parent in api.registry().jobs()
        one, two = parent.child_jobs
        assert [one.location, two.location] == ["mem-a", "mem-b"]

        assert gate.arrived() and state_reached(one, JobState.Running).wait(WAIT)
        assert two.state == JobState.NotStarted  # waits for the one slot
        assert parent.state == JobState.Running

        gate.let_through()
        assert gate.arrived() and state_reached(two, JobState.Running).wait(WAIT)
        assert one.state == JobState.Completed  # its slot went to the second child only then
        assert parent.state == JobState.Running

        gate.let_through()
        assert parent.wait(WAIT)
    assert two.state == JobState.Failed and parent.state == JobState.Failed  # one child failed: the parent failed
    records = list(parent.records(keep=True))
    assert [(r.computer, r.data) for r in records if r.stream == "stdout"] == [("mem-a", "pass 1\n"),
                                                                               ("mem-b", "pass 2\n")]
    assert [(r.computer, r.data.ename) for r in records if r.stream == "error"] == [("mem-b", "ValueError")]


def test_stopping_a_fan_out_stops_the_running_child_there_and_the_waiting_one_here(gate, kernel_jobs):
    with in_memory_session("mem-a") as first, in_memory_session("mem-b") as second:
        parent = remote.invoke(gate.code, session=[first, second], as_job=True, throttle_limit=1, namespace={})
        one, two = parent.child_jobs
        assert gate.arrived() and state_reached(one, JobState.Running).wait(WAIT)
        (stopped,) = jobmagics.stop_job(parent)
        assert stopped is parent and parent.state == JobState.Stopped
        assert one.state == two.state == JobState.Stopped  # the waiting one never runs its code here


def test_stop_job_stops_a_job_of_this_kernel_running_in_the_session(session, gate, kernel_jobs):
    job = api.start_on(session.host, gate.code, namespace={})
    assert gate.arrived()
    (stopped,) = jobmagics.stop_job(job)
    assert stopped is job and job.state == JobState.Stopped
    assert not session.link.ended.is_set()


def test_a_start_that_fails_after_its_child_finished_changes_nothing(session, kernel_jobs, monkeypatch):
    # The sending thread may return after the child ran to its end and its session closed: the
    # closed stream raises then (a flush on a closed file), and the child must keep its own end.
    send = session.link.writer.send

    def send_then_fail(kind, control=None, job=0, buffers=()):
        send(kind, control, job, buffers)
        if kind == wire.START:
            assert session.link.jobs[job].wait(WAIT)
            raise ValueError("I/O operation on closed file")

    monkeypatch.setattr(session.link.writer, "send", send_then_fail)
    parent = remote.invoke("print('ran')", session=session, as_job=True, namespace={})
    assert parent.wait(WAIT)
    for starter in _thread_named("jobmagics-fanout-mem-a"):
        starter.join(WAIT)
        assert not starter.is_alive()
    (child,) = parent.child_jobs
    assert child.state == JobState.Completed and child.reason is None
    assert [(r.stream, r.data) for r in child.records(keep=True)] == [("stdout", "ran\n")]


# ----- the session-side verbs (session=) ----------------------------------------------------

def _finished_job(session, code, name=None):
    job = jobmagics.start_job(code, session=session, name=name, namespace={})
    (waited,) = jobmagics.wait_job(job, session=session)
    assert waited.finished
    return waited


def test_start_job_and_get_job_with_names_and_wildcards(session):
    for name in ("alpha-1", "alpha-2", "beta"):
        _finished_job(session, "1", name)
    assert _names(jobmagics.get_job(session=session)) == ["alpha-1", "alpha-2", "beta"]
    assert _names(jobmagics.get_job("alpha-*", session=session)) == ["alpha-1", "alpha-2"]
    assert _names(jobmagics.get_job("alpha-*", "beta", session=session.name)) == ["alpha-1", "alpha-2", "beta"]
    assert _names(jobmagics.get_job("gamma-*", session=session)) == []  # a pattern may match nothing
    assert _names(jobmagics.get_job(state="Completed", session=session)) == ["alpha-1", "alpha-2", "beta"]
    (job,) = jobmagics.get_job("beta", session=session)
    assert job.location == "localhost" and job.state == JobState.Completed  # as the session sees it


def test_an_unknown_job_is_the_same_one_line_error_as_here(session):
    with pytest.raises(UserInputError) as there:
        jobmagics.get_job("no-such-job", session=session)
    with pytest.raises(UserInputError) as here:
        jobmagics.get_job("no-such-job")
    assert str(there.value) == str(here.value)
    assert str(there.value).startswith("no job with id or name 'no-such-job'") and "\n" not in str(there.value)


def test_receive_job_keep_leaves_the_output_for_the_next_receive(session, capsys):
    job = _finished_job(session, "print('hi')\n42")
    assert jobmagics.receive_job(job, keep=True, session=session) == 42
    assert jobmagics.receive_job(job, session=session) == 42
    assert jobmagics.receive_job(job, session=session) is None  # drained
    assert capsys.readouterr().out == "hi\nhi\n"


def test_receive_job_wait_waits_there_then_delivers(session, gate, capsys):
    job = jobmagics.start_job(gate.code + "'value'", session=session, namespace={})
    assert gate.arrived()
    gate.let_through()
    assert jobmagics.receive_job(job, wait=True, session=session) == "value"
    assert capsys.readouterr().out == "pass 1\n"
    (seen,) = jobmagics.get_job(job, session=session)
    assert seen.state == JobState.Completed and not seen.has_more_data


def test_wait_job_refuses_a_negative_timeout_as_here_and_a_timeout_is_no_error(session, gate):
    job = jobmagics.start_job(gate.code, session=session, namespace={})
    with pytest.raises(UserInputError) as there:
        jobmagics.wait_job(job, timeout=-1, session=session)
    with pytest.raises(UserInputError) as here:
        jobmagics.wait_job(timeout=-1)
    assert str(there.value) == str(here.value) == "--timeout must not be negative"
    assert gate.arrived()
    assert list(jobmagics.wait_job(job, timeout=0, session=session)) == []  # not finished: nothing, no error
    gate.let_through()
    (done,) = jobmagics.wait_job(job, session=session)
    assert done.state == JobState.Completed


def test_stop_job_stops_a_running_job_there(session, gate):
    job = jobmagics.start_job(gate.code, session=session, name="held", namespace={})
    assert gate.arrived()
    (stopped,) = jobmagics.stop_job(job, session=session)
    assert stopped.name == "held" and stopped.state == JobState.Stopped
    (seen,) = jobmagics.get_job("held", session=session)
    assert seen.state == JobState.Stopped


def test_remove_job_by_state_and_running_jobs_only_with_force(session, gate):
    for name in ("done-1", "done-2"):
        _finished_job(session, "1", name)
    running = jobmagics.start_job(gate.code, session=session, name="running", namespace={})
    assert gate.arrived()
    with pytest.raises(JobStateError, match="job running is Running: stop it first or use --force"):
        jobmagics.remove_job("running", session=session)
    assert _names(jobmagics.get_job(session=session)) == ["done-1", "done-2", "running"]  # nothing changed
    assert _names(jobmagics.remove_job(state="Completed", session=session)) == ["done-1", "done-2"]
    assert _names(jobmagics.get_job(session=session)) == ["running"]
    assert _names(jobmagics.remove_job(running, force=True, session=session)) == ["running"]
    assert list(jobmagics.get_job(session=session)) == []
