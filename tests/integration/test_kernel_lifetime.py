"""When the kernel ends, its jobs and every process they started end too (no orphans)."""
from __future__ import annotations

import os
import signal

import psutil
import pytest

from kernel_driver import Kernel
from proc_helpers import STUBBORN_TREE, assert_processes_end, watchers

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

SPAWN_TREE = "%%start_job --name tree\n" + STUBBORN_TREE


def start_tree(kernel):
    """Start a process job with a child and a grandchild that ignore SIGTERM; the pids of job
    process, child, grandchild."""
    assert kernel.run("%load_ext jobmagics").ok
    assert kernel.run(SPAWN_TREE).ok
    assert kernel.run("%start_job --thread --name spinning while True: pass").ok
    result = kernel.run("tree = %get_job tree\ntree = tree[0]\n"
                        "while not tree.output:\n    tree.wait_for_activity(tree.activity, 30)\n"
                        "tree.output[0]")
    assert result.ok, result.stderr + result.error_text()
    pids = eval(result.text)
    assert len(pids) == 3 and all(psutil.pid_exists(p) for p in pids)
    return pids


def test_kernel_shutdown_ends_every_job_process():
    kernel = Kernel().start()
    try:
        procs = start_tree(kernel)
    finally:
        kernel.shutdown()
    assert_processes_end(procs)


def test_kernel_restart_ends_every_job_process():
    kernel = Kernel().start()
    try:
        procs = start_tree(kernel)
        kernel.manager.restart_kernel()
        kernel.client.wait_for_ready(timeout=60)
        assert_processes_end(procs)
        assert kernel.run("1 + 1").text == "2"
    finally:
        kernel.shutdown()


THREAD_JOB_CHILD = """%load_ext jobmagics
import jobmagics
job = jobmagics.start_job("import subprocess\\nsleeper = subprocess.Popen(['sleep', '600'])\\n"
                          "print(sleeper.pid, flush=True)\\nsleeper.wait()", thread=True, namespace={})
while not job.stdout:
    job.wait_for_activity(job.activity, 30)
int(job.stdout)
"""


@pytest.mark.parametrize("way", ["shutdown", "restart"])
def test_the_kernels_exit_ends_a_process_a_thread_job_started(way):
    """A thread job's child leads its own process group (so its stop can end it): the kernel's exit
    ends it, as the kernel's group once did."""
    kernel = Kernel().start()
    try:
        result = kernel.run(THREAD_JOB_CHILD)
        assert result.ok, result.stderr + result.error_text()
        child = int(result.text)
        assert os.getpgid(child) == child
        if way == "restart":
            kernel.manager.restart_kernel()
            kernel.client.wait_for_ready(timeout=60)
            assert_processes_end([child])
    finally:
        kernel.shutdown()
    assert_processes_end([child])


SHELL_TREE = """import subprocess
from jobmagics import emit
shell = subprocess.Popen(["sh", "-c", "sleep 600 & echo $!; sleep 600 & echo $!; wait"], stdout=subprocess.PIPE)
emit([shell.pid, int(shell.stdout.readline()), int(shell.stdout.readline())])
shell.wait()
"""


def thread_job_pids(kernel, name, code):
    """Start ``code`` as a thread job; the pids it emits."""
    assert kernel.run("%%%%start_job --thread --name %s\n%s" % (name, code)).ok
    result = kernel.run("job = %%get_job %s\njob = job[0]\n"
                        "while not job.output:\n    job.wait_for_activity(job.activity, 30)\n"
                        "job.output[0]" % name)
    assert result.ok, result.stderr + result.error_text()
    return eval(result.text)


def test_a_killed_kernel_leaves_no_process_of_a_thread_job_behind():
    """A thread job's children lead groups of their own, out of the reach of the dead kernel's group:
    the kernel's watcher ends them, one that ignores SIGTERM too, and then ends itself."""
    kernel = Kernel().start()
    try:
        assert kernel.run("%load_ext jobmagics").ok
        shell_tree = thread_job_pids(kernel, "shell", SHELL_TREE)
        kernel_pid, child, grandchild = thread_job_pids(kernel, "stubborn", STUBBORN_TREE)
        assert kernel_pid == kernel.pid and all(psutil.pid_exists(p) for p in shell_tree + [child, grandchild])
        (watcher,) = watchers([kernel.pid])
        os.kill(kernel.pid, signal.SIGKILL)
        assert_processes_end(shell_tree + [child, grandchild, watcher])
    finally:
        kernel.shutdown(now=True)


def test_killed_kernel_leaves_no_job_process_behind():
    kernel = Kernel().start()
    try:
        procs = start_tree(kernel)
        os.kill(kernel.pid, signal.SIGKILL)
        assert_processes_end(procs)
    finally:
        kernel.shutdown(now=True)


def test_a_job_process_told_to_end_takes_what_it_started_with_it():
    # The kernel is frozen, so only the job's process itself can end its children: it must not
    # rely on a kernel that may be gone (a restart can kill the kernel while it is ending jobs).
    kernel = Kernel().start()
    try:
        agent, child, grandchild = start_tree(kernel)
        os.kill(kernel.pid, signal.SIGSTOP)
        try:
            os.kill(agent, signal.SIGTERM)
            assert_processes_end([agent, child, grandchild])
        finally:
            os.kill(kernel.pid, signal.SIGCONT)
        result = kernel.run("tree.wait(30)\nprint(tree.state, '|', tree.reason)")
        assert result.stdout.startswith("Failed | "), result.stdout + result.error_text()
        assert "SIGTERM" in result.stdout
    finally:
        kernel.shutdown(now=True)


def test_an_ipython_profile_can_load_the_extension(tmp_path):
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text('c.InteractiveShellApp.extensions = ["jobmagics"]\n')
    env = dict(os.environ, IPYTHONDIR=str(tmp_path))
    with Kernel(env=env) as kernel:
        result = kernel.run("j = %start_job --thread 6 * 7\n%wait_job $j\n%receive_job $j")
        assert result.ok, result.stderr
        assert result.text == "42"
