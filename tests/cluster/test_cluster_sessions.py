"""Cluster sessions on a real Dask cluster (spec section 5, "Beyond one machine")."""
from __future__ import annotations

import os
import signal
import sys

import psutil
import pytest
from job_waits import wait_for
from proc_helpers import assert_processes_end

import jobmagics
from jobmagics import api
from jobmagics.sessions import remote
from jobmagics.errors import UserInputError

pytestmark = pytest.mark.timeout(120)


def test_a_session_lists_as_cluster_and_its_jobs_stream_every_record_once(cluster_session, dask_cluster, capsys):
    s = cluster_session
    assert s.transport == "Cluster" and s.computer_name == dask_cluster.address
    assert s in remote.get_session()
    job = jobmagics.start_job("import warnings, sys\nprint('out', 1)\nprint('err', file=sys.stderr)\n"
                              "warnings.warn('careful')\n6 * 7", session=s, namespace={})
    assert job.job_type == "RemoteJob"
    assert jobmagics.wait_job(job, session=s) == [job]
    assert job.state == "Completed"
    assert job.location in dask_cluster.worker_addresses  # a job's location is its worker
    assert jobmagics.receive_job(job, session=s, keep=True) == 42
    kept = capsys.readouterr()
    assert kept.out == "out 1\n" and "err\n" in kept.err and "careful" in kept.err
    assert jobmagics.receive_job(job, session=s) == 42  # --keep kept it
    again = capsys.readouterr()
    assert again.out == "out 1\n"
    assert jobmagics.receive_job(job, session=s) is None  # received once
    assert capsys.readouterr().out == ""
    assert job not in jobmagics.get_job()  # its results stay in the session
    assert list(jobmagics.get_job(session=s)) == [job]


def test_records_stream_while_the_job_runs(cluster_session, tmp_path):
    gate = tmp_path / "gate"
    job = jobmagics.start_job("import os, time\nprint('first')\nwhile not os.path.exists(%r):\n"
                              "    time.sleep(0.01)\nprint('second')" % str(gate), session=cluster_session,
                              namespace={})
    wait_for(job, lambda j: "first" in j.stdout)
    assert job.state == "Running"
    gate.write_text("go")
    assert job.wait(30) and job.stdout == "first\nsecond\n"


def test_errors_fail_the_job_with_their_traceback(cluster_session):
    job = jobmagics.start_job("def f():\n    1 / 0\nf()", session=cluster_session, namespace={})
    assert job.wait(30)
    assert job.state == "Failed" and "ZeroDivisionError" in job.reason
    (error,) = job.error
    assert error.ename == "ZeroDivisionError" and "f()" in error.traceback


def test_variables_and_a_callable_travel(cluster_session):
    job = jobmagics.start_job("base + 1", session=cluster_session, namespace={"base": 10})
    call = jobmagics.start_job(pow, 2, 5, session=cluster_session)
    assert job.wait(30) and call.wait(30)
    assert jobmagics.receive_job(job, call, session=cluster_session) == [11, 32]


def test_foreach_spreads_over_both_workers(cluster_session, dask_cluster, tmp_path):
    gate = tmp_path / "gate"
    parent = jobmagics.start_job("import os, time\nwhile not os.path.exists(%r):\n    time.sleep(0.01)\n_ * 10"
                                 % str(gate), foreach=[1, 2, 3, 4], session=cluster_session, namespace={})
    first, second = parent.child_jobs[:2]
    wait_for(first, lambda j: j.state == "Running")
    wait_for(second, lambda j: j.state == "Running")  # the default throttle: the cluster's two threads
    assert [c.state for c in parent.child_jobs[2:]] == ["NotStarted", "NotStarted"]
    assert sorted([first.location, second.location]) == dask_cluster.worker_addresses
    gate.write_text("go")
    assert parent.wait(60) and parent.state == "Completed"
    assert jobmagics.receive_job(parent, session=cluster_session) == [10, 20, 30, 40]


