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
"""
from __future__ import annotations

import io
import pickle
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


def encode_header(frame, control_bytes):
    sizes = [memoryview(b).nbytes for b in frame.buffers]
    head = _HEADER.pack(MAGIC, PROTOCOL_VERSION, frame.kind, frame.job, frame.seq,
                        len(control_bytes), len(sizes))
    return head + b"".join(_LENGTH.pack(n) for n in sizes)


def write_frame(stream, frame) -> None:
    control = dumps_control(frame.control)
    stream.write(encode_header(frame, control) + control)
    for buffer in frame.buffers:
        view = memoryview(buffer).cast("B")
        while view:  # raw (unbuffered) files may write less than asked
            written = stream.write(view)
            if written is None:
                written = len(view)
            view = view[written:]
    stream.flush()


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


def read_frame(stream):
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
    buffers = [_read_exact(stream, n) if n else bytearray() for n in sizes]
    return Frame(kind, control, job, seq, buffers)


class FrameWriter:
    """Writes whole frames to one stream from any thread, one frame at a time."""

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()
        self._seq = 0

    def send(self, kind, control=None, job=0, buffers=()):
        with self._lock:
            self._seq += 1
            write_frame(self._stream, Frame(kind, control, job, self._seq, buffers))


def payload_to_control(payload, buffers):
    """A payload as plain control data; its buffers are appended to ``buffers`` (the frame's)."""
    first = len(buffers)
    buffers.extend(payload.buffers)
    return {"codec": payload.codec, "data": payload.data, "buffers": list(range(first, len(buffers)))}


def payload_from_control(description, buffers):
    from .serialize import Payload
    return Payload(description["codec"], description["data"], [buffers[i] for i in description["buffers"]])
