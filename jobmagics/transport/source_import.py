"""Modules imported from sources held in memory: how shipped code is loaded where it was sent.

The bootstrap's one-line program carries its own copy of this finder (it runs before anything
can be imported); everywhere else that loads shipped sources into a running Python uses this
one: a Dask worker given the agent by a cluster session's plugin (``cluster/onworker.py``,
which sends this module by value, so the worker needs no jobmagics), and the unit tests'
in-memory agent. Standard library only.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import linecache


class SourceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``modules`` ({name: source}) to ``import``; ``version`` tells one set of sources from another."""

    jobmagics_sources = True  # the agent's install_sources adds dill's sources to a finder so marked

    def __init__(self, modules, packages, version=None):
        self.modules = dict(modules)
        self.packages = set(packages)
        self.jobmagics_version = version

    def add(self, modules, packages):
        self.modules.update(modules)
        self.packages.update(packages)

    def find_spec(self, name, path=None, target=None):
        if name in self.modules:
            return importlib.util.spec_from_loader(name, self, is_package=name in self.packages)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__name__
        filename = "<jobmagics-sent>/" + name.replace(".", "/") + ".py"
        code = self.modules[name]
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)  # tracebacks show lines
        module.__file__ = filename
        exec(compile(code, filename, "exec"), module.__dict__)
