"""The kernel's end of a process job's text: pipes the job's process writes and never reads.

Four pipes per job process, their read ends held only here: its fds 1 and 2
(what C code, ``os.write`` and its child processes write) and its job's own
stdout and stderr text (``print``, ``sys.stdout``;
``jobmagics/core/textpipe.py``). Once a write returns, the bytes are in a
pipe, so a process that dies right after (``os._exit``, a signal, the OOM
killer) loses none of them.

The job's text takes its place among the other records through the
placeholders the link applies (:meth:`JobTextPipes.take`). Fds 1 and 2 are
read by a thread; before the link applies a frame it takes what they hold
(:meth:`JobTextPipes.ordered`), so output the process wrote before an output,
an error or its final state arrives before it.
"""
from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import select
import threading
import time

from ..core import textpipe

#: Bytes a pipe holds (Linux, up to /proc/sys/fs/pipe-max-size): a chatty job writes on while the
#: reader gathers its lines, and a flood crosses in big reads.
PIPE_SIZE = 1 << 20
#: After a small read the reader waits this long for more lines to join the next record (the bytes
#: wait in the pipe, which outlives the job's process).
GATHER_DELAY = 0.02
GATHER_BYTES = 64 * 1024


class JobTextPipes:
    """The pipes of one job process; ``write_fds`` (fd 1, fd 2, the job's stdout and stderr
    text) go to that process."""

    def __init__(self):
        pairs = [os.pipe() for _ in range(4)]
        self._fd_streams = {}  # read end of fd 1 / fd 2 -> (stream, incremental decoder)
        for (read_fd, _write_fd), stream in zip(pairs, textpipe.STREAMS):
            os.set_blocking(read_fd, False)
            self._fd_streams[read_fd] = (stream, codecs.getincrementaldecoder("utf-8")("replace"))
        self._text = {stream: read_fd for (read_fd, _write_fd), stream in zip(pairs[2:], textpipe.STREAMS)}
        for _read_fd, write_fd in pairs:
            _enlarge(write_fd)
        self.write_fds = tuple(write_fd for _read_fd, write_fd in pairs)
        self._open = set(self._fd_streams)  # fd read ends not at end-of-file yet
        self._stop_read, self._stop_write = os.pipe()
        self._lock = threading.Lock()
        self._deliver = None
        self._closed = False
        self._thread = None

    def handed_over(self):
        """The job's process has its copies of the write ends: the kernel's go, so that the end
        of the file means the process and everything it started are done writing."""
        for fd in self.write_fds:
            os.close(fd)
        self.write_fds = ()

    def start(self, deliver):
        """Call ``deliver(stream, text)`` with what fds 1 and 2 bring, from a reader thread."""
        self._deliver = deliver
        self._thread = threading.Thread(target=self._run, name="jobmagics-job-text", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def ordered(self):
        """Deliver what fds 1 and 2 hold now; the reader waits while the caller applies a frame."""
        with self._lock:
            self._take_locked(list(self._open))
            yield

    def take(self, stream, size):
        """The job's text a placeholder announced: ``size`` bytes of ``stream``."""
        return textpipe.decode(textpipe.read_exactly(self._text[stream], size))

    def close(self):
        """The process has ended: deliver everything still in the pipes, then stop reading."""
        with self._lock:
            if self._closed:
                return
            self._take_locked(list(self._open))
            if self._deliver is not None:
                for stream, fd in self._text.items():  # their placeholders died with the process
                    os.set_blocking(fd, False)
                    text = textpipe.decode(textpipe.read_available(fd)[0])
                    if text:
                        self._deliver(stream, text)
            self._closed = True
        os.write(self._stop_write, b"x")
        if self._thread is None:
            self._release()
        elif self._thread is not threading.current_thread():
            self._thread.join()

    def forget(self):
        """In a fork of this process (no reader thread there): close the copies of the pipes."""
        self._thread = None
        self._release()

    def _run(self):
        try:
            while True:
                poller = select.poll()  # not select(): a kernel with many jobs has fds past FD_SETSIZE
                with self._lock:
                    for fd in [*self._open, self._stop_read]:
                        poller.register(fd, select.POLLIN)
                ready = [fd for fd, _event in poller.poll()]
                if self._stop_read in ready:
                    return
                with self._lock:
                    taken = self._take_locked(ready)
                if taken < GATHER_BYTES:
                    time.sleep(GATHER_DELAY)  # a chatty job: let its next lines gather into one record
        finally:
            self._release()

    def _take_locked(self, fds):
        """Read everything ``fds`` hold now and deliver it; the number of bytes read."""
        total = 0
        for fd in fds:
            if self._closed or self._deliver is None or fd not in self._open:
                continue
            stream, decoder = self._fd_streams[fd]
            data, ended = textpipe.read_available(fd)
            if ended:
                self._open.discard(fd)
            total += len(data)
            text = decoder.decode(data, final=ended)
            if text:
                self._deliver(stream, text)
        return total

    def _release(self):
        fds = [*self._fd_streams, *self._text.values(), *self.write_fds, self._stop_read, self._stop_write]
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fd_streams, self._text, self.write_fds = {}, {}, ()


def _enlarge(fd):
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # above the system's limit: the default size works, in smaller steps
