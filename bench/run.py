"""jobmagics against plain-Python floors, measured side by side in one run.

    .venv/bin/python bench/run.py [--quick] [--json FILE] [--only local,peers,ssh,kernel]

Each metric runs its jobmagics case and its floor alternately, after a
warm-up, and reports medians and their ratio. Times are never asserted: this
is a measurement, kept in docs/performance.md with the machine it ran on.
Five groups: ``local`` (here), ``peers`` (bench/peers.py: process jobs against
a warm Dask LocalCluster, a ProcessPoolExecutor and ipyparallel where installed),
``ssh`` (bench/ssh_metrics.py: sessions to an OpenSSH server on loopback, skipped
with the reason when there is none), ``kernel`` (bench/kernel_metrics.py: a
real IPython kernel) and ``cluster`` (bench/cluster_metrics.py: a local Dask
cluster, and ``--foreach`` here).
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

import jobmagics


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def thread_job_roundtrip():
    job = jobmagics.start_job("1", thread=True, namespace={})
    job.wait()
    job.receive()
    job.remove()


def thread_floor():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()


def process_job_roundtrip():
    job = jobmagics.start_job("1", namespace={})
    job.wait()
    job.receive()
    job.remove()


def process_floor():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def fifty_process_jobs():
    jobs = [jobmagics.start_job("1", namespace={}) for _ in range(50)]
    jobmagics.wait_job(*jobs)
    for job in jobs:
        job.receive()
        job.remove()


def fifty_sequential_pythons():
    for _ in range(50):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


def thousand_thread_jobs():
    jobs = [jobmagics.start_job("1", thread=True, namespace={}) for _ in range(1000)]
    jobmagics.wait_job(*jobs)
    for job in jobs:
        job.receive()
        job.remove()


def thousand_pool_tasks():
    with concurrent.futures.ThreadPoolExecutor() as pool:
        list(pool.map(lambda _: 1, range(1000)))


def array_roundtrip(size):
    import numpy as np

    array = np.ones(size // 8)

    def through_a_job():
        job = jobmagics.start_job("array", namespace={"array": array})
        job.wait()
        (back,) = job.receive()
        job.remove()
        assert back.nbytes == array.nbytes

    def copy_floor():
        array.copy()

    def pool_floor():
        with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
            pool.submit(_identity, array).result()

    return through_a_job, copy_floor, pool_floor


def _identity(value):
    return value


FIGURE_CODE = ("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"  # 640x480, matplotlib's default
               "ax.plot(range(100))\nplt.show()")


def figure_job():
    """A process job draws one figure; done when its PNG is here."""
    job = jobmagics.start_job(FIGURE_CODE, namespace={})
    job.wait()
    (item,) = job.display
    assert base64.b64decode(item["data"]["image/png"]).startswith(b"\x89PNG"), job.error
    job.remove()


def figure_row(repeat):
    """A figure made in a process job against the same figure rendered here, in a kernel that plots."""
    import matplotlib.pyplot  # noqa: F401  (a notebook that plots has pyplot imported ...)
    from jobmagics.transport import forkserver

    forkserver.shutdown()  # ... when its first process job starts the fork server, which then preloads it
    figure_job(), figure_floor()
    times = {figure_job: [], figure_floor: []}
    for _ in range(repeat):
        for fn in times:
            times[fn].append(_median_time(fn, 1))
    t_job, t_floor = statistics.median(times[figure_job]), statistics.median(times[figure_floor])
    return {"metric": "one 640×480 figure: process job start → PNG received", "jobmagics_s": t_job,
            "floor": "the figure rendered to PNG here", "floor_s": t_floor, "ratio": t_job / t_floor,
            "target": "(for information)"}


def figure_floor():
    """The same figure rendered to PNG in this process, as the notebook's inline backend would."""
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot(range(100))
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")


METRICS = [
    ("thread job start → wait → receive", thread_job_roundtrip, "threading.Thread start + join", thread_floor, "≤ 2×"),
    ("process job start → wait → receive", process_job_roundtrip, "python -c pass", process_floor, "≤ 0.5×"),
    ("50 process jobs at once, all received", fifty_process_jobs, "50 sequential python -c pass",
     fifty_sequential_pythons, "≤ 0.25×"),
    ("1000 thread jobs, all received", thousand_thread_jobs, "ThreadPoolExecutor, 1000 trivial tasks",
     thousand_pool_tasks, "≤ 10×"),
]


def local_rows(quick):
    repeat = 3 if quick else 7
    rows = []
    for name, case, floor_name, floor, target in METRICS:
        case(), floor()  # warm-up
        # Alternate the two, many times for the cheap ones: a median of few sub-millisecond runs is noise.
        times = {case: [], floor: []}
        rounds = repeat * (15 if _median_time(case, 1) < 0.01 else 1)
        for _ in range(rounds):
            for fn in (case, floor):
                times[fn].append(_median_time(fn, 1))
        t_case, t_floor = statistics.median(times[case]), statistics.median(times[floor])
        rows.append({"metric": name, "jobmagics_s": t_case, "floor": floor_name, "floor_s": t_floor,
                     "ratio": t_case / t_floor, "target": target})
    size = (16 if quick else 256) * 1024 * 1024
    through_a_job, copy_floor, pool_floor = array_roundtrip(size)
    through_a_job(), copy_floor()
    t_job, t_copy = _median_time(through_a_job, repeat), _median_time(copy_floor, repeat)
    t_pool = _median_time(pool_floor, 1 if quick else 3)
    rows.append({"metric": "%d MB NumPy array into a process job and back" % (size >> 20), "jobmagics_s": t_job,
                 "floor": "ndarray.copy() (ProcessPoolExecutor: %.3f s)" % t_pool, "floor_s": t_copy,
                 "ratio": t_job / t_copy, "target": "≥ 2 GB/s effective",
                 "effective_gb_s": 2 * size / t_job / 1e9})
    if importlib.util.find_spec("matplotlib") is not None:  # optional: no figure to measure without it
        rows.append(figure_row(repeat))  # last: it restarts the fork server with pyplot preloaded
    return rows


