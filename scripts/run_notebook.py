#!/usr/bin/env python
"""Execute a notebook headless, in a kernel that runs this same Python, and report.

Usage::

    .venv/bin/python scripts/run_notebook.py notebooks/local_jobs.ipynb [--timeout SEC]

Each code cell's text output is printed as soon as the cell has run. The
executed notebook is written next to the input as ``<name>.out.ipynb``
(gitignored). The exit status is 0 when every cell ran without error. A cell
tagged ``raises-exception`` may end in an error (nbclient's standard handling
of that tag); any other error, a cell that runs longer than the timeout, or a
dead kernel exits with status 1 and a message naming the cell.

The kernel is started from a temporary kernelspec whose ``argv`` is this
interpreter, so the notebook sees exactly the packages installed here, with
the repository root as its working directory. However the run ends, the
kernel is shut down, and any process that it or its jobs left behind is
ended (and reported: jobmagics promises there are none).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import textwrap
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets.config import Config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL_NAME = "jobmagics-notebook"
ALLOW_ERRORS_TAG = "raises-exception"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# ----- kernel ------------------------------------------------------------------------------
def write_kernelspec(root, python=None):
    """A kernelspec ``KERNEL_NAME`` under ``root`` that runs ipykernel with ``python``.

    tests/kernel_driver.py uses it too.
    """
    spec_dir = os.path.join(root, "kernels", KERNEL_NAME)
    os.makedirs(spec_dir, exist_ok=True)
    python = python or sys.executable
    with open(os.path.join(spec_dir, "kernel.json"), "w") as fh:
        json.dump({"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Python (%s)" % python, "language": "python"}, fh)
    return root


def kernel_config(root):
    """Talk to the kernel over Unix sockets in ``root`` where possible (no open TCP ports)."""
    config = Config()
    if os.name == "posix":
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(root, "kernel")
    return config


# ----- printing ----------------------------------------------------------------------------
def plain(text):
    """``text`` without terminal colour codes (tracebacks come coloured)."""
    return _ANSI.sub("", text)


def _indent(text, prefix):
    text = plain(text).rstrip("\n")
    return textwrap.indent(text, prefix, lambda line: True) if text else ""


def first_line(source):
    lines = [line.rstrip() for line in source.splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[0] + ("  ..." if len(lines) > 1 else "")


def format_outputs(outputs, indent="    "):
    """A cell's outputs as terminal text: streams, results, displays (as text) and errors."""
    parts = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            prefix = indent if output.get("name") == "stdout" else indent + "[stderr] "
            parts.append(_indent(output.get("text", ""), prefix))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            text = data.get("text/plain")
            if text is None:
                text = "<%s>" % ", ".join(sorted(data))
            label = indent + ("Out: " if kind == "execute_result" else "")
            body = _indent(text, " " * len(label))
            parts.append(label + body[len(label):])
        elif kind == "error":
            lines = output.get("traceback") or ["%s: %s" % (output.get("ename"), output.get("evalue"))]
            parts.append(_indent("\n".join(lines), indent + "! "))
    return "\n".join(part for part in parts if part.strip())


