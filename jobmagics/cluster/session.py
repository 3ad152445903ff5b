"""The kernel's side of a cluster session: a Session of transport ``Cluster`` on a Dask cluster.

Each job is one Dask task running ``run`` of ``agent/daskworker.py`` on a worker the
scheduler chooses (that module reaches the workers by source, with the rest of the
agent: :func:`ship_agent`; workers need no jobmagics); the job here is a :class:`~jobmagics.core.job.Job` fed by
the session's poller, which asks the workers (``Client.run``) for the records
each job kept since the last time, and tells them which were received (the
records are dropped there only then). The session's own registry holds the
jobs started with ``--session C`` (results stay there): the six verbs act on it
through :class:`~jobmagics.core.verbs.LocalJobs`, as on any job store.
"""
from __future__ import annotations

import threading
import uuid

from ..core.job import Job
from ..core.registry import JobRegistry
from ..core.states import JobState, SessionState
from ..core.verbs import LocalJobs
from ..errors import UserInputError
from ..sessions.session import Session
from . import require_distributed

#: Seconds between two polls of the workers while jobs run (records stream at this pace).
POLL_INTERVAL = 0.1
#: Seconds to wait for a scheduler to answer when a session opens.
CONNECT_TIMEOUT = 10
#: Datasets a disconnected session publishes on its cluster: this prefix and the session's token.
DATASET_PREFIX = "jobmagics-session-"
#: Seconds a stopped job gets to report Stopped before it is declared Stopped here.
STOP_WAIT = 10.0


class ClusterHost:
    """Starts jobs as Dask tasks on the session's cluster; their records come back by the poller."""

    job_type = "RemoteJob"
    ships = True  # its work travels: ShippedWork

    def __init__(self, session):
        self.session = session

    def start(self, job, work):
        request, buffers = work
        session = self.session
        if session.state != SessionState.Opened:
            raise UserInputError("session %s is %s%s" % (session.name, session.state,
                                                          ": %s" % session.reason if session.reason else ""))
        job._host = self
        job.location = session.computer_name  # until a worker takes it
        key = "jobmagics-%s" % uuid.uuid4().hex
        future = session.client.submit(_on_worker(), "run", key, session.token, session.name, dict(request),
                                       [bytes(b) for b in buffers], key=key, pure=False)
        session._track(key, job, future)
        return job

    def stop(self, job):
        if job.finished:
            return
        session = self.session
        if session.state == SessionState.Disconnected:
            raise UserInputError("job %s runs in the disconnected session %s: connect to it first"
                                 % (job.name, session.name))
        job._begin_stop()
        tracked = session._tracked_of(job)
        if tracked is not None:
            try:  # on its worker; where no poll told which one yet, on every worker
                session.client.run(_on_worker(), "stop", [tracked.key], on_error="return",
                                   workers=[tracked.worker] if tracked.worker else None)
            except Exception:
                pass
            if tracked.worker is None:  # a task not begun never starts
                tracked.future.cancel()
                job._set_state(JobState.Stopped, "stopped before it started")
                return
        session._wake()
        if not job.wait(STOP_WAIT):
            job._set_state(JobState.Stopped, "stopped; the worker did not confirm in time")


class _Tracked:
    """A job of this session: its Dask key, future, worker, and how far its records came."""

    __slots__ = ("key", "job", "future", "worker", "fetched", "acked", "sent_ack")

    def __init__(self, key, job, future):
        self.key, self.job, self.future = key, job, future
        self.worker = None
        self.fetched = self.acked = self.sent_ack = 0


