"""The agent process: hosts jobs for a kernel at the other end of a frame stream.

Started by a transport with the protocol on its stdin/stdout. It moves the
protocol to private descriptors and points fds 0/1/2 at /dev/null and two
pipes, so output written below Python (C code, child processes) is captured
as the job's stdout/stderr instead of corrupting the protocol.
"""
from __future__ import annotations

import importlib
import os
import platform
import select
import signal
import socket
import sys
import threading

from ..core import context, group, rich, serialize, shim, textpipe, tqdm_hook, wire
from ..core.errors import UserInputError
from ..core.job import Job
from ..core.registry import JobRegistry
from ..core.runner import Work
from ..core.states import JobState
from ..core.threadhost import ThreadHost
from . import jobservice, procname, signals
from .outbox import Outbox


def _has_dill():
    try:
        import dill  # noqa: F401
    except ImportError:
        return False
    return True


class FdCapture:
    """Fds 1 and 2 as pipes; what arrives is handed to ``owner()``'s job as stdout/stderr."""

    def __init__(self, owner):
        self._owner = owner
        self._lock = threading.Lock()
        self._pipes = {}
        for fd, stream in ((1, "stdout"), (2, "stderr")):
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            os.set_blocking(read_end, False)
            self._pipes[read_end] = stream
        threading.Thread(target=self._run, name="jobmagics-fd-capture", daemon=True).start()

    def _run(self):
        while True:
            ready, _, _ = select.select(list(self._pipes), [], [])
            self._read(ready)

    def _read(self, fds):
        with self._lock:
            for fd in fds:
                data, _ended = textpipe.read_available(fd)
                if data:
                    self._owner(self._pipes[fd], data.decode("utf-8", "replace"))

    def drain(self):
        """Deliver whatever the pipes hold right now."""
        _flush_python_streams()
        self._read(list(self._pipes))


