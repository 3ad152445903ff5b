"""Kernel metrics of the benchmark: a real IPython kernel with jobmagics, driven over the Jupyter protocol.

    .venv/bin/python bench/kernel_metrics.py [--quick]     # alone; bench/run.py runs it too

- **Answer latency.** Send a trivial cell (``1``) and time it to its
  ``execute_reply``, many times at irregular intervals: first in the idle
  kernel (jobmagics loaded, no job), then while 20 jobs each print a line
  every millisecond (as the noisy jobs of tests/integration/test_widgets_kernel.py
  do), each started with ``%%start_job`` as a cell's value, so that its live
  widget is shown. No frontend draws the widgets here, but the kernel sends
  their comm messages all the same, and this client reads every one of them
  (as a frontend would; their rate is in the rows). p50 and p90 of both; for
  process jobs (``%start_job``'s default) and for thread jobs.
- **Memory while a job writes 1 GB.** The RSS of the kernel process, sampled
  every 20 ms, while one job writes 1 GiB of stdout in 1 KiB lines and a cell
  in the kernel receives it as it goes (``%receive_job --wait``). What is
  received is the user's text in the kernel, so the cell's stdout is a counter
  there rather than the Jupyter channel: the count of characters received is
  checked against what was written, and nothing of the gigabyte travels to
  this process. Peak RSS minus the RSS before the job; a process job twice
  (the worst counts), then a thread job. These run first, in the fresh kernel.

The kernel is shut down at the end and every process its jobs started must be gone.
"""
from __future__ import annotations

import os
import queue
import random
import sys
import tempfile
import threading
import time

import psutil

TESTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
LINE = 1024  # bytes per line the writing job prints (1023 'x' and a newline)

NOISY_JOB = """%%start_job {flags} --name noisy-{i}
import time
n = 0
while True:
    n += 1
    print('noise {i}', n)
    time.sleep(0.001)
"""

WRITER_JOB = """%%start_job {flags} --name writer
import sys
line = 'x' * {width} + '\\n'
for _ in range({lines}):
    sys.stdout.write(line)
'written'
"""

# Receives the writer as it goes; its text lands in a counter in the kernel (see the module doc).
RECEIVE_CELL = """
import contextlib as _contextlib, io as _io
from jobmagics.core.context import RoutingStream as _RoutingStream

class _Counter(_io.TextIOBase):
    chars = 0
    def write(self, text):
        self.chars += len(text)
        return len(text)
    def writable(self):
        return True

_received = _Counter()
with _contextlib.redirect_stdout(_RoutingStream(_received, "stdout")):
    _outputs = %receive_job writer --wait
(_received.chars, _outputs)
"""


def _kernel_driver():
    if TESTS_DIR not in sys.path:
        sys.path.insert(0, TESTS_DIR)
    import kernel_driver

    return kernel_driver


