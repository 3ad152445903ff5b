"""Entry run over an SSH channel: relays the channel to a detached session's Unix socket.

When the SSH connection drops, this relay ends and the session simply sees its
kernel leave: its jobs go on, and what they produce waits for the next kernel.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import threading


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


def main():
    source = sys.stdin.buffer  # the bootstrap read the bundle from it: the rest is the stream
    settings = json.loads(source.readline())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(settings["socket"])
    except OSError as exc:
        sys.exit("jobmagics: the session's socket cannot be reached: %s" % exc.strerror)
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
