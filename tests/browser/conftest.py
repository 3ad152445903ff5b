"""A real JupyterLab on loopback and a headless Chromium driven by Playwright.

The JupyterLab server is started once per module, in a temporary directory
that holds its notebooks, config, data and runtime files; it only listens on
127.0.0.1, needs a random token, and fetches nothing from the internet (no
news, no update check, no extension manager). Its environment carries a
marker variable, inherited by every kernel it starts and every job process a
kernel starts, so the fixtures can tell, even for re-parented orphans, that
nothing the server started is left over.

Each test gets its own browser and its own JupyterLab workspace; when the
test ends, the browser is closed, every kernel is shut down, and every
process of those kernels (job processes included) must have ended.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import psutil
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts"))
from run_notebook import KERNEL_NAME, write_kernelspec  # noqa: E402  (the one kernelspec recipe)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MARKER = "JOBMAGICS_BROWSER_TEST_SERVER"  # set in the server's environment, inherited by its kernels and jobs
SCREENSHOT_DIR_VARIABLE = "JOBMAGICS_SCREENSHOT_DIR"
SERVER_START_TIMEOUT = 60
PROCESS_END_TIMEOUT = 20


# ----- processes ---------------------------------------------------------------------------
def marked_processes(marker_value, exclude=()):
    """Every running process whose environment carries ``MARKER=marker_value``."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid in exclude:
            continue
        try:
            if proc.environ().get(MARKER) == marker_value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def describe(procs):
    lines = []
    for proc in procs:
        try:
            lines.append("pid %d: %s" % (proc.pid, " ".join(proc.cmdline())[:160]))
        except psutil.Error:
            lines.append("pid %d (gone)" % proc.pid)
    return lines


def end_processes(procs, grace=5.0):
    """Terminate, then kill, ``procs``; waits on their exits (no polling)."""
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)


# ----- the server --------------------------------------------------------------------------
def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """A running JupyterLab: its URL, token, notebook directory, and a small REST client."""

    def __init__(self, base, root_dir, token, process, log_path, marker_value, kernel_display_name):
        self.base = base
        self.kernel_display_name = kernel_display_name
        self.root_dir = root_dir
        self.token = token
        self.process = process
        self.log_path = log_path
        self.marker_value = marker_value

    def log(self):
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()[-8000:]
        except OSError:
            return ""

    def api(self, method, path, timeout=10):
        request = urllib.request.Request(self.base + path, method=method,
                                         headers={"Authorization": "token " + self.token})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, path, workspace=None):
        """The browser URL of ``path`` (e.g. ``tree/x.ipynb``), in its own workspace if given."""
        prefix = "/lab/workspaces/%s/" % workspace if workspace else "/lab/"
        return "%s%s%s?token=%s" % (self.base, prefix, path, self.token)

    def write_notebook(self, name, cells):
        """Write ``name``.ipynb into the server's root, with code ``cells``, for the test kernel."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python (jobmagics tests)",
                                     "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        path = os.path.join(self.root_dir, name + ".ipynb")
        nbformat.write(nb, path)
        return name + ".ipynb"

    def shutdown_kernels(self):
        """Shut every session's kernel down, and every other kernel too."""
        for session in self.api("GET", "/api/sessions"):
            try:
                self.api("DELETE", "/api/sessions/%s" % session["id"], timeout=30)
            except urllib.error.HTTPError:
                pass
        for kernel in self.api("GET", "/api/kernels"):
            try:
                self.api("DELETE", "/api/kernels/%s" % kernel["id"], timeout=30)
            except urllib.error.HTTPError:
                pass

    def leftovers(self):
        """Processes the server started (kernels, job processes) that still run."""
        return marked_processes(self.marker_value, exclude={self.process.pid})


