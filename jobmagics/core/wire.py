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

A big buffer is read into memory advised to use huge pages (on this kind of
machine, page faults cost more than the copy), and a big ``bytes`` value
(flag :data:`AS_BYTES` on its length) straight into a new ``bytes`` object.
"""
from __future__ import annotations

import io
import mmap
import pickle
import struct
import threading

from .errors import ProtocolError  # noqa: F401  (raised here; callers catch wire.ProtocolError)

PROTOCOL_VERSION = 2
MAGIC = b"JM"

HELLO, START, STOP, RECORDS, STATE, CLOSE, BYE, ERROR, ACK, INSTALL, CALL, REPLY, DETACH = range(1, 14)
KIND_NAMES = {HELLO: "HELLO", START: "START", STOP: "STOP", RECORDS: "RECORDS", STATE: "STATE",
              CLOSE: "CLOSE", BYE: "BYE", ERROR: "ERROR", ACK: "ACK", INSTALL: "INSTALL", CALL: "CALL",
              REPLY: "REPLY", DETACH: "DETACH"}

_HEADER = struct.Struct("!2sBBIQII")
_LENGTH = struct.Struct("!Q")
MAX_CONTROL = 1 << 30
#: Flag on a buffer length: it was a ``bytes`` object, and is read into one (a big bytes value arrives
#: without a copy after it).
AS_BYTES = 1 << 62
_FLAGS = AS_BYTES
#: Buffers from this size on are read into memory that may use huge pages (far fewer page faults).
BIG_BUFFER = 1 << 20


def _new_buffer(size):
    """Room for ``size`` bytes read from a stream: a big one in private memory advised to use huge pages."""
    if size < BIG_BUFFER or not hasattr(mmap, "MADV_HUGEPAGE"):
        return bytearray(size)
    buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buffer.madvise(mmap.MADV_HUGEPAGE)
    return buffer


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


def loads_control(data):
    return _PlainUnpickler(io.BytesIO(data)).load()


def _length_field(buffer):
    size = memoryview(buffer).nbytes
    return size | AS_BYTES if type(buffer) is bytes and size >= BIG_BUFFER else size


def encode_header(frame, control_bytes):
    sizes = [_length_field(b) for b in frame.buffers]
    head = _HEADER.pack(MAGIC, PROTOCOL_VERSION, frame.kind, frame.job, frame.seq,
                        len(control_bytes), len(sizes))
    return head + b"".join(_LENGTH.pack(n) for n in sizes)


def write_frame(stream, frame) -> None:
    control = dumps_control(frame.control)
    stream.write(encode_header(frame, control) + control)
    for buffer in frame.buffers:
        _write_all(stream.write, memoryview(buffer).cast("B"))  # from the object's own memory
    stream.flush()


def _write_all(write, view):
    while view:  # raw (unbuffered) files may write less than asked
        written = write(view)
        if written is None:
            written = len(view)
        view = view[written:]


def _new_bytes(size):
    """A new ``bytes`` of ``size`` and a writable view of its memory, until it is handed out;
    (None, None) where that cannot be done (not CPython, no ctypes).

    CPython builds a bytes object this way itself (allocate, fill, then share): reading a big
    ``bytes`` value straight into it saves copying it out of a read buffer afterwards.
    """
    if _bytes_api is None:
        return None, None
    ctypes, new, address_of, advise = _bytes_api
    value = new(None, size)
    address = address_of(value)
    if advise is not None and size >= BIG_BUFFER:
        # Before the first write: its pages are still untouched, so they can come as huge pages.
        start = -(-address // _PAGE) * _PAGE
        end = (address + size) // _PAGE * _PAGE
        advise(start, end - start, _MADV_HUGEPAGE)
    return value, memoryview((ctypes.c_char * size).from_address(address)).cast("B")


def _bytes_functions():
    try:
        import ctypes
        import platform
    except ImportError:
        return None
    if platform.python_implementation() != "CPython":
        return None
    new = ctypes.pythonapi.PyBytes_FromStringAndSize
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_char_p, ctypes.c_ssize_t]
    address_of = ctypes.pythonapi.PyBytes_AsString
    address_of.restype, address_of.argtypes = ctypes.c_void_p, [ctypes.py_object]
    return ctypes, new, address_of, _madvise(ctypes)


def _madvise(ctypes):
    """libc's madvise, where there is one and the kernel knows huge pages; else None."""
    if _MADV_HUGEPAGE is None:
        return None
    try:
        advise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    advise.restype, advise.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return advise


_PAGE = mmap.PAGESIZE
_MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)


_bytes_api = _bytes_functions()


def _read_exact(stream, size, at_frame_start=False, as_bytes=False):
    """``size`` bytes; None for a clean end of the stream before a frame's first byte."""
    buffer, view = _new_bytes(size) if as_bytes else (None, None)
    if buffer is None:
        buffer = _new_buffer(size)
        view = memoryview(buffer)
    got = 0
    with view:  # released at once: an mmap with a view alive cannot be closed
        while got < size:
            n = stream.readinto(view[got:])
            if not n:
                if got == 0 and at_frame_start:
                    return None
                raise EOFError("connection closed inside a frame")
            got += n
    return buffer


def read_frame(stream):
    """The next frame, or None when the stream ended cleanly between frames."""
    head = _read_exact(stream, _HEADER.size, at_frame_start=True)
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
    control = loads_control(_read_exact(stream, control_size)) if control_size else None
    buffers = []
    for n in sizes:
        if n & ~_FLAGS:
            buffers.append(_read_exact(stream, n & ~_FLAGS, as_bytes=bool(n & AS_BYTES)))
        else:
            buffers.append(bytearray())
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
    """A payload as plain control data; its pickle stream and buffers are appended to ``buffers``.

    The pickle stream rides as a buffer too: a big ``bytes`` inside it (pickled in band)
    is then written from memory, never copied into the control part.
    """
    first = len(buffers)
    buffers.append(payload.data)
    buffers.extend(payload.buffers)
    return {"codec": payload.codec, "data": first, "buffers": list(range(first + 1, len(buffers)))}


def payload_from_control(description, buffers):
    from .serialize import Payload
    return Payload(description["codec"], buffers[description["data"]], [buffers[i] for i in description["buffers"]])
