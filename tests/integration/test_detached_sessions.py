"""Detached local sessions: work that outlives the kernel, with nothing lost and nothing doubled."""
from __future__ import annotations

import os
import signal
import stat

import psutil
import pytest

from kernel_driver import Kernel
from proc_helpers import wait_ended
from jobmagics import api
from jobmagics.sessions import remote
from jobmagics.errors import UserInputError
from jobmagics.transport.local_socket import find_sessions, runtime_dir, status

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240)]

LINES = 60
WORK = """%%invoke --session {name} --as-job --job-name work
import os, time
for i in range({lines}):
    if i == {lines} // 2:
        while not os.path.exists({flag!r}):  # the second half waits until the first kernel is gone
            time.sleep(0.02)
    print('line', i, flush=True)
'all done'
"""


def wait_gone(pid, timeout=30):
    # The session is not our child: it ends as a zombie of pid 1, which may not reap it here.
    assert wait_ended([pid], timeout) == []


def session_pid(name):
    for files, info in find_sessions():
        if info["name"] == name:
            return info["pid"]
    return None


def received_lines(text):
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("line ")]


def loaded(kernel):
    assert kernel.run("%load_ext jobmagics").ok
    return kernel


def start_work(kernel, name, flag):
    assert kernel.run("%%new_session --local --name %s" % name).ok
    started = kernel.run(WORK.format(name=name, lines=LINES, flag=flag))
    assert started.ok, started.stderr
    # Take the first lines in this kernel: they must not come again in the next one.
    first = kernel.run("w = %get_job work\nw = w[0]\n"
                       "while len(w.child_jobs[0].stdout.splitlines()) < 10:\n"
                       "    w.wait_for_activity(w.activity, 30)\n"
                       "_ = %receive_job work")
    assert first.ok, first.stderr + first.error_text()
    return received_lines(first.stdout)


@pytest.mark.parametrize("ending", ["disconnect-then-shutdown", "kill -9"])
def test_work_outlives_the_kernel_and_arrives_exactly_once(tmp_path, ending):
    name, flag = "outlive-%d" % os.getpid(), str(tmp_path / "go")
    first_kernel = loaded(Kernel().start())
    try:
        seen = start_work(first_kernel, name, flag)
        assert seen and seen == list(range(len(seen)))
        if ending == "kill -9":
            os.kill(first_kernel.pid, signal.SIGKILL)
        else:
            assert first_kernel.run("%%disconnect_session %s" % name).ok
            first_kernel.shutdown()
    finally:
        first_kernel.shutdown(now=True)
    assert session_pid(name) is not None  # the session lives on without any kernel
    open(flag, "w").close()
    with Kernel() as second:
        loaded(second)
        listed = second.run("%get_session --local")
        assert name in listed.text and "Disconnected" in listed.text
        back = second.run("j = %%receive_session %s --job-name again\nj" % name)
        assert back.ok, back.stderr
        done = second.run("%wait_job $j\n_ = None")
        assert done.ok
        rest = second.run("%receive_job $j")
        assert rest.text == "'all done'"
        # Every line exactly once, across the two kernels.
        assert seen + received_lines(rest.stdout) == list(range(LINES))
        pid = session_pid(name)
        assert second.run("%%remove_session %s" % name).ok
        wait_gone(pid)


def test_sessions_not_disconnected_end_with_the_kernel():
    name = "ends-%d" % os.getpid()
    with Kernel() as kernel:
        loaded(kernel)
        assert kernel.run("%%new_session --local --name %s" % name).ok
        pid = session_pid(name)
        assert pid is not None
    wait_gone(pid)
    assert session_pid(name) is None


def test_socket_and_directory_are_private_and_a_wrong_token_is_refused():
    session = remote.new_session(local=True, name="private-%d" % os.getpid())
    try:
        directory = runtime_dir()
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(session.files.socket).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(session.files.token_path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(session.files.info_path).st_mode) == 0o600
        assert status(session.files)["availability"] == "Busy"  # this kernel is connected

        class WrongToken(type(session.files)):
            def token(self):
                return "0" * 64

        with pytest.raises(UserInputError, match="wrong token"):
            status(WrongToken(session.files.dir, session.files.id))
        listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
                     and c.pid == session.hello["pid"]]
        assert listening == []  # no TCP listener
    finally:
        remote.remove_session(session)


def test_a_second_kernel_sees_busy_and_cannot_attach(tmp_path):
    session = remote.new_session(local=True, name="busy-%d" % os.getpid())
    try:
        with Kernel() as other:
            loaded(other)
            listed = other.run("%get_session --local")
            assert session.name in listed.text and "Busy" in listed.text
            refused = other.run("%%connect_session %s" % session.name)
            assert refused.stderr.startswith("UsageError: session %s: Busy" % session.name)
    finally:
        remote.remove_session(session)


