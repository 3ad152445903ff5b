"""jobmagics against plain-Python floors, measured side by side in one run.

    .venv/bin/python bench/run.py [--quick] [--json FILE]

Each metric runs its jobmagics case and its floor alternately, after a
warm-up, and reports medians and their ratio. Times are never asserted: this
is a measurement, kept in docs/performance.md with the machine it ran on.
Metrics that need an SSH server or a kernel are not measured here yet.
"""
from __future__ import annotations

import argparse
import concurrent.futures
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


METRICS = [
    ("thread job start → wait → receive", thread_job_roundtrip, "threading.Thread start + join", thread_floor, "≤ 2×"),
    ("process job start → wait → receive", process_job_roundtrip, "python -c pass", process_floor, "≤ 0.5×"),
    ("50 process jobs at once, all received", fifty_process_jobs, "50 sequential python -c pass",
     fifty_sequential_pythons, "≤ 0.25×"),
    ("1000 thread jobs, all received", thousand_thread_jobs, "ThreadPoolExecutor, 1000 trivial tasks",
     thousand_pool_tasks, "≤ 10×"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and a smaller array (for CI)")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7
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
    size = (16 if args.quick else 256) * 1024 * 1024
    through_a_job, copy_floor, pool_floor = array_roundtrip(size)
    through_a_job(), copy_floor()
    t_job, t_copy = _median_time(through_a_job, repeat), _median_time(copy_floor, repeat)
    t_pool = _median_time(pool_floor, 1 if args.quick else 3)
    rows.append({"metric": "%d MB NumPy array into a process job and back" % (size >> 20), "jobmagics_s": t_job,
                 "floor": "ndarray.copy() (ProcessPoolExecutor: %.3f s)" % t_pool, "floor_s": t_copy,
                 "ratio": t_job / t_copy, "target": "≥ 2 GB/s effective",
                 "effective_gb_s": 2 * size / t_job / 1e9})
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    print("machine: %(platform)s, %(cpus)s CPUs, Python %(python)s" % machine)
    print("%-46s %12s %12s %9s  %s" % ("metric", "jobmagics", "floor", "ratio", "target"))
    for row in rows:
        extra = " (%.2f GB/s)" % row["effective_gb_s"] if "effective_gb_s" in row else ""
        print("%-46s %10.4f s %10.4f s %8.2f×  %s%s" % (row["metric"], row["jobmagics_s"], row["floor_s"],
                                                       row["ratio"], row["target"], extra))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "quick": args.quick, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
