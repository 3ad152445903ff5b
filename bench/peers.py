"""jobmagics process jobs against the engines a user would pick instead, in one run, all warm.

    .venv/bin/python bench/peers.py [--quick]        (or: bench/run.py --only peers)
    pip install -e '.[bench]'                        (Dask; ipyparallel is measured when installed)

Three kinds of work: one trivial job (start -> result), 50 trivial jobs at once
(all results back), and a 64 MB NumPy array into a job and back. jobmagics runs
them as process jobs as started by default (a fresh process per job) and with
``reuse=True`` (warm processes serve one job after another). Contenders: a
warm Dask ``LocalCluster`` (2 worker processes of one thread, as many as the
cores here), a warm ``concurrent.futures.ProcessPoolExecutor(2)`` and, where
installed, ipyparallel with 2 engines. They run alternately, round after round,
and each cell is a median with its spread (min-max over the rounds). Dask is the
reference of the targets; a contender that is not installed is skipped with the
reason.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import statistics
import sys
import time
import warnings

import jobmagics

ARRAY_BYTES = 64 << 20
MANY = 50
WORKERS = 2
#: The targets of the issue that asked for this section: jobmagics' time over Dask's.
TARGETS = {"one": 0.75, "many": 1.0, "array": 0.5}


def _trivial(_=None):
    return 1


def _identity(value):
    return value


class JobmagicsContender:
    """Process jobs as started by default (a fresh process each), or with ``reuse=True``."""

    def __init__(self, reuse=False):
        self.reuse = reuse
        self.name = "jobmagics --reuse" if reuse else "jobmagics process jobs"

    def one(self):
        job = jobmagics.start_job("1", namespace={}, reuse=self.reuse)
        job.wait()
        job.receive()
        job.remove()

    def many(self):
        jobs = [jobmagics.start_job("1", namespace={}, reuse=self.reuse) for _ in range(MANY)]
        jobmagics.wait_job(*jobs)
        for job in jobs:
            job.receive()
            job.remove()

    def array(self, array):
        job = jobmagics.start_job("array", namespace={"array": array}, reuse=self.reuse)
        job.wait()
        (back,) = job.receive()
        job.remove()
        assert back.nbytes == array.nbytes

    def close(self):
        pass


class DaskContender:
    name = "Dask LocalCluster (2 processes)"

    def __init__(self):
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None,
                                    silence_logs=50)
        self.client = Client(self.cluster)

    def one(self):
        self.client.submit(_trivial, pure=False).result()

    def many(self):
        self.client.gather(self.client.map(_trivial, range(MANY), pure=False))

    def array(self, array):
        back = self.client.submit(_identity, array, pure=False).result()
        assert back.nbytes == array.nbytes

    def close(self):
        self.client.close()
        self.cluster.close()


class PoolContender:
    name = "ProcessPoolExecutor(2)"

    def __init__(self):
        self.pool = concurrent.futures.ProcessPoolExecutor(WORKERS)

    def one(self):
        self.pool.submit(_trivial).result()

    def many(self):
        list(self.pool.map(_trivial, range(MANY)))

    def array(self, array):
        back = self.pool.submit(_identity, array).result()
        assert back.nbytes == array.nbytes

    def close(self):
        self.pool.shutdown()


class IpyparallelContender:
    name = "ipyparallel (2 engines)"

    def __init__(self):
        import ipyparallel

        self.cluster = ipyparallel.Cluster(n=WORKERS, log_level=50)
        self.client = self.cluster.start_and_connect_sync()
        self.view = self.client.load_balanced_view()

    def one(self):
        self.view.apply_async(_trivial).get()

    def many(self):
        self.view.map_async(_trivial, range(MANY)).get()

    def array(self, array):
        back = self.view.apply_async(_identity, array).get()
        assert back.nbytes == array.nbytes

    def close(self):
        self.client.close()
        self.cluster.stop_cluster_sync()


PEERS = [("distributed", DaskContender), ("concurrent.futures", PoolContender), ("ipyparallel", IpyparallelContender)]
WORK = [("one", "one trivial job, start → result"), ("many", "%d trivial jobs at once, all results back" % MANY),
        ("array", "%d MB array in and out" % (ARRAY_BYTES >> 20))]


def _start_contenders():
    contenders, skipped = [JobmagicsContender(), JobmagicsContender(reuse=True)], {}
    for module, cls in PEERS:
        if importlib.util.find_spec(module) is None:
            skipped[cls.name] = "%s is not installed" % module
            continue
        try:
            contenders.append(cls())
        except Exception as exc:  # noqa: BLE001  (a peer that cannot start here is reported, not fatal)
            skipped[cls.name] = "could not start: %s" % exc
    return contenders, skipped


def _time(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def measure(quick=False):
    """{work: {contender name: [seconds per round]}}, contenders alternating within each round."""
    import numpy as np

    rounds = {"one": 15 if quick else 41, "many": 5 if quick else 15, "array": 3 if quick else 9}
    array = np.ones(ARRAY_BYTES // 8)
    warnings.filterwarnings("ignore", message="Sending large graph")  # Dask's advice for big task arguments
    contenders, skipped = _start_contenders()
    times = {work: {c.name: [] for c in contenders} for work, _label in WORK}
    try:
        for work, _label in WORK:
            args = (array,) if work == "array" else ()
            for contender in contenders:  # warm-up: workers started, code and modules loaded
                getattr(contender, work)(*args)
                getattr(contender, work)(*args)
            for _ in range(rounds[work]):
                for contender in contenders:
                    times[work][contender.name].append(_time(getattr(contender, work), *args))
    finally:
        for contender in contenders:
            with contextlib.suppress(Exception):
                contender.close()
    return times, skipped


def rows(quick=False):
    """Rows for bench/run.py: one per kind of work, jobmagics (a process per job, and ``--reuse``)
    beside the peers, medians and spreads, and the ratios to Dask."""
    times, skipped = measure(quick)
    result = []
    for work, label in WORK:
        by_name = {name: _summary(values) for name, values in times[work].items()}
        ours = by_name.pop(JobmagicsContender().name)
        reused = by_name.pop(JobmagicsContender(reuse=True).name)
        dask = by_name.get(DaskContender.name)
        row = {"metric": label, "jobmagics_s": ours["median_s"], "jobmagics_spread_s": ours["spread_s"],
               "reuse_s": reused["median_s"], "reuse_spread_s": reused["spread_s"], "peers": by_name,
               "floor": DaskContender.name, "floor_s": dask["median_s"] if dask else None,
               "ratio": ours["median_s"] / dask["median_s"] if dask else None,
               "reuse_ratio": reused["median_s"] / dask["median_s"] if dask else None,
               "target": "≤ %.2f× Dask" % TARGETS[work], "skipped": skipped}
        result.append(row)
    return result


def _summary(values):
    return {"median_s": statistics.median(values), "spread_s": (min(values), max(values)), "runs": len(values)}


def format_row(row):
    def cell(median, spread):
        return "%.1f ms (%.1f–%.1f)" % (median * 1e3, spread[0] * 1e3, spread[1] * 1e3)

    ours = cell(row["jobmagics_s"], row["jobmagics_spread_s"])
    reused = cell(row["reuse_s"], row["reuse_spread_s"])
    peers = "; ".join("%s %s" % (name, cell(s["median_s"], s["spread_s"])) for name, s in row["peers"].items())
    ratios = ("%.2f× Dask, --reuse %.2f×" % (row["ratio"], row["reuse_ratio"])) if row["ratio"] is not None \
        else "no Dask"
    return "%-52s %s, --reuse %s  %s  %s  [%s]" % (row["metric"], ours, reused, ratios, row["target"], peers)


def main(argv=None):
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    result = rows(quick)
    for row in result:
        print(format_row(row))
    for name, reason in (result[0]["skipped"] if result else {}).items():
        print("%s skipped: %s" % (name, reason))


if __name__ == "__main__":
    main()
