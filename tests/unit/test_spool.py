import pytest

from jobmagics.agent.spool import Spool


def seq_of(item):
    return item[0]


def test_items_spill_and_read_back_in_order():
    spool = Spool(seq_of, lambda item: 100, memory_limit=1000)
    for i in range(1, 101):
        spool.append((i, "x"))
    assert spool._file is not None and len(spool) == 100
    assert [i for i, _ in spool.items_after(0)] == list(range(1, 101))
    assert [i for i, _ in spool.items_after(95)] == [96, 97, 98, 99, 100]


def test_dropping_a_prefix_frees_what_was_received():
    spool = Spool(seq_of, lambda item: 100, memory_limit=1000)
    for i in range(1, 51):
        spool.append((i, "x"))
    spool.drop_through(25)  # in the middle of a spilled chunk
    assert [i for i, _ in spool.items_after(0)] == list(range(26, 51))
    assert len(spool) == 25
    spool.drop_through(50)
    assert len(spool) == 0 and spool._file is None


def test_unpicklable_items_stay_in_memory():
    import threading

    spool = Spool(seq_of, lambda item: 600, memory_limit=1000)
    spool.append((1, threading.Lock()))
    spool.append((2, "x"))
    assert spool._file is None and [i for i, _ in spool.items_after(0)] == [1, 2]


def test_counting_never_reads_the_spilled_file(monkeypatch):
    spool = Spool(lambda item: item[0], lambda item: 100, memory_limit=1000)
    for seq in range(1, 101):
        spool.append((seq, "x"))
    monkeypatch.setattr(Spool, "_load", lambda *args: pytest.fail("read the file to count"))
    assert len(spool) == 100
    spool.drop_through(55)  # in the middle of a spilled chunk
    assert len(spool) == 45


def test_items_already_acknowledged_are_not_kept():
    spool = Spool(lambda item: item[0])
    spool.drop_through(5)
    spool.append((4, "late"))
    spool.append((6, "new"))
    assert spool.items_after(0) == [(6, "new")]
