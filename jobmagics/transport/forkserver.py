"""The kernel's side of the warm fork server (``jobmagics/agent/forkserver.py``).

One server per kernel process, started at the first process job and kept
until the kernel ends (its end of the socket closes, and the server exits).
:func:`spawn` gives a :class:`ForkedProcess`, which looks enough like a
``subprocess.Popen`` (pid, pipes, ``wait``) for :class:`LocalTransport` to
treat both alike.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import threading

from ..errors import AgentStartError
from .bootstrap import agent_bundle, agent_command

MAX_MESSAGE = 1 << 20
START_TIMEOUT = 30.0
SOCKET_BUFFER = 4 << 20
#: The server's last argument: it names the process in ``ps`` (and lets tests tell it apart).
PROCESS_TAG = "jobmagics-fork-server"
#: Modules the server imports too when the kernel has them loaded: a notebook that plots starts
#: its jobs with pyplot imported (importing it costs a job about 0.3 s).
WARM_IF_LOADED = ("matplotlib.pyplot",)


def warm_modules():
    """The modules of WARM_IF_LOADED this kernel has imported."""
    return [name for name in WARM_IF_LOADED if name in sys.modules]


def available():
    """Forking needs a POSIX system; ``JOBMAGICS_FORK_SERVER=0`` turns it off (each job starts cold)."""
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and os.environ.get("JOBMAGICS_FORK_SERVER") != "0"


class ForkedProcess:
    """A job process forked by the server: the server reaps it and says how it ended."""

    def __init__(self, pid, protocol, stderr, spare=False):
        self.pid = pid
        self.spare = spare  # forked ahead of its job (spares.py)
        self.orphaned = False  # its server ended first: nobody will say how it ends
        self.returncode = None
        self._ended = threading.Event()
        self._protocol = protocol
        self.stdin = os.fdopen(os.dup(protocol.fileno()), "wb", buffering=0)
        self.stdout = os.fdopen(os.dup(protocol.fileno()), "rb", buffering=0)
        self.stderr = os.fdopen(stderr, "rb")

    def close_input(self):
        """What closing a pipe's write end does: the agent reads the end of its input."""
        _shut_and_close(self._protocol, socket.SHUT_WR)
        self.stdin.close()

    def _exited(self, code):
        self.returncode = code
        self._ended.set()

    def release(self):
        self._protocol.close()

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired("forked job process %d" % self.pid, timeout)
        return self.returncode


