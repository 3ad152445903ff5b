"""Sessions: persistent connections to agents that host jobs (PSSessions).

A session owns one transport and the agent at its end. Jobs started in it
are ``RemoteJob``s whose records come back over the session's link. When the
link ends without the session being closed, the session is ``Broken`` and
its unfinished jobs fail with a reason naming the computer.
"""
from __future__ import annotations

import getpass
import itertools
import threading
import time

from ..core import wire
from ..core.names import is_pattern, matching, suggestion
from ..core.callbacks import invoke_callbacks
from ..core.states import SESSION_TRANSITIONS, JobState, SessionState
from ..errors import AgentStartError, JobmagicsError, SessionNotFoundError, UserInputError
from ..hosts.agent import AgentLink
from ..hosts.session import SessionHost


class Session:
    """One persistent connection to an agent on ``computer_name``."""

    def __init__(self, connection, session_id, name=None, transport="SSH", files=None):
        self.id = session_id
        self.name = name or "Session%d" % session_id
        self.computer_name = connection.location
        self.transport = transport
        self.state = SessionState.Opened
        self.availability = "Available"
        self.reason = None
        self.hello = None
        self._connection = connection
        self.files = files  # a detached session's files (transport "Local")
        self._lock = threading.Lock()
        self.link = AgentLink(connection, on_end=self._on_link_end)
        self.host = SessionHost(self)
        self._state_callbacks = []

    def add_state_callback(self, callback):
        """``callback(session)`` after the session's state changed (from any thread; one that raises is logged)."""
        with self._lock:
            self._state_callbacks.append(callback)

    def _move(self, new, reason=None):
        """The one place the state changes: to ``new`` if SESSION_TRANSITIONS allows it, under the lock.

        The same state again only updates the reason. Callbacks run after, outside the lock.
        False when the move is not allowed (the session was closed, or left on purpose, meanwhile).
        """
        with self._lock:
            if new != self.state and new not in SESSION_TRANSITIONS[self.state]:
                return False
            self.state = new
            self.availability = "Available" if new == SessionState.Opened else "None"
            self.reason = reason
            callbacks = list(self._state_callbacks)
        invoke_callbacks(callbacks, self)
        return True

    def open(self):
        """Connect, send the agent (or greet a detached one) and check its handshake (errors raise here).

        Frames are read once :meth:`start_reading` is called.
        """
        self._connection.open()
        try:
            greeting = self._connection.greeting("attach", self.link.applied) if self.files else None
            self.hello = self.link.connect(greeting)
        except Exception as exc:
            # A detached session that refused us (busy, wrong token) said why; otherwise the agent's
            # exit says why, read before kill: a closed channel forgets its exit status.
            refused = isinstance(exc, AgentStartError) and self.files is not None
            reason = str(exc) if refused else self._connection.exit_reason(5.0)
            self._connection.kill()
            if refused:
                raise UserInputError("session %s: %s" % (self.name, reason)) from None
            raise JobmagicsError("the agent did not start on %s: %s" % (self.computer_name, reason)) from None
        self._move(SessionState.Opened)
        return self

    def start_reading(self):
        """Start applying the agent's frames (after any jobs it already runs were adopted)."""
        threading.Thread(target=self.link.serve, name="jobmagics-session-%s" % self.name, daemon=True).start()

    def disconnect(self):
        """Leave the session and its jobs running without this kernel."""
        if self.files is None:
            raise UserInputError("session %s cannot be disconnected" % self.name)
        if self.state != SessionState.Opened or not self._move(SessionState.Disconnected):
            raise UserInputError("session %s is %s" % (self.name, self.state))
        for job in self.jobs():
            if not job.finished:
                job._set_state_if_legal(JobState.Disconnected)
        try:
            self.link.writer.send(wire.DETACH, {})
        except OSError:
            pass
        self._connection.kill()
        self.link.ended.wait(15)

    def reconnect(self):
        """Attach again to a disconnected (or broken) session: what its jobs did meanwhile comes in."""
        if self.state not in (SessionState.Disconnected, SessionState.Broken) or self.files is None:
            raise UserInputError("session %s is %s: nothing to connect again" % (self.name, self.state))
        self._connection.kill()
        self._connection = self._connection.renewed()
        self.link.reset(self._connection)
        try:
            self.open()
        except Exception:
            self.link.ended.set()  # nothing reads this connection: nobody may wait for it to end
            raise
        self.start_reading()
        return self

    def _fail_jobs(self, reason):
        for job in self.jobs():
            if not job.finished:
                job._record("error", {"ename": "SessionEnded", "evalue": reason, "traceback": ""})
                job._set_state(JobState.Running) if job.state == JobState.NotStarted else None
                job._set_state_if_legal(JobState.Failed, reason)

    def _on_link_end(self, link):
        reason = "the connection to %s was lost" % self.computer_name
        if self.files is not None:
            reason += "; its jobs go on there: %%connect_session %s resumes" % self.name
        if not self._move(SessionState.Broken, reason):
            if self.state == SessionState.Disconnected:
                return  # left on purpose: its jobs go on there
        closing = self.state == SessionState.Closed
        if not closing and self.transport == "Local" and self._process_ended():
            self._move(SessionState.Broken, "the session process ended")
            self._fail_jobs(self.reason)  # nothing goes on there: its jobs failed with it
            return
        if self.files is not None and not closing:
            # The session outlives its connection: the jobs are Disconnected, not Failed.
            for job in list(link.jobs.values()):
                if not job.finished:
                    job._set_state_if_legal(JobState.Disconnected, self.reason)
            return
        for job in list(link.jobs.values()):
            if not job.finished:
                if job.state == JobState.Stopping or closing:
                    job._set_state(JobState.Stopped, "its session %s was closed" % self.name)
                else:
                    job._record("error", {"ename": "SessionBroken", "evalue": self.reason, "traceback": ""})
                    job._set_state(JobState.Failed, self.reason)

    def jobs(self):
        return list(self.link.jobs.values())

    def _process_ended(self):
        from ..transport.local_socket import process_ended

        return process_ended((self.hello or {}).get("pid"))

    def close(self, timeout=15.0):
        """Stop the session's jobs and end its agent; the session is Closed."""
        if self.state in (SessionState.Disconnected, SessionState.Broken) and self.files is not None:
            try:
                self.reconnect()  # the agent ends when asked by an attached kernel
            except JobmagicsError:  # it already ended (idle timeout, killed) or cannot be reached now
                self._move(SessionState.Closed)
                self._fail_jobs("session %s ended while this kernel was away" % self.name)
                return
        if self.state == SessionState.Closed or not self._move(SessionState.Closed):
            return
        if self.files is not None:
            try:
                self.link.writer.send(wire.CLOSE, {})  # a detached session ends only when told to
            except OSError:
                pass
        self._connection.close()  # EOF: the agent stops its jobs, ends its process group, exits
        self.link.ended.wait(timeout)
        self._connection.kill()

    def snapshot(self):
        return {"id": self.id, "name": self.name, "computer_name": self.computer_name,
                "transport": self.transport, "state": self.state, "availability": self.availability}

    def __repr__(self):
        return "<Session %d %r %s %s>" % (self.id, self.name, self.computer_name, self.state)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..core.rich import live_views

        views = live_views()
        return None if views is None else views.SessionView(self)._repr_mimebundle_(include, exclude)

    def _repr_pretty_(self, p, cycle):
        from .table import text_table
        p.text(text_table([self]))

    def _repr_html_(self):
        from .table import html_table
        return html_table([self])


