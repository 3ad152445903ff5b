"""Jobs kept in a session's own registry (results stay there): the kernel's side of the calls.

``%start_job --session S``, ``%get_job --session S``, ... ask the agent at the
other end; what comes back are :class:`RemoteJobInfo` snapshots, which show
in the usual job table, and for ``receive`` the records themselves.
"""
from __future__ import annotations

import datetime

from . import api, jobcode, shipping
from .agent import serialize, wire
from .agent.delivery import collapse, deliver
from .agent.errors import UserInputError
from .agent.records import Record
from .agent.table import JobInfo, JobList
from .errors import LinkEndedError, RemoteCallError

#: Seconds a call may take beyond the time it asks the agent to wait.
CALL_TIMEOUT = 60.0


class RemoteJobInfo(JobInfo):
    """What a session's agent said about one of its jobs, when it was asked."""

    def __init__(self, data, session):
        super().__init__(dict(data, begin_time=_time(data.get("begin_time")), end_time=_time(data.get("end_time"))))
        self.session = session

    def __repr__(self):
        return "<%s %s %r %s in session %s>" % (self.job_type, self.id, self.name, self.state, self.session.name)


def _time(text):
    return datetime.datetime.fromisoformat(text) if text else None


def _call(session, op, buffers=(), wait=None, **args):
    if session.state != "Opened":
        raise UserInputError("session %s is %s%s" % (session.name, session.state,
                                                      ": %s" % session.reason if session.reason else ""))
    # A wait with no timeout waits as long as the jobs run; the link ending still ends it.
    timeout = None if op == "wait_job" and wait is None else CALL_TIMEOUT + (wait or 0)
    try:
        return session.link.call(op, args, buffers, timeout=timeout)
    except RemoteCallError as exc:
        if exc.user_error:
            raise UserInputError("in session %s: %s" % (session.name, exc)) from None
        raise
    except (LinkEndedError, TimeoutError, OSError) as exc:
        raise UserInputError("session %s: %s" % (session.name, exc)) from None


def _infos(session, data):
    return JobList(RemoteJobInfo(d, session) for d in data)


def _refs(refs):
    return [str(r.name) if isinstance(r, RemoteJobInfo) else r for r in refs]


def start_job(session, code, name=None, init=None, using=None, capture_names=True, namespace=None, hidden=None,
              export=None):
    """Start ``code`` in the session's registry; its results stay there until received."""
    export = api.export_names(export)
    command, code, init = code, jobcode.prepare(code), jobcode.prepare(init, "init code")
    variables = api.variables_for(code, init, namespace or {}, using, capture_names, hidden)
    request, buffers, shipped = shipping.code_request(code, init, variables, command, name, export)
    result, _ = _call(session, "start_job", buffers, **request)
    info = RemoteJobInfo(result, session)
    info.shipped = shipped
    return info


def get_job(session, *refs, state=None, job_type=None, has_more_data=None):
    result, _ = _call(session, "get_job", refs=_refs(refs), state=state, job_type=job_type,
                      has_more_data=has_more_data)
    return _infos(session, result)


def receive_job(session, *refs, keep=False, export_into=None):
    """Deliver what the session's jobs produced (text to the cell) and return their output objects.

    Variables the jobs handed back (``--export``) are set in ``export_into``, if given.
    """
    if not refs:
        raise UserInputError("receive_job needs at least one job")
    result, buffers = _call(session, "receive_job", refs=_refs(refs), keep=keep)
    outputs, exported = [], {}
    for entry in result:
        deliver((_record(values, buffers) for values in entry["records"]), outputs, exports=exported)
    api.set_exports(exported, export_into)
    return collapse(outputs)


def _record(values, buffers):
    seq, stream, data, stamp = values
    if stream in serialize.OBJECT_STREAMS:
        kind, payload = data
        data = serialize.loads(wire.payload_from_control(payload, buffers)) if kind == "payload" \
            else serialize.Unshippable(*payload)
    elif stream == "error":
        from .agent.errors import JobError
        data = JobError.from_record_data(data)
    return Record(seq, stream, data, stamp)


def wait_job(session, *refs, any=False, timeout=None):  # noqa: A002 - the flag's name in the spec
    result, _ = _call(session, "wait_job", wait=timeout, refs=_refs(refs), any=any, timeout=timeout)
    return _infos(session, result)


def stop_job(session, *refs):
    if not refs:
        raise UserInputError("stop_job needs at least one job")
    result, _ = _call(session, "stop_job", refs=_refs(refs))
    return _infos(session, result)


def remove_job(session, *refs, force=False, state=None):
    if not refs and state is None:
        raise UserInputError("remove_job needs jobs or a state")
    result, _ = _call(session, "remove_job", refs=_refs(refs), force=force, state=state)
    return _infos(session, result)
