import contextlib
import io
import threading

import pytest

from jobmagics.core import serialize, wire
from jobmagics.agent.outbox import Outbox
from jobmagics.core.states import JobState

PRIMER_JOB = 999


class Collector:
    """A byte stream the outbox thread writes to; ``hold()`` parks that thread inside a write."""

    def __init__(self):
        self._lock = threading.Lock()
        self._data = io.BytesIO()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def write(self, data):
        self.entered.set()
        self.release.wait()
        with self._lock:
            return self._data.write(bytes(data))

    def flush(self):
        pass

    def frames(self, skip_primer=True):
        with self._lock:
            stream = io.BytesIO(self._data.getvalue())
        frames = []
        while True:
            frame = wire.read_frame(stream)
            if frame is None:
                return frames
            if not (skip_primer and frame.job == PRIMER_JOB):
                frames.append(frame)


class BrokenStream:
    """A stream whose reader went away."""

    def __init__(self):
        self.attempts = 0

    def write(self, data):
        self.attempts += 1
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        pass


@pytest.fixture
def collector():
    return Collector()


@pytest.fixture
def outbox(collector):
    box = Outbox(wire.FrameWriter(collector))
    yield box
    collector.release.set()
    box.close()


@contextlib.contextmanager
def one_batch(outbox, collector):
    """Everything queued inside the block reaches the outbox thread as one batch.

    A primer record parks the thread in a write of its own frame; items queued
    meanwhile pile up, and the thread takes them all at once when released.
    """
    collector.release.clear()
    collector.entered.clear()
    outbox.record(PRIMER_JOB, "stdout", "primer")
    assert collector.entered.wait(30), "the outbox thread never wrote"
    try:
        yield
    finally:
        collector.release.set()


def records_of(frame):
    assert frame.kind == wire.RECORDS
    return [(stream, data) for stream, data, _stamp, _seq in frame.control]


def test_adjacent_text_of_one_job_and_stream_is_merged(outbox, collector):
    with one_batch(outbox, collector):
        for piece in ("a", "b", "c"):
            outbox.record(1, "stdout", piece)
        outbox.record(1, "stderr", "oops\n")
        outbox.record(1, "stdout", "d")
        outbox.record(1, "stdout", "e")
    assert outbox.flush(30)
    frames = collector.frames()
    assert len(frames) == 1 and frames[0].job == 1
    assert records_of(frames[0]) == [("stdout", "abc"), ("stderr", "oops\n"), ("stdout", "de")]


def test_adjacent_text_placeholders_merge_into_their_total_size(outbox, collector):
    # A process job's text is in the kernel's pipes; its records say how many bytes (textpipe.py).
    with one_batch(outbox, collector):
        for size in (3, 4, 5):
            outbox.record(1, "stdout", size)
        outbox.record(1, "stderr", 7)
    assert outbox.flush(30)
    assert records_of(collector.frames()[0]) == [("stdout", 12), ("stderr", 7)]


def test_jobs_get_their_own_records_frames(outbox, collector):
    with one_batch(outbox, collector):
        outbox.record(1, "stdout", "one ")
        outbox.record(2, "stdout", "two ")
        outbox.record(1, "stdout", "more of one")
        outbox.record(2, "stderr", "two's error")
    assert outbox.flush(30)
    by_job = {frame.job: records_of(frame) for frame in collector.frames()}
    assert by_job == {1: [("stdout", "one more of one")], 2: [("stdout", "two "), ("stderr", "two's error")]}


def test_warnings_and_other_records_are_not_merged(outbox, collector):
    progress = {"percent": 50.0, "status": None}
    with one_batch(outbox, collector):
        outbox.record(1, "warning", "w1\n")
        outbox.record(1, "warning", "w2\n")
        outbox.record(1, "progress", progress)
        outbox.record(1, "progress", progress)
    assert outbox.flush(30)
    [frame] = collector.frames()
    assert records_of(frame) == [("warning", "w1\n"), ("warning", "w2\n"), ("progress", progress),
                                 ("progress", progress)]


