"""The plain Python API of sessions: new_session, get_session, remove_session, invoke."""
from __future__ import annotations

import concurrent.futures
import contextlib
import threading

from .. import api
from ..ship import jobcode, shipping
from ..core.delivery import collapse
from ..core.job import Job
from ..core.states import JobState, SessionState
from ..errors import UserInputError
from .fanout import DEFAULT_THROTTLE, FanOut
from ..core.table import JobList
from .table import SessionList
from .session import Session, SessionRegistry, close_all, password_prompt

_lock = threading.Lock()
_sessions = None


def sessions() -> SessionRegistry:
    """This kernel's sessions, closed when the kernel ends."""
    global _sessions
    with _lock:
        if _sessions is None:
            _sessions = SessionRegistry()
            api.on_shutdown(_close_temporary_sessions)
            api.on_shutdown(_sessions.shutdown)
    return _sessions


def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, (str, Session)) else list(value)


def _ssh_options(user=None, port=None, identity=None, python=None, accept_new_host_key=False):
    return dict(user=user, port=port, identity=identity, python=python or "python3",
                accept_new_host_key=accept_new_host_key, password_prompt=password_prompt)


def _open(computer, name=None, idle_timeout=None, **options):
    """A session on ``computer``: a detached agent there, reached through a relay over SSH."""
    from ..transport.ssh import SSHRelayTransport  # paramiko is imported when a session is opened

    api.shutdown_first()
    reg = sessions()
    connection = SSHRelayTransport(computer, **_ssh_options(**options))
    session_id = reg.next_id()
    files = connection.start_session(name or "", idle_timeout or DEFAULT_IDLE_TIMEOUT)
    session = Session(connection, session_id, name=name, transport="SSH", files=files)
    session.open()
    session.start_reading()
    return session


DEFAULT_IDLE_TIMEOUT = 2 * 3600

#: Seconds a temporary session (``%invoke --computer``) lives on with no kernel attached: should its
#: kernel die while it opens it, it ends by itself soon after, not hours later.
TEMPORARY_IDLE_TIMEOUT = 30.0

_temporary = {"open": set(), "busy": 0, "closing": False}  # sessions invoke(computer=...) opened
_temporary_changed = threading.Condition(_lock)


def _open_temporary(computer, **options):
    """A session for one child of ``invoke(computer=...)``: closed when its work ends, or with the kernel."""
    sessions()  # the kernel's shutdown closes what is still open
    options["idle_timeout"] = options.get("idle_timeout") or TEMPORARY_IDLE_TIMEOUT
    with _temporary_busy():
        session = _open(computer, **options)
        with _temporary_changed:
            closing = _temporary["closing"]
            if not closing:
                _temporary["open"].add(session)
        if closing:  # opened while the kernel was shutting down: it ends now
            session.close()
            raise UserInputError("the kernel is shutting down")
    return session


def _close_temporary(session):
    with _temporary_busy(refuse=False):
        session.close()
        with _temporary_changed:
            _temporary["open"].discard(session)


@contextlib.contextmanager
def _temporary_busy(refuse=True):
    """Count an opening or a closing under way: the kernel's exit waits for them (a daemon thread
    killed half-way would leave a session running there)."""
    with _temporary_changed:
        if refuse and _temporary["closing"]:
            raise UserInputError("the kernel is shutting down")
        _temporary["busy"] += 1
    try:
        yield
    finally:
        with _temporary_changed:
            _temporary["busy"] -= 1
            _temporary_changed.notify_all()


def _close_temporary_sessions(wait=3.0):
    """At kernel exit: temporary sessions end with it, once what opens or closes them has finished."""
    with _temporary_changed:
        _temporary["closing"] = True
        _temporary_changed.wait_for(lambda: _temporary["busy"] == 0, wait)
        left = list(_temporary["open"])
        _temporary["open"].clear()
    close_all(left, 2.0)


def _attach(connection, name, transport):
    """Attach to a session that runs already: a Session of this kernel, and the jobs running there."""
    reg = sessions()
    session = Session(connection, reg.next_id(), name=name, transport=transport, files=connection.files)
    session.open()
    adopted = []
    for info in session.hello.get("jobs", []):
        job = Job(info["command"], info.get("job_type") or "RemoteJob", name=info["name"],
                  location=session.computer_name)
        session.link.adopt(info["key"], job)
        session.host.watch(job)
        state = JobState(info["state"])
        if state != JobState.NotStarted:
            job._set_state(JobState.Running)
            job._set_state_if_legal(state, info.get("reason"))
        adopted.append(job)
    session.start_reading()
    return reg.add(session), adopted


def _new_local_session(name=None, python=None, idle_timeout=None):
    from ..transport.local_socket import start_detached

    from ..transport.local_socket import LocalSocketTransport

    files = start_detached(name or "", idle_timeout or DEFAULT_IDLE_TIMEOUT, python=python)
    session, _ = _attach(LocalSocketTransport(files), name or "Local-" + files.id[:6], "Local")
    return session


