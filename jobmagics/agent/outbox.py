"""Batching what an agent sends: records and state changes, in order, a frame per batch."""
from __future__ import annotations

import threading
import time

from . import serialize, wire


class Outbox:
    """Queues (job, stream, data) records and state changes; one thread sends them in batches.

    Adjacent text of the same job and stream is merged, so a job printing a
    line at a time costs one frame per batch rather than per line. State
    changes go through the same queue, so a job's final state never overtakes
    its last records.
    """

    def __init__(self, writer):
        self._writer = writer
        self._cond = threading.Condition()
        self._items = []
        self._closed = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="jobmagics-outbox", daemon=True)
        self._thread.start()

    def record(self, job_id, stream, data):
        self._put(("record", job_id, stream, data, time.time()))

    def state(self, job_id, state, reason):
        self._put(("state", job_id, str(state), reason))

    def reply(self, control, buffers):
        """Answer a CALL, in order with what was queued before it."""
        self._put(("reply", control, buffers))

    def _put(self, item):
        with self._cond:
            if self._closed:
                return  # closed, or the kernel is gone: nothing will send it, so nothing may wait for it
            self._items.append(item)
            self._idle.clear()
            self._cond.notify()

    def flush(self, timeout=None):
        """Block until everything queued so far has been written."""
        return self._idle.wait(timeout)

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self):
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._idle.set()
                    self._cond.wait()
                items, self._items = self._items, []
                if not items and self._closed:
                    self._idle.set()
                    return
            try:
                self._send(items)
            except OSError:  # the kernel is gone: nobody to send to, and nobody to wait for
                with self._cond:
                    self._closed = True
                    self._items = []
                self._idle.set()
                return

    def _send(self, items):
        batch = []  # records of consecutive items, until a state change
        for item in items:
            if item[0] == "record":
                batch.append(item)
                continue
            self._send_records(batch)
            batch = []
            if item[0] == "state":
                _, job_id, state, reason = item
                self._writer.send(wire.STATE, {"state": state, "reason": reason}, job=job_id)
            else:
                _, control, buffers = item
                self._writer.send(wire.REPLY, control, buffers=buffers)
        self._send_records(batch)

    def _send_records(self, items):
        if not items:
            return
        by_job = {}
        for _, job_id, stream, data, stamp in items:
            records = by_job.setdefault(job_id, [])
            if records and stream in ("stdout", "stderr") and records[-1][0] == stream:
                records[-1][1].append(data)  # joined once below: += here would be quadratic
            else:
                records.append([stream, [data] if stream in ("stdout", "stderr") else data, stamp])
        for job_id, records in by_job.items():
            buffers = []
            control = [self._encode(stream, "".join(data) if stream in ("stdout", "stderr") else data,
                                    stamp, buffers) for stream, data, stamp in records]
            self._writer.send(wire.RECORDS, control, job=job_id, buffers=buffers)

    @staticmethod
    def _encode(stream, data, stamp, buffers):
        if stream != "output":
            return (stream, plain(data), stamp)
        try:
            payload = serialize.dumps(data)
        except serialize.SerializationError as exc:
            return ("unshippable", serialize.placeholder_for(data, str(exc)), stamp)
        return ("output", wire.payload_to_control(payload, buffers), stamp)


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