class ClusterSession(Session):
    """A session on a Dask cluster (transport ``Cluster``); its computer is the scheduler."""

    def __init__(self, client, session_id, name=None, cluster=None, owns_client=True, token=None):
        try:
            ship_agent(client)
        except Exception as exc:  # nothing opened stays open
            if owns_client:
                client.close()
            if cluster is not None:
                cluster.close()
            raise UserInputError("cannot install jobmagics' agent on the workers of %s: %s"
                                 % (client.scheduler.address, str(exc).splitlines()[0] if str(exc)
                                    else type(exc).__name__)) from None
        self.id = session_id
        self.name = name or "Cluster%d" % session_id
        self.client = client
        self.cluster = cluster  # a cluster this session started (--cluster local): closed with it
        self.owns_client = owns_client
        self.token = token or uuid.uuid4().hex
        self.computer_name = client.scheduler.address
        self.transport = "Cluster"
        self.state = SessionState.Opened
        self.availability = "Available"
        self.reason = None
        self.hello = None
        self.files = None
        self.link = None
        self.host = ClusterHost(self)
        self.registry = JobRegistry()  # the jobs started with --session C: their results stay here
        self.store = LocalJobs(self.registry, self._start_in_store)
        self.registry.add_listener(self._on_registry)
        from .. import api

        api.registry().add_listener(self._on_registry)  # jobs that came back here (--as-job, adopted)
        self._lock = threading.Lock()
        self._state_callbacks = []
        self._tracked = {}  # key -> _Tracked
        self._poll_lock = threading.Lock()
        self._wakeup = threading.Condition()
        self._woken = False
        self._start_poller()

    # ----- jobs --------------------------------------------------------------------
    def job_store(self):
        return self.store

    def _start_in_store(self, work, args, options):
        from .. import api
        from ..hosts import foreach
        from ..ship import shipping

        if options.get("python") is not None or options.get("thread"):
            raise UserInputError("jobs in a cluster session run on its workers (no --thread, no python=)")
        name = options["name"]
        if "foreach" in options:
            items = options.pop("foreach")
            limit = foreach.throttle_of(options.pop("throttle_limit"), self.total_threads())
            prepared = api.prepare(work, args, options["init"], options["using"], options["capture_names"],
                                   options["namespace"], options["hidden"], options["kwargs"], options["export"])
            command, fn, init, variables, kwargs, export = prepared
            api.shipped_request(prepared, args, name)  # what cannot be sent fails before any child

            def start_child(child, item):
                if callable(fn):
                    request, buffers, child.shipped = shipping.call_request(fn, (item,) + tuple(args), kwargs,
                                                                            command, child.name)
                else:
                    request, buffers, child.shipped = shipping.code_request(fn, init, dict(variables, _=item),
                                                                            command, child.name, export)
                return self.host.start(child, shipping.ShippedWork(request, buffers))

            return foreach.start_foreach(items, limit, self.host.job_type, start_child, command, name=name,
                                         location=self.computer_name, register=self.registry.add)
        prepared = api.prepare(work, args, options["init"], options["using"], options["capture_names"],
                               options["namespace"], options["hidden"], options["kwargs"], options["export"])
        request, buffers, shipped = api.shipped_request(prepared, args, name)
        job = Job(prepared[0], self.host.job_type, name=name, location=self.computer_name)
        job.shipped = shipped
        self.registry.add(job)
        try:
            self.host.start(job, shipping.ShippedWork(request, buffers))
        except Exception:
            self.registry.discard(job)
            raise
        return job

    def total_threads(self):
        """The threads of the cluster's workers now (the default throttle of --foreach)."""
        try:
            workers = self.client.scheduler_info()["workers"].values()
        except Exception:
            return 1
        return max(1, sum(w.get("nthreads", 1) for w in workers))

    def jobs(self):
        with self._lock:
            return [t.job for t in self._tracked.values()]

    def _track(self, key, job, future):
        tracked = _Tracked(key, job, future)
        job.add_drain_callback(lambda job, seq: self._acknowledge(tracked, seq))
        with self._lock:
            self._tracked[key] = tracked
        future.add_done_callback(lambda f: self._wake())
        self._wake()

    def _on_registry(self, event, job):
        """A job removed from the session's registry is forgotten here and on its worker."""
        if event != "removed":
            return
        gone = {id(j) for j in [job] + list(job.child_jobs)}
        with self._lock:
            keys = [key for key, t in self._tracked.items() if id(t.job) in gone]
            for key in keys:
                del self._tracked[key]
        if keys and self.state == SessionState.Opened:
            try:
                self.client.run(_on_worker(), "forget", keys, on_error="return")
            except Exception:
                pass

    def _tracked_of(self, job):
        with self._lock:
            for tracked in self._tracked.values():
                if tracked.job is job:
                    return tracked
        return None

    def _acknowledge(self, tracked, seq):
        tracked.acked = max(tracked.acked, seq)
        self._wake()

    # ----- the poller --------------------------------------------------------------
    def _wake(self):
        with self._wakeup:
            self._woken = True
            self._wakeup.notify_all()

    def _active(self):
        with self._lock:
            return [t for t in self._tracked.values() if not t.job.finished or t.acked != t.sent_ack]

    def _poll_loop(self):
        while self.state == SessionState.Opened:
            active = self._active()
            with self._wakeup:
                if not self._woken:
                    self._wakeup.wait(POLL_INTERVAL if active else 1.0)
                self._woken = False
            if self.state != SessionState.Opened:
                return
            if active or self._active():
                try:
                    self.poll()
                except Exception:  # a poll that failed (the scheduler restarting, ...) is tried again
                    pass

    def poll(self):
        """Bring records and states of the active jobs over from their workers, once."""
        with self._poll_lock:
            self._poll_once()

    def _poll_once(self):
        active = self._active()
        if not active:
            return
        wanted = {t.key: (t.fetched, t.acked) for t in active}
        answers = self.client.run(_on_worker(), "fetch", wanted, on_error="return")
        seen = {}
        for address, found in answers.items():
            if isinstance(found, BaseException):
                continue
            for key, status in found.items():
                seen[key] = (address, status)
        for tracked in active:
            tracked.sent_ack = wanted[tracked.key][1]
            if tracked.key in seen:
                self._apply(tracked, *seen[tracked.key])
            elif tracked.worker is not None and tracked.worker not in answers and not tracked.job.finished:
                self._worker_lost(tracked)
            elif tracked.worker is None and tracked.future.status in ("error", "cancelled") \
                    and not tracked.job.finished:
                self._future_failed(tracked)

    def _apply(self, tracked, address, status):
        from ..sessions.jobs import _record

        job = tracked.job
        if tracked.worker is None:
            tracked.worker = address
            job.location = address
        for seq, stream, data, stamp, buffers in status["records"]:
            if seq <= tracked.fetched:
                continue
            record = _record((seq, stream, data, stamp), buffers)
            job._record(record.stream, record.data, record.time, origin=seq)
            tracked.fetched = seq
        state = JobState(status["state"])
        if state != JobState.NotStarted and job.state == JobState.NotStarted:
            job._set_state(JobState.Running)
        if state.finished:  # read before its records: all of them came with this answer
            job._set_state_if_legal(state, status["reason"])

    def _worker_lost(self, tracked):
        reason = "its worker %s ended while the job ran" % tracked.worker
        tracked.future.cancel()  # Dask would run it again elsewhere: it ran here already
        tracked.job._record("error", {"ename": "WorkerLost", "evalue": reason, "traceback": ""})
        tracked.job._set_state_if_legal(JobState.Failed, reason)

    def _future_failed(self, tracked):
        if tracked.future.status == "cancelled":
            tracked.job._set_state_if_legal(JobState.Stopped, "its task was cancelled on the cluster")
            return
        exc = tracked.future.exception()
        reason = "%s: %s" % (type(exc).__name__, exc)
        tracked.job._record("error", {"ename": type(exc).__name__, "evalue": str(exc), "traceback": ""})
        if tracked.job.state == JobState.NotStarted:
            tracked.job._set_state(JobState.Running)
        tracked.job._set_state_if_legal(JobState.Failed, reason)

    # ----- the session -------------------------------------------------------------
    def _move(self, new, reason=None):
        moved = super()._move(new, reason)
        self._wake()  # the poller sees the new state at once
        return moved

    def open(self):
        return self

    def start_reading(self):
        pass

    @property
    def dataset(self):
        return DATASET_PREFIX + self.token

    def _publish(self):
        """Keep the session's jobs on the cluster without this kernel: a published dataset holds their
        futures (so Dask keeps their tasks) and what a kernel needs to take them back."""
        with self._lock:
            tracked = list(self._tracked.values())
        value = {"name": self.name, "futures": {t.key: t.future for t in tracked},
                 "jobs": {t.key: {"name": t.job.name, "command": t.job.command} for t in tracked}}
        try:
            self.client.unpublish_dataset(self.dataset)
        except KeyError:
            pass
        self.client.publish_dataset(**{self.dataset: value})

    def disconnect(self):
        """Leave the session: its jobs run on, their records kept on the workers until a kernel takes them."""
        if self.cluster is not None:
            raise UserInputError("session %s runs on a local cluster it owns, which ends with it: it cannot be "
                                 "disconnected" % self.name)
        if self.state != SessionState.Opened:
            raise UserInputError("session %s is %s" % (self.name, self.state))
        self._publish()
        self.poll()  # receives acknowledged so far are told now: nothing is delivered twice
        if not self._move(SessionState.Disconnected):
            raise UserInputError("session %s is %s" % (self.name, self.state))
        self._poller.join(15)
        for job in self.jobs():
            if not job.finished:
                job._set_state_if_legal(JobState.Disconnected)
        if self.owns_client:
            self.client.close()

    def reconnect(self):
        """Connect again: the jobs carry on here, with what they wrote meanwhile."""
        if self.state != SessionState.Disconnected:
            raise UserInputError("session %s is %s: nothing to connect again" % (self.name, self.state))
        if self.owns_client:
            self.client = _client(require_distributed(), self.computer_name, self.computer_name)
        self._move(SessionState.Opened)
        for job in self.jobs():
            if job.state == JobState.Disconnected:
                job._set_state_if_legal(JobState.Running)
        self._start_poller()
        return self

    def _start_poller(self):
        self._poller = threading.Thread(target=self._poll_loop, daemon=True, name="jobmagics-cluster-%s" % self.name)
        self._poller.start()

    def adopt(self, published):
        """Take back the jobs a disconnected session left (a published dataset's value): jobs of this kernel."""
        adopted = []
        for key, future in published["futures"].items():
            info = published["jobs"].get(key, {})
            job = Job(info.get("command") or "", self.host.job_type, name=info.get("name"), location=self.computer_name)
            job._host = self.host
            self._track(key, job, future)
            adopted.append(job)
        self.poll()  # their states and what they wrote while nobody was connected
        return adopted

    def close(self, timeout=15.0):
        """Stop the session's jobs, drop what they kept on the workers, end what the session started."""
        if self.state == SessionState.Closed:
            return
        if self.state == SessionState.Disconnected:
            try:
                self.reconnect()
            except Exception:
                self._move(SessionState.Closed)
                return
        with self._lock:
            tracked = list(self._tracked.values())
        running = [t for t in tracked if not t.job.finished]
        try:
            self.client.unpublish_dataset(self.dataset)
        except Exception:
            pass
        try:
            if tracked:
                self.client.run(_on_worker(), "forget", [t.key for t in tracked], on_error="return")
            for t in running:
                t.future.cancel()
        except Exception:
            pass
        self._move(SessionState.Closed)
        from .. import api

        api.registry().remove_listener(self._on_registry)
        for t in running:
            t.job._set_state_if_legal(JobState.Stopped, "its session %s was closed" % self.name)
        self._poller.join(timeout)
        if self.owns_client:
            try:
                self.client.close()
            except Exception:
                pass
        if self.cluster is not None:
            try:
                self.cluster.close()
            except Exception:
                pass

    def __repr__(self):
        return "<Session %d %r %s %s>" % (self.id, self.name, self.computer_name, self.state)


