"""jobmagics: PowerShell-style background jobs for Jupyter and IPython.

``%load_ext jobmagics`` adds the job magics; everything they do is also a
plain function here. Importing this package does not import IPython.
"""
from __future__ import annotations

from .core.context import emit, progress, stop_requested
from .core.job import Job
from .core.registry import JobRegistry
from .core.states import JobState
from .api import get_job, receive_job, remove_job, start_job, stop_job, wait_job
from .errors import JobError, JobmagicsError
from .sessions.remote import (
    connect_session,
    disconnect_session,
    get_session,
    invoke,
    new_session,
    receive_session,
    remove_session,
)
from .sessions.session import Session

__version__ = "0.1.0"

__all__ = [
    "start_job", "get_job", "receive_job", "wait_job", "stop_job", "remove_job",
    "new_session", "get_session", "remove_session", "invoke", "Session",
    "disconnect_session", "connect_session", "receive_session",
    "emit", "progress", "stop_requested", "Job", "JobState", "JobRegistry", "JobError",
    "JobmagicsError", "load_ipython_extension", "unload_ipython_extension",
]


def load_ipython_extension(ipython):
    from .ipython.magics import load

    load(ipython)


def unload_ipython_extension(ipython):
    from .ipython.magics import unload

    unload(ipython)