def test_a_pure_python_loop_is_really_stopped_and_the_worker_carries_on(cluster_session):
    loop = jobmagics.start_job("n = 0\nwhile True:\n    n += 1", session=cluster_session, namespace={})
    wait_for(loop, lambda j: j.state == "Running")
    jobmagics.stop_job(loop, session=cluster_session)
    assert loop.state == "Stopped"
    after = [jobmagics.start_job("'still here'", session=cluster_session, namespace={}) for _ in range(2)]
    assert all(job.wait(30) for job in after)  # both workers took work again
    assert jobmagics.receive_job(*after, session=cluster_session) == ["still here"] * 2


def test_a_stop_ends_the_processes_a_job_started_on_its_worker(cluster_session):
    code = ("import subprocess, sys\n"
            "sleeper = subprocess.Popen(['sleep', '600'])\n"
            "python = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "print(sleeper.pid, python.pid, flush=True)\n"
            "subprocess.run(['sleep', '600'])")
    job = jobmagics.start_job(code, session=cluster_session, namespace={})
    other = jobmagics.start_job(code, session=cluster_session, namespace={})  # on the other worker
    wait_for(job, lambda j: j.stdout.endswith("\n"))
    wait_for(other, lambda j: j.stdout.endswith("\n"))
    jobmagics.stop_job(job, session=cluster_session)
    assert job.state == "Stopped" and "did not confirm" not in job.reason
    assert_processes_end([int(pid) for pid in job.stdout.split()], timeout=30)
    assert other.state == "Running" and all(psutil.pid_exists(int(pid)) for pid in other.stdout.split())
    after = jobmagics.start_job("'next'", session=cluster_session, namespace={})
    assert after.wait(30) and after.location == job.location  # the stopped job's worker took it
    assert jobmagics.receive_job(after, session=cluster_session) == "next"
    jobmagics.stop_job(other, session=cluster_session)
    assert other.state == "Stopped"
    assert_processes_end([int(pid) for pid in other.stdout.split()], timeout=30)


def test_invoke_as_job_comes_back_to_the_kernel(cluster_session, dask_cluster, capsys):
    job = remote.invoke("print('there')\n7", session=cluster_session, as_job=True, namespace={})
    assert job in jobmagics.get_job()
    assert job.wait(30) and job.state == "Completed"
    assert job.child_jobs[0].location in dask_cluster.worker_addresses
    assert jobmagics.receive_job(job) == 7
    assert capsys.readouterr().out == "there\n"
    jobmagics.remove_job(job)
    assert not cluster_session.jobs()  # forgotten by the session (and on its worker) too


def test_invoke_streams_into_the_caller(cluster_session, capsys):
    assert remote.invoke("print('streamed')\n'value'", session=cluster_session, namespace={}) == "value"
    assert "streamed" in capsys.readouterr().out


def test_a_killed_worker_fails_its_job_naming_the_worker(one_worker_cluster):
    api.registry()
    session = remote.new_session(cluster=one_worker_cluster.address)
    try:
        job = jobmagics.start_job("import time\nprint('begun')\nwhile True:\n    time.sleep(0.01)",
                                  session=session, namespace={})
        wait_for(job, lambda j: "begun" in j.stdout)
        worker = job.location
        one_worker_cluster.workers[0].kill()
        assert job.wait(60)
        assert job.state == "Failed" and worker in job.reason
    finally:
        remote.remove_session(session)