class Reporter:
    """Prints the notebook as it runs: markdown headings, and each code cell with its outputs."""

    def __init__(self, nb, stream=None):
        self.stream = stream or sys.stdout
        self.cells = nb.cells
        self.numbers = {}  # cell index -> code cell number, as Jupyter would count them
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and cell.source.strip():
                self.numbers[index] = len(self.numbers) + 1
        self.current = None
        self.started = None
        self.shown = set()

    def _write(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()

    def describe(self, index):
        return "code cell [%s] %s" % (self.numbers.get(index, "?"), first_line(self.cells[index].source))

    def on_cell_start(self, cell, cell_index):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    self._write("\n" + line.lstrip("#").strip())
                    self._write("-" * len(line.lstrip("#").strip()))

    def on_cell_execute(self, cell, cell_index):
        self.current, self.started = cell_index, time.monotonic()

    def on_cell_executed(self, cell, cell_index, execute_reply):
        status = ((execute_reply or {}).get("content") or {}).get("status", "ok")
        self.show(cell_index, status)

    def show(self, index, status):
        """Print code cell ``index``: its number, first line, time taken, and outputs."""
        if index in self.shown:
            return
        self.shown.add(index)
        cell = self.cells[index]
        elapsed = time.monotonic() - self.started if self.current == index else 0.0
        note = ""
        if status == "error":
            tags = cell.metadata.get("tags", [])
            note = "   (error expected: tagged %s)" % ALLOW_ERRORS_TAG if ALLOW_ERRORS_TAG in tags else "   ERROR"
        elif status != "ok":
            note = "   " + status.upper()
        self._write("[%s] %s   (%.1fs)%s" % (self.numbers.get(index, "?"), first_line(cell.source), elapsed, note))
        body = format_outputs(cell.get("outputs", []))
        if body:
            self._write(body)


# ----- leftover processes ------------------------------------------------------------------
def become_subreaper():
    """On Linux, adopt the orphans of our descendants (say, a dead kernel's job processes).

    Then :func:`end_leftovers` finds them as our children even after their
    parent has gone.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        return libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    except Exception:
        return False


def end_leftovers(grace=5.0):
    """Give our descendants ``grace`` seconds to exit, then end them; a description of each."""
    try:
        import psutil
    except ImportError:  # psutil comes with jobmagics; without it there is nothing to check with
        return []
    me = psutil.Process()
    deadline = time.monotonic() + grace
    alive = me.children(recursive=True)
    while alive and time.monotonic() < deadline:
        psutil.wait_procs(alive, timeout=0.2)  # also reaps the ones that are our children
        alive = [p for p in me.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    described = []
    for proc in alive:
        try:
            described.append("pid %d: %s" % (proc.pid, " ".join(proc.cmdline())[:120]))
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(alive, timeout=3)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=3)
    return described


# ----- running -----------------------------------------------------------------------------
def out_path_for(path):
    base = path[: -len(".ipynb")] if path.endswith(".ipynb") else path
    return base + ".out.ipynb"


def run(path, timeout, startup_timeout):
    """Execute ``path``; 0 when it ran without unexpected errors, else 1."""
    nb = nbformat.read(path, as_version=4)
    out_path = out_path_for(path)
    reporter = Reporter(nb)
    root = tempfile.mkdtemp(prefix="jobmagics-run-")
    write_kernelspec(root)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (root, os.environ.get("JUPYTER_PATH")) if p)
    client = NotebookClient(
        nb, kernel_name=KERNEL_NAME, timeout=timeout, startup_timeout=startup_timeout,
        resources={"metadata": {"path": REPO_ROOT}}, config=kernel_config(root),
        on_cell_start=reporter.on_cell_start, on_cell_execute=reporter.on_cell_execute,
        on_cell_executed=reporter.on_cell_executed,
    )

    print("Running %s\n  kernel: %s\n  cwd: %s\n  timeout: %gs per cell"
          % (os.path.relpath(path), sys.executable, REPO_ROOT, timeout))
    began = time.monotonic()
    failure = None
    try:
        client.execute(cwd=REPO_ROOT)
    except CellTimeoutError:
        failure = "did not finish within %gs" % timeout
    except DeadKernelError as exc:
        failure = "was running when the kernel died (%s)" % exc
    except CellExecutionError as exc:
        failure = "raised %s: %s" % (exc.ename, plain(exc.evalue))
    except Exception as exc:
        if getattr(client, "_async_cleanup_kernel_future", None) is not None:
            # nbclient's own SIGINT/SIGTERM handler shut the kernel down under the running cell
            failure = "was interrupted by a signal (the kernel was shut down)"
        else:  # e.g. the kernel did not start
            failure = "failed: %s: %s" % (type(exc).__name__, exc)
    finally:
        # nbclient has shut the kernel down by now; end whatever outlived it.
        atexit.unregister(client._cleanup_kernel)  # nbclient leaves it registered when a start fails
        leftovers = end_leftovers()
        nbformat.write(nb, out_path)
        shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - began

    if failure is not None and reporter.current is not None:
        reporter.show(reporter.current, "error")  # a timed-out cell was not shown yet
    print("\nExecuted notebook written to %s (%.1fs)" % (os.path.relpath(out_path), elapsed))
    sys.stdout.flush()  # before the messages on stderr, so they come out in order
    status = 0
    if leftovers:
        print("\nFAILED: these processes were still running after the kernel had shut down"
              " (they were ended now):\n  " + "\n  ".join(leftovers), file=sys.stderr)
        status = 1
    if failure is not None:
        where = reporter.describe(reporter.current) if reporter.current is not None else "starting the kernel"
        print("\nFAILED: %s\n  %s" % (where, failure), file=sys.stderr)
        if failure.startswith("raised"):
            print("  (only cells tagged %r may raise)" % ALLOW_ERRORS_TAG, file=sys.stderr)
        status = 1
    if status == 0:
        print("OK: %d code cells ran without unexpected errors." % len(reporter.numbers))
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", help="the .ipynb file to execute")
    parser.add_argument("--timeout", type=float, default=60, help="seconds each cell may take (default 60)")
    parser.add_argument("--startup-timeout", type=float, default=60,
                        help="seconds the kernel may take to start (default 60)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.notebook):
        parser.error("no such notebook: %s" % args.notebook)
    become_subreaper()

    def terminate(signum, frame):
        raise KeyboardInterrupt  # unwind as for Ctrl-C: the kernel is shut down on the way out

    signal.signal(signal.SIGTERM, terminate)
    try:
        return run(os.path.abspath(args.notebook), args.timeout, args.startup_timeout)
    except KeyboardInterrupt:
        end_leftovers(grace=0)
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
