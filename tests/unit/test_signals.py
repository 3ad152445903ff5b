"""Signal handlers that cannot deadlock: the handler runs no Python code, a thread does the work."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)


def run_script(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=30, start_new_session=True)


def test_the_sigterm_handler_calls_nothing_so_it_can_take_no_lock():
    # A handler runs in the main thread between any two bytecodes: one that called anything that
    # takes a lock (threading.Event.set did) could wait forever for the code it interrupted.
    result = run_script("""
        import signal, sys, threading
        from jobmagics.agent import main, signals
        main.signals.on_signal(signal.SIGTERM, main._terminated)  # as the agent's main() does
        handler = signal.getsignal(signal.SIGTERM)
        calls = []
        def trace(frame, event, arg):
            if event in ("call", "c_call") and frame.f_code is not trace.__code__:
                calls.append((event, getattr(arg, "__qualname__", None) or frame.f_code.co_name))
        sys.setprofile(trace)
        handler(signal.SIGTERM, None)
        sys.setprofile(None)
        print(calls[1:-1])  # the handler's own call, and the setprofile(None) that ends tracing
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_burst_of_sigterm_while_the_main_thread_holds_a_lock_runs_the_action_once():
    # The main thread sits on a lock (as it can, inside Event.set, when a signal comes) while
    # SIGTERMs rain: the watcher thread runs the action all the same, and the process ends.
    result = run_script("""
        import os, signal, threading, time
        from jobmagics.agent import signals
        done = threading.Event()
        count = []
        def action():
            count.append(1)
            if len(count) == 1:
                print("action ran", flush=True)
                signals.die_of(signal.SIGTERM)
        signals.on_signal(signal.SIGTERM, action)
        lock = threading.Lock()
        with lock:
            for _ in range(200):
                os.kill(os.getpid(), signal.SIGTERM)
            lock.acquire()  # never granted: only the signal path can end this process
    """)
    # Ended by the signal, or, when the main thread could not run again in time, by the fallback exit.
    assert result.stdout == "action ran\n" and result.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM), result.stderr