def open_session(cluster, session_id, name=None):
    """A ClusterSession on ``cluster``: "local", a scheduler address or file, a Client or a cluster object."""
    distributed = require_distributed()
    owned_cluster, owns_client = None, True
    if isinstance(cluster, distributed.Client):
        client, owns_client = cluster, False
    elif isinstance(cluster, str):
        text = cluster.strip()
        if not text:
            raise UserInputError("--cluster needs a scheduler address, a scheduler file, or local")
        if text == "local":
            owned_cluster = distributed.LocalCluster(host="127.0.0.1", dashboard_address="127.0.0.1:0", processes=True)
            client = _client(distributed, owned_cluster, "a local cluster")
        else:
            import os

            if os.path.isfile(os.path.expanduser(text)):
                client = _client(distributed, None, text, scheduler_file=os.path.expanduser(text))
            else:
                client = _client(distributed, text, text)
    elif hasattr(cluster, "scheduler_address"):  # a cluster object: LocalCluster, SLURMCluster, ...
        client = _client(distributed, cluster, cluster.scheduler_address)
    else:
        raise UserInputError("--cluster takes a scheduler address, a scheduler file, local, a distributed.Client "
                             "or a cluster object, not %s" % type(cluster).__name__)
    return ClusterSession(client, session_id, name=name, cluster=owned_cluster, owns_client=owns_client)