def _peer_rows(quick):
    import peers

    if importlib.util.find_spec("numpy") is None:
        raise _Skipped("NumPy is not installed (pip install -e '.[bench]')")
    return peers.rows(quick)


def _ssh_rows(quick):
    import ssh_metrics

    reason = ssh_metrics.skip_reason()
    if reason:
        raise _Skipped(reason)
    return ssh_metrics.run(quick)


def _kernel_rows(quick):
    try:
        import kernel_metrics
        import ipykernel  # noqa: F401
        import jupyter_client  # noqa: F401
    except ImportError as exc:
        raise _Skipped("no kernel to drive here: %s" % exc) from None
    return kernel_metrics.run(quick)


def _cluster_rows(quick):
    if importlib.util.find_spec("distributed") is None:
        raise _Skipped('no Dask distributed here: pip install "jobmagics[dask]"')
    import cluster_metrics

    return cluster_metrics.run(quick)


class _Skipped(Exception):
    """A group of metrics that cannot run on this machine; the message says why."""


GROUPS = {"local": local_rows, "peers": _peer_rows, "ssh": _ssh_rows, "kernel": _kernel_rows,
          "cluster": _cluster_rows}


def _seconds(value):
    return "%10.4f s" % value if value is not None else "%12s" % "—"


def format_row(row):
    """One line of the table, whatever the group: times, or what the row measures instead."""
    if "peers" in row:
        import peers

        return peers.format_row(row)
    if "delta_mb" in row:  # memory: the growth is the measure, the floor the RSS before
        runs = " (runs: %s)" % ", ".join("%+.0f MB" % d for d in row["delta_mb_runs"]) if "delta_mb_runs" in row else ""
        job = "; job process peak %.0f MB" % row["job_process_rss_peak_mb"] if row.get("job_process_rss_peak_mb") else ""
        return "%-52s %+9.1f MB %9.0f MB %9s  %s  (%.0f MB peak%s%s; %d of %d bytes received in %.1f s)" % (
            row["metric"], row["delta_mb"], row["rss_before_mb"], "—", row["target"], row["rss_peak_mb"], runs, job,
            row["received_bytes"], row["written_bytes"], row["jobmagics_s"])
    if "p90_ms" in row:  # latency: p90 against the idle p90
        return "%-52s %9.1f ms %9.1f ms %8.1f×  %s  (p50 %.1f ms, idle p50 %.1f ms; %.0f widget msgs/s)" % (
            row["metric"], row["p90_ms"], row["floor_p90_ms"], row["ratio"], row["target"], row["p50_ms"],
            row["floor_p50_ms"], row["comm_msgs_per_s"])
    extra = ""
    if "effective_gb_s" in row:
        extra = "  (%.2f GB/s)" % row["effective_gb_s"]
    if "throughput_mb_s" in row:
        extra = "  (%.0f MB/s against %.0f MB/s: %.2f× the throughput)" % (
            row["throughput_mb_s"], row["floor_throughput_mb_s"], row["throughput_ratio"])
        if "invoke_building_it_s" in row:
            extra = extra[:-1] + "; %%invoke building it there: %.2f s, %.2f×)" % (
                row["invoke_building_it_s"], row["invoke_throughput_ratio"])
    if "roundtrip_floor_s" in row:
        extra = "  (%s: %.4f s" % (row["roundtrip_floor"], row["roundtrip_floor_s"])
        if row.get("floor_without_rc_s"):
            extra += "; the floor less the remote shell's rc files, about %.4f s: %.3f×" % (
                row["floor_without_rc_s"], row["ratio_without_rc"])
        extra += ")"
    return "%-52s %s %s %8.3f×  %s%s" % (row["metric"], _seconds(row["jobmagics_s"]), _seconds(row["floor_s"]),
                                         row["ratio"], row["target"], extra)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes (for CI)")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--only", metavar="GROUPS", default=",".join(GROUPS),
                        help="comma-separated groups to run, of %s (default: all)" % ", ".join(GROUPS))
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error("unknown group %s: use %s" % (", ".join(unknown), ", ".join(GROUPS)))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # ssh_metrics, kernel_metrics, cluster_metrics
    rows, skipped, seconds = [], {}, {}
    for group in groups:
        start = time.perf_counter()
        try:
            group_rows = GROUPS[group](args.quick)
        except _Skipped as exc:
            skipped[group] = str(exc)
            continue
        seconds[group] = time.perf_counter() - start
        rows += [dict(row, group=group) for row in group_rows]
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    print("machine: %(platform)s, %(cpus)s CPUs, Python %(python)s" % machine)
    print("%-52s %12s %12s %9s  %s" % ("metric", "jobmagics", "floor", "ratio", "target"))
    for row in rows:
        print(format_row(row))
    for group, reason in skipped.items():
        print("%-52s skipped: %s" % ("(%s metrics)" % group, reason))
    for name, reason in next((row["skipped"] for row in rows if "peers" in row), {}).items():
        print("%-52s skipped: %s" % ("(peer: %s)" % name, reason))
    if seconds:
        print("time: %s" % ", ".join("%s %.0f s" % kv for kv in seconds.items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "quick": args.quick, "rows": rows, "skipped": skipped,
                       "seconds": seconds}, fh, indent=2)


if __name__ == "__main__":
    main()
