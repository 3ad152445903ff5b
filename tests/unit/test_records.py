import threading

from jobmagics.agent.records import Record, RecordLog


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