class Client:
    """Cells sent to a kernel; one thread reads iopub throughout, as a frontend does."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.client = kernel.client
        self._lock = threading.Lock()
        self._by_parent = {}  # msg_id -> {"stdout", "stderr", "results", "errors", "idle"}
        self.comm_msgs = 0  # comm messages read (widget opens and updates)
        self.iopub_msgs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="bench-iopub", daemon=True)
        self._thread.start()

    def _slot(self, msg_id):
        return self._by_parent.setdefault(msg_id, {"stdout": "", "stderr": "", "results": [], "errors": [],
                                                   "idle": threading.Event()})

    def _drain(self):
        while not self._stop.is_set():
            try:
                msg = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            kind, content = msg["msg_type"], msg["content"]
            parent = msg["parent_header"].get("msg_id")
            with self._lock:
                self.iopub_msgs += 1
                if kind.startswith("comm_"):
                    self.comm_msgs += 1
                    continue
                if parent is None:
                    continue
                slot = self._slot(parent)
                if kind == "stream":
                    slot[content["name"]] = slot.get(content["name"], "") + content["text"]
                elif kind in ("execute_result", "display_data"):
                    slot["results"].append(content["data"])
                elif kind == "error":
                    slot["errors"].append("%s: %s" % (content["ename"], content["evalue"]))
                elif kind == "status" and content["execution_state"] == "idle":
                    slot["idle"].set()

    def send(self, code):
        msg_id = self.client.execute(code, store_history=False, allow_stdin=False)
        with self._lock:
            self._slot(msg_id)
        return msg_id

    def reply(self, msg_id, timeout):
        return self.kernel.shell_reply(msg_id, timeout=timeout)

    def run(self, code, timeout=120):
        """Run a cell to its end: its outputs (stream text, results, errors); fails on an error."""
        msg_id = self.send(code)
        reply = self.reply(msg_id, timeout)
        with self._lock:
            slot = self._by_parent[msg_id]
        slot["idle"].wait(30)  # the outputs come on iopub, before the kernel says it is idle
        if reply["content"]["status"] != "ok" or slot["errors"]:
            raise RuntimeError("cell failed: %s\n%s%s" % (code.strip().splitlines()[0], "\n".join(slot["errors"]),
                                                          slot["stderr"][-2000:]))
        return slot

    def value(self, code, timeout=120):
        results = self.run(code, timeout)["results"]
        return results[-1]["text/plain"] if results else None

    def latencies(self, count):
        """Seconds from sending a trivial cell to its execute_reply, ``count`` times, irregularly spaced."""
        times = []
        for _ in range(count):
            time.sleep(random.uniform(0.01, 0.06))  # never in step with the views' redraw cycle
            start = time.perf_counter()
            msg_id = self.send("1")
            reply = self.reply(msg_id, 60)
            times.append(time.perf_counter() - start)
            assert reply["content"]["status"] == "ok", reply["content"]
        return times

    def close(self):
        self._stop.set()
        self._thread.join(5)


def _percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class _Watch:
    """Calls ``sample()`` every ``interval`` seconds on a thread of its own, while inside ``with``."""

    def __init__(self, pid, interval):
        self.process = psutil.Process(pid)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)

    def _run(self):
        while not self._stop.is_set() and self.sample() is not False:
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


class RSSSampler(_Watch):
    """The RSS of one process, and the sum over its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid, interval=0.02):
        super().__init__(pid, interval)
        self.samples = []
        self.children_peak = 0

    def rss(self):
        return self.process.memory_info().rss

    def children_rss(self):
        total = 0
        for child in self.process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def sample(self):
        self.samples.append(self.rss())
        self.children_peak = max(self.children_peak, self.children_rss())

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.samples.append(self.rss())


def _latency_row(client, kind, flags, samples, idle):
    """p50/p90 while 20 jobs of ``kind`` print with their views shown, against ``idle`` latencies."""
    comm_before = client.comm_msgs
    for i in range(20):
        slot = client.run(NOISY_JOB.format(flags=flags, i=i))
        if not any(WIDGET_MIME in r for r in slot["results"]):
            raise RuntimeError("noisy-%d was not shown as a widget: %s" % (i, slot["results"]))
    time.sleep(1.0)  # all twenty printing, their views redrawing
    comm_start, clock = client.comm_msgs, time.perf_counter()
    busy = client.latencies(samples)
    comm_rate = (client.comm_msgs - comm_start) / (time.perf_counter() - clock)
    # Every one still running, with output waiting: they printed all along.
    printing = client.value("sum(1 for j in jobmagics.get_job('noisy-*') if j.state == 'Running' and j.has_more_data)")
    client.run("%stop_job noisy-*\n%remove_job noisy-*")
    p50, p90 = _percentile(busy, 0.5), _percentile(busy, 0.9)
    i50, i90 = _percentile(idle, 0.5), _percentile(idle, 0.9)
    return {"metric": "kernel answer while 20 %s jobs print (widgets on)" % kind, "jobmagics_s": p90,
            "floor": "idle kernel (p90)", "floor_s": i90, "ratio": p90 / i90, "target": "p90 ≤ 50 ms",
            "p50_ms": p50 * 1e3, "p90_ms": p90 * 1e3, "floor_p50_ms": i50 * 1e3, "floor_p90_ms": i90 * 1e3,
            "max_ms": max(busy) * 1e3, "samples": samples, "comm_msgs_per_s": comm_rate,
            "jobs_printing": int(printing), "widget_comm_msgs": client.comm_msgs - comm_before}


def _memory_row(client, kernel_pid, kind, flags, size, runs=1):
    """Peak kernel RSS over the RSS before the job, while a job writes ``size`` bytes received as it goes.

    With several ``runs`` (one after the other, same kernel) the row is the worst of them, and
    ``delta_mb_runs`` lists each: the first big job of a kernel tends to cost the most.
    """
    results = [_memory_run(client, kernel_pid, kind, flags, size) for _ in range(runs)]
    worst = dict(max(results, key=lambda row: row["delta_mb"]))
    if runs > 1:
        worst["delta_mb_runs"] = [row["delta_mb"] for row in results]
        worst["seconds_runs"] = [row["jobmagics_s"] for row in results]
    return worst


