"""Sessions over an in-memory transport: a socket pair, the agent at its far end in a thread.

No SSH, no subprocess, no network: the kernel's side (Session, AgentLink,
SessionJobs, FanOut) talks to a real agent serving the other end of a
``socket.socketpair()``. The agent is the shipped copy: its modules are loaded
from the very bundle the bootstrap sends (``agent_bundle()``), under the
private package name they carry there, so what is tested is what ships, and
the agent's process-wide state (its verb store, its module globals) is its
own, apart from the installed ``jobmagics`` that the kernel's side uses. Its
entry's ``serve_connection`` serves one socket without the agent process's
set-up (no descriptors taken over, no signal handlers, no stand-in
``jobmagics`` module).

Job code running in such an agent is in this process: it may ``import
inmemory_session`` and hold at a :class:`Gate` until the test lets it go.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.abc
import importlib.util
import itertools
import json
import socket
import sys
import threading
import zlib

from jobmagics.sessions import remote
from jobmagics.sessions.session import Session
from jobmagics.transport.base import Transport
from jobmagics.transport.bootstrap import agent_bundle
from jobmagics.transport.source_import import SourceFinder

#: Seconds anything in these tests may wait for an event before the test fails.
WAIT = 30.0

TRANSPORT_NAME = "InMemory"


def read_bundle(data):
    """The bundle the bootstrap reads: ``{"modules", "packages", "entry"}``."""
    head, blob = data.split(b"\n", 1)
    assert int(head) == len(blob)
    return json.loads(zlib.decompress(blob).decode("utf-8"))


@functools.lru_cache(maxsize=None)
def shipped_agent():
    """The agent's entry module as it ships, loaded once in this process under its private name.

    The finder answers only to the bundle's own (private) module names: nothing else changes.
    """
    bundle = read_bundle(agent_bundle())
    if bundle["entry"] not in sys.modules:
        sys.meta_path.append(SourceFinder(bundle["modules"], bundle["packages"]))
    return importlib.import_module(bundle["entry"])


class InMemoryTransport(Transport):
    """One end of a socket pair for the kernel; the shipped agent serves the other in a thread."""

    def __init__(self, location):
        self.location = location
        self.sock, self.agent_sock = socket.socketpair()
        self.agent_thread = threading.Thread(target=shipped_agent().serve_connection, args=(self.agent_sock,),
                                             name="jobmagics-inmemory-agent-%s" % location, daemon=True)

    def open(self):
        self.agent_thread.start()
        self.reader = self.sock.makefile("rb")
        self.writer = self.sock.makefile("wb", buffering=0)

    def send_bootstrap(self):
        pass  # the agent's modules are loaded in this process already

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)  # EOF: the agent stops its jobs and lets go

    def kill(self, grace=0):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        for stream in (self.reader, self.writer):
            if stream is not None:
                stream.close()
        self.sock.close()

    def end_far_side(self):
        """The agent's end of the connection goes away, as when its computer or process is lost."""
        self.agent_sock.shutdown(socket.SHUT_RDWR)

    def _read_exit_reason(self, timeout):
        return "the in-memory agent ended"


@contextlib.contextmanager
def in_memory_session(location):
    """An opened session (registered in this kernel's sessions) on an in-memory agent; closed after.

    On leaving, the agent's thread must have ended.
    """
    transport = InMemoryTransport(location)
    sessions = remote.sessions()
    session = Session(transport, sessions.next_id(), name=location, transport=TRANSPORT_NAME)
    try:
        session.open()
        session.start_reading()
        sessions.add(session)
        yield session
    finally:
        sessions.remove(session)
        if transport.agent_thread.ident is None:
            transport.agent_sock.close()  # never served
        transport.agent_thread.join(WAIT)
        assert not transport.agent_thread.is_alive(), "the in-memory agent did not end"


def state_reached(job, *states):
    """An Event set once ``job`` is in one of ``states`` (now, or after a later change)."""
    reached = threading.Event()

    def check(*_):
        if job.state in states:
            reached.set()

    job.add_state_callback(check)
    check()
    return reached


def session_state_reached(session, state):
    """An Event set once ``session`` is in ``state`` (now, or after a later change)."""
    reached = threading.Event()

    def check(*_):
        if session.state == state:
            reached.set()

    session.add_state_callback(check)
    check()
    return reached


_gate_ids = itertools.count(1)
GATES = {}


class Gate:
    """Job code holds here (``inmemory_session.GATES[n].hold()``) until the test lets one job through.

    ``arrived`` counts the jobs that reached the gate; a job asked to stop leaves it at once.
    """

    def __init__(self):
        self.id = next(_gate_ids)
        self._passes = threading.Semaphore(0)
        self._arrivals = threading.Semaphore(0)
        self._passed = itertools.count(1)
        GATES[self.id] = self

    @property
    def code(self):
        """Job code that holds at this gate, then prints which job through the gate it was (``_pass``)."""
        return "import inmemory_session\n_pass = inmemory_session.GATES[%d].hold()\nprint('pass', _pass)\n" % self.id

    def hold(self):
        from jobmagics import stop_requested  # the job contexts are shared by both copies of the core

        self._arrivals.release()
        while not self._passes.acquire(timeout=0.02):  # short: a stop is noticed soon
            if stop_requested():
                return None
        return next(self._passed)

    def arrived(self, timeout=WAIT):
        """Block until one more job reached the gate (True), or ``timeout`` passed."""
        return self._arrivals.acquire(timeout=timeout)

    def let_through(self, count=1):
        for _ in range(count):
            self._passes.release()

    def close(self):
        GATES.pop(self.id, None)
