"""A job's text through pipes that only the kernel reads, so it outlives the job's process.

A process job's agent writes each piece of its job's text (a line, or a
partial line at a flush) into the kernel's pipe for that stream before
``print`` returns. In its ordered stream of records it queues, *before*
writing the bytes, a placeholder: the stream and the number of bytes
(adjacent placeholders of one stream merge, as text does). The kernel reads
exactly that many bytes when it applies the placeholder, so text keeps its
place among the job's other records; if the process dies, the bytes whose
placeholders never left it are still in the pipes, and the kernel reads them
there.

The placeholder goes first because text bigger than the pipe can only be
written while the kernel reads it, and the kernel reads only what a
placeholder announced.
"""
from __future__ import annotations

import os

STREAMS = ("stdout", "stderr")
READ_SIZE = 1 << 20


def encode(text):
    return text.encode("utf-8", "surrogatepass")  # any str, lone surrogates too, arrives as it was


def decode(data):
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # cut short by the writer's death
        return data.decode("utf-8", "replace")


def write_all(fd, data):
    written = os.write(fd, data)
    if written < len(data):  # bigger than the room in the pipe: the rest as the kernel reads
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]


def read_exactly(fd, size):
    """``size`` bytes, waiting for them (fewer if every writer is gone)."""
    parts, missing = [], size
    while missing:
        part = os.read(fd, min(missing, READ_SIZE))
        if not part:
            break
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def read_available(fd):
    """What a non-blocking pipe holds now: (the bytes, whether every writer is gone)."""
    parts = []
    while True:
        try:
            part = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return b"".join(parts), False
        if not part:
            return b"".join(parts), True
        parts.append(part)
