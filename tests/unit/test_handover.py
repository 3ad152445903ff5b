"""The relay hands the SSH channel's pipes to the session (jobmagics/agent/handover.py)."""
from __future__ import annotations

import os
import socket

import pytest

from jobmagics.core import wire
from jobmagics.agent import handover

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(not handover.supported(), reason="no descriptor passing here")]


def _read(reader, size):
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = reader.readinto(view[got:])
        assert n, "ended after %d of %d bytes" % (got, size)
        got += n
    return bytes(buffer)


def test_offered_pipes_become_the_connection_and_early_bytes_come_first():
    relay_end, session_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    into_session_r, into_session_w = os.pipe()  # sshd -> session (the channel's stdin)
    out_of_session_r, out_of_session_w = os.pipe()  # session -> sshd (the channel's stdout)
    handover.offer(relay_end, into_session_r, out_of_session_w, b"early")
    os.close(into_session_r)
    os.close(out_of_session_w)  # the relay lets go: only the session holds them now
    streams = handover.Streams(session_end)
    os.write(into_session_w, b" and later")
    assert _read(streams.reader, len(b"early and later")) == b"early and later"
    streams.writer.write(b"answer")
    assert os.read(out_of_session_r, 100) == b"answer"
    streams.close()
    assert os.read(out_of_session_r, 100) == b""  # sshd sees the end of the channel's output
    assert relay_end.recv(10) == b""  # and the waiting relay sees the connection end
    for fd in (into_session_w, out_of_session_r):
        os.close(fd)
    relay_end.close()


def test_a_plain_connection_keeps_its_first_bytes():
    kernel_end, session_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    writer = wire.FrameWriter(kernel_end.makefile("wb", buffering=0))
    writer.send(wire.HELLO, {"token": "t"})
    streams = handover.Streams(session_end)
    frame = wire.read_frame(streams.reader)
    assert frame.kind == wire.HELLO and frame.control == {"token": "t"}
    streams.writer.write(b"back")
    assert kernel_end.recv(10) == b"back"
    streams.close()
    kernel_end.close()
