"""Cluster and --foreach metrics of the benchmark, each against its plain floor in the same run.

    .venv/bin/python bench/cluster_metrics.py [--quick]     # alone; bench/run.py runs it too

- 50 trivial jobs on a cluster session (``start_job(..., session=C)``, then
  ``wait_job`` and ``receive_job``) against 50 ``client.submit`` + ``result()``
  on the same cluster: a ``LocalCluster`` of two worker processes with one
  thread each, started here and closed at the end;
- 50 ``--foreach`` children here (process jobs, ``start_job("_", foreach=...)``,
  then wait and receive the parent; the default throttle, one child per CPU
  at once) against ``ProcessPoolExecutor.map`` over
  the same 50 items (the pool started inside the measure, as the jobs' processes are).
"""
from __future__ import annotations

import concurrent.futures
import statistics
import sys
import time

import jobmagics
from jobmagics import api
from jobmagics.sessions import remote

N = 50


def _trivial(item):
    return item


def _alternate(case, floor, repeat):
    case(), floor()  # warm-up
    times = {case: [], floor: []}
    for _ in range(repeat):
        for fn in (case, floor):
            start = time.perf_counter()
            fn()
            times[fn].append(time.perf_counter() - start)
    return statistics.median(times[case]), statistics.median(times[floor])


def run(quick=False):
    from distributed import LocalCluster

    repeat = 3 if quick else 7
    rows = []
    api.registry()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0")
    session = remote.new_session(cluster=cluster, name="bench")
    client = session.client
    try:
        def cluster_jobs():
            jobs = [jobmagics.start_job("1", session=session, namespace={}) for _ in range(N)]
            jobmagics.wait_job(*jobs, session=session)
            jobmagics.receive_job(*jobs, session=session)
            jobmagics.remove_job(*jobs, session=session)

        def submits():
            futures = [client.submit(_trivial, i, pure=False) for i in range(N)]
            [f.result() for f in futures]

        t_case, t_floor = _alternate(cluster_jobs, submits, repeat)
        rows.append({"metric": "%d trivial cluster jobs started, waited, received" % N, "jobmagics_s": t_case,
                     "floor": "%d client.submit + result() on the same cluster" % N, "floor_s": t_floor,
                     "ratio": t_case / t_floor, "target": "(for information)"})
    finally:
        remote.remove_session(session)
        cluster.close()

    def foreach_children():
        parent = jobmagics.start_job("_", foreach=range(N), namespace={})
        parent.wait()
        jobmagics.receive_job(parent)
        jobmagics.remove_job(parent)

    def pool_map():
        with concurrent.futures.ProcessPoolExecutor() as pool:
            list(pool.map(abs, range(N)))

    t_case, t_floor = _alternate(foreach_children, pool_map, repeat)
    rows.append({"metric": "%d --foreach children (process jobs), all received" % N, "jobmagics_s": t_case,
                 "floor": "ProcessPoolExecutor.map over %d items" % N, "floor_s": t_floor,
                 "ratio": t_case / t_floor, "target": "(for information)"})
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print("%-55s %.4f s  %-50s %.4f s  %.2f×" % (row["metric"], row["jobmagics_s"], row["floor"], row["floor_s"],
                                                    row["ratio"]))