class ClusterSessionInfo:
    """A cluster session no kernel is connected to (found by get_session(cluster=...))."""

    transport = "Cluster"
    reason = None
    state = "Disconnected"
    availability = "Available"

    def __init__(self, address, token, value):
        self.computer_name = address
        self.token = token
        self.name = value.get("name") or "Cluster-" + token[:6]
        self.id = token[:6]
        self.jobs = len(value.get("futures", {}))

    def snapshot(self):
        return {"id": self.id, "name": self.name, "computer_name": self.computer_name, "transport": "Cluster",
                "state": self.state, "availability": self.availability}


_found = {}  # name -> (address, token) of sessions get_session(cluster=...) found


def find_sessions(address, connected_tokens=()):
    """The sessions left on the cluster at ``address`` (published by a disconnect), as ClusterSessionInfo."""
    distributed = require_distributed()
    client = _client(distributed, address, address)
    try:
        found = []
        for name in client.list_datasets():
            if not str(name).startswith(DATASET_PREFIX):
                continue
            token = str(name)[len(DATASET_PREFIX):]
            if token in connected_tokens:
                continue
            info = ClusterSessionInfo(client.scheduler.address, token, client.get_dataset(name))
            _found[info.name] = (address, token)
            found.append(info)
        return found
    finally:
        client.close()


