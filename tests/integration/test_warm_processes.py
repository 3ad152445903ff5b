"""``reuse=True`` (``%start_job --reuse``): warm job processes serve one job after another."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import psutil
import pytest

import jobmagics
from jobmagics import JobState
from jobmagics.errors import UserInputError

from proc_helpers import wait_ended

pytestmark = pytest.mark.timeout(120)


def run(code, **kwargs):
    job = jobmagics.start_job(code, namespace={}, reuse=True, **kwargs)
    assert job.wait(60), "job did not finish: %r" % job
    return job


def test_jobs_one_after_another_share_a_warm_process_and_what_it_holds():
    first = run("import os, json; json.marker = 'left by the first job'; os.getpid()")
    second = run("import os, json; (os.getpid(), getattr(json, 'marker', None))")
    assert second.receive() == [(first.receive()[0], "left by the first job")]


def test_each_job_keeps_its_own_streams_and_result():
    jobs = [jobmagics.start_job("import os\nprint('out', %d)\nos.write(2, b'err %d\\n')\n%d" % (i, i, i),
                                namespace={}, reuse=True) for i in range(6)]
    jobmagics.wait_job(*jobs)
    for i, job in enumerate(jobs):
        assert job.state == JobState.Completed, job.reason
        assert job.stdout == "out %d\n" % i
        assert job.stderr == "err %d\n" % i
        assert job.receive() == [i]


def test_at_most_one_process_per_core_serves_a_burst():
    jobs = [jobmagics.start_job("import os; os.getpid()", namespace={}, reuse=True) for _ in range(20)]
    jobmagics.wait_job(*jobs)
    pids = {job.receive()[0] for job in jobs}
    assert len(pids) <= (os.cpu_count() or 1)


def test_a_crash_fails_only_its_job_and_the_next_job_gets_a_new_process():
    before = run("import os; os.getpid()").receive()[0]
    crashed = run("import os; os._exit(3)")
    assert crashed.state == JobState.Failed and "exited with code 3" in crashed.reason
    after = run("import os; os.getpid()")
    assert after.state == JobState.Completed
    assert after.receive()[0] != before


def test_stopping_a_job_ends_its_process_and_tree_and_the_jobs_after_it_run():
    job = jobmagics.start_job("import os, subprocess, time\nfrom jobmagics import emit\n"
                              "child = subprocess.Popen(['sleep', '3600'])\n"
                              "emit((os.getpid(), child.pid))\ntime.sleep(3600)", namespace={}, reuse=True)
    while not job.output:  # the pids arrive while it runs
        assert not job.finished, job.reason
        job.wait_for_activity(job.activity, timeout=10)
    (process, child), = job.output
    job.stop()
    assert job.state == JobState.Stopped
    assert not wait_ended([process, child], timeout=30)
    assert run("1").receive() == [1]


def test_a_queued_job_can_be_stopped_before_it_runs():
    size = os.cpu_count() or 1
    busy = [jobmagics.start_job("import time; time.sleep(3600)", namespace={}, reuse=True) for _ in range(size)]
    queued = jobmagics.start_job("1", namespace={}, reuse=True)
    assert queued.state == JobState.NotStarted
    queued.stop()
    assert queued.state == JobState.Stopped
    jobmagics.stop_job(*busy)
    assert all(job.state == JobState.Stopped for job in busy)


def test_an_idle_warm_process_ends():
    pid = run("import os; os.getpid()").receive()[0]
    assert not wait_ended([pid], timeout=30)


@pytest.mark.parametrize("option", [{"thread": True}, {"python": sys.executable}])
def test_reuse_is_for_process_jobs_of_this_kernel(option):
    with pytest.raises(UserInputError, match="--reuse"):
        jobmagics.start_job("1", namespace={}, reuse=True, **option)


@pytest.mark.timeout(60)
def test_warm_processes_end_with_the_process_that_started_them():
    program = textwrap.dedent("""
        import sys, jobmagics
        job = jobmagics.start_job("import os; os.getpid()", namespace={}, reuse=True)
        job.wait(30)
        print(job.receive()[0], flush=True)
        sys.stdin.read()
    """)
    kernel = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        warm = int(kernel.stdout.readline())
        assert psutil.pid_exists(warm)
        kernel.kill()  # no atexit: only its ends of the sockets close
        kernel.wait()
        assert not wait_ended([warm], timeout=30)
    finally:
        kernel.kill()
        kernel.wait()
        kernel.stdin.close()
        kernel.stdout.close()
