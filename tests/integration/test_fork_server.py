"""Process jobs forked by the warm fork server: fresh and isolated, seeing the kernel as it is now."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest

import jobmagics
from jobmagics.transport import forkserver
from proc_helpers import wait_ended


def run(code, timeout=60, **kwargs):
    job = jobmagics.start_job(code, namespace=kwargs.pop("namespace", {}), **kwargs)
    assert job.wait(timeout), "job did not finish: %r" % job
    return job


def _server_end_reason():
    server = forkserver._server
    server_ended = threading.Event()
    while server.alive and not server_ended.wait(0.01):  # the reader thread notices the end
        pass
    return server.end_reason


def fork_server_pid():
    (pid,) = [p.pid for p in psutil.Process().children() if p.cmdline()[-1:] == [forkserver.PROCESS_TAG]]
    return pid


def test_each_job_is_a_fresh_child_of_one_warm_server():
    first = run("import os; (os.getpid(), os.getppid())")
    second = run("import os; (os.getpid(), os.getppid())")
    [(pid1, parent1)], [(pid2, parent2)] = first.receive(), second.receive()
    assert pid1 != pid2 and os.getpid() not in (pid1, pid2)
    assert parent1 == parent2 == fork_server_pid()


def test_a_job_changes_nothing_the_next_job_sees():
    run("import json; json.marker = 'left by the first job'").receive()
    assert run("import json; hasattr(json, 'marker')").receive() == [False]


def test_jobs_do_not_share_random_state():
    draws = [run("import random; random.random()").receive()[0] for _ in range(2)]
    assert draws[0] != draws[1]


def test_a_job_sees_the_kernels_current_directory_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOBMAGICS_TEST_VALUE", "set after the server started")
    run("1").receive()  # the server may have started before the change
    job = run("import os; (os.getcwd(), os.environ.get('JOBMAGICS_TEST_VALUE'))")
    assert job.receive() == [(str(tmp_path), "set after the server started")]


def test_a_jobs_exit_code_comes_through_the_server():
    job = run("import os; os._exit(7)")
    assert job.state == jobmagics.JobState.Failed
    assert "exited with code 7" in job.reason


def test_turned_off_each_job_starts_its_own_interpreter(monkeypatch):
    monkeypatch.setenv("JOBMAGICS_FORK_SERVER", "0")
    job = run("import os; os.getppid()")
    assert job.receive() == [os.getpid()]


def test_a_killed_server_is_replaced_and_its_running_job_still_ends():
    run("1").receive()
    server = fork_server_pid()
    running = jobmagics.start_job("import time; time.sleep(3600)", namespace={})
    psutil.Process(server).kill()
    assert not wait_ended([server], timeout=30)
    assert _server_end_reason() == "it was ended by SIGKILL (killed; the out-of-memory killer does this when memory runs out)"
    assert run("2").receive() == [2]  # a new server
    assert fork_server_pid() != server
    running.stop()
    assert running.wait(30) and running.state == jobmagics.JobState.Stopped


@pytest.mark.timeout(60)
def test_the_server_ends_with_the_process_that_started_it():
    program = textwrap.dedent("""
        import sys, jobmagics, psutil
        from jobmagics.transport import forkserver
        job = jobmagics.start_job("1", namespace={})
        job.wait(30)
        (server,) = [p.pid for p in psutil.Process().children() if p.cmdline()[-1:] == [forkserver.PROCESS_TAG]]
        print(server, flush=True)
        sys.stdin.read()
    """)
    kernel = subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        server = int(kernel.stdout.readline())
        kernel.kill()  # no atexit, no goodbye: only its end of the socket closes
        kernel.wait()
        assert not wait_ended([server], timeout=30)
    finally:
        kernel.kill()
        kernel.wait()
        kernel.stdin.close()
        kernel.stdout.close()


MEMORY_OWNER = """
def memory_owner(array):
    # What finally holds an array's bytes (numpy arrays on a buffer chain through ``base``).
    while type(array.base).__name__ == "ndarray":
        array = array.base
    owner = array.base.obj if type(array.base).__name__ == "memoryview" else array.base
    return type(owner).__name__
"""
exec(MEMORY_OWNER)


def test_big_arrays_arrive_in_their_own_memory_both_ways():
    np = pytest.importorskip("numpy")
    array = np.arange(1 << 20, dtype=np.float64)  # 8 MB: a big buffer
    job = run(MEMORY_OWNER + "\n(memory_owner(array), array * 2)", namespace={"array": array})
    [(owner_in_job, doubled)] = job.receive()
    assert owner_in_job == "mmap"  # read straight into (huge-page) memory of its own, not copied out of bytes
    assert (doubled == array * 2).all() and doubled.flags.writeable
    assert memory_owner(doubled) == "mmap"


def test_a_job_whose_variables_cannot_load_fails_and_its_process_ends():
    job = run("value", namespace={"value": memory_owner})  # defined in a module the job cannot import
    assert job.state == jobmagics.JobState.Failed
    assert "test_fork_server" in job.reason


def test_a_fork_of_the_kernel_gets_a_server_of_its_own():
    run("1").receive()
    parent_server = fork_server_pid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report the parent pid of a job it starts, then leave without cleanup
        status = 1
        try:
            job = jobmagics.start_job("import os; os.getppid()", namespace={})
            job.wait(30)
            os.write(write_end, str(job.receive()[0]).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_job_parent = int(pipe.read() or 0)
    os.waitpid(pid, 0)
    assert child_job_parent not in (0, parent_server)
    assert not wait_ended([child_job_parent], timeout=30)  # its server ended with the forked child
    assert run("2").receive() == [2] and fork_server_pid() == parent_server  # the parent's is untouched



def test_a_forked_child_draws_numpy_random_numbers_of_its_own():
    np = pytest.importorskip("numpy")
    from jobmagics.agent import forkserver as server_side

    np.random.seed(1)
    inherited = np.random.random()  # what a child would draw with the state copied from the server
    np.random.seed(1)
    server_side._reseed()  # what each forked child does first
    assert np.random.random() != inherited


def test_a_server_started_while_the_kernel_uses_pyplot_has_it_imported_for_its_jobs():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot  # noqa: F401  (the notebook plots)

    forkserver.shutdown()  # the next job starts a server that sees this kernel as it is now
    job = run("import sys, matplotlib\n('matplotlib.pyplot' in sys.modules, matplotlib.get_backend())")
    assert job.receive() == [(True, "agg")]
