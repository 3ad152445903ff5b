"""The built documentation site in a real browser: Debian's Chromium, driven by Playwright.

The site (``docs/_build/html``, built by ``bash scripts/docs.sh``; built here first when it is
missing) is served from loopback. A notebook page shows the job widgets rendered from the widget
state stored when the notebook was executed, and no page logs a JavaScript error. A screenshot of
the tour page goes to the test's tmp_path, and to ``$JOBMAGICS_SCREENSHOT_DIR`` when it is set
(docs/images/docs-tour.png is that picture).
"""
from __future__ import annotations

import functools
import http.server
import os
import pathlib
import shutil
import subprocess
import threading

import pytest

CHROMIUM = "/usr/bin/chromium"  # as in this directory's conftest.py
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT_DIR_VARIABLE = "JOBMAGICS_SCREENSHOT_DIR"

if not os.path.exists(CHROMIUM):
    pytest.skip("browser tests need Debian's Chromium at %s (scripts/install_browser.sh installs it)" % CHROMIUM,
                allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package (the browser extra)")

from playwright.sync_api import expect, sync_playwright  # noqa: E402  (only once we know it is installed)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

ROOT = pathlib.Path(__file__).resolve().parents[2]
SITE = ROOT / "docs" / "_build" / "html"
NOTEBOOK_PAGES = ["notebooks/%s.html" % path.stem for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
                  if not path.name.endswith(".out.ipynb")]  # every notebook: each is a page of the site
PAGES = ["index.html", "docs/index.html", "docs/jobs.html", "docs/api.html", "docs/magics/start_job.html",
         "docs/cluster.html"] + NOTEBOOK_PAGES


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    missing = []  # paths asked for and not found (a browser asks for some, the favicon, without telling)

    def send_error(self, code, *args, **kwargs):
        self.missing.append("HTTP %d: %s" % (code, self.path))
        super().send_error(code, *args, **kwargs)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    """The base URL of the built site, served on 127.0.0.1 while the module's tests run."""
    if not (SITE / "docs" / "index.html").exists():
        subprocess.run(["bash", "scripts/docs.sh"], cwd=ROOT, check=True, timeout=840)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, name="docs-site-server", daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def browser():
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


def open_page(browser, url):
    """A new page at ``url``, loaded, with the list its console errors and page errors go to."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda message: errors.append("console: " + message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append("page error: %s" % exc))
    page.on("response", lambda response: errors.append("HTTP %d: %s" % (response.status, response.url))
            if response.status >= 400 else None)
    page.goto(url, wait_until="load")
    return page, errors


def job_widgets(page):
    """The rendered job widgets: ipywidgets boxes that hold the job's Stop / Receive / Remove buttons."""
    return page.locator(".jupyter-widgets.widget-vbox").filter(
        has=page.locator("button", has_text="Receive")).filter(has=page.locator("button", has_text="Stop"))


def jobmagics_widgets(page):
    """jobmagics' rendered widgets of any kind: a job's, a job table's, a session's."""
    return page.locator(".jupyter-widgets.jobmagics-job, .jupyter-widgets.jobmagics-table, "
                        ".jupyter-widgets.jobmagics-session")


def test_the_tour_page_renders_its_job_widgets(site, browser, tmp_path):
    page, errors = open_page(browser, site + "notebooks/tour.html")
    widgets = job_widgets(page)
    expect(widgets.first).to_be_visible(timeout=30_000)
    expect(widgets.first).to_contain_text("squares")  # the first job's name, from the stored widget state
    expect(page.locator("script[type='application/vnd.jupyter.widget-state+json']")).to_have_count(1)
    widgets.first.scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -200)")
    page.add_style_tag(content="#pst-back-to-top { display: none !important; }")  # not in the picture
    path = tmp_path / "docs-tour.png"
    page.screenshot(path=str(path))
    extra = os.environ.get(SCREENSHOT_DIR_VARIABLE)
    if extra:
        os.makedirs(extra, exist_ok=True)
        shutil.copy(path, os.path.join(extra, path.name))
    assert not errors, errors + _QuietHandler.missing


def test_the_cluster_page_renders_its_session_and_its_jobs_on_workers(site, browser):
    page, errors = open_page(browser, site + "notebooks/cluster.html")
    primes = job_widgets(page).filter(has_text="primes")
    expect(primes.first).to_be_visible(timeout=30_000)
    expect(primes.first).to_contain_text("RemoteJob")
    expect(primes.first).to_contain_text("on tcp://127.0.0.1:")  # its location: the worker that ran it
    expect(page.locator(".jobmagics-session").first).to_contain_text("Cluster to tcp://127.0.0.1:")
    page.wait_for_load_state("networkidle")
    assert not errors, errors + _QuietHandler.missing


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_without_javascript_errors(site, browser, path):
    page, errors = open_page(browser, site + path)
    expect(page.locator(".bd-article, body").first).to_be_visible()
    if path in NOTEBOOK_PAGES:  # every notebook shows jobs: their widgets, rendered from the stored state
        expect(jobmagics_widgets(page).first).to_be_visible(timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert not errors, errors + _QuietHandler.missing