def _wait_until_ready(server, deadline):
    """Poll /api/status (with the token) until the server answers, it exits, or the deadline passes."""
    last_error = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError("JupyterLab exited with status %s:\n%s" % (server.process.returncode, server.log()))
        try:
            server.api("GET", "/api/status", timeout=2)
            return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last_error = exc
        time.sleep(0.2)  # readiness of an external server: nothing to wait on but its answer
    raise RuntimeError("JupyterLab did not answer /api/status within %ds (last error: %s):\n%s"
                       % (SERVER_START_TIMEOUT, last_error, server.log()))


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a random token, its state kept in a temporary directory."""
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root_dir = tmp / "notebooks"
    jupyter_path = tmp / "jupyter_path"  # our kernelspec, ahead of the venv's data dir
    config_dir = tmp / "config"
    for directory in (root_dir, jupyter_path, config_dir / "labconfig", tmp / "data", tmp / "runtime"):
        directory.mkdir(parents=True, exist_ok=True)
    write_kernelspec(str(jupyter_path))
    with open(jupyter_path / "kernels" / KERNEL_NAME / "kernel.json") as fh:
        kernel_display_name = json.load(fh)["display_name"]
    # No "Would you like to receive official Jupyter news?" toast over the notebook.
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))

    marker_value = uuid.uuid4().hex
    token = secrets.token_hex(24)
    port = free_port()
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        # The venv's data dir holds the ipywidgets lab extension (jupyterlab_widgets).
        "JUPYTER_PATH": os.pathsep.join([str(jupyter_path), os.path.join(sys.prefix, "share", "jupyter")]),
        MARKER: marker_value,
    })
    env.pop("JUPYTER_TOKEN", None)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", "--ServerApp.port=%d" % port, "--ServerApp.port_retries=0",
        "--IdentityProvider.token=" + token, "--ServerApp.root_dir=" + str(root_dir),
        "--ServerApp.open_browser=False", "--ServerApp.allow_root=True",
        "--ServerApp.terminals_enabled=False", "--ServerApp.jpserver_extensions=jupyter_lsp=False",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--MappingKernelManager.default_kernel_name=" + KERNEL_NAME,
    ]
    log_path = tmp / "jupyterlab.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, cwd=str(root_dir), stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = LabServer("http://127.0.0.1:%d" % port, str(root_dir), token, process, str(log_path), marker_value,
                       kernel_display_name)
    try:
        _wait_until_ready(server, time.monotonic() + SERVER_START_TIMEOUT)
        yield server
    finally:
        try:
            if process.poll() is None:
                server.shutdown_kernels()
        except Exception:
            pass  # the server is going away anyway; leftovers are ended below
        process.terminate()  # SIGTERM: the server shuts its kernels down and exits
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        leftovers = server.leftovers()
        described = describe(leftovers)
        end_processes(leftovers)
        assert not described, "processes left behind by JupyterLab:\n  " + "\n  ".join(described)


# ----- the browser -------------------------------------------------------------------------
class Lab:
    """One test's view of JupyterLab: opens notebooks in a fresh workspace, saves screenshots."""

    def __init__(self, server, browser, screenshot_dir):
        self.server = server
        self.browser = browser
        self.screenshot_dir = screenshot_dir
        self.workspace = "test-" + uuid.uuid4().hex[:12]
        self.page = None
        self.screenshots = []

    def open_notebook(self, name, cells):
        """Write a notebook, open it in JupyterLab, and wait until its kernel is idle."""
        from playwright.sync_api import expect

        path = self.server.write_notebook(name, cells)
        self.page = page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(self.server.url("tree/" + path, workspace=self.workspace))
        panel = page.locator(".jp-NotebookPanel").filter(has=page.locator(".jp-Cell"))
        expect(panel).to_have_count(1, timeout=60_000)
        # The status bar names the kernel and its state in one item: "<display name> | Idle" once a
        # kernel of our kernelspec runs and is connected (the toolbar indicator says "idle" before).
        kernel = self.server.kernel_display_name
        expect(page.locator(".jp-StatusBar-TextItem").filter(has_text=kernel)).to_have_text(
            kernel + " | Idle", timeout=60_000)
        return panel

    def run_all_cells(self):
        page = self.page
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()

    def screenshot(self, name, locator=None):
        """Save a screenshot (of the page, or of ``locator``) in tmp_path, and in $JOBMAGICS_SCREENSHOT_DIR."""
        path = os.path.join(self.screenshot_dir, name)
        (locator or self.page).screenshot(path=path)
        self.screenshots.append(path)
        extra = os.environ.get(SCREENSHOT_DIR_VARIABLE)
        if extra:
            os.makedirs(extra, exist_ok=True)
            shutil.copy(path, os.path.join(extra, name))
        return path


@pytest.fixture
def lab(lab_server, tmp_path):
    """A fresh headless Chromium on the module's JupyterLab; afterwards no kernel or job process is left."""
    from playwright.sync_api import sync_playwright

    assert not lab_server.leftovers(), "a kernel from an earlier test still runs"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield Lab(lab_server, browser, str(tmp_path))
        finally:
            browser.close()
    finally:
        playwright.stop()
        lab_server.shutdown_kernels()
        _, alive = psutil.wait_procs(lab_server.leftovers(), timeout=PROCESS_END_TIMEOUT)
        described = describe(alive)
        end_processes(alive)
        assert not described, "processes still running after their kernels were shut down:\n  " + "\n  ".join(
            described)
