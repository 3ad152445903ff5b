"""The agent's own job registry, for jobs whose results stay on this computer.

Two doors lead to it: the kernel's CALL frames (``%start_job --session S``,
``%get_job --session S``, ...) handled by :class:`JobService`, and job code
running here that says ``from jobmagics import start_job, get_job, ...``
(the functions at the bottom, which the stand-in module exports). Jobs started
either way are thread jobs of this agent, located at ``localhost`` from its
point of view, and keep their output until it is received.
"""
from __future__ import annotations

import inspect

from . import serialize, wire
from .delivery import collapse, deliver
from .errors import UserInputError
from .job import Job
from .runner import Work
from .table import JobList

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
        stream, data = record.stream, record.data
        if stream in serialize.OBJECT_STREAMS:
            try:
                data = ("payload", wire.payload_to_control(serialize.dumps(data), buffers))
            except serialize.SerializationError as exc:
                stream, data = serialize.unshippable(stream, data, str(exc))
                if stream == "unshippable":
                    stream, data = "output", ("unshippable", data)
        elif stream == "error":
            data = {"ename": data.ename, "evalue": data.evalue, "traceback": data.traceback}
        out.append((record.seq, stream, data, record.time))
    return out


class JobService:
    """Answers the kernel's calls on this agent's registry: each returns (result, buffers)."""

    def __init__(self, registry, host):
        self.registry = registry
        self.host = host

    def _jobs(self, refs):
        return self.registry.resolve_all(refs) if refs else self.registry.jobs()

    def start_job(self, args, buffers):
        job = Job(args.get("command", ""), REMOTE_JOB_TYPE, name=args.get("name"))
        work = work_from(args, buffers)
        self.registry.add(job)
        self.host.start(job, work)
        return snapshot_data(job), []

    def get_job(self, args, buffers):
        jobs = self.registry.select(self.registry.resolve_all(args["refs"]) if args.get("refs") else None,
                                    state=args.get("state"), job_type=args.get("job_type"),
                                    has_more_data=args.get("has_more_data"))
        return [snapshot_data(j) for j in jobs], []

    def receive_job(self, args, buffers):
        out_buffers = []
        result = [{"job": snapshot_data(job), "records": encode_records(job.records(keep=args.get("keep")), out_buffers)}
                  for job in self.registry.resolve_all(args["refs"])]
        return result, out_buffers

    def wait_job(self, args, buffers):
        finished = self.registry.wait(self._jobs(args.get("refs")), any_=args.get("any"), timeout=args.get("timeout"))
        return [snapshot_data(j) for j in finished], []

    def stop_job(self, args, buffers):
        jobs = self.registry.resolve_all(args["refs"])
        for job in jobs:
            job.stop()
        return [snapshot_data(j) for j in jobs], []

    def remove_job(self, args, buffers):
        jobs = self.registry.resolve_all(args["refs"]) if args.get("refs") else []
        if args.get("state"):
            jobs = self.registry.select(jobs or None, state=args["state"])
        for job in jobs:
            self.registry.remove(job, force=args.get("force"))
        return [snapshot_data(j) for j in jobs], []

    def handle(self, op, args, buffers):
        method = getattr(self, op, None) if not op.startswith("_") and op != "handle" else None
        if method is None:
            raise UserInputError("the agent has no operation %r" % op)
        return method(args, buffers)


# ----- for job code running in this agent: ``from jobmagics import start_job, ...`` ----------
_service = None


def bind(service):
    """Make the functions below act on ``service``'s registry (the agent does this at start)."""
    global _service
    _service = service


def _registry():
    if _service is None:
        raise RuntimeError("no job registry here: this is not a jobmagics agent")
    return _service.registry


def start_job(work, *args, name=None, init=None, namespace=None, kwargs=None):
    """Start code (with the caller's variables, shared) or a callable as a job kept on this computer."""
    if callable(work):
        job_work = Work(fn=work, args=args, kwargs=kwargs)
        command = getattr(work, "__qualname__", repr(work))
    else:
        if namespace is None:
            namespace = inspect.currentframe().f_back.f_globals
        job_work, command = Work(code=work, init=init, namespace=dict(namespace)), work
    job = Job(command, REMOTE_JOB_TYPE, name=name)
    _registry().add(job)
    return _service.host.start(job, job_work)


def get_job(*refs, state=None):
    reg = _registry()
    return JobList(reg.select(reg.resolve_all(refs) if refs else None, state=state))


def receive_job(*refs, keep=False):
    outputs = []
    for job in _registry().resolve_all(refs):
        deliver(job.records(keep=keep), outputs)
    return collapse(outputs)


def wait_job(*refs, any=False, timeout=None):  # noqa: A002 - the flag's name in the spec
    reg = _registry()
    return JobList(reg.wait(reg.resolve_all(refs) if refs else reg.jobs(), any_=any, timeout=timeout))


def stop_job(*refs):
    for job in _registry().resolve_all(refs):
        job.stop()


def remove_job(*refs, force=False):
    reg = _registry()
    for job in reg.resolve_all(refs):
        reg.remove(job, force=force)