def test_a_state_change_is_written_after_the_records_queued_before_it(outbox, collector):
    with one_batch(outbox, collector):
        outbox.record(1, "stdout", "last words")
        outbox.record(2, "stdout", "other job")
        outbox.state(1, JobState.Completed, None)
        outbox.record(2, "stdout", " still going")
        outbox.state(2, JobState.Failed, "ValueError: x")
    assert outbox.flush(30)
    summary = [(wire.KIND_NAMES[f.kind], f.job, f.control if f.kind == wire.STATE else records_of(f))
               for f in collector.frames()]
    assert summary == [
        ("RECORDS", 1, [("stdout", "last words")]),
        ("RECORDS", 2, [("stdout", "other job")]),
        ("STATE", 1, {"state": "Completed", "reason": None}),
        ("RECORDS", 2, [("stdout", " still going")]),
        ("STATE", 2, {"state": "Failed", "reason": "ValueError: x"}),
    ]


def test_frames_are_numbered_in_order(outbox, collector):
    for i in range(5):
        outbox.record(1, "stdout", str(i))
        if i == 2:
            outbox.state(1, JobState.Running, None)
    assert outbox.flush(30)
    frames = collector.frames()
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    text = "".join(data for f in frames if f.kind == wire.RECORDS for stream, data in records_of(f))
    assert text == "01234"


def test_output_objects_travel_as_payloads(outbox, collector):
    big = bytearray(b"z" * 200_000)
    with one_batch(outbox, collector):
        outbox.record(3, "output", {"answer": 42, "items": [1, 2, 3]})
        outbox.record(3, "output", big)
        outbox.record(3, "output", None)
    assert outbox.flush(30)
    [frame] = collector.frames()
    assert frame.job == 3
    streams = [entry[0] for entry in frame.control]
    assert streams == ["output", "output", "output"]
    values = [serialize.loads(wire.payload_from_control(entry[1], frame.buffers)) for entry in frame.control]
    assert values == [{"answer": 42, "items": [1, 2, 3]}, big, None]


def test_an_object_that_cannot_be_serialized_arrives_as_unshippable(outbox, collector):
    generator = (i for i in range(3))
    with one_batch(outbox, collector):
        outbox.record(4, "output", "fine")
        outbox.record(4, "output", generator)
        outbox.record(4, "output", "also fine")
    assert outbox.flush(30)
    [frame] = collector.frames()
    kinds = [entry[0] for entry in frame.control]
    assert kinds == ["output", "unshippable", "output"]
    type_name, text, reason = frame.control[1][1]
    assert type_name == "generator"
    assert text == repr(generator)
    assert "generator" in reason
    assert serialize.loads(wire.payload_from_control(frame.control[2][1], frame.buffers)) == "also fine"


def test_records_carry_the_time_they_were_queued(outbox, collector):
    outbox.record(1, "stdout", "x")
    assert outbox.flush(30)
    [frame] = collector.frames()
    [(_stream, _data, stamp, _seq)] = frame.control
    assert isinstance(stamp, float) and stamp > 0


def test_flush_with_nothing_queued_returns_at_once(outbox):
    assert outbox.flush() is True


def test_close_sends_what_was_queued(collector):
    box = Outbox(wire.FrameWriter(collector))
    box.record(1, "stdout", "before close")
    box.close()
    [frame] = collector.frames()
    assert records_of(frame) == [("stdout", "before close")]


def test_a_broken_stream_does_not_block_flush_or_close():
    stream = BrokenStream()
    box = Outbox(wire.FrameWriter(stream))
    box.record(1, "stdout", "nobody reads this")
    assert box.flush(30) is True
    box.close()
    assert stream.attempts == 1


def test_flush_returns_for_records_queued_after_the_stream_broke():
    box = Outbox(wire.FrameWriter(BrokenStream()))
    box.record(1, "stdout", "nobody reads this")
    assert box.flush(30) is True  # the thread met the broken stream and stopped
    box.state(1, JobState.Completed, None)  # e.g. the job finishes afterwards
    try:
        # With the thread gone there is nothing to wait for: a working flush returns at once.
        assert box.flush(0.5) is True
    finally:
        box.close()


def test_flush_returns_for_records_queued_after_close(collector):
    box = Outbox(wire.FrameWriter(collector))
    box.record(1, "stdout", "sent")
    box.close()
    box.record(1, "stdout", "too late")  # e.g. a job thread still printing while the agent ends
    assert box.flush(0.5) is True  # nothing will send it, so there is nothing to wait for
    assert [records_of(f) for f in collector.frames()] == [[("stdout", "sent")]]


