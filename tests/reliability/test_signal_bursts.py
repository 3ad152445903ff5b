"""Job processes sent bursts of SIGTERM end, and take what they started with them (no deadlock)."""
from __future__ import annotations

import os
import signal

import pytest

import jobmagics
from jobmagics import JobState
from proc_helpers import STUBBORN_TREE, assert_all_end

pytestmark = pytest.mark.timeout(300)

JOBS = 12
BURST = 200


def first_output(job):
    while not job.output:
        assert not job.finished, job.reason
        job.wait_for_activity(job.activity, timeout=30)
    return job.output[0]


def test_bursts_of_sigterm_end_every_job_process_and_what_it_started():
    jobs = [jobmagics.start_job(STUBBORN_TREE, namespace={}) for _ in range(JOBS)]
    trees = [first_output(job) for job in jobs]
    for agent, _child, _grandchild in trees:
        for _ in range(BURST):  # arriving while the process is already ending its group, too
            try:
                os.kill(agent, signal.SIGTERM)
            except ProcessLookupError:
                break
    assert_all_end([pid for tree in trees for pid in tree], timeout=60)
    for job in jobs:
        assert job.wait(30)
        assert job.state == JobState.Failed and "SIGTERM" in job.reason, job.reason
