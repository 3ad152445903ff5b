"""A job's text through a pipe that only the kernel reads, so it outlives the job's process.

A process job's agent writes each piece of its job's text (a line, or a
partial line at a flush) into this pipe before ``print`` returns, as a chunk:
a tag (``o`` stdout, ``e`` stderr), a length and the UTF-8 bytes. In its
ordered stream of records it queues, *before* writing the chunk, a
placeholder: the stream and the number of chunks (adjacent placeholders of
one stream merge, as text does). The kernel reads exactly that many chunks
when it applies the placeholder, so text keeps its place among the job's
other records; if the process dies, the chunks whose placeholders never left
it are still in the pipe, and the kernel reads them there.

The placeholder goes first because a chunk bigger than the pipe can only be
written while the kernel reads it, and the kernel reads only what a
placeholder announced.
"""
from __future__ import annotations

import os
import struct

_HEADER = struct.Struct("<cI")
TAGS = {"stdout": b"o", "stderr": b"e"}
STREAMS = {tag: stream for stream, tag in TAGS.items()}
READ_SIZE = 1 << 20


def write_chunk(fd, stream, text):
    data = text.encode("utf-8", "surrogatepass")
    view = memoryview(_HEADER.pack(TAGS[stream], len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


class ChunkReader:
    """The kernel's end: chunks in the order they were written."""

    def __init__(self, fd):
        self.fd = fd
        self._buffer = bytearray()
        self._pos = 0  # where the next chunk starts in _buffer

    def take(self, count):
        """The next ``count`` chunks as (stream, text) pairs, waiting for them (fewer if the pipe ended)."""
        chunks = []
        while len(chunks) < count:
            chunk = self._parse()
            if chunk is None:
                if not self._fill(block=True):
                    break
                continue
            chunks.append(chunk)
        return chunks

    def rest(self):
        """Every chunk the pipe holds now, without waiting (a partial last one as far as it came)."""
        while self._fill(block=False):
            pass
        chunks = []
        chunk = self._parse()
        while chunk is not None:
            chunks.append(chunk)
            chunk = self._parse()
        if len(self._buffer) - self._pos > _HEADER.size:  # the writer died in the middle of this one
            tag, _length = _HEADER.unpack_from(self._buffer, self._pos)
            chunks.append(_decode(tag, self._buffer[self._pos + _HEADER.size:]))
        self._buffer, self._pos = bytearray(), 0
        return chunks

    def _parse(self):
        if len(self._buffer) - self._pos < _HEADER.size:
            return None
        tag, length = _HEADER.unpack_from(self._buffer, self._pos)
        start = self._pos + _HEADER.size
        if len(self._buffer) < start + length:
            return None
        self._pos = start + length
        return _decode(tag, self._buffer[start:self._pos])

    def _fill(self, block):
        """Read what is there (or, with ``block``, wait for something); False at the end or when empty."""
        os.set_blocking(self.fd, block)
        try:
            data = os.read(self.fd, READ_SIZE)
        except OSError:  # BlockingIOError: nothing there now
            return False
        if self._pos:  # what is left is at most one chunk in the making: a short move
            del self._buffer[:self._pos]
            self._pos = 0
        self._buffer += data
        return bool(data)


def _decode(tag, data):
    try:
        text = data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # cut short by the writer's death
        text = data.decode("utf-8", "replace")
    return STREAMS.get(tag, "stdout"), text
