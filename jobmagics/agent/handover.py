"""Handing an SSH channel's pipes from the relay to the session, so the session talks over them itself.

A relay (``relay.py``) started over SSH connects to the session's Unix socket.
Copying every byte through the relay costs a process hop and two copies, which
a large result feels. Where both sides can, the relay instead sends its stdin
and stdout (the pipes sshd reads and writes) over the socket; the session then
reads frames from sshd and writes them to sshd directly, and the relay only
waits for the session to close the connection before it exits.

On the socket the relay sends ``OFFER``, the length of what it had already read
past its settings line (usually the kernel's greeting), and those bytes; the
two descriptors ride on the first byte. Anything else on a new connection (a
kernel on this computer, an older relay) starts with a frame's magic instead.
"""
from __future__ import annotations

import os
import socket
import struct

OFFER = b"FD"  # never the start of a frame (wire.MAGIC is b"JM")
_LENGTH = struct.Struct("!I")


def supported():
    return hasattr(socket, "send_fds") and hasattr(socket, "recv_fds")


def offer(sock, read_fd, write_fd, early):
    """Relay's side: give ``read_fd``/``write_fd`` and the bytes ``early`` to the session on ``sock``."""
    socket.send_fds(sock, [OFFER + _LENGTH.pack(len(early)) + early], [read_fd, write_fd])


class _Prefixed:
    """A reader that gives ``prefix`` first, then reads ``stream``."""

    def __init__(self, prefix, stream):
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readinto(self, buffer):
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._stream.readinto(buffer)


def _recv_exact(connection, size):
    data = b""
    while len(data) < size:
        part = connection.recv(size - len(data))
        if not part:
            break
        data += part
    return data


class Streams:
    """A connection's reader and writer, and how to end them so the kernel sees the end at once."""

    def __init__(self, connection):
        self.connection = connection
        self.pipes = []
        first, fds = b"", []
        if supported():
            try:
                first, fds, _flags, _addr = socket.recv_fds(connection, len(OFFER), 2)
            except OSError:
                pass
        if first == OFFER and len(fds) == 2:
            head = _recv_exact(connection, _LENGTH.size)
            early = _recv_exact(connection, _LENGTH.unpack(head)[0]) if len(head) == _LENGTH.size else b""
            self.pipes = [os.fdopen(fds[0], "rb"), os.fdopen(fds[1], "wb", buffering=0)]
            self.reader = _Prefixed(early, self.pipes[0])
            self.writer = self.pipes[1]
            return
        for fd in fds:
            os.close(fd)
        self.reader = _Prefixed(first, connection.makefile("rb"))
        self.writer = connection.makefile("wb", buffering=0)

    def close(self):
        for pipe in self.pipes:  # closing the pipe to sshd ends the channel's output: the kernel sees EOF
            try:
                pipe.close()
            except OSError:
                pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)  # the kernel's (or the relay's) reader sees the end now
        except OSError:
            pass
        self.connection.close()
