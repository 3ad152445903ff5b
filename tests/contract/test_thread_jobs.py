"""What only thread jobs do: the same objects, and stopping code that is blocked."""
from __future__ import annotations

import threading

from proc_helpers import assert_processes_end

import jobmagics
from jobmagics import JobState


def test_thread_jobs_see_the_same_objects():
    shared = []
    job = jobmagics.start_job("shared.append('from job')\nshared", thread=True, namespace={"shared": shared})
    assert job.wait(30)
    assert job.receive()[0] is shared and shared == ["from job"]


def test_a_thread_blocked_in_a_call_is_abandoned_after_the_grace_period():
    release = threading.Event()
    started = threading.Event()
    code = "started.set()\nrelease.wait()\nprint('after release')"
    job = jobmagics.start_job(code, thread=True, namespace={"release": release, "started": started})
    assert started.wait(30)
    job.stop()
    assert job.state == JobState.Stopped and "abandoned" in job.reason
    release.set()  # the thread ends now; what it prints after being abandoned is dropped
    for thread in threading.enumerate():
        if thread.name == "jobmagics-%s" % job.name:
            thread.join(30)
    assert "after release" not in job.stdout


def test_code_can_check_stop_requested_and_return_cleanly():
    started = threading.Event()
    code = ("from jobmagics import stop_requested\nstarted.set()\nimport time\n"
            "while not stop_requested():\n    time.sleep(0.01)\nprint('cleaned up')")
    job = jobmagics.start_job(code, thread=True, namespace={"started": started})
    assert started.wait(30)
    job.stop()
    assert job.state == JobState.Stopped


def test_a_stop_ends_a_process_the_job_forked():
    code = ("import multiprocessing, time\n"
            "child = multiprocessing.get_context('fork').Process(target=time.sleep, args=(600,))\n"
            "child.start()\nprint(child.pid, flush=True)\nchild.join()")
    job = jobmagics.start_job(code, thread=True, namespace={})
    while not job.stdout.endswith("\n"):
        assert job.wait_for_activity(job.activity, timeout=30)
    job.stop()
    assert job.state == JobState.Stopped and "abandoned" not in job.reason
    assert_processes_end([int(job.stdout)], timeout=30)


def test_a_process_started_in_a_session_of_its_own_on_purpose_is_left_to_its_job():
    started = []
    code = ("import subprocess\nstarted.append(subprocess.Popen(['sleep', '600'], start_new_session=True))\n"
            "print('started', flush=True)\nimport time\nwhile True:\n    time.sleep(0.01)")
    job = jobmagics.start_job(code, thread=True, namespace={"started": started})
    while not job.stdout.endswith("\n"):
        assert job.wait_for_activity(job.activity, timeout=30)
    job.stop()
    (child,) = started
    try:
        assert job.state == JobState.Stopped and child.poll() is None
    finally:
        child.kill()
        child.wait(30)
