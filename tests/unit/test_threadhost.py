"""ThreadHost: a thread serves job after job, and a stop of one job never reaches the next."""
import gc
import sys
import threading
import time
import weakref

import pytest

from jobmagics.core import context, threadhost
from jobmagics.core.job import Job
from jobmagics.core.runner import Work
from jobmagics.core.states import JobState


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def start(host, code, **namespace):
    job = Job(code, "ThreadJob", name="t")
    host.start(job, Work(code=code, namespace=namespace))
    return job


# A job that swallows StopJob for a while once it is asked to stop, so that stops keep coming as its work returns.
SWALLOWING = """
end = None
while end is None or time.perf_counter() < end:
    try:
        while end is None or time.perf_counter() < end:
            if end is None and stop_requested():
                end = time.perf_counter() + 0.005
    except BaseException:
        pass
threads.append(threading.get_ident())
"""

NEXT = "total = 0\nfor i in range(20000):\n    total += i\nthreads.append(threading.get_ident())\ntotal"


def test_a_stop_raised_as_a_job_ends_never_lands_in_the_next_job_on_that_thread(monkeypatch):
    monkeypatch.setattr(threadhost, "COOPERATIVE_WAIT", 0)  # StopJob raised again and again, at once
    host = threadhost.ThreadHost()
    threads = []
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # the stopping thread gets many turns while the job runs
    try:
        _stop_then_run_another(host, threads)
    finally:
        sys.setswitchinterval(switch)
    assert len(set(threads)) == 1  # no late StopJob ended the thread either: it served every job


def _stop_then_run_another(host, threads):
    for _ in range(50):
        job = start(host, SWALLOWING, time=time, threading=threading, threads=threads,
                    stop_requested=context.stop_requested)
        stopper = threading.Thread(target=job.stop)
        stopper.start()
        assert job.wait(10)
        stopper.join(10)
        assert job.state == JobState.Stopped
        wait_until(lambda: host._workers.idle == 1)
        after = start(host, NEXT, threading=threading, threads=threads)
        assert after.wait(10)
        assert after.state == JobState.Completed, after.error
        assert after.output == [sum(range(20000))]
        wait_until(lambda: host._workers.idle == 1)


@pytest.mark.parametrize("stop_flag_set", [True, False])
def test_a_job_stopped_before_its_thread_takes_it_up_never_runs(stop_flag_set):
    host = threadhost.ThreadHost()
    handed_over = []
    host._workers.run = handed_over.append  # hold the job back from the threads
    ran = []
    job = start(host, "ran.append(1)", ran=ran)
    job._set_state(JobState.Stopping)  # what stop() does first; then it sets the flag
    if stop_flag_set:
        job.stop_event.set()
    assert handed_over[0]() is True  # the thread is clean for another job
    assert job.state == JobState.Stopped and ran == []
    assert context.current() is None


def test_a_job_runs_in_a_thread_named_after_it_and_reused_threads_keep_no_job_alive():
    host = threadhost.ThreadHost()

    class Payload:
        pass

    payload = Payload()
    alive = weakref.ref(payload)
    job = start(host, "threading.current_thread().name", threading=threading, payload=payload)
    assert job.wait(10) and job.output == ["jobmagics-t"]
    wait_until(lambda: host._workers.idle == 1)
    del payload, job
    gc.collect()
    assert alive() is None


def test_an_abandoned_jobs_thread_ends_instead_of_serving_another_job():
    host = threadhost.ThreadHost(stop_grace=0.2)
    release, started = threading.Event(), threading.Event()
    threads = []
    job = start(host, "threads.append(threading.current_thread())\nstarted.set()\nrelease.wait()",
                threads=threads, threading=threading, started=started, release=release)
    assert started.wait(10)
    job.stop()
    assert job.state == JobState.Stopped and "abandoned" in job.reason
    release.set()
    threads[0].join(10)
    assert not threads[0].is_alive() and host._workers.idle == 0
