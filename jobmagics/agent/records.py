"""Stream records and the job's record log, which spills to disk past a memory bound.

A record is one item of one stream (spec section 3): ``output`` (an object),
``stdout``/``stderr``/``warning`` (text), ``error`` (a dict describing an
uncaught exception), ``progress`` (a dict), ``display`` (a mimebundle dict).
"""
from __future__ import annotations

import heapq
import os
import sys
import pickle
import struct
import tempfile
import threading
import time

STREAMS = ("output", "stdout", "stderr", "error", "warning", "progress", "display")
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

    _LEN = struct.Struct("!I")

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
        with self._lock:
            self._memory.append(record)
            self._count += 1
            self._memory_bytes += approximate_size(record.data)
            if self._memory_bytes > self.memory_limit:
                self._spill()

    def _spill(self) -> None:
        keep, chunk = [], []
        for record in self._memory:
            try:
                chunk.append(pickle.dumps(record.as_tuple(), protocol=5))
            except Exception:
                keep.append(record)
        if chunk:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="jobmagics-log-")
            blob = pickle.dumps(chunk, protocol=5)
            self._file.seek(0, os.SEEK_END)
            self._file.write(self._LEN.pack(len(blob)))
            self._file.write(blob)
            self._file.flush()
            self._file_size += self._LEN.size + len(blob)
        self._memory = keep
        self._memory_bytes = sum(approximate_size(r.data) for r in keep)

    def take(self, keep: bool = False):
        """An iterator over every record held, in sequence order."""
        with self._lock:
            memory = list(self._memory)
            spill, size = self._file, self._file_size
            if not keep:
                self._memory, self._memory_bytes = [], 0
                self._file, self._file_size, self._count = None, 0, 0
        return self._iterate(memory, spill, size, close=not keep)

    def _iterate(self, memory, spill, size, close):
        try:
            spilled = self._read_spill(spill, size) if spill is not None else iter(())
            yield from heapq.merge(spilled, memory, key=lambda r: r.seq)
        finally:
            if close and spill is not None:
                spill.close()

    def _read_spill(self, spill, size):
        fd, offset = spill.fileno(), 0
        while offset < size:
            (length,) = self._LEN.unpack(os.pread(fd, self._LEN.size, offset))
            offset += self._LEN.size
            chunk = pickle.loads(_pread_exact(fd, length, offset))
            offset += length
            for item in chunk:
                yield Record.from_tuple(pickle.loads(item))

    def clear(self) -> None:
        for _ in self.take(keep=False):
            pass


def _pread_exact(fd, length, offset):
    parts, got = [], 0
    while got < length:
        part = os.pread(fd, length - got, offset + got)
        if not part:
            raise EOFError("spill file is shorter than its index says")
        parts.append(part)
        got += len(part)
    return b"".join(parts)
