"""``BackgroundJob``: each job in its own agent process on this machine."""
from __future__ import annotations

import os
import threading

from . import processes
from ..core.group import KILL_GRACE
from ..core.states import JobState
from ..errors import AgentStartError
from ..transport import spares
from ..transport.local import LocalTransport
from .agent import AgentLink

#: Seconds job processes get at kernel exit before they are killed: a restart gives the kernel
#: 2.5 s to end before it is terminated (and then the job processes end their groups themselves).
EXIT_GRACE = 1.0


class ProcessHost:
    """Starts one agent process per job, ends it (and its process tree) with the job."""

    job_type = "BackgroundJob"

    def __init__(self, python=None, kill_grace=KILL_GRACE):
        self.python = python
        self.kill_grace = kill_grace
        self._links = {}
        self._lock = threading.Lock()

    ships = True  # its work travels to another process: ShippedWork

    def start(self, job, work):
        """Start the process for ``work`` (a ShippedWork) now (errors raise here); the handshake runs later."""
        request, buffers = work
        transport, link = self._agent()
        transport.text.start(lambda stream, text: job.finished or job._record(stream, text))
        job._host = self
        job._set_state(JobState.Running)  # its process runs from here on
        with self._lock:
            self._links[job.instance_id] = link
        request = dict(request, exit_when_done=True, job_type=self.job_type)
        threading.Thread(target=self._run, args=(job, link, request, buffers), daemon=True,
                         name="jobmagics-link-%s" % job.name).start()
        return job

    def _agent(self):
        """A spare that waits for its job (``transport/spares.py``), connected already; else a
        process forked (or started) now, connected in the job's thread."""
        if self.python is None and spares.enabled():
            ready = spares.take(connected_agent, os.getcwd(), dict(os.environ))
            if ready is not None:
                return ready
        transport = LocalTransport(self.python)
        transport.open()
        return transport, AgentLink(transport)

    def _run(self, job, link, request, buffers):
        transport = link.transport
        try:
            try:
                if link.hello is None:  # a spare has greeted already
                    link.connect()
            except OSError:  # it died at once (no python there?): its exit says why
                raise AgentStartError("the job's process ended before it answered: %s"
                                      % transport.exit_reason()) from None
            link.start(job, request, buffers)
            link.serve()
        except Exception as exc:  # a broken agent fails its job, never the kernel
            if job.state != JobState.Stopping:  # a stop's own ending is not a failure
                job._fail(exc)
        finally:
            self._ended(job, link)

    def _ended(self, job, link):
        transport = link.transport
        end_of_process(job, transport)
        transport.reap(self.kill_grace)
        with self._lock:
            self._links.pop(job.instance_id, None)
        if self.python is None and spares.enabled():
            spares.fill(connected_agent, os.getcwd(), dict(os.environ))  # for the next job

    def stop(self, job):
        with self._lock:
            link = self._links.get(job.instance_id)
        if link is None or job.finished:
            return
        job._begin_stop()
        link.killing = True
        link.transport.kill(self.kill_grace)
        job.wait(self.kill_grace + 5)

    def kill_all(self, grace=EXIT_GRACE):
        """Kernel exit: every job process group terminated at once (the spares' too), and killed
        after one ``grace``."""
        with self._lock:
            pids = [link.transport.pid for link in self._links.values()]
        pids += spares.pids()
        spares.close()
        processes.end_trees([(pid, pid) for pid in pids if pid is not None], grace)


def end_of_process(job, transport):
    """The job's process has ended (or is ending): a job not finished by then is Stopped if it
    was being stopped, else Failed with how the process ended; its last text comes first."""
    if job.finished:
        return
    stopping = job.state == JobState.Stopping
    reason = None if stopping else transport.exit_reason()  # waits for the process to end
    transport.text.close()  # what it wrote before it ended comes first
    if stopping:
        job._set_state(JobState.Stopped, "stopped on request")
    else:
        job._record("error", {"ename": "JobProcessDied", "evalue": reason, "traceback": ""})
        job._set_state(JobState.Failed, reason)


def connected_agent(cwd=None, env=None, spare=spares.SPARE_NAME):
    """A job process forked ahead of its job (shown as ``spare`` until it comes), greeted."""
    transport = LocalTransport(cwd=cwd, env=env, spare=spare)
    transport.open()
    link = AgentLink(transport)
    try:
        link.connect()
    except BaseException:
        transport.close()
        transport.kill()
        transport.reap()
        raise
    return transport, link
