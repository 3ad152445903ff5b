"""Detached local sessions: starting one, finding them, and the socket transport to one.

Each detached session is a process of this user that belongs to no kernel,
with three files in a private directory (0700): ``<id>.sock`` (0600),
``<id>.json`` (what it is) and ``<id>.token`` (0600, the secret a connection
must present). Only processes of the same user can reach them; nothing
listens on TCP.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid

from ..core import wire
from ..errors import UserInputError
from .base import Transport
from .bootstrap import agent_bundle, agent_command

START_TIMEOUT = 30.0


def runtime_dir():
    """The private directory of this user's detached sessions (created 0700; refused if not private)."""
    from ..agent.detached import default_dir

    try:
        return default_dir()
    except OSError as exc:
        raise UserInputError("%s: refusing to use it" % exc) from None


class SessionFiles:
    """Where one detached session lives."""

    def __init__(self, directory, session_id):
        self.dir = directory
        self.id = session_id

    @property
    def socket(self):
        return os.path.join(self.dir, self.id + ".sock")

    @property
    def info_path(self):
        return os.path.join(self.dir, self.id + ".json")

    @property
    def token_path(self):
        return os.path.join(self.dir, self.id + ".token")

    def info(self):
        with open(self.info_path) as fh:
            return json.load(fh)

    def token(self):
        with open(self.token_path) as fh:
            return fh.read().strip()


def start_detached(name, idle_timeout, python=None, cwd=None):
    """Start a detached session process; its files once it listens. Raises UserInputError if it cannot."""
    files = SessionFiles(runtime_dir(), uuid.uuid4().hex[:16])
    token = secrets.token_hex(32)
    fd = os.open(files.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    settings = {"dir": files.dir, "id": files.id, "name": name, "token": token, "idle_timeout": idle_timeout}
    # The process started here forks the session away and ends once it listens: nothing stays our child.
    starter = subprocess.Popen(agent_command(python or sys.executable), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd or os.getcwd(),
                               start_new_session=True)
    try:
        out, err = starter.communicate(agent_bundle("detached") + (json.dumps(settings) + "\n").encode(),
                                       timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        starter.kill()
        starter.communicate()
        out, err = b"", b"it did not start within %d s" % START_TIMEOUT
    if not out.startswith(b"READY"):
        for path in (files.token_path,):
            try:
                os.unlink(path)
            except OSError:
                pass
        detail = (out + err).decode("utf-8", "replace").strip().splitlines()
        raise UserInputError("the detached session did not start: %s" % (detail[-1] if detail else "no answer"))
    return files


def process_alive(pid):
    """True while process ``pid`` runs (an unreaped zombie does not count)."""
    try:
        os.kill(pid, 0)
    except (OSError, TypeError):
        return False
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc here: kill(0) said it exists


#: Seconds a session process that closed its connection gets to finish exiting: its sockets close
#: before it is gone, so the kernel can see the end of the connection while it still shows as running.
EXIT_GRACE = 2.0


def process_ended(pid, within=EXIT_GRACE):
    """Whether process ``pid`` has ended, or ends within ``within`` seconds."""
    deadline = time.monotonic() + within
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def find_sessions():
    """Every detached session of this user whose process still runs."""
    directory = runtime_dir()
    found = []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".json"):
            continue
        files = SessionFiles(directory, entry[:-5])
        try:
            info = files.info()
            alive = process_alive(info["pid"])
        except (OSError, ValueError, KeyError):
            alive = False
        if not alive:
            for path in (files.socket, files.info_path, files.token_path):  # ended without cleaning up
                try:
                    os.unlink(path)
                except OSError:
                    pass
            continue
        found.append((files, info))
    return found


class LocalSocketTransport(Transport):
    """A connection to a detached session's socket; the greeting proves the token."""

    location = "localhost"

    def __init__(self, files):
        self.files = files
        self.sock = None

    def open(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(self.files.socket)
        except OSError as exc:
            self.sock.close()
            raise UserInputError("cannot reach the detached session %s: %s" % (self.files.id, exc.strerror)) from None
        self.reader = self.sock.makefile("rb")
        self.writer = self.sock.makefile("wb", buffering=0)

    def greeting(self, intent, applied=None):
        return {"token": self.files.token(), "intent": intent, "applied": applied or {}}

    def send_bootstrap(self):
        pass  # the agent is already running there

    def renewed(self):
        """A new, unopened connection to the same session (after a disconnection)."""
        return LocalSocketTransport(self.files)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def kill(self, grace=0):
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked on it, whatever holds the fd
            except OSError:
                pass
            # The socket's descriptor is released with the last of its file objects: close them all.
            for stream in (self.reader, self.writer):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
            self.sock.close()

    def _read_exit_reason(self, timeout):
        return "the connection to the detached session ended"


def status(files):
    """A detached session's HELLO answer to a status query (with its availability)."""
    transport = LocalSocketTransport(files)
    transport.open()
    try:
        wire.FrameWriter(transport.writer).send(wire.HELLO, transport.greeting("status"))
        frame = wire.read_frame(transport.reader)
    finally:
        transport.kill()
    if frame is None or frame.kind != wire.HELLO:
        raise UserInputError((frame.control or {}).get("error", "no answer") if frame else "no answer")
    return frame.control
