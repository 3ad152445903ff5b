import pytest

from jobmagics.core import runner
from jobmagics.core.runner import StopJob, Work, compile_cell, describe_exception, outcome_of, run_work
from jobmagics.core.states import JobState


@pytest.fixture
def as_host(monkeypatch):
    """This file catches job exceptions the way a host does, so its frames lead into the job too."""
    monkeypatch.setattr(runner, "INTERNAL_FILES", runner.INTERNAL_FILES | {__file__})


def _failure(work):
    emitted = []
    try:
        run_work(work, emitted.append)
    except BaseException as exc:  # like a host: everything the work raises ends up here
        return exc, emitted
    raise AssertionError("the work did not raise")


# ----- compile_cell ---------------------------------------------------------------------

def test_compile_cell_splits_the_last_expression():
    body, last = compile_cell("x = 20\nx + 1", "<cell>")
    namespace = {}
    exec(body, namespace)
    assert namespace["x"] == 20
    assert last is not None and eval(last, namespace) == 21


@pytest.mark.parametrize("code", ["x = 1", "x = 1\ny = x + 1", "x = 1\nx += 1", "def f():\n    return 1", ""])
def test_compile_cell_has_no_last_expression_when_the_cell_ends_in_a_statement(code):
    body, last = compile_cell(code, "<cell>")
    assert last is None
    exec(body, {})


def test_compile_cell_body_does_not_run_the_last_expression():
    body, last = compile_cell("seen = []\nseen.append(1)", "<cell>")
    namespace = {}
    exec(body, namespace)
    assert namespace["seen"] == []
    eval(last, namespace)
    assert namespace["seen"] == [1]


def test_compile_cell_reports_syntax_errors_with_the_filename():
    with pytest.raises(SyntaxError) as info:
        compile_cell("x = (", "<cell-x>")
    assert info.value.filename == "<cell-x>"


# ----- run_work ---------------------------------------------------------------------------

def test_run_work_returns_and_emits_the_last_value():
    emitted = []
    assert run_work(Work(code="a = 6\na * 7"), emitted.append) == 42
    assert emitted == [42]


def test_run_work_without_a_value_emits_nothing():
    emitted = []
    assert run_work(Work(code="a = 6"), emitted.append) is None
    assert run_work(Work(code="None"), emitted.append) is None
    assert run_work(Work(code=""), emitted.append) is None
    assert emitted == []


def test_run_work_runs_init_first_in_the_same_namespace():
    order = []
    work = Work(code="order.append('code')\nbase * 2", init="order.append('init')\nbase = 21",
                namespace={"order": order})
    emitted = []
    assert run_work(work, emitted.append) == 42
    assert order == ["init", "code"]
    assert work.namespace["base"] == 21
    assert emitted == [42]  # init's own last expression is not the job's value


def test_run_work_code_sees_its_variables_as_main_without_changing_the_callers_dict():
    variables = {"n": 5}
    work = Work(code="n = n + 1\n(__name__, n)", namespace=variables)
    assert run_work(work, lambda value: None) == ("__main__", 6)
    assert variables == {"n": 5}


def test_run_work_calls_a_callable_with_args_and_kwargs():
    emitted = []

    def combine(a, b, *, sep="-"):
        return "%s%s%s" % (a, sep, b)

    work = Work(fn=combine, args=["x", "y"], kwargs={"sep": "+"})
    assert run_work(work, emitted.append) == "x+y"
    assert emitted == ["x+y"]


def test_run_work_callable_returning_none_emits_nothing():
    emitted = []
    assert run_work(Work(fn=lambda: None), emitted.append) is None
    assert emitted == []


# ----- describe_exception ----------------------------------------------------------------

def test_traceback_starts_at_the_job_code_and_shows_its_lines(as_host):
    exc, _ = _failure(Work(code="x = 1\ndef inner():\n    raise ValueError('bad value')\ninner()"))
    record = describe_exception(exc)
    assert record["ename"] == "ValueError" and record["evalue"] == "bad value"
    lines = record["traceback"].splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].startswith('  File "<job-') and lines[1].endswith("line 4, in <module>")
    assert lines[2].strip() == "inner()"
    assert "raise ValueError('bad value')" in record["traceback"]
    assert lines[-1] == "ValueError: bad value"
    assert "runner.py" not in record["traceback"] and __file__ not in record["traceback"]


def test_traceback_of_a_failing_init_names_the_init_code(as_host):
    exc, emitted = _failure(Work(code="'never'", init="1 / 0"))
    text = describe_exception(exc)["traceback"]
    assert '"<job-init-' in text.splitlines()[1]
    assert "1 / 0" in text
    assert emitted == []


