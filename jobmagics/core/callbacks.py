"""Calling callbacks so that one that raises cannot hurt the thread that calls it.

State and record callbacks run on reader threads (a job's link, a session's
connection): an exception escaping one would end that thread and strand every
job it serves. Each is called in turn, and one that raises is logged and
skipped (model: ``concurrent.futures``' ``Future._invoke_callbacks``).
Standard library only: the agent fires callbacks too.
"""
from __future__ import annotations

import logging

LOGGER = logging.getLogger("jobmagics")


def invoke_callbacks(callbacks, *args):
    """Call each of ``callbacks`` with ``args``; one that raises is logged, and the rest still run."""
    for callback in callbacks:
        try:
            callback(*args)
        except Exception:
            LOGGER.exception("jobmagics: callback %r raised", callback)
