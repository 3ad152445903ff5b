"""Jobs whose results stay on the remote computer: the session's own registry."""
from __future__ import annotations

import pytest

from jobmagics import JobState, remote, session_jobs
from jobmagics.errors import UserInputError

BARE = "/usr/bin/python3 -S"


@pytest.fixture
def session(ssh_home):
    s = remote.new_session("one", python=BARE)
    yield s
    remote.remove_session(s)


def test_a_job_kept_in_the_session_is_managed_there(session, capsys):
    info = session_jobs.start_job(session, "print('kept output')\nfactor * 7", name="kept",
                                  namespace={"factor": 6})
    assert (info.name, info.location, info.job_type) == ("kept", "localhost", "ThreadJob")
    assert info.shipped["factor"]["type"] == "int"
    (done,) = session_jobs.wait_job(session, "kept", timeout=60)
    assert done.state == JobState.Completed and done.has_more_data
    assert session_jobs.receive_job(session, "kept", keep=True) == 42
    assert session_jobs.receive_job(session, "kept", keep=True) == 42  # --keep leaves it there
    assert session_jobs.receive_job(session, "kept") == 42
    assert session_jobs.receive_job(session, "kept") is None
    assert capsys.readouterr().out.count("kept output\n") == 3
    (listed,) = session_jobs.get_job(session, "kept")
    assert listed.has_more_data is False
    assert "kept" in listed._repr_html_() and "localhost" in session_jobs.get_job(session)._text()
    session_jobs.remove_job(session, "kept")
    assert session_jobs.get_job(session) == []


def test_code_run_in_the_session_can_start_jobs_there(session):
    code = ("from jobmagics import start_job, get_job\nj = start_job('sum(range(5))', name='inner')\n"
            "j.wait(30)\n[job.name for job in get_job()]")
    assert remote.invoke(code, session=session, namespace={}) == ["inner"]
    assert session_jobs.receive_job(session, "inner") == 10


def test_stopping_and_removing_a_kept_job(session):
    session_jobs.start_job(session, "while True:\n    pass", name="spin", namespace={})
    with pytest.raises(UserInputError, match="job spin is Running: stop it first"):
        session_jobs.remove_job(session, "spin")
    (stopped,) = session_jobs.stop_job(session, "spin")
    assert stopped.state == JobState.Stopped
    session_jobs.remove_job(session, "spin")
    assert session_jobs.get_job(session) == []


def test_an_unknown_job_in_the_session_is_a_one_line_error(session):
    with pytest.raises(UserInputError, match="in session Session[0-9]+: no job with id or name 'nosuch'"):
        session_jobs.receive_job(session, "nosuch")


def test_a_failure_in_a_kept_job_shows_the_remote_traceback(session, capsys):
    session_jobs.start_job(session, "x = 1\nraise KeyError('gone')", name="failing", namespace={})
    (done,) = session_jobs.wait_job(session, "failing", timeout=60)
    assert done.state == JobState.Failed and "KeyError" in done.reason
    session_jobs.receive_job(session, "failing")
    assert "raise KeyError('gone')" in capsys.readouterr().err
