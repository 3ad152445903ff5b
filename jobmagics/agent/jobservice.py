"""The agent's own job registry, for jobs whose results stay on this computer.

Two doors lead to it: the kernel's CALL frames (``%start_job --session S``,
``%get_job --session S``, ...), answered by :class:`JobService` with the
store's primitives, and job code running here that says ``from jobmagics
import start_job, get_job, ...`` (the verbs of :mod:`.verbs`, which the
stand-in module exports). Jobs started either way are thread jobs of this
agent, located at ``localhost`` from its point of view, and keep their output
until it is received.
"""
from __future__ import annotations

from ..core import serialize, verbs, wire
from ..core.errors import UserInputError
from ..core.job import Job
from ..core.runner import Work
from ..core.verbs import LocalJobs

REMOTE_JOB_TYPE = "ThreadJob"


def work_from(spec, buffers, shared_namespace=None):
    """The Work a START or start_job request describes, its payloads loaded."""
    def load(description):
        return serialize.loads(wire.payload_from_control(description, buffers))

    namespace = {name: load(d) for name, d in (spec.get("variables") or {}).items()}
    if spec.get("fn") is not None:
        return Work(fn=load(spec["fn"]), args=load(spec["args"]), kwargs=load(spec["kwargs"]))
    if shared_namespace is not None:
        shared_namespace.update(namespace)
    return Work(code=spec.get("code"), init=spec.get("init"), namespace=namespace,
                shared_namespace=shared_namespace, export=spec.get("export"))


def snapshot_data(job):
    """A job's snapshot as plain data for the wire."""
    snap = job.snapshot()
    for key in ("begin_time", "end_time"):
        snap[key] = snap[key].isoformat() if snap[key] is not None else None
    snap["state"] = str(snap["state"])
    return snap


def encode_records(records, buffers):
    """Records as plain data; output objects as payloads whose buffers join ``buffers``."""
    out = []
    for record in records:
        stream, data = encode_data(record.stream, record.data, buffers)
        out.append((record.seq, stream, data, record.time))
    return out


def encode_data(stream, data, buffers):
    """(stream, data) of one record as plain data; an object as a payload whose buffers join ``buffers``."""
    if stream in serialize.OBJECT_STREAMS:
        try:
            return stream, ("payload", wire.payload_to_control(serialize.dumps(data), buffers))
        except serialize.SerializationError as exc:
            stream, data = serialize.unshippable(stream, data, str(exc))
            return ("output", ("unshippable", data)) if stream == "unshippable" else (stream, data)
    if stream == "error" and not isinstance(data, dict):
        return stream, {"ename": data.ename, "evalue": data.evalue, "traceback": data.traceback}
    return stream, data


class JobService:
    """This agent's job store, and the kernel's door to it: the store's primitives over CALL frames.

    The verbs (:mod:`.verbs`) run on the side that asked: a kernel's
    ``get_job(session=S)`` calls ``find`` and ``select`` here; job code in this
    agent calls the same verbs on :attr:`store` directly. Each call returns
    (result, buffers).
    """

    def __init__(self, registry, host):
        self.registry = registry
        self.host = host
        self.store = LocalJobs(registry, self._start_here)

    def _start_here(self, work, args, options):
        """A job of this agent: a thread job, seeing a copy of the caller's variables (``using`` names them)."""
        if options.get("python") is not None:
            raise UserInputError("python= starts a process job from the notebook; a job started here is a thread job")
        if options.get("foreach") is not None:
            raise UserInputError("--foreach starts its children from the notebook (or on a cluster session), not here")
        if isinstance(work, Work):  # the kernel's request, its variables already loaded
            command = options.get("command") or ""
        elif callable(work):
            command = getattr(work, "__qualname__", repr(work))
            work = Work(fn=work, args=args, kwargs=options.get("kwargs"))
        else:
            command, work = work, Work(code=work, init=options.get("init"), export=_names(options.get("export")),
                                       namespace=_variables(options))
        job = Job(command, REMOTE_JOB_TYPE, name=options.get("name"))
        self.registry.add(job)
        return self.host.start(job, work)

    def _jobs(self, args):
        ids = args.get("ids")
        return None if ids is None else self.registry.resolve_all(ids)

    def start(self, args, buffers):
        job = self.store.start(work_from(args, buffers), (), args)
        return snapshot_data(job), []

    def find(self, args, buffers):
        refs = args.get("refs")
        return _snapshots(self.store.find(refs) if refs else self.store.all()), []

    def select(self, args, buffers):
        return _snapshots(self.store.select(self._jobs(args), **args["query"])), []

    def wait(self, args, buffers):
        return _snapshots(self.store.wait(self._jobs(args), args.get("any"), args.get("timeout"))), []

    def stop(self, args, buffers):
        return _snapshots(self.store.stop(self._jobs(args))), []

    def remove(self, args, buffers):
        self.store.remove(self._jobs(args), args.get("force"))
        return None, []

    def take(self, args, buffers):
        out_buffers = []
        (job,) = self._jobs(args)
        return encode_records(self.store.take(job, args.get("keep")), out_buffers), out_buffers

    def handle(self, op, args, buffers):
        method = getattr(self, op, None) if op in OPERATIONS else None
        if method is None:
            raise UserInputError("the agent has no operation %r" % op)
        return method(args, buffers)


#: What a kernel may ask of this agent's store.
OPERATIONS = ("start", "find", "select", "wait", "stop", "remove", "take")


def _snapshots(jobs):
    return [snapshot_data(job) for job in jobs]


def _names(value):
    """Variable names given as a list or a comma-separated string."""
    names = value.split(",") if isinstance(value, str) else (value or [])
    return [name.strip() for name in names if name.strip()]


def _variables(options):
    """The caller's variables a job started here sees: a copy, so its assignments stay its own."""
    namespace = options.get("namespace") or {}
    if options.get("using") is not None:
        return {name: namespace[name] for name in _names(options["using"]) if name in namespace}
    return dict(namespace) if options.get("capture_names", True) else {}


def bind(service):
    """Job code here (``from jobmagics import start_job, ...``) acts on ``service``'s store (at agent start)."""
    def store_for(session):
        if session is not None:
            raise UserInputError("session= reaches a session from the notebook; job code acts on its own computer")
        return service.store

    verbs.use_stores(store_for)