def test_an_abandoned_session_ends_after_its_idle_timeout():
    session = remote.new_session(local=True, name="idle-%d" % os.getpid(), idle_timeout=1)
    pid = session.hello["pid"]
    remote.disconnect_session(session)
    wait_gone(pid)
    assert session_pid(session.name) is None
    remote.remove_session(session)  # it is gone already: removing it only forgets it
    assert session.state == "Closed"


def _running(job):
    child = job.child_jobs[0]
    while child.state != "Running":
        child.wait_for_activity(child.activity, 30)
    return child


def test_a_job_that_finishes_while_nobody_is_connected_is_completed_on_return(tmp_path):
    flag = str(tmp_path / "go")
    session = remote.new_session(local=True, name="finish-away-%d" % os.getpid())
    job = remote.invoke("import os, time\nwhile not os.path.exists(flag):\n    time.sleep(0.02)\n'over'",
                        session=session, as_job=True, namespace={"flag": flag})
    _running(job)
    remote.disconnect_session(session)
    open(flag, "w").close()
    deadline_states = []
    while "Completed" not in deadline_states:  # ask the session itself until its job is done
        deadline_states = [j["state"] for j in status(session.files)["jobs"]]
    remote.connect_session(session.name)
    assert job.wait(30) and job.state == "Completed"
    from jobmagics import receive_job
    assert receive_job(job) == "over"
    remote.remove_session(session)
    job.remove()


def test_processes_a_job_started_end_with_the_session():
    session = remote.new_session(local=True, name="tree-%d" % os.getpid())
    code = "import subprocess\nfrom jobmagics import emit\nemit(subprocess.Popen(['sleep', '600']).pid)"
    job = remote.invoke(code, session=session, as_job=True, namespace={})
    assert job.wait(30)
    from jobmagics import receive_job
    pid = receive_job(job)
    assert psutil.pid_exists(pid)
    remote.remove_session(session)
    wait_gone(pid)
    job.remove()


def _session_with_a_waiting_job(name):
    """A new local session, and a job running in it that never ends by itself."""
    session = remote.new_session(local=True, name="%s-%d" % (name, os.getpid()))
    waiting = remote.invoke("import time\nwhile True:\n    time.sleep(0.05)", session=session, as_job=True,
                            namespace={})
    _running(waiting)
    return session, waiting


def test_a_session_process_that_lets_its_connection_go_before_it_is_gone_still_fails_its_jobs():
    # A process's sockets close before it has finished exiting: the kernel sees the end of the
    # connection first, and must not take the still-running process for a live session.
    session, waiting = _session_with_a_waiting_job("lingering")
    code = ("import os, socket, time\n"
            "for fd in map(int, os.listdir('/proc/self/fd')):\n"
            "    try:\n"
            "        socket.socket(fileno=os.dup(fd)).shutdown(socket.SHUT_RDWR)\n"
            "    except OSError:\n"
            "        pass\n"
            "time.sleep(0.3)\n"
            "os._exit(3)")
    lingering = remote.invoke(code, session=session, as_job=True, namespace={})
    assert waiting.wait(30) and lingering.wait(30)
    assert waiting.state == "Failed" and "the session process ended" in waiting.child_jobs[0].reason
    remote.remove_session(session)
    waiting.remove()
    lingering.remove()


def test_a_job_that_ends_the_session_process_fails_the_jobs_in_it():
    session, waiting = _session_with_a_waiting_job("crash")
    crash = remote.invoke("import os\nos._exit(3)", session=session, as_job=True, namespace={})
    assert crash.wait(30) and waiting.wait(30)
    assert waiting.state == "Failed" and "the session process ended" in waiting.child_jobs[0].reason
    assert session.state == "Broken"
    remote.remove_session(session)
    waiting.remove()
    crash.remove()


def test_invoke_hands_exported_variables_back_streaming_or_as_a_job(capsys):
    session = remote.new_session(local=True, name="export-%d" % os.getpid())
    try:
        here = {}
        remote.invoke("total = 6 * 7", session=session, export="total", namespace=here)
        assert here["total"] == 42
        assert "set total (exported by the job)" in capsys.readouterr().out
        job = remote.invoke("rows = [1, 2]", session=session, as_job=True, export="rows,never")
        assert job.wait(60)
        (child,) = job.child_jobs
        assert child.exports == {"rows": [1, 2]} and "the job never set never" in child.warning[0]
        received = {}
        api.receive_job(job, export_into=received)
        assert received == {"rows": [1, 2]}
        job.remove()
    finally:
        remote.remove_session(session)
