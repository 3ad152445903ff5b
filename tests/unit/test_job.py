import pytest

from jobmagics.core.errors import JobError
from jobmagics.core.job import Job
from jobmagics.core.states import JobState


def make_job():
    return Job("1 + 1", "ThreadJob")


def test_new_job_fields():
    job = make_job()
    assert job.state == JobState.NotStarted
    assert job.location == "localhost" and job.command == "1 + 1"
    assert job.has_more_data is False and job.child_jobs == []


def test_transitions_set_times_and_notify_callbacks_outside_the_lock():
    job = make_job()
    seen = []
    job.add_state_callback(lambda j, old, new: seen.append((old, new, j.snapshot()["state"])))
    assert job._set_state(JobState.Running)
    assert job.begin_time is not None and job.end_time is None
    assert job._set_state(JobState.Completed)
    assert job.end_time >= job.begin_time
    assert seen == [(JobState.NotStarted, JobState.Running, JobState.Running),
                    (JobState.Running, JobState.Completed, JobState.Completed)]


def test_a_finished_job_never_changes_state_again():
    job = make_job()
    job._set_state(JobState.Running)
    job._set_state(JobState.Stopped, "stopped on request")
    assert job._set_state(JobState.Completed) is False
    assert job.state == JobState.Stopped and job.reason == "stopped on request"


def test_a_host_failure_fails_the_job_with_its_error_but_leaves_a_finished_job_alone():
    job = make_job()
    assert job._fail(OSError("no process could start")) is True
    assert job.state == JobState.Failed and job.reason == "no process could start"
    assert [(r.stream, r.data.ename) for r in job.records()] == [("error", "OSError")]
    done = make_job()
    done._set_state(JobState.Running)
    done._set_state(JobState.Completed)
    assert done._fail(ValueError("I/O operation on closed file")) is False  # it ran to its end first
    assert done.state == JobState.Completed and list(done.records()) == []


def test_illegal_transition_is_a_bug_not_silence():
    job = make_job()
    job._set_state(JobState.Running)
    job._set_state(JobState.Stopping)
    with pytest.raises(RuntimeError, match="Stopping -> Running"):
        job._set_state(JobState.Running)


def test_wait_times_out_without_error_then_returns_true_once_finished():
    job = make_job()
    assert job.wait(timeout=0.01) is False
    job._set_state(JobState.Running)
    job._set_state(JobState.Completed)
    assert job.wait(timeout=0) is True


def test_streams_read_without_consuming_and_receive_drains(capsys):
    job = make_job()
    job._record("stdout", "hello\n")
    job._record("output", 42)
    job._record("error", {"ename": "ValueError", "evalue": "bad", "traceback": "Traceback...\nValueError: bad\n"})
    assert job.stdout == "hello\n" and job.output == [42]
    assert isinstance(job.error[0], JobError) and job.error[0].ename == "ValueError"
    assert job.has_more_data
    assert job.receive(keep=True) == [42]
    assert job.has_more_data
    assert job.receive() == [42]
    assert not job.has_more_data and job.receive() == []
    out = capsys.readouterr()
    assert out.out.count("hello\n") == 2
    assert "ValueError: bad" in out.err


def test_parent_state_follows_children():
    parent = Job("x", "RemoteJob")
    a, b = Job("x", "RemoteJob", location="a"), Job("x", "RemoteJob", location="b")
    parent._add_child(a)
    parent._add_child(b)
    a._set_state(JobState.Running)
    assert parent.state == JobState.Running
    a._set_state(JobState.Failed)
    assert parent.state == JobState.Running
    b._set_state(JobState.Running)
    b._set_state(JobState.Completed)
    assert parent.state == JobState.Failed
    b._record("output", 1)
    assert parent.has_more_data


def test_activity_counter_wakes_streaming_waits():
    job = make_job()
    seen = job.activity
    assert job.wait_for_activity(seen, timeout=0.01) is False
    job._record("stdout", "x")
    assert job.wait_for_activity(seen, timeout=0) is True


def test_tail_is_the_last_whole_lines_and_the_line_being_written():
    job = make_job()
    for i in range(30):
        job._record("stdout", "line %d" % i)
        job._record("stdout", "\n")  # print() writes the text and the newline apart
    job._record("stdout", "half a li")
    job._record("stdout", "ne")
    assert job.tail(3) == [("stdout", "line 28"), ("stdout", "line 29"), ("stdout", "half a line")]
    assert len(job.tail()) == 12


def test_tail_keeps_streams_apart_and_long_lines_short():
    from jobmagics.core.job import TAIL_CHARS

    job = make_job()
    job._record("stdout", "no newline yet")
    job._record("stderr", "warning\n")
    job._record("stdout", "x" * (3 * TAIL_CHARS) + "\nend")
    assert job.tail() == [("stdout", "no newline yet"), ("stderr", "warning"),
                          ("stdout", "x" * TAIL_CHARS), ("stdout", "end")]
    job.receive()
    assert job.tail(1) == [("stdout", "end")]  # receiving does not clear it


def test_a_callback_that_raises_is_logged_and_the_others_still_run(caplog):
    job = make_job()
    seen = []

    def broken(job, old, new):
        raise RuntimeError("a view's bug")

    job.add_state_callback(broken)
    job.add_state_callback(lambda job, old, new: seen.append(new))
    job.add_record_callback(lambda job, record: 1 / 0)
    with caplog.at_level("ERROR", logger="jobmagics"):
        job._set_state(JobState.Running)
        job._record("stdout", "text")
        job._set_state(JobState.Completed)
    assert seen == [JobState.Running, JobState.Completed]  # once per change, in order
    assert job.state == JobState.Completed and job.stdout == "text"
    assert sum("a view's bug" in r.getMessage() or "a view's bug" in str(r.exc_info[1]) for r in caplog.records) == 2
    assert any(isinstance(r.exc_info[1], ZeroDivisionError) for r in caplog.records)


def test_a_thread_job_whose_callback_raises_still_completes():
    from jobmagics.core.registry import JobRegistry
    from jobmagics.core.runner import Work
    from jobmagics.core.threadhost import ThreadHost

    registry, host = JobRegistry(), ThreadHost()
    job = registry.add(Job("21 * 2", "ThreadJob"))
    job.add_state_callback(lambda job, old, new: 1 / 0)
    host.start(job, Work(code="21 * 2", namespace={}))
    assert job.wait(timeout=30) and job.state == JobState.Completed
    assert job.receive() == [42]