def _memory_run(client, kernel_pid, kind, flags, size):
    lines = size // LINE
    client.run("import gc; gc.collect()")
    time.sleep(0.5)
    with RSSSampler(kernel_pid) as sampler:
        time.sleep(0.2)
        before = sampler.rss()
        start = time.perf_counter()
        slot = client.run(WRITER_JOB.format(flags=flags, width=LINE - 1, lines=lines))
        shown = any(WIDGET_MIME in r for r in slot["results"])
        answer = client.value(RECEIVE_CELL, timeout=600)
        elapsed = time.perf_counter() - start
    received, outputs = eval(answer, {})  # "(chars, 'written')" from the kernel
    client.run("%remove_job writer")
    peak = max(sampler.samples)
    delta = (peak - before) / 2**20
    if received != lines * LINE or outputs != "written":
        raise RuntimeError("the %s job's output was not all received: %r of %d, value %r"
                           % (kind, received, lines * LINE, outputs))
    return {"metric": "kernel memory while a %s job writes %s" % (kind, _size_name(size)),
            "jobmagics_s": elapsed, "floor": "RSS before the job", "floor_s": None, "ratio": None,
            "target": "≤ +100 MB", "rss_before_mb": before / 2**20, "rss_peak_mb": peak / 2**20,
            "rss_after_mb": sampler.samples[-1] / 2**20, "delta_mb": delta, "received_bytes": received,
            "written_bytes": lines * LINE, "throughput_mb_s": received / 1e6 / elapsed, "widget_shown": shown,
            "job_process_rss_peak_mb": sampler.children_peak / 2**20 if kind == "process" else None}


def _size_name(size):
    return "%d GB" % (size >> 30) if size >= 1 << 30 else "%d MB" % (size >> 20)


def run(quick: bool) -> list:
    """Rows in bench/run.py's format (see the module doc)."""
    driver = _kernel_driver()
    samples = 25 if quick else 60
    size = (100 << 20) if quick else (1 << 30)
    kernel = driver.Kernel()
    rows, job_pids, client = [], set(), None
    log = tempfile.TemporaryFile(prefix="jobmagics-bench-kernel-")  # the kernel's own stdout/stderr
    try:
        kernel.start(output=log)
        kernel_pid = kernel.pid
        client = Client(kernel)
        client.run("%load_ext jobmagics\nimport jobmagics")
        client.latencies(5)  # warm-up
        idle = client.latencies(samples)
        watcher = _ChildWatcher(kernel_pid)
        with watcher:
            # Memory first: the first big job of a kernel is the one that shows the worst case.
            rows.append(_memory_row(client, kernel_pid, "process", "", size, runs=2))
            rows.append(_memory_row(client, kernel_pid, "thread", "--thread", size))
            rows.append(_latency_row(client, "process", "", samples, idle))
            rows.append(_latency_row(client, "thread", "--thread", samples, idle))
        job_pids = watcher.pids
    except BaseException:
        log.seek(0)
        print("--- the kernel's own output ---\n%s" % log.read().decode(errors="replace")[-5000:], file=sys.stderr)
        raise
    finally:
        if client is not None:
            try:
                client.run("%remove_job --state Running --force", timeout=60)
            except Exception:
                pass
            client.close()
        kernel.shutdown()
        log.close()
    left = _wait_gone(job_pids, 15)
    if left:
        print("warning: processes of the kernel's jobs still running after shutdown: %s" % left, file=sys.stderr)
    return rows


class _ChildWatcher(_Watch):
    """Collects the pids of the kernel's descendants (its job processes) while inside."""

    def __init__(self, pid):
        super().__init__(pid, interval=0.5)
        self.pids = set()

    def sample(self):
        try:
            self.pids.update(p.pid for p in self.process.children(recursive=True))
        except psutil.NoSuchProcess:
            return False  # the kernel is gone: nothing more to watch


def _wait_gone(pids, timeout):
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    running = []
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return running


if __name__ == "__main__":
    from run import format_row  # bench/run.py: one table format

    for row in run("--quick" in sys.argv[1:]):
        print(format_row(row))
