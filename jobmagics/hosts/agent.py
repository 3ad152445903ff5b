"""The kernel's end of one agent: handshake, requests, and frames turned into job events."""
from __future__ import annotations

import itertools
import threading

from ..core import serialize, wire
from ..core.states import FINISHED, JobState
from ..errors import AgentStartError, LinkEndedError, ProtocolMismatchError, RemoteCallError


class AgentLink:
    """Drives one agent over an opened transport; jobs are addressed by their kernel ids.

    One reader thread applies the agent's frames to the kernel's Job objects:
    records to their streams, state changes to their state machine.
    """

    def __init__(self, transport, on_end=None):
        self.transport = transport
        self.on_end = on_end  # called once the stream ended, from the reader thread
        # Set when the kernel kills the agent's process to stop its job: the job's code may then
        # end because its children died, and its Completed is a consequence of the stop, not news.
        self.killing = False
        self.writer = None  # once the transport is open
        self.jobs = {}  # this link's id for a job -> Job (frames carry it; registry ids may not exist)
        self._link_ids = {}  # job instance id -> this link's id for it
        self._next_id = itertools.count(1)
        self._calls = {}  # call id -> [event, reply frame]
        self.applied = {}  # link id -> the last agent sequence number applied to its job
        self.pending_acks = {}  # link id -> sequence number received but not yet told to the agent
        self._call_ids = itertools.count(1)
        self.hello = None
        self.ended = threading.Event()
        self.bye = False

    def connect(self, greeting=None):
        """Bring the agent up over the opened transport: send it (if it is not running there already),
        shake hands, and give a bare Python dill. The HELLO comes back; errors raise here.

        The one start-up of every agent: a process job's, a session's, a detached session's.
        """
        self.transport.send_bootstrap()
        hello = self.handshake(greeting)
        if not hello.get("has_dill"):
            self.install_dill()  # a bare Python gets dill from here
        return hello

    def handshake(self, greeting=None):
        """Read the agent's HELLO (after sending ``greeting``, for an agent that waits to be greeted)."""
        self.writer = wire.FrameWriter(self.transport.writer)
        if greeting is not None:
            self.writer.send(wire.HELLO, dict(greeting, acked=self.pending_acks))
        frame = wire.read_frame(self.transport.reader)
        if frame is not None and frame.kind == wire.ERROR:
            raise AgentStartError((frame.control or {}).get("error", "the agent refused the connection"))
        if frame is None or frame.kind != wire.HELLO:
            raise AgentStartError("the job process ended before it answered: %s"
                                  % self.transport.exit_reason(5.0))
        hello = frame.control or {}
        if hello.get("protocol") != wire.PROTOCOL_VERSION:
            raise ProtocolMismatchError("the agent speaks protocol %r, this jobmagics speaks %d"
                                        % (hello.get("protocol"), wire.PROTOCOL_VERSION))
        self.hello = hello
        return hello

    def reset(self, transport):
        """Use a new connection to the same agent (a reconnection); jobs and sequence numbers carry on."""
        self.transport = transport
        self.ended = threading.Event()
        self.bye = False

    def adopt(self, key, job):
        """Take on a job the agent already runs (another kernel started it): records for ``key`` go to ``job``."""
        self.jobs[key] = job
        self._link_ids[job.instance_id] = key
        self._next_id = itertools.count(max([key] + list(self.jobs)) + 1)

    def acknowledge(self, job, seq):
        """Tell the agent the user received ``job``'s records up to ``seq`` (later, if not connected)."""
        key = self._link_ids.get(job.instance_id)
        if key is None:
            return
        self.pending_acks[key] = max(seq, self.pending_acks.get(key, 0))
        if not self.ended.is_set() and self.writer is not None:
            try:
                self.writer.send(wire.ACK, {"seq": seq}, job=key)
                self.pending_acks.pop(key, None)
            except OSError:
                pass

    def install_dill(self):
        """Send dill's source to an agent whose Python lacks it (notebook functions need it)."""
        from ..transport.bootstrap import dill_sources

        sources = dill_sources()
        if sources is not None:
            self.writer.send(wire.INSTALL, sources)
            self.hello["has_dill"] = True

    def start(self, job, request, buffers):
        link_id = next(self._next_id)
        self._link_ids[job.instance_id] = link_id
        self.jobs[link_id] = job
        self.writer.send(wire.START, request, job=link_id, buffers=buffers)

    def call(self, op, args, buffers=(), timeout=None):
        """Run ``op`` on the agent's own registry; (result, buffers) of its reply.

        Raises RemoteCallError with the agent's message, or LinkEndedError if the
        connection ended first.
        """
        call_id = next(self._call_ids)
        slot = self._calls[call_id] = [threading.Event(), None]
        try:
            if self.ended.is_set():  # the reader is gone (it releases the calls it saw): none would answer
                raise LinkEndedError("the connection ended before the agent answered")
            self.writer.send(wire.CALL, {"id": call_id, "op": op, "args": args}, buffers=buffers)
            if not slot[0].wait(timeout):
                raise TimeoutError("the agent did not answer %s within %s s" % (op, timeout))
        finally:
            self._calls.pop(call_id, None)
        reply = slot[1]
        if reply is None:
            raise LinkEndedError("the connection ended before the agent answered")
        if not reply.control.get("ok"):
            raise RemoteCallError(reply.control.get("error", "the agent refused %s" % op),
                                  reply.control.get("user_error", False))
        return reply.control.get("result"), reply.buffers

    def stop(self, job):
        self.writer.send(wire.STOP, {}, job=self._link_ids[job.instance_id])

    def serve(self):
        """Apply frames until the agent says goodbye or the stream ends."""
        transport, ended = self.transport, self.ended  # a reconnection replaces both: this loop keeps its own
        try:
            while True:
                try:
                    frame = wire.read_frame(transport.reader)
                except (EOFError, OSError, ValueError, wire.ProtocolError):
                    frame = None
                if frame is None:
                    return
                if frame.kind == wire.BYE:
                    self.bye = True
                    return
                if frame.kind == wire.REPLY:
                    slot = self._calls.get(frame.control.get("id"))
                    if slot is not None:
                        slot[1] = frame
                        slot[0].set()
                    continue
                job = self.jobs.get(frame.job)
                if job is None:
                    continue
                with transport.ordered():
                    if frame.kind == wire.RECORDS:
                        self._apply_records(job, frame)
                    elif frame.kind == wire.STATE:
                        if self.killing and JobState(frame.control["state"]) in FINISHED:
                            continue  # the host finishes the job as Stopped when the process has ended
                        job._set_state_if_legal(frame.control["state"], frame.control.get("reason"))
        finally:
            if self.on_end is not None and self.transport is transport:
                self.on_end(self)  # before `ended` is set: who waits on it sees the consequences
            ended.set()
            for event, _reply in list(self._calls.values()):
                event.set()  # callers see the link ended

    def _apply_records(self, job, frame):
        computer = None if job.location == "localhost" else job.location
        link_id = frame.job
        for stream, data, stamp, seq in frame.control:
            if seq <= self.applied.get(link_id, 0):
                continue  # sent again after a reconnection, and already here: exactly once
            self.applied[link_id] = seq
            if stream in ("stdout", "stderr") and type(data) is int:  # a placeholder: its size in a text pipe
                data = self.transport.text.take(stream, data)
            elif stream in serialize.OBJECT_STREAMS:
                data = _decode_object(data, frame.buffers)
                if stream == "export" and isinstance(data, serialize.Unshippable):
                    stream, data = "warning", "--export: a value could not be loaded here: %s\n" % data.reason
            elif stream == "unshippable":
                data, stream = serialize.Unshippable(*data), "output"
                job._record("warning", "an output object of type %s could not be sent back: %s\n"
                            % (data.type_name, data.reason), stamp, computer)
            job._record(stream, data, stamp, computer, origin=seq)


def _decode_object(description, buffers):
    try:
        return serialize.loads(wire.payload_from_control(description, buffers))
    except Exception as exc:
        return serialize.Unshippable("?", "<could not be loaded here>", str(exc))
