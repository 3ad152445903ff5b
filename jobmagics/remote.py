"""The plain Python API of sessions: new_session, get_session, remove_session, invoke."""
from __future__ import annotations

import concurrent.futures
import threading

from . import api, shipping
from .agent.delivery import collapse
from .agent.job import Job
from .agent.states import JobState
from .errors import UserInputError
from .fanout import DEFAULT_THROTTLE, FanOut
from .session_table import SessionList
from .sessions import Session, SessionRegistry, password_prompt

_lock = threading.Lock()
_sessions = None


def sessions() -> SessionRegistry:
    """This kernel's sessions, closed when the kernel ends."""
    global _sessions
    with _lock:
        if _sessions is None:
            _sessions = SessionRegistry()
            api.on_shutdown(_sessions.shutdown)
    return _sessions


def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, (str, Session)) else list(value)


def _open(computer, name=None, user=None, port=None, identity=None, python=None, accept_new_host_key=False):
    from .transport.ssh import SSHTransport  # paramiko is imported when a session is opened, not before

    reg = sessions()
    connection = SSHTransport(computer, user=user, port=port, identity=identity, python=python or "python3",
                              accept_new_host_key=accept_new_host_key, password_prompt=password_prompt)
    return Session(connection, reg.next_id(), name=name, transport="SSH").open()


def new_session(computer=None, name=None, user=None, port=None, identity=None, python=None,
                accept_new_host_key=False):
    """Open one session per computer (in parallel); a Session, or a list for several computers.

    If any computer cannot be reached, the sessions already opened are closed
    again and the error says which computer and why: nothing changes.
    """
    computers = _as_list(computer)
    if not computers:
        raise UserInputError("new_session needs --computer HOST (one or more)")
    names = [name] if len(computers) == 1 else [("%s-%d" % (name, i) if name else None)
                                                for i in range(1, len(computers) + 1)]
    options = dict(user=user, port=port, identity=identity, python=python, accept_new_host_key=accept_new_host_key)
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(computers), DEFAULT_THROTTLE)) as pool:
        futures = [pool.submit(_open, c, n, **options) for c, n in zip(computers, names)]
        concurrent.futures.wait(futures)
    failed = [f.exception() for f in futures if f.exception() is not None]
    opened = [f.result() for f in futures if f.exception() is None]
    if failed:
        for session in opened:
            session.close()
        raise failed[0]
    reg = sessions()
    for session in opened:
        reg.add(session)
    return opened[0] if len(opened) == 1 else SessionList(opened)


def get_session(*refs):
    """The sessions named (default: all of this kernel's)."""
    reg = sessions()
    return SessionList([reg.resolve(r) for r in refs] if refs else reg.sessions())


def remove_session(*refs):
    """Close sessions: their jobs are stopped and their agents end."""
    if not refs:
        raise UserInputError("remove_session needs at least one session")
    reg = sessions()
    targets = [reg.resolve(r) for r in refs]
    for session in targets:
        reg.remove(session)
    return None


def invoke(code, computer=None, session=None, as_job=False, job_name=None, throttle_limit=DEFAULT_THROTTLE,
           using=None, namespace=None, hidden=None, capture_names=True, **session_options):
    """Run ``code`` in sessions: stream it into the caller and return the outputs, or return a job.

    ``computer`` names computers reached through temporary sessions, closed
    when their part finished; ``session`` names open sessions. With
    ``as_job`` the result is a RemoteJob with one child per computer, at most
    ``throttle_limit`` of them running at once.
    """
    as_job = as_job or bool(job_name)  # naming the job asks for one, as -JobName does
    if throttle_limit is not None and int(throttle_limit) < 1:
        raise UserInputError("--throttle-limit must be at least 1")
    reg = sessions()
    targets = [reg.resolve(s) for s in _as_list(session)] + _as_list(computer)
    if not targets:
        raise UserInputError("invoke needs --session S or --computer HOST")
    for target in targets:
        if isinstance(target, Session) and target.state != "Opened":
            raise UserInputError("session %s is %s%s" % (target.name, target.state,
                                                          ": %s" % target.reason if target.reason else ""))
    if namespace is None:
        import inspect
        namespace = inspect.currentframe().f_back.f_globals
    variables = api.variables_for(code, None, namespace, using, capture_names, hidden)
    request, buffers, shipped = shipping.code_request(code, None, variables, code, job_name)
    parent = Job(code, "RemoteJob", name=job_name,
                 location=", ".join(t.computer_name if isinstance(t, Session) else t for t in targets))
    parent.shipped = shipped
    fanout = FanOut(request, buffers, throttle_limit or DEFAULT_THROTTLE,
                    open_session=lambda host: _open(host, **session_options), close_session=lambda s: s.close())
    for target in targets:
        child = Job(code, "RemoteJob", location=target.computer_name if isinstance(target, Session) else target)
        child.shipped = shipped
        parent._add_child(child)
        fanout.add(child, target)
    if as_job:
        api.registry().add(parent)
        fanout.start()
        return parent
    fanout.start()
    outputs = []
    try:
        api.stream_until_done(parent, outputs, tag_computers=len(targets) > 1)
    except KeyboardInterrupt:
        parent.stop()
        raise
    return collapse(outputs)


__all__ = ["new_session", "get_session", "remove_session", "invoke", "Session", "JobState"]