def test_syntax_error_in_job_code_shows_the_job_line(as_host):
    exc, _ = _failure(Work(code="x = 1\ny = (x +"))
    record = describe_exception(exc)
    assert record["ename"] == "SyntaxError"
    assert '"<job-' in record["traceback"] and "y = (x +" in record["traceback"]
    assert "runner.py" not in record["traceback"]


def test_syntax_error_traceback_has_no_frames_outside_the_job(as_host):
    exc, _ = _failure(Work(code="x = 1\ny = (x +"))
    text = describe_exception(exc)["traceback"]
    files = [line for line in text.splitlines() if line.startswith('  File "')]
    assert files and all(line.startswith('  File "<job-') for line in files), text


def test_traceback_of_a_callable_starts_at_the_callable(as_host):
    namespace = {}
    exec(compile("def work(n):\n    return 10 // n\n", "<user-module>", "exec"), namespace)
    exc, _ = _failure(Work(fn=namespace["work"], args=(0,)))
    lines = describe_exception(exc)["traceback"].splitlines()
    assert lines[1] == '  File "<user-module>", line 2, in work'
    assert lines[-1] == "ZeroDivisionError: integer division or modulo by zero"


# ----- outcome_of --------------------------------------------------------------------------

def test_outcome_of_success():
    assert outcome_of(None, False) == (JobState.Completed, None, None)


def test_outcome_of_success_after_a_stop_request_is_stopped():
    assert outcome_of(None, True) == (JobState.Stopped, "stopped on request", None)


@pytest.mark.parametrize("stop_requested", [False, True])
def test_outcome_of_stopjob_is_stopped(stop_requested):
    assert outcome_of(StopJob(), stop_requested) == (JobState.Stopped, "stopped on request", None)


def test_outcome_of_keyboard_interrupt_depends_on_a_stop_request(as_host):
    assert outcome_of(KeyboardInterrupt(), True) == (JobState.Stopped, "stopped on request", None)
    state, reason, record = outcome_of(KeyboardInterrupt(), False)
    assert state == JobState.Failed and record["ename"] == "KeyboardInterrupt"


def test_outcome_of_system_exit_says_the_job_called_sys_exit(as_host):
    exc, _ = _failure(Work(code="import sys\nsys.exit(3)"))
    state, reason, record = outcome_of(exc, False)
    assert state == JobState.Failed
    assert reason == "the job called sys.exit(3)"
    assert record["ename"] == "SystemExit" and "sys.exit(3)" in record["traceback"]


def test_outcome_of_an_exception_is_failed_with_its_record(as_host):
    exc, _ = _failure(Work(code="{}['missing']"))
    state, reason, record = outcome_of(exc, False)
    assert state == JobState.Failed
    assert reason == "KeyError: 'missing'"
    assert record == describe_exception(exc)
    assert record["traceback"].splitlines()[-1] == "KeyError: 'missing'"


def test_outcome_of_an_exception_is_failed_even_if_a_stop_was_requested():
    state, reason, _ = outcome_of(ValueError("late"), True)
    assert (state, reason) == (JobState.Failed, "ValueError: late")


def test_stopjob_is_not_an_exception_job_code_catches():
    assert not issubclass(StopJob, Exception) and issubclass(StopJob, BaseException)


def test_the_same_code_is_compiled_once_and_each_run_gets_its_own_namespace():
    from jobmagics.core import runner

    code = "value = value + 1\nvalue  # compiled once"
    assert run_work(Work(code=code, namespace={"value": 1}), lambda v: None) == 2
    hits = runner._compiled.cache_info().hits
    assert run_work(Work(code=code, namespace={"value": 10}), lambda v: None) == 11
    assert runner._compiled.cache_info().hits == hits + 1


def test_a_failure_of_code_run_before_still_shows_its_lines(as_host):
    code = "x = 1\nraise ValueError('again')"
    for _ in range(2):
        exc, _ = _failure(Work(code=code))
        text = describe_exception(exc)["traceback"]
        assert "raise ValueError('again')" in text


def test_a_second_copy_of_the_core_in_the_process_never_overwrites_a_jobs_lines(as_host, monkeypatch):
    import itertools

    # Another copy's counter (a shipped core loaded beside this one) hands out names this one used.
    exc, _ = _failure(Work(code="raise ValueError('first copy')"))
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    taken = tb.tb_frame.f_code.co_filename  # "<job-N>"
    monkeypatch.setattr(runner, "_code_numbers", itertools.count(int(taken[len("<job-"):-1])))
    second, _ = _failure(Work(code="x = 2\nraise KeyError('second copy')"))
    assert "raise ValueError('first copy')" in describe_exception(exc)["traceback"]
    assert "raise KeyError('second copy')" in describe_exception(second)["traceback"]
