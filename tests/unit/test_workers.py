"""The threads kept between thread jobs: calls never wait for each other, threads are reused and end."""
import contextvars
import threading
import time

from jobmagics.core.workers import Workers


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_call_never_waits_behind_another_one():
    workers = Workers()
    second_ran = threading.Event()

    def first():
        assert second_ran.wait(10)  # only returns if the second call runs while this one blocks
        return True

    def second():
        second_ran.set()
        return True

    workers.run(first)
    workers.run(second)
    assert second_ran.wait(10)
    wait_until(lambda: workers.idle == 2)


def test_a_thread_whose_call_returned_true_serves_the_next_call_and_is_renamed():
    workers = Workers(name="test-worker")
    seen = []

    def call():
        seen.append((threading.get_ident(), threading.current_thread().name))
        threading.current_thread().name = "busy"
        return True

    workers.run(call)
    wait_until(lambda: workers.idle == 1)
    workers.run(call)
    wait_until(lambda: len(seen) == 2 and workers.idle == 1)
    assert seen[0][0] == seen[1][0]
    assert seen[1][1] == "test-worker"


def test_a_thread_whose_call_returned_false_ends():
    workers = Workers()
    threads = []

    def call():
        threads.append(threading.current_thread())
        return False

    workers.run(call)
    wait_until(lambda: threads)
    threads[0].join(10)
    assert not threads[0].is_alive() and workers.idle == 0


def test_every_call_starts_in_a_fresh_context_like_a_new_thread():
    workers = Workers()
    var = contextvars.ContextVar("var", default="unset")
    seen = []

    def call():
        seen.append(var.get())
        var.set("set by a call")
        return True

    for _ in range(2):
        workers.run(call)
        wait_until(lambda: workers.idle == 1)
    assert seen == ["unset", "unset"]


def test_idle_threads_end_after_the_idle_timeout():
    workers = Workers(idle_timeout=0.05)
    threads = []
    workers.run(lambda: threads.append(threading.current_thread()) or True)
    wait_until(lambda: threads)
    threads[0].join(10)
    assert not threads[0].is_alive() and workers.idle == 0


def test_no_more_than_max_idle_threads_are_kept():
    workers = Workers(max_idle=1)
    release = threading.Event()
    threads = []

    def call():
        threads.append(threading.current_thread())
        release.wait(10)
        return True

    workers.run(call)
    workers.run(call)
    wait_until(lambda: len(threads) == 2)
    release.set()
    wait_until(lambda: sum(t.is_alive() for t in threads) == 1)
    assert workers.idle == 1


def test_a_call_handed_over_as_the_idle_wait_times_out_still_runs():
    ran = []
    for _ in range(200):  # the timeout and the hand-over race: every call must run, none twice
        workers = Workers(idle_timeout=0.001)
        workers.run(lambda: True)
        time.sleep(0.001)
        done = threading.Event()
        workers.run(lambda: ran.append(1) or done.set() or True)
        assert done.wait(10)
    assert len(ran) == 200


def test_a_forked_child_does_not_hand_calls_to_the_parents_idle_threads():
    import os

    workers = Workers()
    workers.run(lambda: True)
    wait_until(lambda: workers.idle == 1)
    pid = os.fork()
    if pid == 0:  # the child: only this thread exists here
        ran = threading.Event()
        code = 0 if workers.idle == 0 else 2
        workers.run(lambda: ran.set() or True)
        os._exit(code if ran.wait(10) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
