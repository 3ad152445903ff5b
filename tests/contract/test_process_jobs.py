"""What only process jobs do: isolation from crashes, process trees, a self-contained agent."""
from __future__ import annotations

import os
import shutil

import pytest

import jobmagics
from jobmagics import JobState
from proc_helpers import assert_processes_end


def run(code, timeout=60, **kwargs):
    job = jobmagics.start_job(code, namespace={}, **kwargs)
    assert job.wait(timeout), "job did not finish: %r" % job
    return job


@pytest.mark.parametrize("code, reason", [
    ("import os\nos._exit(7)", "the job's process exited with code 7"),
    ("import ctypes\nctypes.string_at(0)", "the job's process was ended by SIGSEGV (segmentation fault)"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
     "the job's process was ended by SIGKILL (killed; the out-of-memory killer does this when memory runs out)"),
])
def test_a_dying_process_fails_its_job_with_a_reason(code, reason):
    job = run(code)
    assert job.state == JobState.Failed and job.reason == reason
    assert job.error[0].evalue == reason


def test_running_out_of_memory_fails_the_job_not_the_kernel():
    code = ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "hog = bytearray(4 << 30)")
    job = run(code)
    assert job.state == JobState.Failed and job.reason.startswith("MemoryError")


def test_output_of_child_processes_is_captured():
    job = run("import subprocess\nsubprocess.run(['sh', '-c', 'echo from-child; echo child-err >&2'])")
    assert "from-child" in job.stdout and "child-err" in job.stderr


def test_the_process_ends_when_the_job_finishes():
    job = run("from jobmagics import emit\nimport os\nemit(os.getpid())")
    pid = job.receive()[0]
    assert pid != os.getpid()
    assert_processes_end([pid])


def test_grandchildren_left_running_by_a_finished_job_are_ended():
    job = run("import subprocess\nfrom jobmagics import emit\nemit(subprocess.Popen(['sleep', '600']).pid)")
    assert_processes_end([job.receive()[0]])


def test_stop_ends_the_whole_process_tree():
    code = ("import subprocess\nfrom jobmagics import emit\n"
            "child = subprocess.Popen(['sh', '-c', 'sleep 600 & echo $!; wait'], stdout=subprocess.PIPE)\n"
            "emit([child.pid, int(child.stdout.readline())])\nchild.wait()")
    job = jobmagics.start_job(code, namespace={})
    while len(job.output) < 1:
        assert not job.finished, job.reason
        job.wait_for_activity(job.activity, timeout=10)
    pids = job.output[0]
    job.stop()
    assert job.state == JobState.Stopped and job.reason == "stopped on request"
    assert_processes_end(pids)


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs the system python3")
def test_agent_runs_on_a_bare_python_without_jobmagics_or_dill(tmp_path, monkeypatch):
    """The agent, emit/progress and dill all arrive by source on a Python without site-packages."""
    monkeypatch.chdir(tmp_path)  # the job's working directory: no jobmagics source there either
    code = ("import sys\nfrom jobmagics import emit, progress\nimport jobmagics\n"
            "progress(50, status='half')\n"
            "import dill\n"
            "emit((jobmagics.__doc__, dill.__file__, sys.flags.no_site))\nprint('bare ok')\ndouble(value)")
    namespace = {"__name__": "__main__", "value": 21}
    exec("def double(v):\n    return v * 2", namespace)  # a notebook function: it travels with dill
    job = jobmagics.start_job(code, namespace=namespace, python=["/usr/bin/python3", "-S"])
    assert job.wait(60)
    assert job.state == JobState.Completed, job.reason
    doc, dill_file, no_site = job.output[0]
    # jobmagics is the agent's stand-in, dill came from this side as source: neither is installed there.
    assert "stand-in" in doc and dill_file.startswith("<jobmagics-sent>/") and no_site == 1
    assert job.progress[0]["percent"] == 50.0
    assert job.stdout == "bare ok\n" and job.output[1] == 42


def test_a_python_that_cannot_start_is_a_clear_error_and_nothing_is_registered():
    before = len(jobmagics.api.registry())
    with pytest.raises(jobmagics.errors.AgentStartError, match="cannot start /nonexistent/python"):
        jobmagics.start_job("1", namespace={}, python="/nonexistent/python")
    assert len(jobmagics.api.registry()) == before


def test_a_python_too_broken_to_run_the_agent_fails_the_job_with_its_message():
    false = shutil.which("false")
    job = jobmagics.start_job("1", namespace={}, python=false)
    assert job.wait(30)
    assert job.state == JobState.Failed and "exited with code 1" in job.reason


def test_output_written_below_python_just_before_the_end_is_kept():
    job = run("import os, subprocess\nsubprocess.run(['echo', 'child last'])\nos.write(1, b'fd last\\n')")
    assert job.state == JobState.Completed
    assert job.stdout.endswith("child last\nfd last\n")


def test_children_forked_by_the_job_print_into_it_and_end_on_sigterm():
    # multiprocessing's fork: the children inherit the job's text routing and its signal handlers;
    # leaving the pool terminates them with SIGTERM, which must end them as it ends any process.
    code = ("import multiprocessing\n"
            "with multiprocessing.get_context('fork').Pool(2) as pool:\n"
            "    pool.map(print, ['child %d' % i for i in range(4)])\n"
            "print('parent done')\n")
    job = run(code)
    assert job.state == JobState.Completed, job.reason
    lines = job.stdout.splitlines()
    assert sorted(line for line in lines if line.startswith("child")) == ["child %d" % i for i in range(4)]
    assert lines[-1] == "parent done"


def test_output_below_python_is_read_when_the_kernel_has_more_descriptors_than_select_takes():
    # A kernel running hundreds of jobs holds descriptors past FD_SETSIZE (1024): a reader that
    # used select() would fail on them, and what children print would wait for the job's end.
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("needs a descriptor limit above 1200")
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        job = jobmagics.start_job("import subprocess, time\nsubprocess.run(['echo', 'from-child'])\n"
                                  "time.sleep(600)", namespace={})
        while "from-child" not in job.stdout:
            assert not job.finished, job.reason
            job.wait_for_activity(job.activity, timeout=30)
        job.stop()
    finally:
        for fd in spare:
            os.close(fd)
