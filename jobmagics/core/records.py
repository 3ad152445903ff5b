"""Stream records and the job's record log, which spills to disk past a memory bound.

A record is one item of one stream (spec section 3): ``output`` (an object),
``stdout``/``stderr``/``warning`` (text), ``error`` (a dict describing an
uncaught exception), ``progress`` (a dict), ``display`` (a mimebundle dict), ``export``
(a ``(name, value)`` pair: a variable handed back by ``--export``).
"""
from __future__ import annotations

import heapq
import os
import sys
import pickle
import struct
import tempfile
import weakref
import threading
import time

STREAMS = ("output", "stdout", "stderr", "error", "warning", "progress", "display", "export")
TEXT_STREAMS = ("stdout", "stderr", "warning")

#: In-memory bytes a log holds before it moves what it can to a temporary file.
DEFAULT_MEMORY_LIMIT = 8 * 1024 * 1024


class Record:
    """One stream item, stamped with its sequence number, time and computer."""

    __slots__ = ("seq", "stream", "time", "data", "computer", "origin")

    def __init__(self, seq, stream, data, time_=None, computer=None, origin=None):
        self.seq = seq
        self.stream = stream
        self.data = data
        self.time = time.time() if time_ is None else time_
        self.computer = computer
        self.origin = origin  # the agent's sequence number for it, when it came from one

    def as_tuple(self):
        return (self.seq, self.stream, self.data, self.time, self.computer, self.origin)

    @classmethod
    def from_tuple(cls, values):
        return cls(*values)

    def __repr__(self):
        return "Record(%d, %r, %r)" % (self.seq, self.stream, self.data)


def approximate_size(data) -> int:
    """A cheap estimate of a record's memory, good enough to bound the log."""
    if isinstance(data, (str, bytes, bytearray)):
        return len(data) + 64
    if isinstance(data, dict):
        return 64 + sum(approximate_size(v) for v in data.values())
    nbytes = getattr(data, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes + 64
    size = sys.getsizeof(data, 64)
    if isinstance(data, (list, tuple, set, frozenset)) and data:
        sample = list(data)[:16] if not isinstance(data, (list, tuple)) else data[:16]
        size += len(data) * sum(sys.getsizeof(x, 64) for x in sample) // len(sample)
    return size


class RecordLog:
    """Records in sequence order; past ``memory_limit`` bytes they go to an unlinked temp file.

    ``take(keep=False)`` hands over everything held so far (and forgets it);
    ``take(keep=True)`` reads it without forgetting. Both return an iterator,
    so reading a log that spilled gigabytes never holds it all in memory.
    Records that cannot be pickled (live objects of a thread job) stay in memory.
    """

    def __init__(self, memory_limit: int = DEFAULT_MEMORY_LIMIT):
        self.memory_limit = memory_limit
        self._lock = threading.Lock()
        self._memory = []
        self._memory_bytes = 0
        self._file = None
        self._file_size = 0
        self._count = 0

    def __len__(self):
        return self._count

    def __bool__(self):
        return self._count > 0

    @property
    def spilled_bytes(self) -> int:
        return self._file_size

    def append(self, record: Record) -> None:
        size = approximate_size(record.data)
        with self._lock:
            # Past a bound, what came before goes to disk; the newest record stays. Memory is bounded
            # by the limits plus one record, and a big result is not written out and read back
            # just before its user receives it.
            if self._memory and self._memory_bytes + size > self.memory_limit:
                self._spill()
            self._memory.append(record)
            self._count += 1
            self._memory_bytes += size

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="jobmagics-log-")
            weakref.finalize(self, self._file.close)  # a log forgotten unreceived gives its disk space back
        try:
            self._file_size += _write_chunk(self._file, [r.as_tuple() for r in self._memory])
            keep = []
        except Exception:  # something does not pickle (a thread job's live object): it stays here
            spillable, keep = _picklable(self._memory)
            if spillable:
                self._file_size += _write_chunk(self._file, [r.as_tuple() for r in spillable])
        self._memory = keep
        self._memory_bytes = sum(approximate_size(r.data) for r in keep)

    def take(self, keep: bool = False):
        """An iterator over every record held, in sequence order."""
        with self._lock:
            memory = list(self._memory) if keep else self._memory
            spill, size = self._file, self._file_size
            if not keep:
                self._memory, self._memory_bytes = [], 0
                self._file, self._file_size, self._count = None, 0, 0
        if spill is None:
            return iter(memory)  # the usual case: nothing to merge, nothing to close
        return self._iterate(memory, spill, size, close=not keep)

    def _iterate(self, memory, spill, size, close):
        try:
            yield from heapq.merge(self._read_spill(spill, size), memory, key=lambda r: r.seq)
        finally:
            if close and spill is not None:
                spill.close()

    def _read_spill(self, spill, size):
        fd, offset = spill.fileno(), 0
        while offset < size:
            chunk, offset = _read_chunk(fd, offset)
            for values in chunk:
                yield Record.from_tuple(values)

    def clear(self) -> None:
        for _ in self.take(keep=False):
            pass


# A spilled chunk: its header, the pickle of its records (protocol 5) and the pickle's
# out-of-band buffers, written straight from the objects' memory and read straight into
# new buffers -- a big array costs one write and one read, never a copy through bytes.
_CHUNK_HEADER = struct.Struct("!QI")
_BUFFER_LENGTH = struct.Struct("!Q")


def _picklable(records):
    """(records that pickle, records that do not): live objects of a thread job stay in memory."""
    good, bad = [], []
    for record in records:
        try:
            pickle.dumps(record.as_tuple(), protocol=5, buffer_callback=lambda buffer: None)
            good.append(record)
        except Exception:
            bad.append(record)
    return good, bad


def _write_chunk(file, values) -> int:
    """Append a chunk; raises (having written nothing) when something does not pickle."""
    buffers = []
    data = pickle.dumps(values, protocol=5, buffer_callback=buffers.append)
    views = [buffer.raw() for buffer in buffers]
    file.seek(0, os.SEEK_END)
    file.write(_CHUNK_HEADER.pack(len(data), len(views)))
    file.write(b"".join(_BUFFER_LENGTH.pack(view.nbytes) for view in views))
    file.write(data)
    for view in views:
        file.write(view)
    file.flush()
    return _CHUNK_HEADER.size + _BUFFER_LENGTH.size * len(views) + len(data) + sum(v.nbytes for v in views)


def _read_chunk(fd, offset):
    """(the chunk's record tuples, the offset after it)."""
    length, count = _CHUNK_HEADER.unpack(pread_exact(fd, _CHUNK_HEADER.size, offset))
    offset += _CHUNK_HEADER.size
    sizes = struct.unpack("!%dQ" % count, pread_exact(fd, _BUFFER_LENGTH.size * count, offset)) if count else ()
    offset += _BUFFER_LENGTH.size * count
    data = pread_exact(fd, length, offset)
    offset += length
    buffers = []
    for size in sizes:
        buffers.append(pread_exact(fd, size, offset))
        offset += size
    return pickle.loads(data, buffers=buffers), offset


def pread_exact(fd, length, offset):
    """``length`` bytes of file ``fd`` from ``offset``, read straight into a new bytearray."""
    buffer = bytearray(length)
    view, got = memoryview(buffer), 0
    while got < length:  # pread may return less than asked
        n = os.preadv(fd, [view[got:]], offset + got)
        if not n:
            raise EOFError("spill file is shorter than its index says")
        got += n
    return buffer
