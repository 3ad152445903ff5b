"""``RemoteJob``: jobs run by the agent of a session (another computer, or a detached process)."""
from __future__ import annotations

from ..core.errors import UserInputError
from ..core.states import JobState

#: Seconds a stopped remote job gets to report Stopped before it is declared Stopped here.
STOP_WAIT = 10.0


class SessionHost:
    """Starts jobs in one session's agent; their records and states come back over its link."""

    job_type = "RemoteJob"

    def __init__(self, session):
        self.session = session

    ships = True  # its work travels to the session: ShippedWork

    def start(self, job, work):
        """Start ``work`` (a ShippedWork) in the session's agent."""
        request, buffers = work
        if self.session.state != "Opened":
            raise UserInputError("session %s is %s%s" % (self.session.name, self.session.state,
                                                          ": %s" % self.session.reason if self.session.reason else ""))
        job._host = self
        job.location = self.session.computer_name
        self.watch(job)
        self.session.link.start(job, dict(request, job_type=self.job_type), buffers)
        return job

    def watch(self, job):
        """A session that keeps output until it is received learns of each receive."""
        job._host = self
        if (self.session.hello or {}).get("durable"):
            job.add_drain_callback(lambda job, seq: self.session.link.acknowledge(job, seq))

    def stop(self, job):
        if job.finished:
            return
        if self.session.state == "Disconnected":
            raise UserInputError("job %s runs in the disconnected session %s: connect to it first"
                                 % (job.name, self.session.name))
        job._begin_stop()
        if not self.session.link.ended.is_set():
            self.session.link.stop(job)
        if not job.wait(STOP_WAIT):
            job._set_state(JobState.Stopped, "stopped; %s did not confirm in time" % self.session.computer_name)
