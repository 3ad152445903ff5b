"""Jobs kept in a session's own registry (results stay there): the kernel's side of the calls.

``start_job(..., session=S)``, ``%get_job --session S``, ... are the verbs of
:mod:`jobmagics.core.verbs` acting on :class:`SessionJobs`, whose primitives
ask the agent at the other end; what comes back are :class:`RemoteJobInfo`
snapshots, which show in the usual job table, and the records themselves.
"""
from __future__ import annotations

import datetime

from .. import api
from ..core import serialize, wire
from ..core.delivery import deliver
from ..core.errors import JobError, UserInputError
from ..core.records import Record
from ..core.table import JobInfo, JobList
from ..errors import LinkEndedError, RemoteCallError

#: Seconds a call may take beyond the time it asks the agent to wait.
CALL_TIMEOUT = 60.0


class RemoteJobInfo(JobInfo):
    """What a session's agent said about one of its jobs, when it was asked."""

    def __init__(self, data, session):
        super().__init__(dict(data, begin_time=_time(data.get("begin_time")), end_time=_time(data.get("end_time"))))
        self.session = session


def _time(text):
    return datetime.datetime.fromisoformat(text) if text else None


class SessionJobs:
    """The job store inside a session, reached over CALL frames: the verbs' primitives, asked there.

    Jobs come back as :class:`RemoteJobInfo` snapshots, named by their ids there.
    """

    def __init__(self, session):
        self.session = session

    def _call(self, op, buffers=(), wait=None, **args):
        session = self.session
        if session.state != "Opened":
            raise UserInputError("session %s is %s%s" % (session.name, session.state,
                                                          ": %s" % session.reason if session.reason else ""))
        # A wait with no timeout waits as long as the jobs run; the link ending still ends it.
        timeout = None if op == "wait" and wait is None else CALL_TIMEOUT + (wait or 0)
        try:
            return session.link.call(op, args, buffers, timeout=timeout)
        except RemoteCallError as exc:
            if exc.user_error:  # the same mistake as here, said the same way
                raise UserInputError(str(exc)) from None
            raise
        except (LinkEndedError, TimeoutError, OSError) as exc:
            raise UserInputError("session %s: %s" % (self.session.name, exc)) from None

    def _infos(self, data):
        return [RemoteJobInfo(d, self.session) for d in data]

    @staticmethod
    def _ids(jobs):
        return None if jobs is None else [job.id for job in jobs]

    def start(self, work, args, options):
        if options.get("foreach") is not None:
            raise UserInputError("--foreach with --session needs a cluster session (or run it in this kernel)")
        prepared = api.prepare(work, args, options["init"], options["using"], options["capture_names"],
                               options["namespace"], options["hidden"], options["kwargs"], options["export"])
        request, buffers, shipped = api.shipped_request(prepared, args, options["name"])
        result, _ = self._call("start", buffers, **request)
        info = RemoteJobInfo(result, self.session)
        info.shipped = shipped
        return info

    def find(self, refs):
        refs = [ref.id if isinstance(ref, JobInfo) else ref for ref in refs]
        return self._infos(self._call("find", refs=refs)[0]) if refs else []

    def all(self):
        return self._infos(self._call("find", refs=None)[0])

    def select(self, jobs, **query):
        return self._infos(self._call("select", ids=self._ids(jobs), query=query)[0])

    def listing(self, jobs, query=None):
        return JobList(jobs)

    def wait(self, jobs, any_, timeout):
        return self._infos(self._call("wait", wait=timeout, ids=self._ids(jobs), any=any_, timeout=timeout)[0])

    def stop(self, jobs):
        return self._infos(self._call("stop", ids=self._ids(jobs))[0])

    def remove(self, jobs, force):
        self._call("remove", ids=self._ids(jobs), force=force)

    def take(self, job, keep):
        result, buffers = self._call("take", ids=[job.id], keep=keep)
        return [_record(values, buffers) for values in result]

    def follow(self, job, outputs, exports):
        """Receive --wait from a session: wait there, then take everything."""
        self.wait([job], False, None)
        deliver(self.take(job, False), outputs, exports=exports)


def _record(values, buffers):
    seq, stream, data, stamp = values
    if stream in serialize.OBJECT_STREAMS:
        kind, payload = data
        data = serialize.loads(wire.payload_from_control(payload, buffers)) if kind == "payload" \
            else serialize.Unshippable(*payload)
    elif stream == "error":
        data = JobError.from_record_data(data)
    return Record(seq, stream, data, stamp)
