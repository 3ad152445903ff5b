"""The magic line as IPython users type it (spec section 1), in a real kernel over the Jupyter protocol."""
from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]


def job_names(kernel):
    result = kernel.run("listed = %get_job --include-child-jobs\nsorted(j.name for j in listed)")
    assert result.ok, result.stderr
    return result.text


def one_line_usage_error(result, start):
    assert not result.errors, result.errors
    assert result.stderr.startswith("UsageError: " + start), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# ----- comments ------------------------------------------------------------------------
def test_a_trailing_comment_is_a_comment(kernel):
    assert kernel.run("%start_job --thread --name commented 'x'  # a job").ok
    listed = kernel.run("%get_job   # Id Name JobType State ...")
    assert listed.ok and "commented" in listed.text
    assert kernel.run("%wait_job commented  # until it is done").ok
    received = kernel.run("%receive_job commented  # -> 'x'")
    assert received.ok and received.text == "'x'"


def test_a_hash_inside_a_word_or_quotes_is_no_comment(kernel):
    assert kernel.run("%start_job --thread --name 'a # b' 1\n%start_job --thread --name c#1 2").ok
    assert kernel.run("%wait_job 'a # b' c#1").ok
    assert kernel.run("%receive_job c#1").text == "2"


# ----- IPython's expansion -------------------------------------------------------------
def test_braces_and_dollars_expand_in_flags_in_a_loop_and_a_function(kernel):
    cell = ("for i in range(3):\n"
            "    %start_job --thread --name run{i} i * 10\n"
            "def named(n):\n"
            "    job = %start_job --thread --name w$n n\n"
            "    return job\n"
            "named(7)")
    assert kernel.run(cell).ok
    assert kernel.run("%wait_job run* w7").ok
    names = job_names(kernel)
    assert "'run0', 'run1', 'run2'" in names and "'w7'" in names
    assert kernel.run("%receive_job run2").text == "20"


def test_dollar_attribute_braces_and_a_string_variable_name_a_job(kernel):
    assert kernel.run("j = %start_job --thread --name expanded 5").ok
    waited = kernel.run("%wait_job $j.id")
    assert waited.ok and "expanded" in waited.text
    assert kernel.run("%receive_job {j.name} --keep").text == "5"
    assert kernel.run("nm = 'expanded'\n%receive_job $nm").text == "5"


def test_a_variable_holding_jobs_means_those_jobs(kernel):
    assert kernel.run("p1 = %start_job --thread 1\np2 = %start_job --thread 2\npair = [p1, p2]").ok
    waited = kernel.run("%wait_job $pair\n[j.state.value for j in pair]")
    assert waited.text == "['Completed', 'Completed']"
    assert kernel.run("%receive_job $pair").text == "[1, 2]"


def test_double_dollar_and_single_quotes_keep_a_dollar(kernel):
    assert kernel.run("price = 5\n%start_job --thread --name cost$$price 1\n"
                      "%start_job --thread --name 'tag$price' 2").ok
    names = job_names(kernel)
    assert "'cost$price'" in names and "'tag$price'" in names


def test_the_code_is_never_expanded(kernel):
    assert kernel.run("x = 'notebook'\nv = %start_job --thread --name verbatim '$x {x}'").ok
    assert kernel.run("%wait_job verbatim").ok
    assert kernel.run("%receive_job $v").text == "'$x {x}'"


# ----- quotes and names -----------------------------------------------------------------
def test_a_quoted_name_is_the_name_without_quotes_in_every_verb(kernel):
    assert kernel.run('%start_job --thread --name "My Job" import time; time.sleep(30)').ok
    assert "My Job" in kernel.run('%get_job "My Job"').text
    assert kernel.run('%stop_job "My Job"').ok
    assert "Stopped" in kernel.run("%wait_job 'My Job'").text
    assert kernel.run('%receive_job "My Job"').ok
    assert kernel.run('%remove_job "My Job"').ok
    assert "'My Job'" not in job_names(kernel)


def test_wildcards_and_a_did_you_mean(kernel):
    assert kernel.run("%start_job --thread --name crunch-a 1\n%start_job --thread --name crunch-b 2").ok
    assert kernel.run("%wait_job crunch-?").ok
    assert kernel.run("%receive_job crunch-*").text == "[1, 2]"
    one_line_usage_error(kernel.run("%get_job crnch-a"), "no job with id or name 'crnch-a' (did you mean 'crunch-a'?)")


