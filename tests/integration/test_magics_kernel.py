"""The job magics in a real kernel, driven over the Jupyter protocol."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]


def count_jobs(kernel):
    result = kernel.run("jobs_now = %get_job --include-child-jobs\nlen(jobs_now)")
    assert result.ok, result.stderr
    return int(result.text)


def test_loading_twice_is_harmless(kernel):
    result = kernel.run("%load_ext jobmagics")
    assert result.ok and "already loaded" in result.stdout


def test_start_wait_receive_a_process_job(kernel):
    kernel.run("base = 5\ndef square(v):\n    return v * v")
    started = kernel.run("j = %start_job --name sq print('hello', base); square(base)\nj")
    assert started.ok, started.stderr
    assert "Id" in started.text and "BackgroundJob" in started.text and "sq" in started.text
    assert "<table" in started.results[-1]["text/html"]
    waited = kernel.run("%wait_job sq")
    assert waited.ok and "Completed" in waited.text
    received = kernel.run("%receive_job $j")
    assert received.ok and received.stdout == "hello 5\n" and received.text == "25"
    again = kernel.run("%receive_job j")
    assert again.ok and again.stdout == "" and again.text is None


def test_thread_job_receive_keep(kernel):
    result = kernel.run("t = %start_job --thread print('in thread'); [1, 2]\n%wait_job $t")
    assert result.ok, result.stderr
    kept = kernel.run("%receive_job $t --keep")
    assert kept.stdout == "in thread\n" and kept.text == "[1, 2]"
    drained = kernel.run("%receive_job $t")
    assert drained.stdout == "in thread\n" and drained.text == "[1, 2]"
    assert kernel.run("t.has_more_data").text == "False"


def test_cell_magic_and_streams_errors_and_display(kernel):
    cell = ("%%start_job --name cellular\nimport sys\nfrom jobmagics import emit\nprint('out')\n"
            "print('err', file=sys.stderr)\nemit('one')\ndisplay({'a': 1})\n"
            "raise KeyError('missing')")
    assert kernel.run(cell).ok
    assert "Failed" in kernel.run("%wait_job cellular").text
    received = kernel.run("%receive_job cellular")
    assert received.stdout == "out\n" and received.stderr == "err\n"
    assert received.displays and received.displays[0]["text/plain"] == "{'a': 1}"
    assert received.text == "'one'"
    (ename, evalue, traceback), = received.errors
    assert ename == "JobError"
    assert any("raise KeyError('missing')" in line for line in traceback)


@pytest.mark.parametrize("line, message", [
    ("%start_job --bogus 1", "UsageError: unrecognized arguments: --bogus"),
    ("%receive_job 9999", "UsageError: no job with id 9999"),
    ("%receive_job nosuchjob", "UsageError: no job with id or name 'nosuchjob'"),
    ("%start_job 1 +", "UsageError: job code does not parse (line 1): invalid syntax"),
    ("import socket\nsock = socket.socket()\n%start_job sock.fileno()",
     "UsageError: cannot send variable 'sock' (type socket.socket) to the job"),
    ("%receive_job 1 --wait --keep", "UsageError: --wait and --keep cannot be used together"),
    ("%wait_job $undefined_name", "UsageError: no variable named 'undefined_name'"),
    ("notajob = 'nosuch'\n%stop_job $notajob", "UsageError: no job with id or name 'nosuch'"),
    ("import os\n%stop_job $os", "UsageError: <module 'os'"),
    ("%get_job --state Done", "UsageError: unknown job state 'Done'"),
    ("%start_job --thread", "UsageError: %start_job needs code to run"),
    ("%%start_job --thread 1 + 1\n2", "UsageError: %%start_job takes only flags on its line, not code: '1 + 1'"),
])
def test_bad_input_is_one_line_and_changes_nothing(kernel, line, message):
    before = count_jobs(kernel)
    result = kernel.run(line)
    assert not result.errors
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert count_jobs(kernel) == before


def test_background_output_never_lands_in_the_running_cell(kernel):
    assert kernel.run("import threading\ngo = threading.Event()").ok
    cell = "%%start_job --thread --name noisy\ngo.wait()\nfor i in range(3000): print('job line', i)\ndisplay('job display')"
    assert kernel.run(cell).ok
    result = kernel.run("go.set()\nprint('cell says hi')\n%wait_job noisy")
    assert result.stdout == "cell says hi\n"
    assert not result.displays
    received = kernel.run("_ = %receive_job noisy")
    assert received.stdout.count("job line") == 3000
    assert received.displays[0]["text/plain"] == "'job display'"


def test_process_job_output_never_lands_in_the_running_cell(kernel):
    assert kernel.run("chatty = %start_job for i in range(3000): print('proc line', i)").ok
    result = kernel.run("%wait_job $chatty")
    assert result.stdout == "" and "Completed" in result.text
    assert kernel.run("%receive_job $chatty").stdout.count("proc line") == 3000


def test_stop_job_stops_a_busy_thread_job(kernel):
    assert kernel.run("busy = %start_job --thread --name busy while True: pass").ok
    result = kernel.run("%stop_job busy\nbusy.state")
    assert result.ok and result.text == "<JobState.Stopped: 'Stopped'>"


def test_remove_job_refuses_running_jobs_without_force(kernel):
    assert kernel.run("spin = %start_job --thread --name spin while True: pass").ok
    refused = kernel.run("%remove_job spin")
    assert refused.stderr.startswith("UsageError: job spin is Running: stop it first or use --force")
    assert "spin" in kernel.run("%get_job spin").text
    assert kernel.run("%remove_job spin --force").ok
    gone = kernel.run("%get_job spin")
    assert gone.stderr.startswith("UsageError: job spin is not in this registry (removed?)")
    assert kernel.run("spin.state").text == "<JobState.Stopped: 'Stopped'>"


def test_remove_job_by_state(kernel):
    assert kernel.run("done = %start_job --thread 1\n%wait_job $done").ok
    assert kernel.run("%remove_job --state Completed").ok
    assert kernel.run("%get_job --state Completed").text == "(no jobs)"


def test_get_job_filters_and_table(kernel):
    assert kernel.run("f1 = %start_job --thread --name filt-a 1\nf2 = %start_job --name filt-b 2\n%wait_job $f1 $f2").ok
    table = kernel.run("%get_job filt-*").text.splitlines()
    assert table[0].split() == ["Id", "Name", "JobType", "State", "HasMoreData", "Location", "Command"]
    assert [row.split()[1] for row in table[2:]] == ["filt-a", "filt-b"]
    assert "filt-b" not in kernel.run("%get_job filt-* --type ThreadJob").text
    kernel.run("%receive_job filt-a")
    assert "filt-a" not in kernel.run("%get_job filt-* --has-more-data").text


def test_wait_job_any_and_timeout(kernel):
    kernel.run("import threading\ngate = threading.Event()")
    kernel.run("slow = %start_job --thread gate.wait()\nquick = %start_job --thread 1")
    any_result = kernel.run("finished = %wait_job $slow $quick --any\n[j.name for j in finished]")
    assert any_result.text == "[%r]" % kernel.run("quick.name").text.strip("'")
    timed = kernel.run("%wait_job $slow --timeout 0.05")
    assert timed.ok and timed.text == "(no jobs)"
    kernel.run("gate.set()\n%wait_job $slow")


def test_interrupting_wait_job_stops_the_waiting_not_the_job(kernel):
    assert kernel.run("%%start_job --name endless\nimport time\nwhile True:\n    time.sleep(0.05)").ok
    assert kernel.run("endless = %get_job endless\nendless = endless[0]").ok
    client = kernel.client
    msg_id = client.execute("print('waiting', flush=True)\n%wait_job endless")
    while True:  # the cell has started waiting once it printed its marker
        msg = client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            break
    kernel.manager.interrupt_kernel()
    reply = kernel.shell_reply(msg_id, timeout=30)
    assert kernel.run("str(endless.state)").text == "'Running'"
    assert kernel.run("%stop_job endless\nstr(endless.state)").text == "'Stopped'"


def test_interrupting_receive_wait_keeps_what_it_took(kernel):
    cell = ("%%start_job --name emitter\nfrom jobmagics import emit\nimport time\nemit('early')\n"
            "while True:\n    print('tick', flush=True)\n    time.sleep(0.05)")
    assert kernel.run(cell).ok
    client = kernel.client
    msg_id = client.execute("got = None\ngot = %receive_job emitter --wait")
    while True:  # the job's ticks reaching the cell show the receive is streaming
        msg = client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and "tick" in msg["content"].get("text", ""):
            break
    kernel.manager.interrupt_kernel()
    reply = kernel.shell_reply(msg_id, timeout=30)
    state = kernel.run("emitter = %get_job emitter\nstr(emitter[0].state)").text
    assert state == "'Running'"
    try:
        assert kernel.run("got").text == "'early'"
    finally:
        kernel.run("%stop_job emitter")


def test_tab_completion_offers_job_names(kernel):
    kernel.run("%start_job --thread --name completable 1")
    assert "completable" in kernel.complete("%receive_job comp")
