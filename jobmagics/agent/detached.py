"""A detached session: an agent that belongs to no kernel, reached over a private Unix socket.

Started by a kernel with the usual bootstrap, it reads one line of settings,
leaves the kernel's process tree (fork, new session, fork) so that the
kernel's end does not end it, listens on ``<dir>/<id>.sock`` (the directory
0700, the socket 0600, no TCP anywhere) and tells the starting process it is
ready. A connection must first prove it knows the session's token. One
kernel is attached at a time (another sees ``Busy``); a status query is
answered to anyone with the token. When no kernel has been attached for the
idle timeout, the session stops its jobs and ends.
"""
from __future__ import annotations

import hmac
import json
import os
import signal
import socket
import sys
import threading
import time

from ..core import wire
from . import handover, signals
from .main import Agent, _terminated, prepare

#: Seconds a new connection waits for a kernel that has just disconnected to be let go before the
#: session is called Busy.
DETACH_GRACE = 5.0

def default_dir():
    """This user's private directory for detached sessions (created 0700; refused if not private)."""
    import stat
    import tempfile

    base = os.environ.get("XDG_RUNTIME_DIR")
    path = os.path.join(base, "jobmagics") if base and os.path.isdir(base) else \
        os.path.join(tempfile.gettempdir(), "jobmagics-%d" % os.getuid())
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError("%s is not a private directory of this user" % path)
    return path


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


class DetachedSession:
    def __init__(self, settings):
        self.settings = settings
        self.dir = settings.get("dir") or default_dir()
        self.id = settings["id"]
        self.socket_path = os.path.join(self.dir, self.id + ".sock")
        self.info_path = os.path.join(self.dir, self.id + ".json")
        self.token = settings["token"]
        self.idle_timeout = float(settings.get("idle_timeout") or 7200)
        self.agent = Agent(durable=True)
        self.agent.on_exit.append(self.remove_files)
        self._lock = threading.Lock()
        self._attached = False
        self._idle_since = time.monotonic()
        self._idle = threading.Condition(self._lock)

    # ----- files -------------------------------------------------------------------------
    def listen(self):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is created 0600: only this user may connect
        try:
            listener.bind(self.socket_path)
        finally:
            os.umask(old)
        listener.listen(8)
        info = {"id": self.id, "name": self.settings["name"], "pid": os.getpid(), "created": time.time(),
                "idle_timeout": self.idle_timeout, "python": sys.executable,
                "takes_pipes": handover.supported()}  # a relay may hand it the SSH channel's pipes
        write_private(self.info_path, json.dumps(info))
        token_path = os.path.join(self.dir, self.id + ".token")
        if not os.path.exists(token_path):  # a kernel on another computer sent it: keep it for reconnecting
            write_private(token_path, self.token)
        return listener

    def remove_files(self):
        for path in (self.socket_path, self.info_path, os.path.join(self.dir, self.id + ".token")):
            try:
                os.unlink(path)
            except OSError:
                pass

    # ----- connections -------------------------------------------------------------------
    def serve(self, listener):
        threading.Thread(target=self._watch_idle, name="jobmagics-idle", daemon=True).start()
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=self._connection, args=(connection,), daemon=True,
                             name="jobmagics-connection").start()

    def _connection(self, connection):
        streams = handover.Streams(connection)
        reader, writer = streams.reader, streams.writer
        try:
            greeting = wire.read_frame(reader)
        except (EOFError, OSError, wire.ProtocolError):
            greeting = None
        request = (greeting.control or {}) if greeting is not None and greeting.kind == wire.HELLO else {}
        if not hmac.compare_digest(str(request.get("token", "")).encode(), self.token.encode()):
            self._refuse(writer, "wrong token: this session belongs to someone else", streams)
            return
        if request.get("intent") == "status":
            wire.FrameWriter(writer).send(wire.HELLO, dict(self.agent.hello(), availability=self.availability()))
            streams.close()
            return
        with self._lock:
            # A kernel that has just disconnected may not be let go yet (its connection's thread is
            # finishing): wait for that, briefly, before calling the session Busy.
            self._idle.wait_for(lambda: not self._attached, timeout=DETACH_GRACE)
            busy, self._attached = self._attached, True
        if busy:
            self._refuse(writer, "Busy: another kernel is connected to this session", streams)
            return
        ending = None
        try:
            for key, seq in (request.get("acked") or {}).items():
                self.agent.acknowledge(int(key), seq)  # received while it was away
            self.agent.attach(writer, {int(k): v for k, v in (request.get("applied") or {}).items()})
            ending = self.agent.serve_frames(reader)
        finally:
            if ending == wire.CLOSE:
                self.agent.finish(kernel_gone=True)  # asked to end: stop the jobs, keep nothing
            self.agent.detach()
            with self._lock:
                self._attached = False
                self._idle_since = time.monotonic()
                self._idle.notify_all()
            streams.close()

    def _refuse(self, writer, message, streams):
        try:
            wire.FrameWriter(writer).send(wire.ERROR, {"error": message})
        except OSError:
            pass
        streams.close()

    def availability(self):
        return "Busy" if self._attached else "Available"

    def _watch_idle(self):
        with self._lock:
            while True:
                left = self._idle_since + self.idle_timeout - time.monotonic()
                if not self._attached and left <= 0:
                    break
                self._idle.wait(left if not self._attached else None)
        self.agent.finish(kernel_gone=True)  # abandoned: stop the jobs and end


def main():
    settings = json.loads(sys.stdin.buffer.readline())
    ready_read, ready_write = os.pipe()
    if os.fork() > 0:  # the process the kernel started: pass on the daemon's word, then end
        os.close(ready_write)
        sys.stdout.write(os.read(ready_read, 4096).decode() or "FAILED\n")
        sys.stdout.flush()
        os._exit(0)
    os.close(ready_read)
    os.setsid()  # a session of its own: the kernel's end, its signals and its terminal are not ours
    if os.fork() > 0:
        os._exit(0)
    os.setpgid(0, 0)  # lead a process group: when the session ends, so does all its jobs started
    signals.on_signal(signal.SIGTERM, _terminated)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        session = DetachedSession(settings)
        listener = session.listen()
    except OSError as exc:
        os.write(ready_write, ("FAILED %s\n" % exc).encode())
        os._exit(1)
    prepare(session.agent)
    # Terminated: stop the jobs and remove the session's files, as at any other end.
    signals.on_signal(signal.SIGTERM, lambda: session.agent.finish(kernel_gone=True))
    os.write(ready_write, ("READY %d %s\n" % (os.getpid(), session.dir)).encode())
    os.close(ready_write)
    session.serve(listener)