class WatchedStream(Collector):
    """Sets ``seen`` once a write carries ``marker``."""

    def __init__(self, marker, seen):
        super().__init__()
        self._marker = marker
        self._seen = seen

    def write(self, data):
        written = super().write(data)
        if self._marker in bytes(data):
            self._seen.set()
        return written


def test_a_record_the_control_pickle_refuses_does_not_stop_the_outbox(monkeypatch):
    settled = threading.Event()  # set by whichever comes first: the later record written, or the thread dying
    died = []

    def excepthook(args):
        died.append(args.exc_type)
        settled.set()

    monkeypatch.setattr(threading, "excepthook", excepthook)
    stream = WatchedStream(b"later-marker", settled)
    box = Outbox(wire.FrameWriter(stream))
    try:
        box.record(1, "display", {"data": {"application/x-raw": threading.Lock()}, "metadata": {}})
        box.record(2, "stdout", "later-marker")
        assert settled.wait(30)
        assert died == []
        assert [records_of(f) for f in stream.frames() if f.job == 2] == [[("stdout", "later-marker")]]
    finally:
        box.close()


def _texts(collector):
    return [(entry[1], entry[3]) for frame in collector.frames(skip_primer=False)
            if frame.kind == wire.RECORDS for entry in frame.control]


def test_a_durable_outbox_keeps_what_the_kernel_has_not_received_and_sends_it_again():
    first = Collector()
    box = Outbox(wire.FrameWriter(first), durable=True)
    for i in range(1, 4):
        box.record(7, "output", i)
    assert box.flush(30)
    assert [seq for _data, seq in _texts(first)] == [1, 2, 3]
    box.ack(7, 1)  # the user received the first one
    box.detach()  # the kernel went away
    box.record(7, "output", 4)  # the job goes on while nobody is attached
    second = Collector()
    box.attach(wire.FrameWriter(second), applied={7: 2})  # that kernel still holds 2, not yet received
    assert box.flush(30)
    assert [seq for _data, seq in _texts(second)] == [3, 4]
    third = Collector()  # a new kernel knows nothing: it gets all not yet received
    box.detach()
    box.attach(wire.FrameWriter(third))
    assert box.flush(30)
    assert [seq for _data, seq in _texts(third)] == [2, 3, 4]
    box.ack(7, 4)
    assert box.unacknowledged(7) == 0
    box.close()


def test_a_durable_outbox_waits_for_a_kernel_when_the_stream_breaks():
    box = Outbox(wire.FrameWriter(BrokenStream()), durable=True)
    box.record(3, "stdout", "kept\n")
    box.record(3, "stdout", "too\n")
    later = Collector()
    while box.unacknowledged(3) != 2:  # sent (and failed) or queued: both count until acknowledged
        pass
    box.attach(wire.FrameWriter(later))
    assert box.flush(30)
    texts = [data for data, _seq in _texts(later)]
    assert "".join(texts) == "kept\ntoo\n"
    box.close()


def test_what_waits_for_a_kernel_spills_to_disk_past_the_memory_bound():
    box = Outbox(None, durable=True, spool_limit=20_000)  # no kernel attached: records go to the spool
    for i in range(2000):
        box.record(5, "stdout", "%05d %s\n" % (i, "x" * 90))
    assert box.unacknowledged(5) == 2000
    spool = box._unacked[5]
    assert spool._file is not None and spool._memory_bytes <= 20_000 + 300
    later = Collector()
    box.attach(wire.FrameWriter(later), applied={5: 500})
    assert box.flush(30)
    lines = "".join(data for data, _seq in _texts(later)).splitlines()
    assert len(lines) == 1500 and lines[0].startswith("00500") and lines[-1].startswith("01999")
    box.ack(5, 2000)
    assert box.unacknowledged(5) == 0
    box.close()


def _wait_until(condition, timeout=30):
    """Wait for another thread to reach a state (an event of its own would need hooks in the code)."""
    done = threading.Event()
    while not condition():
        if done.wait(0.005) or timeout <= 0:
            break
        timeout -= 0.005
    return condition()


