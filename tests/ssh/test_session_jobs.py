"""Jobs whose results stay on the remote computer: the session's own registry."""
from __future__ import annotations

import pytest

from jobmagics import JobState, get_job, receive_job, remove_job, start_job, stop_job, wait_job
from jobmagics.errors import UserInputError
from jobmagics.sessions import remote

BARE = "/usr/bin/python3 -S"


@pytest.fixture
def session(ssh_home):
    s = remote.new_session("one", python=BARE)
    yield s
    remote.remove_session(s)


def test_a_job_kept_in_the_session_is_managed_there(session, capsys):
    info = start_job("print('kept output')\nfactor * 7", name="kept", namespace={"factor": 6}, session=session)
    assert (info.name, info.location, info.job_type) == ("kept", "localhost", "ThreadJob")
    assert info.shipped["factor"]["type"] == "int"
    (done,) = wait_job("kept", timeout=60, session=session)
    assert done.state == JobState.Completed and done.has_more_data
    assert receive_job("kept", keep=True, session=session) == 42
    assert receive_job("kept", keep=True, session=session) == 42  # --keep leaves it there
    assert receive_job("kept", session=session) == 42
    assert receive_job("kept", session=session) is None
    assert capsys.readouterr().out.count("kept output\n") == 3
    (listed,) = get_job("kept", session=session)
    assert listed.has_more_data is False
    assert "kept" in listed._repr_html_() and "localhost" in get_job(session=session)._text()
    assert [j.name for j in get_job(session=session.name)] == ["kept"]  # a session by name, as --session S
    remove_job("kept", session=session)
    assert get_job(session=session) == []


def test_code_run_in_the_session_can_start_jobs_there(session):
    code = ("from jobmagics import start_job, get_job\nj = start_job('sum(range(5))', name='inner')\n"
            "j.wait(30)\n[job.name for job in get_job()]")
    assert remote.invoke(code, session=session, namespace={}) == ["inner"]
    assert receive_job("inner", session=session) == 10


def test_stopping_and_removing_a_kept_job(session):
    start_job("while True:\n    pass", name="spin", namespace={}, session=session)
    with pytest.raises(UserInputError, match="job spin is Running: stop it first"):
        remove_job("spin", session=session)
    (stopped,) = stop_job("spin", session=session)
    assert stopped.state == JobState.Stopped
    remove_job("spin", session=session)
    assert get_job(session=session) == []


def test_a_verb_says_the_same_mistake_the_same_way_here_and_in_a_session(session):
    for where in (None, session):
        with pytest.raises(UserInputError) as raised:
            receive_job("nosuch", session=where)
        assert str(raised.value) == "no job with id or name 'nosuch'"
        with pytest.raises(UserInputError, match="--wait and --keep cannot be used together"):
            receive_job("nosuch", wait=True, keep=True, session=where)
        with pytest.raises(UserInputError, match="--timeout must not be negative"):
            wait_job(timeout=-1, session=where)


def test_a_job_in_a_session_starts_a_thread_job_of_its_own(session):
    code = ("from jobmagics import start_job, wait_job, receive_job\n"
            "inner = start_job(lambda: 6 * 7, thread=True, name='inner')\n"
            "wait_job(inner)\nreceive_job(inner)")
    assert remote.invoke(code, session=session, namespace={}) == 42


def test_a_session_job_is_received_with_wait(session):
    start_job("import time\ntime.sleep(0.2)\nprint('done')\n5", name="slow", namespace={}, session=session)
    assert receive_job("slow", wait=True, session=session) == 5


def test_a_failure_in_a_kept_job_shows_the_remote_traceback(session, capsys):
    start_job("x = 1\nraise KeyError('gone')", name="failing", namespace={}, session=session)
    (done,) = wait_job("failing", timeout=60, session=session)
    assert done.state == JobState.Failed and "KeyError" in done.reason
    receive_job("failing", session=session)
    assert "raise KeyError('gone')" in capsys.readouterr().err
