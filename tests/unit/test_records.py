import pytest
import threading

from jobmagics.core.records import Record, RecordLog


def _fill(log, n, start=1, text="x" * 100):
    for i in range(start, start + n):
        log.append(Record(i, "stdout", "%d:%s" % (i, text)))


def test_take_drains_and_keep_does_not():
    log = RecordLog()
    _fill(log, 3)
    assert [r.seq for r in log.take(keep=True)] == [1, 2, 3]
    assert len(log) == 3
    assert [r.seq for r in log.take()] == [1, 2, 3]
    assert len(log) == 0 and not log
    assert list(log.take()) == []


def test_log_spills_past_its_memory_limit_and_reads_back_in_order():
    log = RecordLog(memory_limit=10_000)
    _fill(log, 1000)
    assert log.spilled_bytes > 0
    assert log._memory_bytes <= 10_000 + 300
    kept = [r.seq for r in log.take(keep=True)]
    assert kept == list(range(1, 1001))
    _fill(log, 10, start=1001)
    drained = list(log.take())
    assert [r.seq for r in drained] == list(range(1, 1011))
    assert drained[0].data.startswith("1:")
    assert log.spilled_bytes == 0


def test_unpicklable_records_stay_in_memory_in_their_place():
    log = RecordLog(memory_limit=1000)
    lock = threading.Lock()  # cannot be pickled
    log.append(Record(1, "output", lock))
    _fill(log, 50, start=2)
    records = list(log.take())
    assert records[0].data is lock
    assert [r.seq for r in records] == list(range(1, 52))


def test_containers_count_towards_the_memory_bound():
    log = RecordLog(memory_limit=1_000_000)
    for i in range(30):
        log.append(Record(i + 1, "output", list(range(100_000))))
    assert log.spilled_bytes > 0
    assert [r.data[-1] for r in log.take()] == [99_999] * 30


def test_big_arrays_spill_out_of_band_and_come_back_equal():
    np = pytest.importorskip("numpy")
    log = RecordLog(memory_limit=1024)
    array = np.arange(1_000_000, dtype=np.int64)
    log.append(Record(1, "output", array))
    log.append(Record(2, "stdout", "after\n"))
    assert log.spilled_bytes >= array.nbytes
    back = list(log.take())
    assert [r.seq for r in back] == [1, 2]
    assert (back[0].data == array).all() and back[0].data.flags.writeable
    assert back[1].data == "after\n"


def test_the_newest_record_stays_in_memory_and_what_came_before_spills():
    log = RecordLog(memory_limit=1000)
    log.append(Record(1, "stdout", "small\n"))
    log.append(Record(2, "output", b"r" * 100_000))  # over the bound: the record before it spills
    spilled = log.spilled_bytes
    assert spilled > 0 and spilled < 1000  # the big result itself is not written out
    log.append(Record(3, "stdout", "after\n"))  # now it is
    assert log.spilled_bytes > spilled + 100_000
    assert [r.seq for r in log.take()] == [1, 2, 3]