def test_a_kernel_reading_slower_than_the_job_writes_makes_the_job_wait(collector):
    box = Outbox(wire.FrameWriter(collector), queue_limit=100_000)
    written = []

    def job():
        for i in range(50):
            box.record(1, "stdout", "%02d" % i + "x" * 9_998)
            written.append(i)

    with one_batch(box, collector):  # the sending thread is stuck in a write: nothing drains
        producer = threading.Thread(target=job)
        producer.start()
        assert _wait_until(lambda: box.waiting_for_room == 1), "the job never had to wait"
        assert len(written) <= 11  # about queue_limit bytes queued, not the 500 kB it wanted to write
    producer.join(30)
    assert not producer.is_alive() and len(written) == 50
    box.close()
    text = "".join(data for frame in collector.frames() for _s, data in records_of(frame))
    assert [text[i * 10_000:i * 10_000 + 2] for i in range(50)] == ["%02d" % i for i in range(50)]


def test_a_waiting_job_goes_on_when_the_stream_breaks():
    stream = BrokenStream()
    box = Outbox(wire.FrameWriter(stream), queue_limit=10)
    for _ in range(5):
        box.record(1, "stdout", "x" * 100)  # returns: the kernel is gone, nothing to wait for
    box.close()
    assert stream.attempts >= 1


def test_records_written_one_by_one_gather_into_one_frame_until_a_state_change(collector):
    box = Outbox(wire.FrameWriter(collector), batch_delay=60)  # only something urgent ends the gathering
    for i in range(100):
        box.record(1, "stdout", "line %d\n" % i)
    box.state(1, JobState.Completed, None)
    assert box.flush(30)
    box.close()
    frames = collector.frames(skip_primer=False)
    assert [f.kind for f in frames] == [wire.RECORDS, wire.STATE]
    assert records_of(frames[0]) == [("stdout", "".join("line %d\n" % i for i in range(100)))]


def test_flush_sends_a_gathering_batch_at_once(collector):
    box = Outbox(wire.FrameWriter(collector), batch_delay=60)
    box.record(1, "stdout", "now\n")
    assert box.flush(30)
    assert [records_of(f) for f in collector.frames(skip_primer=False)] == [[("stdout", "now\n")]]
    box.close()


def test_a_backlog_goes_again_a_bounded_batch_at_a_time_before_anything_new(monkeypatch):
    from jobmagics.agent.spool import Spool

    box = Outbox(None, durable=True, spool_limit=20_000, batch_bytes=1_000)
    for i in range(2000):
        box.record(5, "stdout", "%05d %s\n" % (i, "x" * 90))
    read = []
    original = Spool.items_after
    monkeypatch.setattr(Spool, "items_after",
                        lambda self, seq, max_bytes=None: read.append(original(self, seq, max_bytes)) or read[-1])
    later = Collector()
    later.release.clear()  # the sender will be held inside its first write of the backlog
    box.attach(wire.FrameWriter(later))
    assert later.entered.wait(30), "the backlog was not sent"
    box.record(5, "stdout", "new\n")  # queued while the backlog is going out: it must come after it
    later.release.set()
    assert box.flush(30)
    assert read and max(len(batch) for batch in read) <= 200  # never the whole backlog at once
    lines = "".join(data for data, _seq in _texts(later)).splitlines()
    assert [line[:5] for line in lines[:2000]] == ["%05d" % i for i in range(2000)] and lines[2000:] == ["new"]
    box.close()


def test_a_flood_of_text_goes_in_frames_of_bounded_size(collector):
    from jobmagics.agent.outbox import FRAME_TEXT

    box = Outbox(wire.FrameWriter(collector), batch_delay=60)  # everything below gathers into one batch
    line = "x" * 999 + "\n"
    count = 3 * FRAME_TEXT // len(line)
    for _ in range(count):
        box.record(1, "stdout", line)
    box.state(1, JobState.Completed, None)
    assert box.flush(30)
    box.close()
    frames = [f for f in collector.frames(skip_primer=False) if f.kind == wire.RECORDS]
    sizes = [sum(len(data) for _s, data in records_of(f)) for f in frames]
    assert len(frames) >= 3 and max(sizes) <= FRAME_TEXT + len(line)
    assert sum(sizes) == count * len(line)