def test_a_worker_its_nanny_restarts_fails_its_job_and_the_others_go_on(nanny_cluster, tmp_path):
    api.registry()
    session = remote.new_session(cluster=nanny_cluster.address)
    try:
        gate = tmp_path / "gate"
        code = ("import os, time\nprint(os.getpid(), flush=True)\nwhile not os.path.exists(%r):\n"
                "    time.sleep(0.01)\n'done'" % str(gate))
        first, second = (jobmagics.start_job(code, session=session, namespace={}) for _ in range(2))
        wait_for(first, lambda j: j.stdout.endswith("\n"))
        wait_for(second, lambda j: j.stdout.endswith("\n"))
        under_nanny = {p.pid for p in psutil.Process(nanny_cluster.nannies[0].pid).children(recursive=True)}
        (on_nanny,) = [job for job in (first, second) if int(job.stdout) in under_nanny]
        other = second if on_nanny is first else first
        worker_pid = int(on_nanny.stdout)  # the worker process the nanny started
        address = on_nanny.location
        os.kill(worker_pid, signal.SIGKILL)
        assert on_nanny.wait(60)
        assert on_nanny.state == "Failed" and address in on_nanny.reason
        assert other.state == "Running"
        gate.write_text("go")
        assert other.wait(30) and jobmagics.receive_job(other, session=session) == "done"
        session.client.wait_for_workers(2, timeout=60)  # the nanny's new worker, with the agent installed again
        from jobmagics.cluster.onworker import call

        assert len(session.client.run(call, "sessions")) == 2  # raises where the worker module is missing
        again = [jobmagics.start_job("'again'", session=session, namespace={}) for _ in range(2)]
        assert all(job.wait(30) for job in again)
        assert jobmagics.receive_job(*again, session=session) == ["again"] * 2
    finally:
        remote.remove_session(session)


def test_removing_the_session_stops_its_jobs(dask_cluster):
    api.registry()
    session = remote.new_session(cluster=dask_cluster.address)
    job = jobmagics.start_job("while True:\n    pass", session=session, namespace={})
    wait_for(job, lambda j: j.state == "Running")
    remote.remove_session(session)
    assert session.state == "Closed" and job.state == "Stopped"


def test_a_session_on_a_local_cluster_it_owns():
    api.registry()
    session = remote.new_session(cluster="local", name="mine")
    try:
        cluster = session.cluster
        job = jobmagics.start_job("print('local'); 3", session=session, namespace={})
        assert job.wait(60) and jobmagics.receive_job(job, session=session) == 3
    finally:
        remote.remove_session(session)
    assert cluster.status.name == "closed"


@pytest.mark.parametrize("target, message", [
    ("tcp://127.0.0.1:9", "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
    ("", "--cluster needs a scheduler address"),
    (5, "--cluster takes a scheduler address"),
])
def test_bad_clusters_are_one_line_and_open_nothing(target, message):
    before = list(remote.get_session())
    with pytest.raises(UserInputError, match=message) as info:
        remote.new_session(cluster=target)
    assert "\n" not in str(info.value)
    assert list(remote.get_session()) == before


def test_without_distributed_one_line_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UserInputError, match=r'pip install "jobmagics\[dask\]"'):
        remote.new_session(cluster="tcp://127.0.0.1:8786")


def test_a_tls_scheduler_is_reached_with_the_clusters_own_security():
    from distributed import LocalCluster
    from distributed.security import Security

    pytest.importorskip("cryptography", reason="Security.temporary() needs cryptography")
    api.registry()
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tls://",
                           host="127.0.0.1", dashboard_address="127.0.0.1:0", security=Security.temporary())
    try:
        session = remote.new_session(cluster=cluster, name="secure")
        try:
            assert session.computer_name.startswith("tls://")
            job = jobmagics.start_job("print('over tls'); 1", session=session, namespace={})
            assert job.wait(60) and job.stdout == "over tls\n"
        finally:
            remote.remove_session(session)
        assert cluster.status.name == "running"  # a cluster object passed in stays its owner's
        with pytest.raises(UserInputError, match="cannot reach the Dask scheduler"):
            remote.new_session(cluster=cluster.scheduler_address)  # without its security settings
    finally:
        cluster.close()


def test_a_removed_job_is_forgotten_on_its_worker(cluster_session):
    from jobmagics.cluster.onworker import call

    job = jobmagics.start_job("print('x')", session=cluster_session, namespace={})
    assert job.wait(30)
    (key,) = [key for key, t in cluster_session._tracked.items() if t.job is job]
    kept = cluster_session.client.run(call, "fetch", {key: (0, 0)})
    assert any(key in found for found in kept.values())
    jobmagics.remove_job(job, session=cluster_session)
    assert not cluster_session.jobs()
    kept = cluster_session.client.run(call, "fetch", {key: (0, 0)})
    assert not any(key in found for found in kept.values())
