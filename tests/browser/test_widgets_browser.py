"""The job widgets in a real browser: JupyterLab on loopback, driven in Debian's Chromium by Playwright.

A job reporting progress shows a bar that moves and a state that turns
Completed; clicking Stop on a running job turns it Stopped, also while
another cell of the same kernel is blocked in ``%wait_job``.

Every wait is Playwright's: auto-waiting ``expect`` assertions, or
``wait_for_function`` on a predicate over the widget's DOM, so the state
checked and the values recorded come from one look at the page. Screenshots
go to the test's tmp_path, and to ``$JOBMAGICS_SCREENSHOT_DIR`` when it is
set (the README's docs/images/job-widget.png is one of them).
"""
from __future__ import annotations

import os
import re

import pytest

CHROMIUM = "/usr/bin/chromium"  # as in this directory's conftest.py

if not os.path.exists(CHROMIUM):
    pytest.skip("browser tests need Debian's Chromium at %s (scripts/install_browser.sh installs it)" % CHROMIUM,
                allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package (the browser extra)")

# Only once we know it is installed:
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

UI_TIMEOUT = 60_000  # ms: a kernel start, a process job's start, a widget render on a slow machine

# The first job view in the notebook, read in one go: what the tests check and record.
JOB_SNAPSHOT = """() => {
    const job = document.querySelector('.jp-NotebookPanel .jobmagics-job');
    if (!job) return null;
    const text = (sel) => { const e = job.querySelector(sel); return e ? e.textContent.trim() : null; };
    const bar = job.querySelector('.widget-hprogress .progress-bar');
    const row = bar && bar.closest('.widget-hprogress').parentElement;
    const stop = [...job.querySelectorAll('button')].find(b => b.textContent.trim() === 'Stop');
    return {
        state: text('.jobmagics-state'),
        barShown: !!row && getComputedStyle(row).display !== 'none',
        width: bar && bar.style.width ? parseFloat(bar.style.width) : null,
        label: bar ? row.textContent.trim() : null,
        tail: text('.jobmagics-tail') || '',
        stopDisabled: stop ? stop.disabled : null,
    };
}"""


def wait_for_job(page, condition, timeout=UI_TIMEOUT):
    """Wait until the job view's snapshot ``s`` satisfies the JS expression ``condition``; that snapshot.

    A redraw reaches the page as one message per child widget (state, bar, label, tail, buttons), so
    for a few milliseconds the page may show some of a redraw's changes and not the others: a
    condition names everything it needs, and the snapshot that met it is what the test checks.
    """
    try:
        handle = page.wait_for_function(
            "() => { const s = (%s)(); return s && (%s) ? s : null; }" % (JOB_SNAPSHOT, condition), timeout=timeout)
    except PlaywrightTimeoutError:
        raise AssertionError("the job view never showed %s; it shows %r"
                             % (condition, page.evaluate(JOB_SNAPSHOT))) from None
    return handle.json_value()


def job_cell(panel):
    """The code cell whose output is the job view (its code and its widget)."""
    return panel.locator(".jp-CodeCell").filter(has=panel.page.locator(".jobmagics-job"))


# 30 steps of progress; half-way, the job waits until the test creates the file ``go`` (the job's
# working directory is the kernel's, the notebook directory), so the test sees the bar mid-way for sure.
PROGRESS_JOB = """\
%%start_job --name progressing
import os, time
from jobmagics import progress
for step in range(1, 31):
    while step > 15 and not os.path.exists('go'):  # half-way: wait for 'go'
        time.sleep(0.05)
    time.sleep(0.1)
    progress(current=step, total=30, status='step %d of 30' % step)
    if step % 3 == 0:
        print('finished step', step)
'done'"""


ENDLESS_JOB = "%%start_job --name endless\nimport time\nwhile True:\n    time.sleep(0.05)"


def test_progress_bar_moves_and_state_turns_completed(lab):
    gate = os.path.join(lab.server.root_dir, "go")
    assert not os.path.exists(gate)
    panel = lab.open_notebook("progress", ["%load_ext jobmagics", PROGRESS_JOB])
    lab.run_all_cells()
    page = lab.page

    moving = wait_for_job(page, "s.state === 'Running' && s.barShown && s.width > 0 && s.width < 100")
    assert moving["state"] == "Running" and 0 < moving["width"] <= 50, moving
    half = wait_for_job(page, "s.state === 'Running' && s.width === 50 && s.label === 'step 15 of 30 50%'"
                              " && s.tail.endsWith('finished step 15') && s.stopDisabled === false")
    # Select the first cell, so the job cell's picture shows no selection bar and cell toolbar.
    panel.locator(".jp-Cell").first.locator(".jp-InputPrompt").click()
    expect(job_cell(panel)).not_to_have_class(re.compile(r"\bjp-mod-active\b"))
    lab.screenshot("progress-running.png")
    lab.screenshot("job-widget.png", job_cell(panel))  # the README's picture (docs/images/job-widget.png)

    open(gate, "w").close()
    done = wait_for_job(page, "s.state === 'Completed' && s.width === 100 && s.label === 'step 30 of 30 100%'"
                              " && s.tail.endsWith('finished step 30') && s.stopDisabled === true")
    expect(panel.locator(".jobmagics-state")).to_have_text("Completed")
    expect(panel.locator(".jobmagics-job .widget-hprogress .progress-bar")).to_have_attribute(
        "style", re.compile(r"\bwidth: 100%"))
    lab.screenshot("progress-completed.png")
    lab.screenshot("job-widget-completed.png", job_cell(panel))
    assert 0 < moving["width"] <= half["width"] == 50 < done["width"] == 100, (moving, half, done)


def test_stop_button_stops_a_running_job(lab):
    panel = lab.open_notebook("stop", ["%load_ext jobmagics", ENDLESS_JOB])
    lab.run_all_cells()
    job = panel.locator(".jobmagics-job")
    expect(job.locator(".jobmagics-state")).to_have_text("Running", timeout=UI_TIMEOUT)

    job.get_by_role("button", name="Stop").click()

    expect(job.locator(".jobmagics-state")).to_have_text("Stopped", timeout=UI_TIMEOUT)
    expect(job.get_by_role("button", name="Stop")).to_be_disabled()
    lab.screenshot("stopped.png")


def test_stop_button_works_while_a_cell_waits_for_the_job(lab):
    panel = lab.open_notebook("stop-while-waiting", ["%load_ext jobmagics", ENDLESS_JOB, "%wait_job endless"])
    lab.run_all_cells()
    job = panel.locator(".jobmagics-job")
    wait_cell = panel.locator(".jp-CodeCell").nth(2)
    expect(job.locator(".jobmagics-state")).to_have_text("Running", timeout=UI_TIMEOUT)
    # The kernel's main thread is blocked in %wait_job: the cell is still executing.
    expect(wait_cell.locator(".jp-InputPrompt")).to_have_text("[*]:")
    expect(job.locator(".jobmagics-state")).to_have_text("Running")

    job.get_by_role("button", name="Stop").click()

    expect(job.locator(".jobmagics-state")).to_have_text("Stopped", timeout=UI_TIMEOUT)
    expect(wait_cell.locator(".jp-InputPrompt")).to_have_text("[3]:", timeout=UI_TIMEOUT)
    expect(wait_cell.locator(".jp-OutputArea")).to_contain_text("Stopped")
    lab.screenshot("stopped-while-waiting.png")
