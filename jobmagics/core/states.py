"""Job states and the table of legal transitions between them."""
from __future__ import annotations

import enum


class JobState(str, enum.Enum):
    """A job's state; members compare equal to their names as strings."""

    NotStarted = "NotStarted"
    Running = "Running"
    Completed = "Completed"
    Failed = "Failed"
    Stopping = "Stopping"
    Stopped = "Stopped"
    Disconnected = "Disconnected"
    Blocked = "Blocked"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        return self in FINISHED


class SessionState(str, enum.Enum):
    """A session's state; members compare equal to their names as strings."""

    Opened = "Opened"
    Disconnected = "Disconnected"
    Broken = "Broken"
    Closed = "Closed"

    def __str__(self) -> str:
        return self.value


FINISHED = frozenset({JobState.Completed, JobState.Failed, JobState.Stopped})

_O = SessionState
# A session left on purpose stays Disconnected when its link ends; a closed one is closed for good.
SESSION_TRANSITIONS = {
    _O.Opened: {_O.Disconnected, _O.Broken, _O.Closed},
    _O.Disconnected: {_O.Opened, _O.Closed},
    _O.Broken: {_O.Opened, _O.Closed},
    _O.Closed: set(),
}

_S = JobState
# A finished state has no way out: a finished job never changes state again.
TRANSITIONS = {
    _S.NotStarted: {_S.Running, _S.Stopping, _S.Stopped, _S.Failed, _S.Completed},
    _S.Running: {_S.Completed, _S.Failed, _S.Stopping, _S.Stopped, _S.Disconnected, _S.Blocked},
    _S.Stopping: {_S.Stopped, _S.Completed, _S.Failed},
    _S.Blocked: {_S.Running, _S.Stopping, _S.Stopped, _S.Failed, _S.Completed},
    _S.Disconnected: {_S.Running, _S.Stopping, _S.Stopped, _S.Failed, _S.Completed},
    _S.Completed: set(),
    _S.Failed: set(),
    _S.Stopped: set(),
}


def parse_state(value) -> JobState:
    """A JobState from a member or its name, case-insensitively; ValueError otherwise."""
    if isinstance(value, JobState):
        return value
    for state in JobState:
        if state.value.lower() == str(value).lower():
            return state
    names = ", ".join(s.value for s in JobState)
    raise ValueError("unknown job state %r (one of: %s)" % (value, names))


def derive_parent_state(child_states) -> JobState:
    """A parent job's state from its children's (spec section 2)."""
    states = list(child_states)
    if not states:
        return JobState.NotStarted
    if any(s == JobState.Blocked for s in states):
        return JobState.Blocked
    unfinished = [s for s in states if not s.finished]
    if unfinished:
        if all(s == JobState.Disconnected for s in unfinished):
            return JobState.Disconnected
        if all(s == JobState.NotStarted for s in states):
            return JobState.NotStarted
        return JobState.Running
    if JobState.Failed in states:
        return JobState.Failed
    if JobState.Stopped in states:
        return JobState.Stopped
    return JobState.Completed