# ----- several values -------------------------------------------------------------------
def test_several_values_as_words_or_comma_lists(kernel):
    assert kernel.run("a, b, c = 1, 2, 3").ok
    started = kernel.run("s1 = %start_job --thread --using a b --name words a + b\n"
                         "s2 = %start_job --thread --using a,c comma_list_code = a + c\n"
                         "%wait_job $s1 $s2\n(sorted(s1.shipped), sorted(s2.shipped))")
    assert started.ok, started.stderr
    assert "['a', 'b']" in started.text and "['a', 'c']" in started.text


def test_an_ambiguous_line_says_what_was_taken_as_code(kernel):
    before = job_names(kernel)
    result = kernel.run("a, b = 1, 2\n%start_job --thread --using a b a + b")
    one_line_usage_error(result, "job code does not parse (line 1): invalid syntax; taken as code: 'b a + b' "
                                 "(--using took 'a': join a flag's values with commas, or end the flags with --)")
    assert job_names(kernel) == before
    needs = kernel.run("%start_job --thread --using a,b")
    one_line_usage_error(needs, "%start_job needs code to run (--using took 'a,b'; end the flags with --)")


# ----- mistakes: one line, nothing changed ----------------------------------------------
@pytest.mark.parametrize("line, message", [
    ("%get_job '", "unbalanced ' quote in '"),
    ('%start_job --name "open 1', 'unbalanced " quote in "open'),
    ("%remove_session 'x", "unbalanced ' quote"),
    ("%get_job --nope", "unrecognized arguments: --nope"),
    ("%wait_job --timeout soon", "argument --timeout: invalid float value: 'soon'"),
    ("%wait_job $no_such_variable", "no variable named 'no_such_variable'"),
    ("%wait_job $os.nope", "$os.nope: module 'os' has no attribute 'nope'"),
    ("empty = []\n%stop_job $empty", "$empty is empty"),
    ("%remove_session", "the following arguments are required: S"),
    ("%remove_session nosuch-session", "no session with id or name 'nosuch-session'"),
    ("%start_job --thread -- ", "%start_job needs code to run"),
    ("%exit_session extra", "unrecognized arguments: extra"),
])
def test_mistakes_are_one_line_and_change_nothing(kernel, line, message):
    assert kernel.run("import os").ok
    before = job_names(kernel)
    one_line_usage_error(kernel.run(line), message)
    assert job_names(kernel) == before


# ----- the job table --------------------------------------------------------------------
def test_the_table_shows_why_a_job_failed_and_a_command_s_first_line(kernel):
    assert kernel.run("%%start_job --thread --name broken\nx = 1\n1 / 0").ok
    assert kernel.run("%wait_job broken").ok
    table = kernel.run("%get_job broken").text.splitlines()
    assert table[0].split()[-1] == "Reason"
    assert table[2].split()[1] == "broken"
    assert "x = 1 ..." in table[2] and "ZeroDivisionError: division by zero" in table[2]


# ----- tab completion over the Jupyter protocol ----------------------------------------
def completion_of(kernel, code):
    return set(kernel.complete(code))


def test_completion_offers_jobs_flags_states_and_variables_only(kernel):
    assert kernel.run("%start_job --thread --name completable 1\nmy_variable = 1").ok
    jobs = completion_of(kernel, "%receive_job ")
    assert "completable" in jobs and jobs.isdisjoint({"and", "if", "in", "is", "not", "or", "print", "abs"})
    assert completion_of(kernel, "%receive_job compl") == {"completable"}
    assert completion_of(kernel, "%wait_job --") == {"--any", "--timeout", "--session"}
    assert completion_of(kernel, "%get_job --state ") == {
        "NotStarted", "Running", "Completed", "Failed", "Stopping", "Stopped", "Disconnected", "Blocked"}
    assert completion_of(kernel, "%get_job --state Fa") == {"Failed"}
    assert completion_of(kernel, "%get_job --type Th") == {"ThreadJob"}
    assert completion_of(kernel, "%%start_job --na") == {"--name"}
    assert completion_of(kernel, "%wait_job $my_var") == {"my_variable"}
    assert completion_of(kernel, "%get_job one,compl") == {"completable"}