def _flush_python_streams():
    """Text other threads left in sys.stdout/sys.stderr's buffers goes down to fds 1 and 2."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.target.flush() if hasattr(stream, "target") else stream.flush()
        except Exception:
            pass


class Agent:
    """Hosts jobs for a kernel: the one at the other end of stdin/stdout, or (``durable``, a
    detached session) whichever kernel is attached at the moment, keeping what it missed."""

    def __init__(self, proto_in=None, proto_out=None, durable=False):
        self.reader = proto_in
        self.writer = wire.FrameWriter(proto_out) if proto_out is not None else None
        self.durable = durable
        self.outbox = Outbox(self.writer, durable=durable)
        self.registry = JobRegistry()  # jobs kept here (results stay on this computer)
        self.forwarded = JobRegistry()  # the kernel's jobs: their records go to it as they come
        # A session outlives its jobs: each owns the processes it starts. A process job's are its group.
        self.host = ThreadHost(sink_for=self._sink_for, before_finish=self._before_finish, own_children=durable)
        self.service = jobservice.JobService(self.registry, self.host)
        jobservice.bind(self.service)
        self.kernel_ids = {}  # agent job -> the kernel's id for it (frames carry the kernel's)
        self.exit_when_done = False
        self.entered_namespace = {"__name__": "__main__"}
        self.capture = None  # FdCapture, where this process reads its own fds 1 and 2
        self.text_pipes = {}  # or: fds 1 and 2 are the kernel's pipes, and these take the job's text
        self._text_lock = threading.Lock()  # bytes in the pipes in the order of their placeholders
        self.on_exit = []  # called first when the agent ends (a detached session removes its files)

    def hello(self):
        return {"protocol": wire.PROTOCOL_VERSION, "pid": os.getpid(), "python": platform.python_version(),
                "executable": sys.executable, "hostname": socket.gethostname(), "has_dill": _has_dill(),
                "durable": self.durable, "jobs": [self._job_info(j) for j in self.forwarded.jobs()]}

    def _job_info(self, job):
        return {"key": self.kernel_ids[job.instance_id], "name": job.name, "command": job.command,
                "job_type": job.job_type, "state": str(job.state), "reason": job.reason}

    def _sink_for(self, job):
        if job.instance_id not in self.kernel_ids:
            return job._record  # a job kept here: its output waits for a receive
        kernel_id = self.kernel_ids[job.instance_id]
        if not self.text_pipes:
            return lambda stream, data: self.outbox.record(kernel_id, stream, data)

        def sink(stream, data):
            if stream not in textpipe.STREAMS:
                return self.outbox.record(kernel_id, stream, data)
            data = textpipe.encode(data)
            if not self.text_pipes:  # a child the job forked (multiprocessing): no outbox runs here
                return textpipe.write_all(1 if stream == "stdout" else 2, data)  # the kernel's pipes too
            with self._text_lock:  # the text is in the kernel's pipe before print returns
                self.outbox.record(kernel_id, stream, len(data), wait=False)  # a placeholder: its size
                textpipe.write_all(self.text_pipes[stream], data)
            self.outbox.wait_for_room()

        return sink

    def _fd_owner(self, stream, text):
        running = [j for j in self.forwarded.jobs() if not j.finished]
        if running:
            self.outbox.record(self.kernel_ids[running[-1].instance_id], stream, text)

    def start(self, frame):
        spec = frame.control
        _named_for_work()
        self.exit_when_done = bool(spec.get("exit_when_done"))  # also when loading the work fails below
        # An entered session's cells share one namespace, as a console's lines do.
        work = jobservice.work_from(spec, frame.buffers, self.entered_namespace if spec.get("entered") else None)
        job = Job(spec.get("command", ""), spec.get("job_type", "BackgroundJob"), name=spec.get("name"))
        self.kernel_ids[job.instance_id] = frame.job
        job.add_state_callback(self._on_state)
        self.forwarded.add(job)
        self.host.start(job, work)

    def rehearse(self):
        """A trial job, kept here, before the real one comes (a process forked ahead of its job):
        the code a job runs through is touched once, so the pages it writes are copied from the
        fork server and a worker thread waits, off the job's path (measured: about 1.5 ms a job)."""
        job = Job("None", "BackgroundJob")
        self.host.start(job, Work(code="None"))
        job.wait()
        serialize.dumps(job.receive())

    def _before_finish(self, job):
        # While the job still runs, so the output is still its own.
        if self.capture is not None:
            self.capture.drain()
        else:
            _flush_python_streams()

    def _on_state(self, job, old, new):
        key = self.kernel_ids[job.instance_id]
        self.outbox.state(key, new, job.reason)  # forwarded jobs only
        if new.finished and (not self.durable or (self.writer is not None and self.outbox.unacknowledged(key) == 0)):
            self.forwarded.discard(job)  # its records and final state went to the kernel: nothing is kept
        if new.finished and self.exit_when_done:
            threading.Thread(target=self.finish, name="jobmagics-agent-exit", daemon=True).start()

    def call(self, frame):
        """Run one operation on this agent's registry and reply (CALL -> REPLY)."""
        request = frame.control
        try:
            result, buffers = self.service.handle(request["op"], request.get("args") or {}, frame.buffers)
            reply = {"id": request["id"], "ok": True, "result": result}
        except Exception as exc:
            reply, buffers = {"id": request["id"], "ok": False, "error": str(exc),
                              "user_error": isinstance(exc, (UserInputError, LookupError, ValueError))}, []
        self.outbox.reply(reply, buffers)

    def stop(self, frame):
        for job in self.forwarded.jobs():
            if self.kernel_ids.get(job.instance_id) == frame.job:
                threading.Thread(target=job.stop, daemon=True).start()

    def serve(self):
        """The kernel on stdin/stdout: serve it until it closes; then the agent ends."""
        self.writer.send(wire.HELLO, self.hello())
        ending = self.serve_frames(self.reader)
        self.finish(kernel_gone=ending != wire.CLOSE)

    def serve_frames(self, reader):
        """Handle frames until the stream ends (None) or the kernel says CLOSE or DETACH (that kind)."""
        while True:
            try:
                frame = wire.read_frame(reader)
            except (EOFError, OSError, wire.ProtocolError):
                frame = None
            if frame is None or frame.kind in (wire.CLOSE, wire.DETACH):
                return None if frame is None else frame.kind
            try:
                if frame.kind == wire.ACK:
                    self.acknowledge(frame.job, frame.control["seq"])
                elif frame.kind == wire.INSTALL:
                    install_sources(frame.control)
                elif frame.kind == wire.START:
                    self.start(frame)
                elif frame.kind == wire.STOP:
                    self.stop(frame)
                elif frame.kind == wire.CALL:
                    threading.Thread(target=self.call, args=(frame,), daemon=True,
                                     name="jobmagics-call").start()  # a wait_job may block
            except Exception as exc:  # a bad request fails that request, not the agent
                self.outbox.record(frame.job, "error", _error_record(exc))
                self.outbox.state(frame.job, JobState.Failed, "the agent could not start the job: %s" % exc)
                if frame.kind == wire.START and self.exit_when_done:
                    self.finish()  # a process of one job: it has nothing left to do

    def acknowledge(self, key, seq):
        """The kernel's user received ``key``'s records up to ``seq``: a finished job may now go."""
        self.outbox.ack(key, seq)
        for job in self.forwarded.jobs():
            if self.kernel_ids.get(job.instance_id) == key and job.finished and self.outbox.unacknowledged(key) == 0:
                self.forwarded.discard(job)

    def attach(self, proto_out, applied):
        """A kernel attached (a detached session): tell it the jobs, then send what it has not applied."""
        self.writer = wire.FrameWriter(proto_out)
        self.writer.send(wire.HELLO, self.hello())
        self.outbox.attach(self.writer, applied)
        for job in self.forwarded.jobs():
            key = self.kernel_ids[job.instance_id]
            self.outbox.state(key, job.state, job.reason)
            if job.finished and self.outbox.unacknowledged(key) == 0:
                self.forwarded.discard(job)  # its final state is on its way: nothing else to keep

    def detach(self):
        self.outbox.detach()
        self.writer = None

    def finish(self, kernel_gone=False):
        """Stop what still runs, send what is queued, end the process group, exit."""
        if not _ending.acquire(blocking=False):
            threading.Event().wait()  # a SIGTERM is ending this process already (signals.die_of)
        for hook in self.on_exit:
            hook()
        if kernel_gone:
            self.forwarded.shutdown()
            self.registry.shutdown()
        else:
            self.outbox.flush()  # everything the job produced goes out before the goodbye
            try:
                self.writer.send(wire.BYE, {})
            except OSError:
                pass
        # Without a kernel, SIGKILL after the grace is this process's to do; a kernel that got
        # the goodbye kills what is left itself, so an ordinary end costs no look at /proc.
        group.end_own_group(group.KILL_GRACE if kernel_gone or self.durable else None)
        os._exit(0)


