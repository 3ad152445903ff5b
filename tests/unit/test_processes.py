import contextlib
import os
import signal
import subprocess
import sys

import pytest

from proc_helpers import assert_processes_end

from jobmagics.hosts.processes import describe_returncode, end_tree, group_members, tree


# ----- describe_returncode -----------------------------------------------------------------

def test_exit_code_zero():
    assert describe_returncode(0) == "the job's process exited with code 0"


@pytest.mark.parametrize("code", [1, 3, 255])
def test_positive_exit_codes(code):
    assert describe_returncode(code) == "the job's process exited with code %d" % code


def test_still_running():
    assert describe_returncode(None) == "the process is still running"


def test_segmentation_fault():
    assert describe_returncode(-signal.SIGSEGV) == "the job's process was ended by SIGSEGV (segmentation fault)"


def test_sigkill_mentions_the_out_of_memory_killer():
    text = describe_returncode(-signal.SIGKILL)
    assert text.startswith("the job's process was ended by SIGKILL (")
    assert "out-of-memory killer" in text


def test_a_signal_without_a_hint_is_named():
    assert describe_returncode(-signal.SIGUSR1) == "the job's process was ended by SIGUSR1"


def test_an_unknown_signal_number_is_given_as_a_number():
    known = {int(s) for s in signal.Signals}
    number = next(n for n in range(1, 256) if n not in known)
    assert describe_returncode(-number) == "the job's process was ended by signal %d" % number


# ----- end_tree ------------------------------------------------------------------------------

@contextlib.contextmanager
def started(argv, **kwargs):
    """``(proc, pids)``: if the test fails, every pid it put in ``pids`` is killed (no 600 s hang)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, **kwargs)
    pids = [proc.pid]
    try:
        yield proc, pids
    except BaseException:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        raise
    finally:
        proc.stdout.close()
        proc.wait()


def _read_line(proc):
    line = proc.stdout.readline()
    assert line, "the process ended before it was ready"
    return line.decode().strip()


def test_end_tree_ends_a_process_and_its_children():
    with started(["sh", "-c", "sleep 600 & echo $!; wait"], start_new_session=True) as (proc, pids):
        child = int(_read_line(proc))
        pids.append(child)
        assert child in [p.pid for p in tree(proc.pid)]
        end_tree(proc.pid, grace=5)
        assert_processes_end([proc.pid, child], timeout=10)


def test_end_tree_ends_the_process_group_members_that_left_the_tree():
    # The subshell's sleep is orphaned (reparented away) but stays in the session's process group.
    script = "(sleep 600 & echo $!); echo ready; exec sleep 600"
    with started(["sh", "-c", script], start_new_session=True) as (proc, pids):
        orphan = int(_read_line(proc))
        pids.append(orphan)
        assert _read_line(proc) == "ready"
        assert orphan not in [p.pid for p in tree(proc.pid)]
        assert orphan in [p.pid for p in group_members(proc.pid)]
        end_tree(proc.pid, pgid=proc.pid, grace=5)
        assert_processes_end([proc.pid, orphan], timeout=10)


def test_end_tree_kills_a_process_that_ignores_sigterm():
    code = ("import os, signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "os.write(1, b'ready\\n')\n"
            "time.sleep(600)\n")
    with started([sys.executable, "-c", code]) as (proc, _pids):
        assert _read_line(proc) == "ready"
        end_tree(proc.pid, grace=0.2)
        # SIGTERM alone would have left it running: only the escalation to SIGKILL ends it.
        assert_processes_end([proc.pid], timeout=10)
