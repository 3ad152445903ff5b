"""A stand-in ``jobmagics`` module for agent processes where jobmagics is not installed.

Job code says ``from jobmagics import emit, progress`` wherever it runs; on a bare
``python3`` this module answers, backed by the agent's own copy of the job core.
``start_job``, ``get_job``, ... act on the agent's registry: jobs kept on that computer.
"""
from __future__ import annotations

import sys
import types

from . import context, rich, verbs
from .errors import JobError
from .states import JobState


def install():
    """Register the stand-in as ``jobmagics`` in this agent, installed jobmagics or not.

    Inside a job, ``jobmagics`` means this computer's agent: the same answers
    whether or not jobmagics is installed here, and jobs started from job code
    land in the registry that ``--session`` reaches.
    """
    module = types.ModuleType("jobmagics", "jobmagics inside a job (agent stand-in)")
    module.emit = context.emit
    module.progress = context.progress
    module.stop_requested = context.stop_requested
    module.display = rich.display
    module.JobState = JobState
    module.JobError = JobError
    for name in verbs.VERBS:
        setattr(module, name, getattr(verbs, name))
    module.__all__ = ["emit", "progress", "stop_requested", "display", "start_job", "get_job", "receive_job",
                      "wait_job", "stop_job", "remove_job"]
    sys.modules["jobmagics"] = module
