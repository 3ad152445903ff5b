import pytest

from jobmagics.core.errors import JobNotFoundError, JobStateError
from jobmagics.core.job import Job
from jobmagics.core.registry import JobRegistry
from jobmagics.core.states import JobState


def add(reg, name=None, job_type="ThreadJob"):
    return reg.add(Job("pass", job_type, name=name))


def finish(job, state=JobState.Completed):
    job._set_state(JobState.Running)
    job._set_state(state)


def test_ids_count_up_are_never_reused_and_default_names_follow_them():
    reg = JobRegistry()
    a, b = add(reg), add(reg)
    assert (a.id, a.name, b.id) == (1, "Job1", 2)
    finish(a)
    reg.remove(a)
    c = add(reg, name="mine")
    assert c.id == 3 and c.name == "mine"


def test_resolve_by_id_name_wildcard_instance_id_and_object():
    reg = JobRegistry()
    a, b, c = add(reg, "load-1"), add(reg, "load-2"), add(reg, "other")
    assert reg.resolve(1) == [a] and reg.resolve("2") == [b]
    assert reg.resolve("other") == [c]
    assert reg.resolve("load-*") == [a, b]
    assert reg.resolve(str(c.instance_id)) == [c]
    assert reg.resolve(b) == [b]
    assert reg.resolve_all(["load-*", 1, "other"]) == [a, b, c]


@pytest.mark.parametrize("ref, message", [(9, "no job with id 9"), ("nope", "no job with id or name 'nope'")])
def test_unknown_refs_are_one_line_errors(ref, message):
    reg = JobRegistry()
    add(reg)
    with pytest.raises(JobNotFoundError, match=message):
        reg.resolve(ref)


def test_select_filters_like_get_job():
    reg = JobRegistry()
    a, b = add(reg), add(reg, job_type="BackgroundJob")
    finish(a)
    b._set_state(JobState.Running)
    b._record("stdout", "x")
    assert reg.select(state="completed") == [a]
    assert reg.select(job_type="BackgroundJob") == [b]
    assert reg.select(has_more_data=True) == [b]
    with pytest.raises(ValueError):
        reg.select(state="Done")


def test_remove_refuses_a_running_job_without_force():
    reg = JobRegistry()
    job = add(reg)
    job._set_state(JobState.Running)
    with pytest.raises(JobStateError, match="Job1 is Running"):
        reg.remove(job)
    assert reg.resolve(1) == [job]


def test_wait_all_any_and_timeout():
    reg = JobRegistry()
    a, b = add(reg), add(reg)
    a._set_state(JobState.Running)
    b._set_state(JobState.Running)
    assert reg.wait([a, b], timeout=0.01) == []
    a._set_state(JobState.Completed)
    assert reg.wait([a, b], any_=True) == [a]
    assert reg.wait([a, b], timeout=0.01) == [a]
    b._set_state(JobState.Failed)
    assert reg.wait([a, b]) == [a, b]


def test_wait_for_many_jobs_finishing_in_another_thread_in_any_order():
    import random
    import threading

    reg = JobRegistry()
    jobs = [add(reg) for _ in range(300)]
    order = list(jobs)
    random.Random(1).shuffle(order)

    def finish_all():
        for job in order:
            finish(job, random.choice([JobState.Completed, JobState.Failed, JobState.Stopped]))

    worker = threading.Thread(target=finish_all)
    worker.start()
    assert reg.wait(jobs + jobs[:5], timeout=30) == jobs + jobs[:5]  # a job named twice counts once
    worker.join()
    assert not reg._waiters  # a finished wait leaves nothing behind


def test_wait_any_returns_when_one_finishes_and_a_timed_out_wait_leaves_nothing_behind():
    import threading

    reg = JobRegistry()
    a, b = add(reg), add(reg)
    assert reg.wait([a, b], any_=True, timeout=0.01) == []
    assert not reg._waiters
    timer = threading.Timer(0.05, finish, args=(b,))
    timer.start()
    assert reg.wait([a, b], any_=True, timeout=30) == [b]
    timer.join()
    assert reg.wait([]) == [] and reg.wait([], any_=True) == []


def test_a_job_removed_while_waited_for_still_ends_the_wait():
    import threading

    reg = JobRegistry()
    job = add(reg)
    job._set_state(JobState.Running)

    def stop_and_remove():
        job._set_state(JobState.Stopped)
        reg.remove(job)

    timer = threading.Timer(0.05, stop_and_remove)
    timer.start()
    assert reg.wait([job], timeout=30) == [job]
    timer.join()


def test_waiting_for_n_jobs_looks_at_each_job_a_bounded_number_of_times():
    import sys
    import threading

    looks = [0]

    class CountingJob(Job):
        @property
        def finished(self):
            looks[0] += 1
            return super().finished

    reg = JobRegistry()
    jobs = [reg.add(CountingJob("pass", "ThreadJob")) for _ in range(1000)]
    result = []
    waiter = threading.Thread(target=lambda: result.append(reg.wait(jobs, timeout=60)))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the waiting thread gets a turn at (nearly) every change
    try:
        waiter.start()
        for job in jobs:
            finish(job)
        waiter.join()
    finally:
        sys.setswitchinterval(switch)
    assert len(result[0]) == 1000
    assert looks[0] <= 4 * len(jobs)  # not a scan of every job per change
