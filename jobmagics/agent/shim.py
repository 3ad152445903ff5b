"""A stand-in ``jobmagics`` module for agent processes where jobmagics is not installed.

Job code says ``from jobmagics import emit, progress`` wherever it runs; on a bare
``python3`` this module answers, backed by the agent's own copy of the job core.
"""
from __future__ import annotations

import importlib.util
import sys
import types

from . import context, rich


def install():
    """Register the stand-in unless a real jobmagics is importable here."""
    if "jobmagics" in sys.modules:
        return
    try:
        if importlib.util.find_spec("jobmagics") is not None:
            return
    except (ImportError, ValueError):
        pass
    module = types.ModuleType("jobmagics", "jobmagics inside a job (agent stand-in)")
    module.emit = context.emit
    module.progress = context.progress
    module.stop_requested = context.stop_requested
    module.display = rich.display
    module.__all__ = ["emit", "progress", "stop_requested", "display"]
    sys.modules["jobmagics"] = module
