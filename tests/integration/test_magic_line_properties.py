"""Generated magic lines, fed to every magic in a real kernel: a clean result or a one-line UsageError.

The kernel's jobmagics acts through a recorder in place of its API modules (the functions that
start, stop or connect anything): a generated ``--computer`` is no computer this machine can
reach, and what is checked is the line's way to the API. A line that errors must not have
reached it.
"""
from __future__ import annotations

import ast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobmagics.ipython.magics import MAGIC_NAMES, JobMagics

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]

RECORDER = '''
import types
import jobmagics.ipython.magics as _magics
from IPython.core.error import UsageError as _UsageError

class _Recorder(types.ModuleType):
    """A module that records calls of its actions and passes look-ups to the real module."""
    def __init__(self, real, actions):
        super().__init__(real.__name__)
        self._real, self._actions = real, actions
    def __getattr__(self, name):
        if name not in self._actions:
            return getattr(self._real, name)
        return lambda *args, **kwargs: _recorded.append((self._real.__name__, name))

_recorded = []
_actions = {"api": {"start_job", "get_job", "receive_job", "wait_job", "stop_job", "remove_job"},
            "remote": {"new_session", "get_session", "disconnect_session", "connect_session",
                       "receive_session", "remove_session", "invoke"},
            "entered": {"enter"}}
job = _magics.api.start_job("1", thread=True, name="real-job")
_magics.api.wait_job(job)
for _name, _names in _actions.items():
    setattr(_magics, _name, _Recorder(getattr(_magics, _name), _names))
hosts, n, empty, label = ["h1", "h2"], 3, [], "a name"

def _try(name, line):
    _recorded.clear()
    try:
        get_ipython().run_line_magic(name, line)
    except _UsageError as error:
        return ("usage", str(error), len(_recorded))
    return ("ok", "", len(_recorded))
'''


@pytest.fixture(scope="module")
def recording_kernel(kernel):
    result = kernel.run(RECORDER)
    assert result.ok, result.stderr
    return kernel


def flags_of(name):
    return sorted(getattr(JobMagics, name).parser._option_string_actions)


FREE = st.text(alphabet=st.sampled_from(list("abcXYZ019_-.,*?$#'\" é漢🙂\t")), min_size=1, max_size=12)
FIXED = st.sampled_from(["$job", "$job.id", "$job.name", "$hosts", "$n", "$empty", "$label", "$undefined",
                         "{n}", "{n + 1}", "{undefined}", "{'a b'}", "$$", "--", "#", "# a comment",
                         "real-job", "Job*", "'My Job'", '"x y"', "1 + 1", "print('hi')", "don't", "a,b,,c"])
LONG = st.text(alphabet="abcdef,", min_size=300, max_size=2000)


def lines_for(name):
    word = st.one_of(st.sampled_from(flags_of(name) + ["--bogus"]), FREE, FIXED, LONG)
    return st.lists(word, max_size=8).map(" ".join)


@pytest.mark.parametrize("name", MAGIC_NAMES)
def test_every_line_gives_a_result_or_one_line_usage_error_and_an_error_changes_nothing(recording_kernel, name):
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(line=lines_for(name))
    def check(line):
        result = recording_kernel.run("_try(%r, %r)" % (name, line))
        assert not result.errors, (line, result.errors)  # no traceback: only UsageError is allowed
        outcome, message, calls = ast.literal_eval(result.text)
        if outcome == "usage":
            assert "\n" not in message.strip(), (line, message)
            assert calls == 0, (line, message)  # an error changes nothing: no action was asked for

    check()