def install_sources(bundle):
    """Make more modules importable from source sent by the kernel (dill, where it is missing)."""
    for finder in sys.meta_path:
        if getattr(finder, "jobmagics_sources", False):
            finder.add(bundle["modules"], bundle["packages"])
            importlib.invalidate_caches()
            return
    raise RuntimeError("this agent was not started from sources; cannot add modules")


_usual_name = []  # the name a process forked ahead of its job shows again once its job comes


def usual_name_after_waiting(name):
    _usual_name.append(name)


def _named_for_work():
    if _usual_name:
        procname.rename(_usual_name.pop())


def _error_record(exc):
    from ..core.runner import describe_exception
    return describe_exception(exc)


_ending = threading.Lock()  # held by whoever ends this process: finish() or a SIGTERM


def _terminated(agent=None):
    """SIGTERM from outside (the watcher thread runs this): end the group, then die of the signal.

    What the jobs started must not outlive the agent: whoever sent the signal may be gone before it
    could end them. Nothing more is sent (a job that ends because its children died was stopped,
    not completed). SIGTERMs that come while the process is ending change nothing.
    """
    if _ending.acquire(blocking=False):
        if agent is not None:
            agent.outbox.close(wait=False)
        group.end_own_group()
        signals.die_of(signal.SIGTERM)