class SessionRegistry:
    """The sessions of one kernel; ids are never reused."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sessions = {}
        self._ids = itertools.count(1)

    def next_id(self):
        return next(self._ids)

    def add(self, session):
        with self._lock:
            self._sessions[session.id] = session
        return session

    def sessions(self):
        with self._lock:
            return list(self._sessions.values())

    def resolve(self, ref):
        """The one session ``ref`` names: a Session, an id, a name, or a pattern that matches one."""
        found = self.resolve_all([ref])
        if not found:
            raise SessionNotFoundError("no session matches %r" % str(ref))
        if len(found) > 1:
            raise UserInputError("%r names %d sessions (%s): name one" % (
                str(ref), len(found), ", ".join(s.name for s in found)))
        return found[0]

    def resolve_all(self, refs):
        """The sessions several refs name (ids, names, patterns), each once, in order."""
        out = []
        for ref in refs:
            for session in self._named(ref):
                if session not in out:
                    out.append(session)
        return out

    def _named(self, ref):
        if isinstance(ref, Session):
            return [ref]
        text = str(ref).strip()
        sessions = self.sessions()
        if text.isdigit():
            found = [s for s in sessions if s.id == int(text)]
        else:
            found = matching(sessions, text, lambda session: session.name)
        if not found and not is_pattern(text):  # a pattern that matches nothing selects nothing
            raise SessionNotFoundError("no session with id or name %r%s" % (text, suggestion(text, [s.name for s in sessions])))
        return found

    def remove(self, session):
        session.close()
        with self._lock:
            self._sessions.pop(session.id, None)

    def shutdown(self, timeout=4.0):
        """Close this kernel's sessions when it ends, except disconnected ones, which live on.

        A session whose connection broke counts as disconnected: its jobs go on there.
        They are closed at once, side by side: the kernel is given little time to exit.
        """
        closing = [session for session in self.sessions()
                   if not (session.state == SessionState.Disconnected or
                           (session.state == SessionState.Broken and session.files is not None))]
        close_all(closing, timeout)


def close_all(sessions, timeout):
    """Close ``sessions`` side by side, waiting at most ``timeout`` seconds in all."""
    threads = [threading.Thread(target=_close_quietly, args=(session, timeout), daemon=True,
                                name="jobmagics-close-%s" % session.name) for session in sessions]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _close_quietly(session, timeout):
    try:
        session.close(timeout=timeout)
    except Exception:
        pass


def password_prompt(text):
    """Ask for a password without echo (in a notebook: the frontend's password box)."""
    return getpass.getpass(text)
