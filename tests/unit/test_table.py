from IPython.lib.pretty import pretty

from jobmagics.core.job import Job
from jobmagics.core.registry import JobRegistry
from jobmagics.core.states import JobState
from jobmagics.core.table import COLUMNS, JobList, html_table, text_table


def make_job(command="x + 1", job_id=1, name=None, job_type="ThreadJob"):
    job = Job(command, job_type, name=name or "Job%d" % job_id)
    job.id = job_id
    return job


def test_text_table_has_a_header_a_rule_and_a_row_per_job():
    first = make_job("sum(range(10))", 1)
    second = make_job("print('hi')", 2, name="printer", job_type="BackgroundJob")
    second._set_state(JobState.Running)
    second._record("stdout", "hi\n")
    lines = text_table([first, second]).splitlines()
    assert lines[0].split() == list(COLUMNS)
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["1", "Job1", "ThreadJob", "NotStarted", "False", "localhost", "sum(range(10))"]
    assert lines[3].split() == ["2", "printer", "BackgroundJob", "Running", "True", "localhost", "print('hi')"]
    assert len(lines) == 4


def test_text_table_columns_line_up():
    jobs = [make_job("a", 1, name="short"), make_job("b", 22, name="a-much-longer-name")]
    lines = text_table(jobs).splitlines()
    starts = [lines[0].index(column) for column in COLUMNS]
    rule_starts = [i for i, ch in enumerate(lines[1]) if ch == "-" and (i == 0 or lines[1][i - 1] == " ")]
    assert rule_starts == starts
    for line in lines[2:]:
        assert line[starts[1]:].startswith(("short", "a-much-longer-name"))
        assert line[starts[-1]:] in ("a", "b")
        assert line == line.rstrip()


def test_long_commands_are_shortened_with_dots():
    command = "result = compute(" + ", ".join("arg%d" % i for i in range(30)) + ")"
    row = text_table([make_job(command)]).splitlines()[2]
    shown = row[row.index("result"):]
    assert shown.endswith("...") and len(shown) == 40
    assert command.startswith(shown[:-3])


def test_a_command_of_exactly_the_width_is_not_shortened():
    command = "x" * 40
    assert text_table([make_job(command)]).splitlines()[2].endswith(command)


def test_a_multi_line_command_shows_its_first_line_and_an_ellipsis():
    row = text_table([make_job("\na  =  1\nb = 2\n\n    a +  b\n")]).splitlines()[2]
    assert row.endswith("localhost  a = 1 ...")


def test_a_reason_column_says_why_a_job_failed_shortened():
    ok, failed = make_job("1", 1), make_job("1 / 0", 2)
    assert "Reason" not in text_table([ok, failed])
    failed._set_state(JobState.Running)
    failed._set_state(JobState.Failed, "ZeroDivisionError: division by zero\n" + "x" * 80)
    lines = text_table([ok, failed]).splitlines()
    assert lines[0].split()[-1] == "Reason"
    assert lines[3].endswith("ZeroDivisionError: division by zero ...")
    assert lines[2].endswith("1")
    assert "<th>Reason</th>" in html_table([failed])


def test_child_jobs_fold_under_their_parent_with_an_indented_id():
    parent = make_job("parent work", 1)
    for child_id in (2, 3):
        parent._add_child(make_job("child work", child_id, job_type="ChildJob"))
    other = make_job("other", 4)
    lines = text_table([parent, other]).splitlines()[2:]
    assert [line.split()[0] for line in lines] == ["1", "2", "3", "4"]
    assert lines[0].startswith("1 ") and lines[3].startswith("4 ")
    assert lines[1].startswith("  2 ") and lines[2].startswith("  3 ")
    assert "ChildJob" in lines[1] and "ChildJob" in lines[2]


def test_a_list_with_children_included_shows_each_child_once():
    parent = Job("parent work", "ParentJob")
    parent._add_child(Job("child work", "ChildJob"))
    parent._add_child(Job("child work", "ChildJob"))
    registry = JobRegistry()
    registry.add(parent)
    jobs = registry.select(include_children=True)
    assert len(jobs) == 3
    ids = [line.split()[0] for line in text_table(jobs).splitlines()[2:]]
    assert sorted(ids) == ["1", "2", "3"]


def test_html_table_has_the_columns_and_escapes_html():
    job = make_job("print('<b>bold</b> & \"q\"')", 1, name="<script>alert(1)</script>")
    table = html_table([job])
    assert table.startswith('<table class="jobmagics-jobs">') and table.endswith("</table>")
    assert "".join("<th>%s</th>" % c for c in COLUMNS) in table
    assert "<script>" not in table and "<b>" not in table
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in table
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;q&quot;" in table
    assert table.count("<tr>") == 2


def test_html_table_folds_children_too():
    parent = make_job("p", 1)
    parent._add_child(make_job("c", 2))
    table = html_table([parent])
    assert "<td>1</td>" in table and "<td>  2</td>" in table
    assert table.count("<tr>") == 3


def test_empty_job_list_reprs():
    jobs = JobList()
    assert pretty(jobs) == "(no jobs)"
    assert jobs._repr_html_() == "<p>(no jobs)</p>"


def test_job_list_shows_as_one_table():
    jobs = JobList([make_job("a", 1), make_job("b", 2)])
    assert pretty(jobs) == text_table(jobs)
    assert jobs._repr_html_() == html_table(jobs)
    assert isinstance(jobs, list) and len(jobs) == 2


def test_a_single_job_shows_as_a_one_row_table():
    job = make_job("a", 7)
    assert pretty(job) == text_table([job])
    assert job._repr_html_() == html_table([job])
