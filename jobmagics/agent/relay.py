"""Entry run over an SSH channel: connects the channel to a detached session's Unix socket.

Where the session can take them, the relay hands it the channel's own pipes
(``handover.py``): the session then talks to sshd directly and the relay
only waits for it to let go. Otherwise it copies bytes both ways. Either way,
when the SSH connection drops, the session simply sees its kernel leave: its
jobs go on, and what they produce waits for the next kernel.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import threading

from . import handover


def _pump_up(source, sock):
    while True:
        data = source.read1(65536)
        if not data:
            break
        sock.sendall(data)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _takes_pipes(socket_path):
    """Whether the session behind ``socket_path`` says (in its info file) that it takes the pipes."""
    try:
        with open(socket_path[: -len(".sock")] + ".json") as fh:
            return bool(json.load(fh).get("takes_pipes")) and handover.supported()
    except (OSError, ValueError):
        return False


def _read_ahead(source):
    """What the stdin buffer already holds past the settings line, taken out of it without blocking."""
    os.set_blocking(source.fileno(), False)
    try:
        early = source.peek(1 << 20) or b""  # buffered bytes, or one read that would not block
        return source.read(len(early)) if early else b""
    finally:
        os.set_blocking(source.fileno(), True)


def _hand_over(source, sock):
    handover.offer(sock, source.fileno(), sys.stdout.fileno(), _read_ahead(source))
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):  # only the session holds the pipes now: its close ends the channel
        os.dup2(devnull, fd)
    os.close(devnull)
    while sock.recv(4096):  # nothing comes; the end of the connection means the session let go
        pass


def _copy(source, sock):
    threading.Thread(target=_pump_up, args=(source, sock), daemon=True).start()
    out = sys.stdout.buffer.fileno()
    buffer = memoryview(bytearray(1 << 20))  # one buffer, big reads: a large result costs few system calls
    while True:
        n = sock.recv_into(buffer)
        if not n:
            break
        view = buffer[:n]
        while view:
            written = os.write(out, view)
            view = view[written:]


def main():
    source = sys.stdin.buffer  # the bootstrap read the bundle from it: the rest is the stream
    settings = json.loads(source.readline())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(settings["socket"])
    except OSError as exc:
        sys.exit("jobmagics: the session's socket cannot be reached: %s" % exc.strerror)
    if _takes_pipes(settings["socket"]):
        _hand_over(source, sock)
    else:
        _copy(source, sock)