def new_session(computer=None, local=False, name=None, user=None, port=None, identity=None, python=None,
                accept_new_host_key=False, idle_timeout=None, cluster=None):
    """Open one session per computer (in parallel); a Session, or a list for several computers.

    ``local`` starts a detached session on this machine instead: a process of
    its own that outlives this kernel when disconnected (``idle_timeout``
    seconds, default 2 hours, once no kernel is connected). ``cluster`` opens a
    session on a Dask cluster: a scheduler address or file, "local" (a
    LocalCluster the session owns), a ``distributed.Client`` or a cluster
    object (docs/cluster.md). If any computer
    cannot be reached, the sessions already opened are closed again and the
    error says which computer and why: nothing changes.
    """
    if idle_timeout is not None and idle_timeout <= 0:
        raise UserInputError("--idle-timeout must be a positive number of seconds")
    if cluster is not None:
        if computer or local:
            raise UserInputError("--cluster cannot be used with --computer or --local")
        from ..cluster.session import open_session

        api.shutdown_first()
        reg = sessions()
        return reg.add(open_session(cluster, reg.next_id(), name=name))
    if local:
        if computer:
            raise UserInputError("--local and --computer cannot be used together")
        return _new_local_session(name, python, idle_timeout)
    computers = _as_list(computer)
    if not computers:
        raise UserInputError("new_session needs --computer HOST (one or more), or --local")
    names = [name] if len(computers) == 1 else [("%s-%d" % (name, i) if name else None)
                                                for i in range(1, len(computers) + 1)]
    options = dict(user=user, port=port, identity=identity, python=python, accept_new_host_key=accept_new_host_key,
                   idle_timeout=idle_timeout)
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


_discovered = {}  # name -> (computer, files, ssh options) of sessions found by get_session(computer=...)


def get_session(*refs, local=False, computer=None, cluster=None, **ssh_options):
    """The sessions named (default: all of this kernel's).

    ``local`` adds this user's detached sessions on this machine; ``computer``
    adds this user's sessions on that computer that no kernel here is
    connected to. Those show as Disconnected, Available or Busy. ``cluster``
    (a scheduler address) adds the cluster sessions left disconnected there.
    """
    if not computer and any(ssh_options.values()):
        raise UserInputError("--user, --port, --identity, --python and --accept-new-host-key go with --computer")
    reg = sessions()
    found = reg.resolve_all(refs) if refs else reg.sessions()
    mine = {s.files.id for s in reg.sessions() if s.files is not None}
    if local:
        from ..transport.local_socket import find_sessions

        found += [DetachedSessionInfo(files, info) for files, info in find_sessions() if files.id not in mine]
    for host in _as_list(computer):
        from ..transport.ssh import RemoteFiles, list_sessions

        for info in list_sessions(host, **_ssh_options(**ssh_options)):
            if info["id"] in mine:
                continue
            files = RemoteFiles(info["dir"], info["id"], info["token"])
            name = info.get("name") or "Session-" + info["id"][:6]
            _discovered[name] = (host, files, ssh_options)
            found.append(RemoteSessionInfo(host, name, info))
    if cluster is not None:
        from ..cluster.session import find_sessions

        found += find_sessions(cluster, {getattr(s, "token", None) for s in reg.sessions()})
    return SessionList(found)


class RemoteSessionInfo:
    """A session on another computer that this kernel is not connected to (from get_session(computer=...))."""

    transport = "SSH"
    reason = None
    state = "Disconnected"

    def __init__(self, computer, name, info):
        self.computer_name = computer
        self.name = name
        self.id = info["id"][:6]
        self.availability = info.get("availability", "None")

    def snapshot(self):
        return {"id": self.id, "name": self.name, "computer_name": self.computer_name, "transport": "SSH",
                "state": self.state, "availability": self.availability}


class DetachedSessionInfo:
    """A detached session of this user that this kernel is not connected to."""

    transport = "Local"
    computer_name = "localhost"
    reason = None

    def __init__(self, files, info):
        from ..transport.local_socket import status

        self.files = files
        self.id = files.id[:6]
        self.name = info.get("name") or "Local-" + files.id[:6]
        self.state = "Disconnected"
        try:
            answer = status(files)
            self.availability = answer.get("availability", "Available")
            self.jobs_running = sum(1 for j in answer.get("jobs", []) if not JobState(j["state"]).finished)
        except UserInputError:
            self.availability = "None"
            self.jobs_running = 0

    def snapshot(self):
        return {"id": self.id, "name": self.name, "computer_name": "localhost", "transport": "Local",
                "state": self.state, "availability": self.availability}


def _find_detached(ref):
    from ..transport.local_socket import find_sessions

    text = str(ref)
    for files, info in find_sessions():
        if text in (info.get("name"), files.id, files.id[:6], "Local-" + files.id[:6]):
            return files, info
    return None


