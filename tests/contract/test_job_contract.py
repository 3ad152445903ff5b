"""What every job does wherever it runs (spec sections 2, 3 and 6)."""
from __future__ import annotations

import psutil
import pytest
from proc_helpers import assert_processes_end

import jobmagics
from jobmagics import JobError, JobState
from jobmagics.errors import CodeSyntaxError, ShipError


def test_last_expression_and_emit_are_the_output_in_order(host):
    job = host.run("from jobmagics import emit\nemit('first')\nemit({'n': 2})\n40 + 2")
    assert job.state == JobState.Completed and job.reason is None
    assert job.receive() == ["first", {"n": 2}, 42]
    assert not job.has_more_data and job.receive() == []


def test_text_streams_warnings_and_display(host, capsys):
    code = ("import sys, warnings\nprint('to out')\nprint('to err', file=sys.stderr)\n"
            "warnings.warn('watch out')\ndisplay('shown')\n")
    job = host.run(code)
    assert job.stdout == "to out\n" and job.stderr == "to err\n"
    assert "UserWarning: watch out" in job.warning[0]
    assert job.display[0]["data"]["text/plain"] == "'shown'"
    job.receive()
    out = capsys.readouterr()
    assert "to out" in out.out and "to err" in out.err and "watch out" in out.err


def test_progress_records(host):
    job = host.run("from jobmagics import progress\nfor i in range(1, 4):\n    progress(current=i, total=4, status='step')")
    assert [p["percent"] for p in job.progress] == [25.0, 50.0, 75.0]
    assert job.progress[0]["status"] == "step"


def test_uncaught_exception_fails_the_job_with_its_traceback(host):
    job = host.run("x = 1\nraise ValueError('bad value %d' % x)")
    assert job.state == JobState.Failed
    assert job.reason == "ValueError: bad value 1"
    (error,) = job.error
    assert isinstance(error, JobError) and error.ename == "ValueError"
    assert "raise ValueError('bad value %d' % x)" in error.traceback
    assert "threadhost" not in error.traceback and "runner.py" not in error.traceback


def test_sys_exit_fails_the_job_and_says_so(host):
    job = host.run("import sys\nsys.exit(3)")
    assert job.state == JobState.Failed and job.reason == "the job called sys.exit(3)"


def test_notebook_variables_and_functions_are_captured(host):
    exec("base = 10\ndef scale(v):\n    return v * base\n", host.namespace)
    host.namespace["__name__"] = "__main__"
    job = host.run("scale(4) + base")
    assert job.receive() == [50]
    assert set(job.shipped) == {"base", "scale"}
    assert job.shipped["base"]["type"] == "int"
    if host.thread:
        assert job.shipped["scale"]["codec"] == "reference"
    else:
        assert job.shipped["scale"]["codec"] == "dill" and job.shipped["scale"]["bytes"] > 0


def test_using_and_no_capture(host):
    host.namespace.update(a=1, b=2)
    job = host.run("a + b", using="a,b")
    assert job.receive() == [3]
    job = host.run("a", capture_names=False)
    assert job.state == JobState.Failed and "NameError" in job.reason


def test_init_code_runs_first_in_the_same_namespace(host):
    job = host.run("prefix + 'b'", init="prefix = 'a'")
    assert job.receive() == ["ab"]


def test_assignments_inside_a_job_do_not_leak(host):
    host.namespace["counter"] = 1
    host.run("counter = counter + 100")
    assert host.namespace["counter"] == 1


def test_callables_with_arguments(host):
    job = host.run(divmod, 17, 5)
    assert job.receive() == [(3, 2)] and job.command == "divmod(17, 5)"
    job = host.run(sorted, [3, 1, 2], kwargs={"reverse": True})
    assert job.receive() == [[3, 2, 1]]


