"""Live job widgets in a real kernel, checked through the comm messages a frontend receives."""
from __future__ import annotations

import pytest

from kernel_driver import Kernel
from widget_mirror import WidgetMirror

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

PROGRESS_JOB = """%%start_job --name {name}
from jobmagics import progress
import time
for i in range(1, 11):
    progress(current=i, total=10, status='step %d' % i)
    print('line', i)
    time.sleep(0.05)
'done'
"""


@pytest.fixture(scope="module")
def kernel():
    with Kernel() as k:
        assert k.run("%load_ext jobmagics").ok
        yield k
        k.run("%remove_job --state Running --force")


@pytest.fixture
def mirror(kernel):
    return WidgetMirror(kernel.client)


def test_a_job_shows_as_a_widget_with_text_and_html_fallbacks(kernel):
    result = kernel.run(PROGRESS_JOB.format(name="fallbacks"))
    bundle = result.results[-1]
    assert set(bundle) >= {"text/plain", "application/vnd.jupyter.widget-view+json", "text/html"}
    assert bundle["text/plain"].split()[:7] == ["Id", "Name", "JobType", "State", "HasMoreData", "Location", "Command"]
    assert "HBox" not in bundle["text/plain"] and "VBox" not in bundle["text/plain"]
    assert "<table" in bundle["text/html"]
    kernel.run("%wait_job fallbacks\n%remove_job fallbacks")


def test_widget_follows_the_job_to_its_final_state_with_progress_and_tail(kernel, mirror):
    kernel.client.execute(PROGRESS_JOB.format(name="followed"))
    mirror.wait_for(lambda m: m.find("<b>followed</b>"))
    mirror.wait_for(lambda m: m.find(">Completed</span>"))
    bars = [cid for cid, s in mirror.models.items() if s.get("_model_name") == "FloatProgressModel"]
    mirror.wait_for(lambda m: any(m.models[b].get("value") == 100.0 for b in bars))
    mirror.wait_for(lambda m: m.find("line 10", "HTMLModel"))
    tail = mirror.models[mirror.find("jobmagics-tail")[-1]]["value"]
    assert "line 1\n" in tail and "line 10" in tail
    labels = [s.get("value") for s in mirror.models.values() if s.get("_model_name") == "LabelModel"]
    assert "step 10 100%" in labels
    kernel.run("%remove_job followed")


def test_updates_stay_throttled_under_a_chatty_job(kernel, mirror):
    chatty = ("%%start_job --thread --name chatty\nimport time\nend = time.monotonic() + 2\n"
              "n = 0\nwhile time.monotonic() < end:\n    n += 1\n    print('chatter', n)\nn")
    kernel.client.execute(chatty)
    mirror.wait_for(lambda m: m.find("<b>chatty</b>"))
    mirror.wait_for(lambda m: m.find(">Completed</span>"))
    parent = mirror.parents[mirror.find("<b>chatty</b>")[0]]
    tail_id = [cid for cid in mirror.find("jobmagics-tail") if mirror.parents[cid] == parent][0]
    lines = kernel.run("chatty_job = %get_job chatty\nchatty_job = chatty_job[0]\nlen(chatty_job.stdout.splitlines())")
    printed = int(lines.text)
    seconds = float(kernel.run("(chatty_job.end_time - chatty_job.begin_time).total_seconds()").text)
    # The view redraws at most 4 times a second, whatever the job prints (thousands of lines here).
    assert printed > 1000
    assert mirror.updates[tail_id] <= seconds * 4 + 3
    kernel.run("%remove_job chatty")


def test_stop_button_works_while_another_cell_waits_on_the_job(kernel, mirror):
    kernel.client.execute("%%start_job --name stoppable\nimport time\nwhile True:\n    time.sleep(0.05)")
    stop = mirror.view_button("stoppable", "Stop", state="Running")
    wait_id = kernel.client.execute("%wait_job stoppable")
    mirror.click(stop)  # the kernel is busy in %wait_job: the click must still stop the job
    reply = kernel.shell_reply(wait_id, timeout=60)
    assert reply["content"]["status"] == "ok"
    assert kernel.run("stoppable = %get_job stoppable\nstr(stoppable[0].state)").text == "'Stopped'"
    kernel.run("%remove_job stoppable")


def test_receive_button_shows_what_it_received_in_the_widget(kernel, mirror):
    kernel.client.execute("%%start_job --thread --name receivable\nprint('hello from the job')\n6 * 7")
    receive = mirror.view_button("receivable", "Receive", state="Completed")
    mirror.click(receive)
    mirror.wait_for(lambda m: m.find("jobmagics-received"))
    shown = mirror.models[mirror.find("jobmagics-received")[-1]]["value"]
    assert "hello from the job" in shown and "Out: 42" in shown
    after = kernel.run("%receive_job receivable")
    assert after.stdout == "" and after.text is None  # the button drained it
    kernel.run("%remove_job receivable")


def test_live_table_follows_new_and_removed_jobs(kernel, mirror):
    kernel.client.execute("%get_job --type ThreadJob")
    mirror.wait_for(lambda m: m.find("jobmagics-jobs") or m.find("(no jobs)"))
    kernel.run("%start_job --thread --name late-arrival 1")
    mirror.wait_for(lambda m: m.find("late-arrival"))
    table = mirror.find("late-arrival")[-1]
    mirror.wait_for(lambda m: ">Completed</span>" in m.models[table]["value"])
    kernel.run("%remove_job late-arrival")
    mirror.wait_for(lambda m: "late-arrival" not in m.models[table]["value"])


def test_kernel_answers_while_twenty_viewed_jobs_print(kernel, mirror):
    for i in range(20):
        kernel.client.execute("%%start_job --thread --name noisy-{0}\nimport time\n"
                              "while True:\n    print('noise {0}')\n    time.sleep(0.001)".format(i))
    mirror.wait_for(lambda m: len([c for c in m.models if "noisy-" in str(m.models[c].get("value", ""))]) >= 20)
    answer = kernel.run("sum(range(10))")
    assert answer.text == "45"
    stopped = kernel.run("%stop_job noisy-*\nall_noisy = %get_job noisy-*\nsorted({str(j.state) for j in all_noisy})")
    assert stopped.text == "['Stopped']"
    kernel.run("%remove_job noisy-*")


def test_remove_button_forgets_the_job_and_disables_the_view(kernel, mirror):
    kernel.client.execute("%%start_job --thread --name removable\n1")
    remove = mirror.view_button("removable", "Remove", state="Completed")
    mirror.click(remove)
    mirror.wait_for(lambda m: m.models[remove].get("disabled") is True)
    assert kernel.run("%get_job removable").stderr.startswith("UsageError: no job with id or name 'removable'")
