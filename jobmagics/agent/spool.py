"""A queue of sequenced items that spills to an unlinked temporary file past a memory bound.

A detached session keeps what its jobs produced until a kernel's user has
received it, however long nobody is connected: a job printing gigabytes must
not take gigabytes of memory. Items leave from the front (acknowledged up to
a sequence number) and are read again from any point (sent again after a
reconnection).
"""
from __future__ import annotations

import os
import pickle
import tempfile

from .records import approximate_size

DEFAULT_MEMORY_LIMIT = 8 * 1024 * 1024


class Spool:
    """Items ``(..., seq)`` in increasing ``seq`` order; ``seq_of(item)`` reads the number."""

    def __init__(self, seq_of, size_of=approximate_size, memory_limit=DEFAULT_MEMORY_LIMIT):
        self.seq_of = seq_of
        self.size_of = size_of
        self.memory_limit = memory_limit
        self._chunks = []  # (first seq, last seq, offset, length) of pickled lists in the file
        self._file = None
        self._memory = []
        self._memory_bytes = 0
        self._floor = 0  # everything numbered this or lower was dropped

    def __len__(self):
        return sum(1 for _ in self._chunk_items(self._floor)) + len(self._memory)

    def append(self, item):
        self._memory.append(item)
        self._memory_bytes += self.size_of(item)
        if self._memory_bytes > self.memory_limit:
            self._spill()

    def _spill(self):
        try:
            blob = pickle.dumps(self._memory, protocol=5)
        except Exception:
            return  # something here cannot be pickled: it stays in memory
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="jobmagics-spool-")
        offset = self._file.seek(0, os.SEEK_END)
        self._file.write(blob)
        self._file.flush()
        self._chunks.append((self.seq_of(self._memory[0]), self.seq_of(self._memory[-1]), offset, len(blob)))
        self._memory, self._memory_bytes = [], 0

    def drop_through(self, seq):
        """Forget every item numbered ``seq`` or lower."""
        self._floor = max(self._floor, seq)
        self._chunks = [chunk for chunk in self._chunks if chunk[1] > self._floor]
        if not self._chunks and self._file is not None:
            self._file.close()  # all of it was received: the disk space goes back now
            self._file = None
        self._memory = [item for item in self._memory if self.seq_of(item) > self._floor]
        self._memory_bytes = sum(self.size_of(i) for i in self._memory)

    def items_after(self, seq):
        """Every item numbered above ``seq`` (and not dropped), in order."""
        seq = max(seq, self._floor)
        return list(self._chunk_items(seq)) + [item for item in self._memory if self.seq_of(item) > seq]

    def _chunk_items(self, seq):
        for chunk in self._chunks:
            if chunk[1] > seq:
                for item in self._load(chunk):
                    if self.seq_of(item) > seq:
                        yield item

    def _load(self, chunk):
        _first, _last, offset, length = chunk
        data, got = b"", 0
        while got < length:  # pread may return less than asked
            part = os.pread(self._file.fileno(), length - got, offset + got)
            if not part:
                raise EOFError("spool file is shorter than its index says")
            data += part
            got += len(part)
        return pickle.loads(data)