def attach(ref, session_id):
    """(session, adopted jobs) for a session found by find_sessions, or None if ``ref`` names none."""
    if str(ref) not in _found:
        return None
    address, token = _found.pop(str(ref))
    distributed = require_distributed()
    client = _client(distributed, address, address)
    try:
        value = client.get_dataset(DATASET_PREFIX + token)
    except KeyError:
        client.close()
        raise UserInputError("session %s is no longer on %s" % (ref, address)) from None
    session = ClusterSession(client, session_id, name=value.get("name"), token=token)
    return session, session.adopt(value)


def _on_worker():
    """What tasks and ``Client.run`` send: ``onworker.call``, which calls the shipped worker module by name."""
    if not _trampoline:
        import cloudpickle

        from . import onworker

        _trampoline.append(_ByValue(cloudpickle.dumps(onworker.call)))
    return _trampoline[0]


class _ByValue:
    """A function that any pickler sends by value (cloudpickle's bytes, loaded by cloudpickle there).

    Dask pickles a task as a whole with plain pickle, which would name the function by its module
    (``jobmagics...``, not importable on a worker without jobmagics); cloudpickle is on every worker.
    """

    def __init__(self, blob):
        self.blob = blob

    def __reduce__(self):
        import cloudpickle

        return cloudpickle.loads, (self.blob,)

    def __call__(self, *args):  # not called here: it becomes the function itself where it is loaded
        import cloudpickle

        return cloudpickle.loads(self.blob)(*args)


_trampoline = []


def ship_agent(client):
    """Register the worker plugin that installs the agent's sources on the cluster's workers.

    The scheduler keeps it, so workers that join later get it too; a worker already holding
    these very sources keeps them. The plugin and ``onworker.call`` travel by value.
    """
    import hashlib
    import json

    from ..transport import bootstrap
    from . import onworker

    sources = _shipped()
    version = hashlib.sha256(json.dumps(sources, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    client.register_plugin(onworker.ShipAgent(sources, version, bootstrap.dill_sources()), name=onworker.PLUGIN_NAME)


def _shipped():
    from ..transport import bootstrap

    if not _sources:
        _sources.append(bootstrap.shipped_sources())
    return _sources[0]


_sources = []  # the agent's sources, read once per kernel


def _client(distributed, address, label, **kwargs):
    """A Client of this kernel (not Dask's default one); an unreachable scheduler is a one-line error."""
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False, **kwargs)
    except Exception as exc:
        if label == "a local cluster":
            address.close()
        raise UserInputError("cannot reach the Dask scheduler at %s: %s" % (label, str(exc).splitlines()[0] if str(exc)
                                                                             else type(exc).__name__)) from None
