"""Waiting on a job's own events (its activity counter), never on a guessed sleep."""
from __future__ import annotations


def wait_for(job, condition, timeout=30):
    """Block on the job's activity until ``condition(job)`` holds; fail after ``timeout`` s of silence."""
    while not condition(job):
        seen = job.activity
        if condition(job):
            break
        assert job.wait_for_activity(seen, timeout), "no news from %r" % job
    return job
