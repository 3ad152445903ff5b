"""Batching what an agent sends: records and state changes, in order, a frame per batch."""
from __future__ import annotations

import threading
import time

from ..core import serialize, wire
from ..core.records import approximate_size
from .spool import Spool


#: Seconds records wait for more to join their frame, and the bytes that send them sooner.
BATCH_DELAY = 0.02
BATCH_BYTES = 64 * 1024
#: Text characters merged into one frame at most (a flood arrives in frames of about this size).
FRAME_TEXT = 1024 * 1024


def _item_seq(item):
    return item[5]


def _item_size(item):
    return approximate_size(item[3]) + 64


class Outbox:
    """Queues (job, stream, data) records and state changes; one thread sends them in batches.

    Adjacent text of the same job and stream is merged, so a job printing a
    line at a time costs one frame per batch rather than per line. State
    changes go through the same queue, so a job's final state never overtakes
    its last records. Every record carries its job's sequence number.

    A ``durable`` outbox (a detached session's) keeps what it sent until the
    kernel acknowledges it (``ack``: the user received it), waits while no
    kernel is attached, and on ``attach`` sends again what that kernel has not
    applied yet: after any disconnection nothing is lost and nothing doubled.

    Batching: records wait up to ``batch_delay`` (or until ``batch_bytes`` are
    queued) for more to join their frame -- a job printing a line a millisecond
    costs a frame per 20 ms, not a frame per line. A state change, a reply or
    ``flush`` sends at once.

    Flow control: while more than ``queue_limit`` bytes of records wait for a
    kernel that reads slower than the jobs write, a job's next record waits
    for room -- the agent's memory stays bounded, as a full pipe would make it.
    """

    def __init__(self, writer=None, durable=False, spool_limit=8 * 1024 * 1024, queue_limit=8 * 1024 * 1024,
                 batch_delay=BATCH_DELAY, batch_bytes=BATCH_BYTES):
        self._writer = writer
        self.batch_delay = batch_delay
        self.batch_bytes = batch_bytes
        self._urgent = False  # something queued must go now: a state change, a reply, a flush
        self.durable = durable
        self.spool_limit = spool_limit  # memory for unacknowledged records per job; the rest goes to disk
        self.queue_limit = queue_limit
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # the sending thread waits on it for items
        self._room = threading.Condition(lock)  # writers of records wait on it for room
        self._queued_bytes = 0
        self.waiting_for_room = 0  # writers waiting right now (tests look)
        self._items = []
        self._seqs = {}  # job id -> last sequence number given
        self._unacked = {}  # job id -> Spool of records sent but not acknowledged (durable only)
        self._in_flight = []  # records being sent, kept once sent (durable: counted as unacknowledged)
        self._acked = {}  # job id -> the highest sequence number the kernel acknowledged
        self._resend = {}  # job id -> sequence number after which its kept records go again (after attach)
        self._closed = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="jobmagics-outbox", daemon=True)
        self._thread.start()

    def record(self, job_id, stream, data, wait=True):
        """Queue one record; then, with ``wait``, wait while the queue is over its limit."""
        with self._cond:
            seq = self._seqs[job_id] = self._seqs.get(job_id, 0) + 1
        self._put(("record", job_id, stream, data, time.time(), seq))
        if wait:
            self.wait_for_room()

    def wait_for_room(self):
        if threading.current_thread() is self._thread:
            return
        with self._cond:
            self.waiting_for_room += 1
            try:
                while self._queued_bytes > self.queue_limit and self._writer is not None and not self._closed:
                    self._room.wait()
            finally:
                self.waiting_for_room -= 1

    def _taken_locked(self):
        """Everything queued went to the sender (or away): writers waiting for room may go on."""
        self._queued_bytes = 0
        self._room.notify_all()

    def attach(self, writer, applied=None):
        """Send through ``writer`` from now on; first again what it has not applied (durable).

        What goes again is read from the spools a batch at a time by the sending thread
        (a backlog of gigabytes is never in memory at once), before anything queued.
        """
        applied = applied or {}
        with self._cond:
            self._resend = {job_id: applied.get(job_id, 0) for job_id in self._unacked}
            self._writer = writer
            if self._items or self._resend:
                self._idle.clear()
            self._cond.notify()

    def detach(self):
        """No kernel to send to: records wait (durable) until the next attach."""
        with self._cond:
            self._detach_locked()

    def _detach_locked(self):
        self._writer = None
        self._resend = {}  # the next attach says again what its kernel has
        if self.durable:  # what was queued for the kernel that left waits in the spool
            self._keep_unacked_locked(self._items)
            self._items = [item for item in self._items if item[0] == "reply"]
        self._taken_locked()

    def ack(self, job_id, seq):
        """The kernel's user received everything of ``job_id`` up to ``seq``: forget it."""
        with self._cond:
            self._acked[job_id] = max(seq, self._acked.get(job_id, 0))
            spool = self._unacked.get(job_id)
            if spool is not None:
                spool.drop_through(seq)
                if not len(spool):
                    self._unacked.pop(job_id, None)

    def unacknowledged(self, job_id):
        with self._cond:
            spool = self._unacked.get(job_id)
            return (len(spool) if spool is not None else 0) + sum(
                1 for item in self._items + self._in_flight if item[0] == "record" and item[1] == job_id)

    def state(self, job_id, state, reason):
        self._put(("state", job_id, str(state), reason))

    def reply(self, control, buffers):
        """Answer a CALL, in order with what was queued before it."""
        self._put(("reply", control, buffers))

    def _put(self, item):
        with self._cond:
            if self._closed:
                return  # closed, or the kernel is gone: nothing will send it, so nothing may wait for it
            if self.durable and self._writer is None and item[0] != "reply":
                if item[0] == "record":  # nobody attached: straight to the spool, which bounds memory
                    self._keep_unacked_locked([item])
                return  # a state is sent again on attach, from the job itself
            self._items.append(item)
            if item[0] == "record":
                self._queued_bytes += _item_size(item)
            else:
                self._urgent = True
            self._idle.clear()
            if len(self._items) == 1 or self._urgent or self._queued_bytes >= self.batch_bytes:
                self._cond.notify()  # else the sending thread is already awake, gathering a batch

    def flush(self, timeout=None):
        """Block until everything queued so far has been written."""
        with self._cond:
            self._urgent = True
            self._cond.notify()
        return self._idle.wait(timeout)

    def close(self, wait=True):
        """Send nothing more; ``wait`` for the sending thread (not when the kernel may be frozen)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            self._room.notify_all()
        if wait:
            self._thread.join()

    def _run(self):
        while True:
            with self._cond:
                while not self._closed:
                    if self._resend and self._writer is not None:
                        if not self._send_again_locked():
                            self._detach_locked()  # the kernel went away again: the next one says what it has
                        continue
                    if self._items and self._writer is not None:
                        break
                    if not self._items or not self.durable:
                        self._idle.set()
                    self._cond.wait()
                if self._closed and (not self._items or self._writer is None):
                    self._items = []
                    self._taken_locked()
                    self._idle.set()
                    return
                self._gather_locked()
                items, self._items = self._items, []
                self._urgent = False
                self._taken_locked()
                writer = self._writer
                if self.durable:
                    self._in_flight = items
            try:
                self._send(items, writer)
            except OSError:
                if self.durable:  # the kernel went away: what it missed is kept for the next one
                    self._keep_unacked(items)
                    self.detach()
                    continue
                with self._cond:  # the kernel is gone: nobody to send to, and nobody to wait for
                    self._closed = True
                    self._items = []
                    self._taken_locked()
                self._idle.set()
                return
            if self.durable:  # kept once sent: a big result reaches the kernel before it reaches the disk
                self._keep_unacked(items)

    def _send_again_locked(self):
        """Send one batch of kept records the attached kernel has not applied; False if the stream broke."""
        job_id, after = next(iter(self._resend.items()))
        spool = self._unacked.get(job_id)
        batch = spool.items_after(after, max_bytes=self.batch_bytes * 16) if spool is not None else []
        if not batch:
            del self._resend[job_id]
            return True
        self._resend[job_id] = batch[-1][5]
        writer = self._writer
        self._cond.release()  # they are kept already: sending them needs no lock
        try:
            self._send(batch, writer)
            return True
        except OSError:
            return False
        finally:
            self._cond.acquire()

    def _gather_locked(self):
        """Give records a moment to gather into one frame (nothing urgent queued, room left)."""
        deadline = time.monotonic() + self.batch_delay
        while not (self._urgent or self._closed or self._writer is None
                   or self._queued_bytes >= self.batch_bytes):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _keep_unacked(self, items):
        with self._cond:
            self._keep_unacked_locked(items)
            self._in_flight = []

    def _keep_unacked_locked(self, items):
        for item in items:
            if item[0] == "record" and item[5] > self._acked.get(item[1], 0):
                if item[1] not in self._unacked:
                    self._unacked[item[1]] = self._new_spool()
                self._unacked[item[1]].append(item)

    def _new_spool(self):
        return Spool(_item_seq, _item_size, self.spool_limit)

    def _send(self, items, writer):
        batch = []  # records of consecutive items, until a state change
        for item in items:
            if item[0] == "record":
                batch.append(item)
                continue
            self._send_records(batch, writer)
            batch = []
            if item[0] == "state":
                _, job_id, state, reason = item
                writer.send(wire.STATE, {"state": state, "reason": reason}, job=job_id)
            else:
                _, control, buffers = item
                writer.send(wire.REPLY, control, buffers=buffers)
        self._send_records(batch, writer)

    def _send_records(self, items, writer):
        if not items:
            return
        by_job = {}  # job id -> its frames, each [records, characters of text in them]
        for _, job_id, stream, data, stamp, seq in items:
            frames = by_job.setdefault(job_id, [])
            if not frames or frames[-1][1] >= FRAME_TEXT:
                frames.append([[], 0])  # a flood goes in frames of about FRAME_TEXT: bounded on both sides
            records = frames[-1][0]
            if stream in ("stdout", "stderr"):
                frames[-1][1] += len(data) if isinstance(data, str) else data
                if records and records[-1][0] == stream:
                    records[-1][1].append(data)  # joined once below: += here would be quadratic
                    records[-1][3] = seq  # a merged record carries the last sequence number in it
                    continue
                data = [data]
            records.append([stream, data, stamp, seq])
        for job_id, frames in by_job.items():
            for records, _size in frames:
                buffers = []
                control = [self._encode(stream, _joined(data) if stream in ("stdout", "stderr") else data,
                                        stamp, seq, buffers) for stream, data, stamp, seq in records]
                writer.send(wire.RECORDS, control, job=job_id, buffers=buffers)

    @staticmethod
    def _encode(stream, data, stamp, seq, buffers):
        if stream not in serialize.OBJECT_STREAMS:
            return (stream, plain(data), stamp, seq)
        try:
            payload = serialize.dumps(data)
        except serialize.SerializationError as exc:
            return serialize.unshippable(stream, data, str(exc)) + (stamp, seq)
        return (stream, wire.payload_to_control(payload, buffers), stamp, seq)


def _joined(pieces):
    """Adjacent text of one stream as one record: the text, or (``textpipe.py``) its size in a pipe."""
    return "".join(pieces) if isinstance(pieces[0], str) else sum(pieces)


_PLAIN_TYPES = (str, bytes, int, float, bool, type(None))


def plain(value):
    """``value`` as the plain data a control part may carry; anything else becomes its str().

    Records other than output objects (text, progress, display data) travel in
    the control pickle, which the other side refuses to load if it names a
    class: a numpy float in a progress record must not break the link.
    """
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if kind is dict or isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)
