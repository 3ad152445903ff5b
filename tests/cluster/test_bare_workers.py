"""Workers need no jobmagics: a cluster session ships the agent's sources to them (a worker plugin)."""
from __future__ import annotations

import importlib

import pytest
from job_waits import wait_for

import jobmagics
from jobmagics import api
from jobmagics.cluster import onworker
from jobmagics.sessions import remote
from jobmagics.transport import bootstrap

pytestmark = pytest.mark.timeout(120)


def test_the_worker_module_is_the_shipped_agents():
    assert onworker.WORKER_MODULE in bootstrap.shipped_sources()["modules"]


def test_a_worker_without_jobmagics_runs_streams_stops_and_returns_jobs(bare_worker_cluster, tmp_path, capsys):
    api.registry()
    session = remote.new_session(cluster=bare_worker_cluster.address)
    try:
        (refused,) = session.client.run(importlib.import_module, "jobmagics", on_error="return").values()
        assert isinstance(refused, ModuleNotFoundError)  # the worker really cannot import it
        gate = tmp_path / "gate"
        job = jobmagics.start_job("import os, time\nprint('begun')\nwhile not os.path.exists(%r):\n"
                                  "    time.sleep(0.01)\nprint('gated')\n6 * 7" % str(gate), session=session,
                                  namespace={})
        wait_for(job, lambda j: "begun" in j.stdout)  # streamed while it runs
        assert job.state == "Running" and job.location == bare_worker_cluster.worker_addresses[0]
        gate.write_text("go")
        assert jobmagics.wait_job(job, session=session) == [job] and job.state == "Completed"
        assert jobmagics.receive_job(job, session=session) == 42
        assert capsys.readouterr().out == "begun\ngated\n"  # once
        assert jobmagics.receive_job(job, session=session) is None

        loop = jobmagics.start_job("while True:\n    pass", session=session, namespace={})
        wait_for(loop, lambda j: j.state == "Running")
        jobmagics.stop_job(loop, session=session)
        assert loop.state == "Stopped"
        after = jobmagics.start_job(pow, 2, 10, session=session)
        assert after.wait(30) and jobmagics.receive_job(after, session=session) == 1024
    finally:
        remote.remove_session(session)


def test_a_second_session_keeps_the_sources_a_worker_has(cluster_session, dask_cluster):
    again = remote.new_session(cluster=dask_cluster.address)  # registers the plugin again: same sources
    try:
        job = jobmagics.start_job("'both'", session=cluster_session, namespace={})
        assert job.wait(30) and jobmagics.receive_job(job, session=cluster_session) == "both"
        answers = again.client.run(onworker.install, {"modules": {}, "packages": []},
                                   next(iter(_versions(again).values())))
        assert set(answers.values()) == {"kept"}
    finally:
        remote.remove_session(again)


def _versions(session):
    import sys

    def version():
        return [getattr(f, "jobmagics_version", None) for f in sys.meta_path if hasattr(f, "jobmagics_version")][0]

    return session.client.run(version)