def test_completion_offers_nothing_unrelated_where_nothing_fits(kernel):
    # The word as typed is all there is: a frontend shows no Python keywords or builtins there.
    assert completion_of(kernel, "%start_job --name ") <= {""}
    assert completion_of(kernel, "%remove_session ") <= {""}
    assert completion_of(kernel, "%get_job --state Zz") <= {"Zz"}


# ----- errors fail the cell -------------------------------------------------------------
@pytest.fixture(scope="module")
def local_sessions(kernel):
    names = ["line-a-%d" % os.getpid(), "line-b-%d" % os.getpid()]
    for name in names:
        opened = kernel.run("%%new_session --local --name %s" % name)
        assert opened.ok, opened.stderr
    yield names
    kernel.run("%%remove_session %s" % " ".join(names))


def test_an_error_in_invoke_fails_the_cell(kernel, local_sessions):
    result = kernel.run("%%%%invoke --session %s\nprint('before')\n1 / 0" % local_sessions[0])
    assert result.reply["content"]["status"] == "error"
    assert "before" in result.stdout
    (ename, evalue, traceback), = result.errors
    assert ename == "JobError" and "ZeroDivisionError" in evalue
    assert any("1 / 0" in line for line in traceback)


def test_invoke_takes_several_sessions_as_words_wildcards_or_a_variable(kernel, local_sessions):
    first, second = local_sessions
    words = kernel.run("%%invoke --session %s %s --as-job --job-name both 6 * 7\n%%wait_job both" % (first, second))
    assert words.ok, words.stderr
    assert kernel.run("%receive_job both").text == "[42, 42]"
    pattern = kernel.run("%%invoke --session line-?-%d 1 + 1" % os.getpid())
    assert pattern.ok and pattern.text == "[2, 2]"
    variable = kernel.run("where = %r\n%%invoke --session $where 'from a list'" % [first, second])
    assert variable.ok and variable.text == "['from a list', 'from a list']"


def test_session_names_take_wildcards(kernel, local_sessions):
    listed = kernel.run("%%get_session line-?-%d" % os.getpid())
    assert listed.ok and all(name in listed.text for name in local_sessions)
    assert kernel.run("%remove_session no-such-*").ok  # a pattern that matches nothing selects nothing


def test_a_list_of_hosts_in_a_variable_is_several_computers(kernel):
    # Nothing listens for SSH on 127.0.0.3 and .4: each child fails at once, naming its computer.
    started = kernel.run("hosts = ['127.0.0.3', '127.0.0.4']\n"
                         "fan = %invoke --computer $hosts --as-job --job-name fan 1\n"
                         "%wait_job fan\n[c.location for c in fan.child_jobs]")
    assert started.ok, started.stderr
    assert started.results[-1]["text/plain"] == "['127.0.0.3', '127.0.0.4']"
    assert kernel.run("%remove_job fan").ok


def test_a_session_name_gets_a_did_you_mean(kernel, local_sessions):
    misspelt = local_sessions[0].replace("line", "lnie")
    one_line_usage_error(kernel.run("%%invoke --session %s 1" % misspelt),
                         "no session with id or name %r (did you mean %r?)" % (misspelt, local_sessions[0]))


def test_an_error_in_an_entered_session_fails_the_cell(kernel, local_sessions):
    entered = kernel.run("%%enter_session %s  # every cell now runs there" % local_sessions[1])
    assert entered.ok, entered.stderr
    try:
        failed = kernel.run("there = 1\nthere / 0")
        assert failed.reply["content"]["status"] == "error"
        (ename, evalue, _), = failed.errors
        assert ename == "JobError" and "ZeroDivisionError" in evalue
        assert kernel.run("there + 1").text == "2"
    finally:
        assert kernel.run("%exit_session").ok


def test_jobs_from_an_entered_session_show_as_the_job_table(kernel, local_sessions):
    assert kernel.run("%%enter_session %s" % local_sessions[1]).ok
    try:
        started = kernel.run("inside = %start_job --name inside 6 * 7\n%wait_job inside")
        assert started.ok, started.stderr
        listed = kernel.run("%get_job inside")
        assert listed.ok, listed.stderr
        table = listed.text.splitlines()
        assert table[0].split()[:4] == ["Id", "Name", "JobType", "State"]
        assert table[2].split()[1:4] == ["inside", "ThreadJob", "Completed"]
        assert "unshippable" not in listed.text and "<table" in listed.results[-1]["text/html"]
    finally:
        assert kernel.run("%exit_session").ok
