"""What a cluster session sends its Dask workers, pickled by value: workers need no jobmagics.

This module is registered with cloudpickle to travel by value (``register_pickle_by_value``), so
a worker that cannot import jobmagics still runs what it holds. :class:`ShipAgent` is the worker
plugin a session registers: its setup makes the agent's sources (``bootstrap.shipped_sources``)
importable on the worker from memory (``transport/source_import.py``, sent by value too), under
the bootstrap's private package name, once per version of them (other sources replace them).
:func:`call` runs a function of the shipped worker module (``agent/daskworker.py``) by name.
Standard library, distributed and cloudpickle only; records coming back are pickles of the
shipped core's objects, which ``serialize`` maps to ``jobmagics.core``.
"""
from __future__ import annotations

import importlib
import sys

import cloudpickle
from distributed.diagnostics.plugin import WorkerPlugin

from ..transport import source_import
from ..transport.bootstrap import AGENT_PACKAGE, SHIPPED_ROOT
from ..transport.source_import import SourceFinder

# Plain strings: the functions below travel by value and take them along.
PACKAGE = SHIPPED_ROOT  # the shipped code's private root package: the core and the agent below it
WORKER_MODULE = AGENT_PACKAGE + ".daskworker"
PLUGIN_NAME = "jobmagics-agent"


def call(function, *args):
    """Run ``function`` of the shipped worker module here, with ``args``."""
    return getattr(importlib.import_module(WORKER_MODULE), function)(*args)


def install(sources, version, dill_sources=None):
    """Make ``sources`` importable in this process: kept if this ``version`` is there already,
    else in place of another version (its modules dropped; jobs they still run go on)."""
    finders = [f for f in sys.meta_path if getattr(f, "jobmagics_version", None) is not None]
    if any(f.jobmagics_version == version for f in finders):
        return "kept"
    for finder in finders:
        sys.meta_path.remove(finder)
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    modules, packages = dict(sources["modules"]), list(sources["packages"])
    if dill_sources is not None and importlib.util.find_spec("dill") is None:
        modules.update(dill_sources["modules"])  # what the kernel pickled with dill loads here too
        packages.extend(dill_sources["packages"])
    sys.meta_path.insert(0, SourceFinder(modules, packages, version))
    importlib.invalidate_caches()
    return "installed"


class ShipAgent(WorkerPlugin):
    """Installs the agent's sources on every worker, those there now and those that join later."""

    name = PLUGIN_NAME
    idempotent = False  # registered again by each session: its setup checks the version itself

    def __init__(self, sources, version, dill_sources=None):
        self.sources = sources
        self.version = version
        self.dill_sources = dill_sources

    def setup(self, worker):
        install(self.sources, self.version, self.dill_sources)


for _module in (sys.modules[__name__], source_import):  # what these modules hold travels by value
    if _module.__name__ not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(_module)