class ForkServer:
    """A running server: fork requests go out in order, a reader thread matches the answers."""

    def __init__(self):
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                agent_command(sys.executable, theirs.fileno(), *warm_modules(), PROCESS_TAG), stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(theirs.fileno(),),
                start_new_session=True)  # the kernel's interrupts are not for it
        finally:
            theirs.close()
        self.process.stdin.write(agent_bundle("forkserver"))
        self.process.stdin.close()
        self._request_lock = threading.Lock()
        self._answers = []  # [event, answer] per request, oldest first
        self._children = {}  # pid -> ForkedProcess still running
        self._early_exits = {}  # pid -> code, for a child that ended before its answer was handled
        self._lock = threading.Lock()
        self.alive = True
        self.end_reason = None
        threading.Thread(target=self._read, name="jobmagics-fork-server", daemon=True).start()

    @property
    def pid(self):
        return self.process.pid

    def spawn(self, cwd, env, text_fds, spare=None):
        """Fork a fresh agent process with the kernel's ``text_fds`` (``textpipe.py``), shown as
        ``spare`` until its job comes if given; raises AgentStartError when the server cannot."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for sock in (ours, theirs):  # big buffers pass in a few large copies (measured: 4x a pipe's speed)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        err_read, err_write = os.pipe()
        slot = [threading.Event(), None]
        try:
            with self._request_lock:  # answers come in request order
                with self._lock:
                    if not self.alive:
                        raise AgentStartError("the fork server has ended: %s" % self.end_reason)
                    self._answers.append(slot)
                socket.send_fds(self._control, [json.dumps({"cwd": cwd, "env": env, "spare": spare}).encode("utf-8")],
                                [theirs.fileno(), err_write, *text_fds])
            if not slot[0].wait(START_TIMEOUT):
                raise AgentStartError("the fork server did not answer within %d s" % START_TIMEOUT)
            if slot[1] is None:
                raise AgentStartError("the fork server ended: %s" % self.end_reason)
            if "error" in slot[1]:
                raise AgentStartError(slot[1]["error"])
        except (OSError, AgentStartError) as exc:
            ours.close()
            os.close(err_read)
            if isinstance(exc, OSError):
                raise AgentStartError("the fork server is gone: %s" % exc) from None
            raise
        finally:
            theirs.close()
            os.close(err_write)
        child = ForkedProcess(slot[1]["forked"], ours, err_read, spare is not None)
        with self._lock:
            code = self._early_exits.pop(child.pid, None)
            if code is None:
                self._children[child.pid] = child
        if code is not None:
            child._exited(code)
        return child

    def _read(self):
        try:
            while True:
                data = self._control.recv(MAX_MESSAGE)
                if not data:
                    break
                message = json.loads(data)
                if "exited" in message:
                    self._child_exited(message["exited"], message["code"])
                else:
                    with self._lock:
                        slot = self._answers.pop(0)
                    slot[1] = message
                    slot[0].set()
        except OSError:
            pass
        finally:
            self._server_ended()

    def _child_exited(self, pid, code):
        with self._lock:
            child = self._children.pop(pid, None)
            if child is None:
                self._early_exits[pid] = code
        if child is not None:
            child._exited(code)

    def _server_ended(self):
        reason = _exit_reason(self.process)
        self.process.stderr.close()  # read for the reason; a replaced server leaves nothing open
        self._control.close()
        with self._lock:
            self.alive = False
            self.end_reason = reason
            answers, self._answers = self._answers, []
            children, self._children = list(self._children.values()), {}
        for event, _answer in answers:
            event.set()  # their spawn sees no answer
        # Its children are nobody's now: their exit status is lost; they count as ended once gone.
        for child in children:
            child.orphaned = True
            if child.spare:
                child.close_input()  # a spare with no job yet ends now; its server's successor forks new ones
            threading.Thread(target=_await_orphan, args=(child,), daemon=True, name="jobmagics-orphan").start()

    def close(self):
        """End the server (running jobs keep their own processes; they end with their connections)."""
        _shut_and_close(self._control, socket.SHUT_RDWR)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _exit_reason(process):
    """How the server ended, with the last line it wrote to stderr (it writes nothing otherwise)."""
    from ..hosts import processes

    try:
        code = process.wait(5)
    except subprocess.TimeoutExpired:
        return "it closed its socket but still runs"
    lines = process.stderr.read().decode("utf-8", "replace").strip().splitlines()
    return processes.describe_returncode(code, subject="it") + (": " + lines[-1] if lines else "")


def _await_orphan(child):
    from ..hosts import processes

    processes.wait_ended(child.pid)
    child._exited(None)


_server = None
_server_lock = threading.Lock()


def spawn(cwd, env, text_fds, spare=None):
    """A fresh agent process from this kernel's fork server (started on first use; a spare is
    forked only by a server that runs: the next job starts a new one)."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive:
            if spare is not None:
                raise AgentStartError("no fork server runs now")
            _server = ForkServer()
        server = _server
    return server.spawn(cwd, env, text_fds, spare)


def _forget_in_child():
    # A fork of the kernel (multiprocessing, say) must not talk over its parent's socket, nor keep
    # the parent's server alive: it closes its copy (no shutdown: that would cut the parent's too).
    global _server, _server_lock
    if _server is not None:
        _server._control.close()
    _server, _server_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


@atexit.register
def shutdown():
    global _server
    with _server_lock:
        server, _server = _server, None
    if server is not None:
        server.close()


def _shut_and_close(sock, how):
    """Shut a socket down (the peer reads its end at once, whoever else holds it) and close it."""
    try:
        sock.shutdown(how)
    except OSError:
        pass  # the peer is gone already
    sock.close()
