"""A session's state moves only along SESSION_TRANSITIONS, in one place, under its lock."""
from __future__ import annotations

import pytest

from jobmagics.core.states import SESSION_TRANSITIONS, SessionState
from jobmagics.sessions.session import Session


class _Unopened:
    """A connection that is never opened: moving a session's state does no I/O."""

    location = "nowhere"


@pytest.fixture
def session():
    return Session(_Unopened(), 1, name="s")


def test_a_closed_session_stays_closed():
    assert SESSION_TRANSITIONS[SessionState.Closed] == set()
    assert SessionState.Broken not in SESSION_TRANSITIONS[SessionState.Disconnected]


def test_moves_follow_the_table_and_notify_once_each(session):
    seen = []
    session.add_state_callback(lambda s: seen.append((s.state, s.availability, s.reason)))
    assert session._move(SessionState.Broken, "lost")
    assert session._move(SessionState.Opened)
    assert session._move(SessionState.Disconnected)
    assert not session._move(SessionState.Broken, "lost again")  # left on purpose: not broken
    assert session._move(SessionState.Closed)
    assert not session._move(SessionState.Opened)
    assert seen == [(SessionState.Broken, "None", "lost"), (SessionState.Opened, "Available", None),
                    (SessionState.Disconnected, "None", None), (SessionState.Closed, "None", None)]


def test_a_raising_session_callback_does_not_stop_the_move(session, caplog):
    session.add_state_callback(lambda s: 1 / 0)
    with caplog.at_level("ERROR", logger="jobmagics"):
        assert session._move(SessionState.Broken, "lost")
    assert session.state == SessionState.Broken
    assert any(isinstance(r.exc_info[1], ZeroDivisionError) for r in caplog.records)
