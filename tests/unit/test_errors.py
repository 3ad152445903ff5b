"""One error tree: every exception class jobmagics defines derives from JobmagicsError and is drawn in
the errors module's docstring."""
from __future__ import annotations

import importlib
import inspect
import re
import pkgutil

import jobmagics
from jobmagics import errors


def defined_exceptions():
    for module_info in pkgutil.walk_packages(jobmagics.__path__, "jobmagics."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == module.__name__:
                yield value


def test_every_exception_of_jobmagics_is_in_the_one_tree_and_drawn():
    found = set(defined_exceptions())
    assert errors.JobError in found and errors.ProtocolError in found  # the walk reaches the agent too
    for exception in found:
        assert issubclass(exception, errors.JobmagicsError), exception
        if not exception.__name__.startswith("_"):  # a module's private signal never reaches a user
            assert re.search(r"\s%s\s" % exception.__name__, errors.__doc__), "%s is not drawn in jobmagics/errors.py" % exception


def test_the_stop_signal_is_no_error_so_that_job_code_cannot_catch_it():
    from jobmagics.core.runner import StopJob

    assert not issubclass(StopJob, Exception) and "StopJob" in errors.__doc__


def test_lower_layer_errors_are_named_by_the_tree():
    from jobmagics.core import wire
    from jobmagics.hosts import agent

    assert wire.ProtocolError is errors.ProtocolError
    assert agent.LinkEndedError is errors.LinkEndedError and agent.RemoteCallError is errors.RemoteCallError
