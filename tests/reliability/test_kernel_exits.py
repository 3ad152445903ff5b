"""Many kernel exits with running process jobs leave no jobmagics process behind."""
from __future__ import annotations

import os
import signal

import pytest

from kernel_driver import Kernel
from proc_helpers import STUBBORN_TREE, assert_all_end

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(900)]

EXITS = 50
BURST = 50

START = """%load_ext jobmagics
import jobmagics
a = jobmagics.start_job({tree!r}, namespace={{}})
b = jobmagics.start_job("import time; time.sleep(600)", namespace={{}})
while not a.output:
    a.wait_for_activity(a.activity, 30)
from jobmagics.transport import forkserver
a.output[0] + [jobmagics.api._process_host._links[b.instance_id].transport.pid, forkserver._server.pid]
"""


def start_jobs(kernel):
    """Two process jobs, one with a child and grandchild that ignore SIGTERM; the pids of their
    processes and of the kernel's fork server."""
    result = kernel.run(START.format(tree=STUBBORN_TREE), timeout=60)
    assert result.ok, result.stderr + result.error_text()
    return eval(result.text)


def test_fifty_kernel_exits_leave_no_job_process_behind():
    pids = []
    kernel = Kernel().start()
    try:
        for number in range(EXITS):
            started = start_jobs(kernel)
            pids += started
            way = number % 3
            if way == 0:  # a restart: the kernel is asked to end, and terminated 2.5 s later
                kernel.manager.restart_kernel()
            elif way == 1:  # kill -9: only the job processes themselves can end their groups
                os.kill(kernel.pid, signal.SIGKILL)
                kernel.manager.restart_kernel(now=True)
            else:  # a job process gets a burst of SIGTERM just before its kernel is killed
                for _ in range(BURST):
                    os.kill(started[0], signal.SIGTERM)
                os.kill(kernel.pid, signal.SIGKILL)
                kernel.manager.restart_kernel(now=True)
            kernel.client.wait_for_ready(timeout=60)
    finally:
        kernel.shutdown()
    assert_all_end(pids, timeout=60)