def disconnect_session(*refs):
    """Leave sessions running without this kernel; their jobs show Disconnected here."""
    if not refs:
        raise UserInputError("disconnect_session needs at least one session")
    targets = sessions().resolve_all(refs)
    for session in targets:
        session.disconnect()
    return SessionList(targets)


def connect_session(ref):
    """Connect to a disconnected session (this kernel's, or a detached one found on this machine)."""
    reg = sessions()
    try:
        session = reg.resolve(ref)
    except UserInputError:
        session = None
    if session is not None:
        return session.reconnect()
    from ..cluster.session import attach

    attached = attach(ref, reg.next_id())
    if attached is not None:
        session, adopted = attached
        reg.add(session)
    elif str(ref) in _discovered:
        from ..transport.ssh import SSHRelayTransport

        host, files, options = _discovered.pop(str(ref))
        session, adopted = _attach(SSHRelayTransport(host, files=files, **_ssh_options(**options)), str(ref), "SSH")
    else:
        found = _find_detached(ref)
        if found is None:
            raise UserInputError("no session with id or name %r (here, detached on this machine, or found "
                                 "with get_session --computer)" % str(ref))
        from ..transport.local_socket import LocalSocketTransport

        files, info = found
        session, adopted = _attach(LocalSocketTransport(files), info.get("name") or "Local-" + files.id[:6], "Local")
    for job in adopted:
        api.registry().add(job)
    return session


def receive_session(ref, job_name=None):
    """Connect to a session and return a job for each piece of work still there (one job: the job).

    A session this kernel is connected to already is not connected again: its jobs come back as they are.
    """
    try:
        session = sessions().resolve(ref)
    except UserInputError:
        session = None
    if session is None or session.state != SessionState.Opened:
        session = connect_session(ref)
    jobs = [job for job in session.jobs()]
    if job_name:
        for index, job in enumerate(jobs):
            job.name = job_name if len(jobs) == 1 else "%s-%d" % (job_name, index + 1)
    return jobs[0] if len(jobs) == 1 else JobList(jobs)


def remove_session(*refs):
    """Close sessions: their jobs are stopped and their agents end."""
    if not refs:
        raise UserInputError("remove_session needs at least one session")
    reg = sessions()
    targets = reg.resolve_all(refs)
    for session in targets:
        reg.remove(session)
    return None


def invoke(code, computer=None, session=None, as_job=False, job_name=None, throttle_limit=DEFAULT_THROTTLE,
           using=None, namespace=None, hidden=None, capture_names=True, export=None, **session_options):
    """Run ``code`` in sessions: stream it into the caller and return the outputs, or return a job.

    ``computer`` names computers reached through temporary sessions, closed
    when their part finished; ``session`` names open sessions. With
    ``as_job`` the result is a RemoteJob with one child per computer, at most
    ``throttle_limit`` of them running at once. ``export`` names variables
    handed back: streaming sets them in ``namespace``; a job keeps them in its
    children's ``exports`` until ``receive_job(job, export_into=...)``.
    """
    as_job = as_job or bool(job_name)  # naming the job asks for one, as -JobName does
    if throttle_limit is not None and int(throttle_limit) < 1:
        raise UserInputError("--throttle-limit must be at least 1")
    reg = sessions()
    targets = reg.resolve_all(_as_list(session)) + _as_list(computer)
    if not targets:
        raise UserInputError("invoke needs --session S or --computer HOST")
    for target in targets:
        if isinstance(target, Session) and target.state != "Opened":
            raise UserInputError("session %s is %s%s" % (target.name, target.state,
                                                          ": %s" % target.reason if target.reason else ""))
    if namespace is None:
        import inspect
        namespace = inspect.currentframe().f_back.f_globals
    export = api.export_names(export)
    command, code = code, jobcode.prepare(code)
    variables = api.variables_for(code, None, namespace, using, capture_names, hidden)
    request, buffers, shipped = shipping.code_request(code, None, variables, command, job_name, export)
    parent = Job(command, "RemoteJob", name=job_name,
                 location=", ".join(t.computer_name if isinstance(t, Session) else t for t in targets))
    parent.shipped = shipped
    fanout = FanOut(request, buffers, throttle_limit or DEFAULT_THROTTLE,
                    open_session=lambda host: _open_temporary(host, **session_options), close_session=_close_temporary)
    for target in targets:
        child = Job(command, "RemoteJob", location=target.computer_name if isinstance(target, Session) else target)
        child.shipped = shipped
        parent._add_child(child)
        fanout.add(child, target)
    if as_job:
        api.registry().add(parent)
        fanout.start()
        return parent
    fanout.start()
    outputs, exported = [], {}
    try:
        api.stream_until_done(parent, outputs, tag_computers=len(targets) > 1, exports=exported, fail=True)
    except KeyboardInterrupt:
        parent.stop()
        raise
    api.set_exports(exported, namespace if export else None)
    return collapse(outputs)


__all__ = ["new_session", "get_session", "remove_session", "invoke", "Session", "JobState"]
