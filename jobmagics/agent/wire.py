"""The framed protocol between a kernel and an agent.

A frame is a fixed header, a control part and zero or more opaque buffers::

    magic "JM" | version u8 | kind u8 | job u32 | seq u64 | control length u32 | buffer count u32
    buffer lengths (u64 each) | control bytes | buffers...

The control part is a pickle of plain values only (dicts, lists, strings,
numbers, bytes): :func:`loads_control` refuses anything that names a class or
function. Objects of the user travel as serialized payloads (see
``serialize.py``) whose large buffers ride in the frame's buffer list, out of
band, written straight from memory. ``seq`` numbers a stream of frames so a
reconnecting peer can say what it already has.

Between a kernel and a process of the same machine, large buffers need not
travel through the stream at all: with a *descriptor channel* (an ``AF_UNIX``
socket beside the stream) each one is copied once into a memory file
(``memfd``) whose descriptor is passed on the channel, and the reader maps it
-- no pipe, no second copy. Such a buffer's length has :data:`IN_MEMFD` set.
"""
from __future__ import annotations

import io
import mmap
import os
import pickle
import socket
import struct
import threading

PROTOCOL_VERSION = 1
MAGIC = b"JM"

HELLO, START, STOP, RECORDS, STATE, CLOSE, BYE, ERROR, ACK, INSTALL, CALL, REPLY, DETACH = range(1, 14)
KIND_NAMES = {HELLO: "HELLO", START: "START", STOP: "STOP", RECORDS: "RECORDS", STATE: "STATE",
              CLOSE: "CLOSE", BYE: "BYE", ERROR: "ERROR", ACK: "ACK", INSTALL: "INSTALL", CALL: "CALL",
              REPLY: "REPLY", DETACH: "DETACH"}

_HEADER = struct.Struct("!2sBBIQII")
_LENGTH = struct.Struct("!Q")
MAX_CONTROL = 1 << 30
#: Flag on a buffer length: its bytes are in a memory file passed on the descriptor channel.
IN_MEMFD = 1 << 63
#: Buffers from this size on go through a memory file when there is a descriptor channel.
MEMFD_THRESHOLD = 1 << 20


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol version."""


class Frame:
    __slots__ = ("kind", "job", "seq", "control", "buffers")

    def __init__(self, kind, control=None, job=0, seq=0, buffers=()):
        self.kind = kind
        self.job = job
        self.seq = seq
        self.control = control
        self.buffers = list(buffers)

    def __repr__(self):
        return "Frame(%s, job=%d, seq=%d, %d buffers)" % (
            KIND_NAMES.get(self.kind, self.kind), self.job, self.seq, len(self.buffers))


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise ProtocolError("control data may not reference %s.%s" % (module, name))


def dumps_control(value) -> bytes:
    return pickle.dumps(value, protocol=5)


def loads_control(data: bytes):
    return _PlainUnpickler(io.BytesIO(data)).load()


def encode_header(frame, control_bytes, in_memfd=()):
    sizes = [memoryview(b).nbytes | (IN_MEMFD if i in in_memfd else 0) for i, b in enumerate(frame.buffers)]
    head = _HEADER.pack(MAGIC, PROTOCOL_VERSION, frame.kind, frame.job, frame.seq,
                        len(control_bytes), len(sizes))
    return head + b"".join(_LENGTH.pack(n) for n in sizes)


def write_frame(stream, frame, fd_channel=None) -> None:
    control = dumps_control(frame.control)
    in_memfd = set()
    if fd_channel is not None:
        for i, buffer in enumerate(frame.buffers):
            if memoryview(buffer).nbytes >= MEMFD_THRESHOLD:
                _pass_in_memfd(fd_channel, buffer)  # before the frame: the reader finds it waiting
                in_memfd.add(i)
    stream.write(encode_header(frame, control, in_memfd) + control)
    for i, buffer in enumerate(frame.buffers):
        if i not in in_memfd:
            _write_all(stream.write, memoryview(buffer).cast("B"))
    stream.flush()


def _write_all(write, view):
    while view:  # raw (unbuffered) files may write less than asked
        written = write(view)
        if written is None:
            written = len(view)
        view = view[written:]


def _pass_in_memfd(fd_channel, buffer):
    fd = os.memfd_create("jobmagics-buffer", os.MFD_CLOEXEC)
    try:
        _write_all(lambda view: os.write(fd, view), memoryview(buffer).cast("B"))
        socket.send_fds(fd_channel, [b"B"], [fd])
    finally:
        os.close(fd)


def _take_memfd(fd_channel, size):
    """The next memory file on the channel, mapped (writable, so arrays on it are too)."""
    _msg, fds, _flags, _addr = socket.recv_fds(fd_channel, 1, 1)
    if len(fds) != 1:
        raise EOFError("the descriptor channel closed inside a frame")
    try:
        if os.fstat(fds[0]).st_size != size:
            raise ProtocolError("a memory file of %d bytes, expected %d" % (os.fstat(fds[0]).st_size, size))
        return mmap.mmap(fds[0], size) if size else bytearray()
    finally:
        os.close(fds[0])


def _read_exact(stream, size):
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = stream.readinto(view[got:])
        if not n:
            if got == 0:
                return None
            raise EOFError("connection closed inside a frame")
        got += n
    return buffer


def read_frame(stream, fd_channel=None):
    """The next frame, or None when the stream ended cleanly between frames."""
    head = _read_exact(stream, _HEADER.size)
    if head is None:
        return None
    magic, version, kind, job, seq, control_size, nbuf = _HEADER.unpack(head)
    if magic != MAGIC:
        raise ProtocolError("not a jobmagics frame (bad magic %r)" % bytes(magic))
    if version != PROTOCOL_VERSION:
        raise ProtocolError("protocol version %d, expected %d" % (version, PROTOCOL_VERSION))
    if control_size > MAX_CONTROL:
        raise ProtocolError("control part of %d bytes is too large" % control_size)
    sizes = []
    if nbuf:
        raw = _read_exact(stream, _LENGTH.size * nbuf)
        sizes = [_LENGTH.unpack_from(raw, i * _LENGTH.size)[0] for i in range(nbuf)]
    control = loads_control(bytes(_read_exact(stream, control_size) or b"")) if control_size else None
    buffers = []
    for n in sizes:
        if n & IN_MEMFD:
            if fd_channel is None:
                raise ProtocolError("a buffer in a memory file, but no descriptor channel")
            buffers.append(_take_memfd(fd_channel, n & ~IN_MEMFD))
        else:
            buffers.append(_read_exact(stream, n) if n else bytearray())
    return Frame(kind, control, job, seq, buffers)


class FrameWriter:
    """Writes whole frames to one stream from any thread, one frame at a time."""

    def __init__(self, stream, fd_channel=None):
        self._stream = stream
        self._fd_channel = fd_channel
        self._lock = threading.Lock()
        self._seq = 0

    def send(self, kind, control=None, job=0, buffers=()):
        with self._lock:
            self._seq += 1
            write_frame(self._stream, Frame(kind, control, job, self._seq, buffers), self._fd_channel)


def payload_to_control(payload, buffers):
    """A payload as plain control data; its buffers are appended to ``buffers`` (the frame's)."""
    first = len(buffers)
    buffers.extend(payload.buffers)
    return {"codec": payload.codec, "data": payload.data, "buffers": list(range(first, len(buffers)))}


def payload_from_control(description, buffers):
    from .serialize import Payload
    return Payload(description["codec"], description["data"], [buffers[i] for i in description["buffers"]])
