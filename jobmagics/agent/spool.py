"""A queue of sequenced items that spills to an unlinked temporary file past a memory bound.

A detached session keeps what its jobs produced until a kernel's user has
received it, however long nobody is connected: a job printing gigabytes must
not take gigabytes of memory. Items leave from the front (acknowledged up to
a sequence number) and are read again from any point (sent again after a
reconnection).
"""
from __future__ import annotations

import array
import bisect
import itertools
import os
import pickle
import tempfile
import weakref

from ..core.records import approximate_size, pread_exact

DEFAULT_MEMORY_LIMIT = 8 * 1024 * 1024


class Spool:
    """Items ``(..., seq)`` in increasing ``seq`` order; ``seq_of(item)`` reads the number.

    Counting is O(chunks), never a read of the file: each spilled chunk keeps
    the sequence numbers of its items.
    """

    def __init__(self, seq_of, size_of=approximate_size, memory_limit=DEFAULT_MEMORY_LIMIT):
        self.seq_of = seq_of
        self.size_of = size_of
        self.memory_limit = memory_limit
        self._chunks = []  # (sequence numbers (array), offset, length) of pickled lists in the file
        self._file = None
        self._memory = []
        self._memory_bytes = 0
        self._floor = 0  # everything numbered this or lower was dropped

    def __len__(self):
        spilled = sum(len(seqs) - bisect.bisect_right(seqs, self._floor) for seqs, _o, _l in self._chunks)
        return spilled + len(self._memory)

    def append(self, item):
        if self.seq_of(item) <= self._floor:
            return  # acknowledged already (the kernel can be quicker than the sender's book-keeping)
        size = self.size_of(item)
        # Past the bound, what came before goes to disk and the newest item stays: a big result
        # usually is acknowledged soon after it is sent, and then never needs writing out.
        if self._memory and self._memory_bytes + size > self.memory_limit:
            self._spill()
        self._memory.append(item)
        self._memory_bytes += size

    def _spill(self):
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="jobmagics-spool-")
            weakref.finalize(self, self._file.close)  # a spool forgotten unreceived gives its disk space back
        offset = self._file.seek(0, os.SEEK_END)
        try:
            # Straight into the file: a big item is written from its own memory, not copied into a blob first.
            pickle.dump(self._memory, self._file, protocol=5)
        except Exception:  # something here cannot be pickled: it stays in memory
            self._file.truncate(offset)
            if not self._chunks:
                self._file.close()
                self._file = None
            return
        self._file.flush()
        length = self._file.tell() - offset
        self._chunks.append((array.array("q", (self.seq_of(i) for i in self._memory)), offset, length))
        self._memory, self._memory_bytes = [], 0

    def drop_through(self, seq):
        """Forget every item numbered ``seq`` or lower."""
        self._floor = max(self._floor, seq)
        self._chunks = [chunk for chunk in self._chunks if chunk[0][-1] > self._floor]
        if not self._chunks and self._file is not None:
            self._file.close()  # all of it was received: the disk space goes back now
            self._file = None
        self._memory = [item for item in self._memory if self.seq_of(item) > self._floor]
        self._memory_bytes = sum(self.size_of(i) for i in self._memory)

    def items_after(self, seq, max_bytes=None):
        """The items numbered above ``seq`` (and not dropped), in order; with ``max_bytes``, only the
        first ones up to about that size (at least one), read from the file no further than needed."""
        seq = max(seq, self._floor)
        items, size = [], 0
        for item in itertools.chain(self._chunk_items(seq), (i for i in self._memory if self.seq_of(i) > seq)):
            items.append(item)
            size += self.size_of(item)
            if max_bytes is not None and size >= max_bytes:
                break
        return items

    def _chunk_items(self, seq):
        for seqs, offset, length in self._chunks:
            if seqs[-1] > seq:
                for item in self._load(offset, length):
                    if self.seq_of(item) > seq:
                        yield item

    def _load(self, offset, length):
        return pickle.loads(pread_exact(self._file.fileno(), length, offset))