def test_job_fields(host):
    job = host.run("1", name="fields")
    assert job.name == "fields" and job.location == host.location and job.command == "1"
    assert job.job_type == {"thread": "ThreadJob", "process": "BackgroundJob", "local-session": "RemoteJob",
                            "ssh": "RemoteJob"}[host.kind]
    assert job.begin_time <= job.end_time
    assert jobmagics.get_job(job.id) == [job]


def test_stop_a_busy_pure_python_loop(host):
    job = host.start("n = 0\nwhile True:\n    n += 1")
    job.stop()
    assert job.state == JobState.Stopped and job.finished


def test_stop_while_printing_keeps_what_was_printed(host):
    job = host.start("from jobmagics import emit\nemit('started')\nwhile True:\n    print('tick')")
    while "started" not in job.output:
        job.wait_for_activity(job.activity, timeout=5)
    job.stop()
    assert job.state == JobState.Stopped
    assert job.receive()[0] == "started"


def test_keep_and_drain(host):
    job = host.run("print('x')\n7")
    assert job.receive(keep=True) == [7] and job.has_more_data
    assert job.receive() == [7] and not job.has_more_data


def test_large_output_is_all_received_with_bounded_memory(host):
    job = host.run("for i in range(200_000):\n    print('%07d' % i + 'x' * 40)", timeout=120)
    assert job._log.spilled_bytes > 0 or len(job._log) < 200_000
    lines = job.stdout.splitlines()
    assert len(lines) == 200_000 and lines[-1].startswith("0199999")


def test_code_that_does_not_parse_starts_nothing(host):
    before = len(jobmagics.api.registry())
    with pytest.raises(CodeSyntaxError):
        host.start("def broken(:")
    assert len(jobmagics.api.registry()) == before


def test_unshippable_variable_is_named_and_nothing_starts(host):
    host.namespace["gen"] = (i for i in range(3))
    before = len(jobmagics.api.registry())
    if host.thread:  # a thread job shares the object: nothing to ship
        assert host.run("list(gen)").receive() == [[0, 1, 2]]
        return
    with pytest.raises(ShipError, match="'gen' \\(type generator\\)"):
        host.start("list(gen)")
    assert len(jobmagics.api.registry()) == before


def test_tqdm_bars_become_progress_records(host):
    pytest.importorskip("tqdm")
    if host.kind == "ssh":
        pytest.skip("the SSH host's bare Python has no tqdm")
    job = host.run("from tqdm import tqdm\nfor i in tqdm(range(20), desc='crunching', mininterval=0):\n    pass")
    assert job.state == JobState.Completed
    last = job.progress[-1]
    assert last["percent"] == 100.0 and last["status"] == "crunching" and last["activity"] == "tqdm"
    assert job.stderr == ""  # the bar went to progress, not to stderr as text (nor its closing newline)


# A job waiting for a child (a shell) that started a grandchild; it prints both pids first.
WAITS_FOR_A_CHILD = ("import subprocess\n"
                     "with subprocess.Popen(['sh', '-c', 'sleep 600 & echo $!; wait'], stdout=subprocess.PIPE,\n"
                     "                      text=True) as p:\n"
                     "    print(p.pid, p.stdout.readline().strip(), flush=True)\n    p.wait()")


def _pids_printed(job):
    while not job.stdout.endswith("\n"):
        assert job.wait_for_activity(job.activity, timeout=30), "the job printed no pids"
    return [int(pid) for pid in job.stdout.split()]


def test_a_stop_ends_the_processes_the_job_started_and_no_others(host):
    stopped, other = host.start(WAITS_FOR_A_CHILD), host.start(WAITS_FOR_A_CHILD)
    stopped_pids, other_pids = _pids_printed(stopped), _pids_printed(other)
    stopped.stop()
    assert stopped.state == JobState.Stopped and "abandoned" not in (stopped.reason or "")
    assert_processes_end(stopped_pids, timeout=30)
    assert not other.finished and all(psutil.pid_exists(pid) for pid in other_pids)
    other.stop()
    assert other.state == JobState.Stopped
    assert_processes_end(other_pids, timeout=30)
