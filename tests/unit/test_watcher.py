"""The watcher: the groups a thread job's children lead end when the process that adopted them dies,
however it dies; a group it does not know for sure is its own is left alone."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from jobmagics.core import watcher
from proc_helpers import assert_processes_end

pytestmark = pytest.mark.timeout(60)

#: A group like a job's child leaves: a shell and two grandchildren, one that ignores SIGTERM.
GROUP = ("sleep 600 & echo $!; (trap '' TERM; exec sleep 600) & echo $!; wait")


def start_group():
    """A process group of its own: [leader, member, member that ignores SIGTERM], and its Popen."""
    shell = subprocess.Popen(["sh", "-c", GROUP], stdout=subprocess.PIPE, start_new_session=True)
    return shell, [shell.pid, int(shell.stdout.readline()), int(shell.stdout.readline())]


def start_watcher(grace=0.2):
    process = subprocess.Popen(watcher.command(grace), stdin=subprocess.PIPE, start_new_session=True)
    process.stdin.write(watcher.program())
    return process


def tell_and_close(process, text):
    """Write ``text`` to a watcher as its adopter, then end the adopter's side: the watcher acts and exits."""
    process.stdin.write(text.encode())  # as one write, or line by line: the same
    process.stdin.close()
    assert process.wait(30) == 0


def running(pids):
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def end(shell):
    try:
        os.killpg(shell.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the watcher ended it
    shell.wait()
    shell.stdout.close()


def test_at_end_of_file_an_adopted_group_ends_even_what_ignores_sigterm():
    shell, pids = start_group()
    try:
        tell_and_close(start_watcher(), "+ %d %s\n" % (shell.pid, watcher.start_time(shell.pid).decode()))
        assert_processes_end(pids)
    finally:
        end(shell)


def test_a_group_whose_leader_is_gone_but_members_remain_is_ended():
    shell, pids = start_group()
    start = watcher.start_time(shell.pid).decode()
    shell.stdout.close()
    os.kill(shell.pid, signal.SIGKILL)
    shell.wait()  # the leader is reaped; its pgid cannot be reused while the members live
    assert running(pids[1:]) == pids[1:]
    tell_and_close(start_watcher(), "+ %d %s\n" % (shell.pid, start))
    assert_processes_end(pids[1:])


def test_a_group_whose_leader_started_at_another_time_is_left_alone():
    """The recorded start time says the pgid now belongs to another process: a reused pid."""
    shell, pids = start_group()
    try:
        other_time = int(watcher.start_time(shell.pid)) + 1
        tell_and_close(start_watcher(), "+ %d %d\n" % (shell.pid, other_time))
        assert running(pids) == pids
    finally:
        end(shell)


def test_a_group_said_to_have_ended_is_forgotten():
    shell, pids = start_group()
    try:
        tell_and_close(start_watcher(), "+ %d %s\n- %d\n" % (shell.pid, watcher.start_time(shell.pid).decode(),
                                                               shell.pid))
        assert running(pids) == pids
    finally:
        end(shell)


#: An adopter: a thread job that starts a process and forks a child that lives on (as a
#: multiprocessing worker does); it prints the watcher's pid before and after, then waits for stdin.
ADOPTER = r"""
import sys, jobmagics
from jobmagics.core import watcher
print(watcher.pid(), flush=True)
code = '''import os, subprocess, time
sleeper = subprocess.Popen(["sleep", "600"])
forked = os.fork()
if forked == 0:
    time.sleep(600)
    os._exit(0)
print(sleeper.pid, forked, flush=True)
sleeper.wait()
'''
job = jobmagics.start_job(code, thread=True, namespace={})
while not job.stdout:
    job.wait_for_activity(job.activity, 30)
print(job.stdout.strip(), watcher.pid(), flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("ending", ["killed", "exits"])
def test_the_children_of_a_process_s_jobs_end_when_it_ends_and_its_watcher_with_them(ending):
    """Killed: the watcher ends them (the forked child holds no copy of its pipe, or it would wait
    for that child). A normal exit ends them itself: the watcher finds nothing and ends too."""
    adopter = subprocess.Popen([sys.executable, "-c", ADOPTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert adopter.stdout.readline().strip() == "None"  # no watcher before the first adopted group
        sleeper, forked, watcher_pid = (int(word) for word in adopter.stdout.readline().split())
        assert psutil.Process(watcher_pid).cmdline()[-1] == watcher.PROCESS_TAG
        assert os.getsid(watcher_pid) == watcher_pid  # not in the group a kernel's restart signals
        assert os.getpgid(sleeper) == sleeper and os.getpgid(forked) == forked
        if ending == "killed":
            adopter.kill()
        else:
            adopter.stdin.close()
        adopter.wait(30)
        assert_processes_end([sleeper, forked, watcher_pid])
    finally:
        adopter.kill()
        adopter.wait()
        adopter.stdout.close()
        if adopter.stdin:
            adopter.stdin.close()


def test_past_the_prune_bound_adopting_forgets_the_groups_that_ended_and_keeps_the_live_ones(monkeypatch):
    from jobmagics.core import group

    monkeypatch.setattr(group, "_ADOPTED_PRUNE", 2)
    monkeypatch.setattr(group, "_adopted", set())  # this process's own adopted groups stay as they were
    ended = subprocess.Popen(["true"], start_new_session=True)
    ended.wait()
    live = [subprocess.Popen(["sleep", "600"], start_new_session=True) for _ in range(2)]
    try:
        group.adopt(ended.pid)
        group.adopt(live[0].pid)
        group.adopt(live[1].pid)  # the bound is reached: one look at /proc prunes the ended group
        assert group._adopted == {live[0].pid, live[1].pid}
    finally:
        group.terminate_groups([proc.pid for proc in live])
        for proc in live:
            proc.wait()