def take_over_descriptors():
    """Protocol streams on private fds; fd 0 from /dev/null; fds 1/2 ready for capture."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return proto_in, proto_out


def prepare(agent, text_fds=None):
    """Job output captured down to the file descriptors, and the in-job helpers installed.

    ``text_fds`` (a process job's): the kernel's pipes for fds 1 and 2 and for the job's stdout
    and stderr text (``textpipe.py``), which outlive this process; otherwise it reads its own
    fds 1 and 2.
    """
    if text_fds is None:
        agent.capture = FdCapture(agent._fd_owner)
    else:
        _use_text_pipes(agent, *text_fds)
    sys.stdin = open(os.devnull)
    sys.stdout = os.fdopen(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    os.environ["MPLBACKEND"] = "agg"  # jobs never open windows (and no notebook backend is here)
    context.install_routing()
    rich.install_display_hook()
    tqdm_hook.install()
    shim.install()


def _use_text_pipes(agent, out, err, text_out, text_err):
    for fd, target in ((out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    agent.text_pipes = dict(zip(textpipe.STREAMS, (text_out, text_err)))
    for fd in agent.text_pipes.values():
        os.set_inheritable(fd, False)  # the job's children write to fds 1 and 2 only
    # Nor may a child forked without exec hold them: the kernel reads them to their end when this
    # process died, and that end comes only when no one else has them open.
    os.register_at_fork(after_in_child=lambda: _close_text_pipes(agent))


def _close_text_pipes(agent):
    pipes, agent.text_pipes = agent.text_pipes, {}
    for fd in pipes.values():
        os.close(fd)


def serve_connection(connection):
    """Serve one kernel over ``connection`` (a connected socket) in the calling thread, until it leaves.

    An agent inside another program's process, as the unit tests run one at the end of a socket
    pair: none of :func:`main`'s process-wide set-up (descriptors, signal handlers, output
    capture, the stand-in ``jobmagics``), and its end stops its jobs and returns instead of
    ending the process.
    """
    with connection.makefile("rb", buffering=0) as proto_in, connection.makefile("wb", buffering=0) as proto_out:
        agent = Agent(proto_in, proto_out)
        ending = None
        try:
            agent.writer.send(wire.HELLO, agent.hello())
            ending = agent.serve_frames(proto_in)
        except OSError:
            pass  # the kernel went away before the greeting
        finally:
            agent.forwarded.shutdown()
            agent.registry.shutdown()
            agent.outbox.close()  # what is queued goes first, if the kernel still listens
            if ending == wire.CLOSE:
                try:
                    agent.writer.send(wire.BYE, {})
                except OSError:
                    pass
            connection.close()


def main():
    signals.on_signal(signal.SIGTERM, _terminated)  # handlers can only be set from the main thread
    if os.getpgrp() != os.getpid():
        try:
            os.setsid()  # lead a process group of our own: ending the agent ends what its jobs started
        except OSError:
            pass
    # A process job's starter passes the kernel's text pipes (``textpipe.py``) as arguments.
    text_fds = tuple(int(arg) for arg in sys.argv[1:5]) if len(sys.argv) == 5 else None
    del sys.argv[1:]
    proto_in, proto_out = take_over_descriptors()
    agent = Agent(proto_in, proto_out)
    signals.on_signal(signal.SIGTERM, lambda: _terminated(agent))
    prepare(agent, text_fds)
    if _usual_name:  # forked ahead of its job
        agent.rehearse()
    agent.serve()


if __name__ == "__main__":
    main()
