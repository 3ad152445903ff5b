"""A real IPython kernel driven over the Jupyter protocol, for tests and the demo check."""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import sys
import tempfile

from jupyter_client.manager import KernelManager

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
from run_notebook import KERNEL_NAME, write_kernelspec  # noqa: E402  (one kernelspec recipe for demo and tests)


@functools.lru_cache(maxsize=None)
def _kernelspec_root():
    """One kernelspec directory for this process's kernels, on JUPYTER_PATH, removed at exit."""
    root = tempfile.mkdtemp(prefix="jobmagics-kernelspec-")
    atexit.register(shutil.rmtree, root, True)
    write_kernelspec(root)
    os.environ["JUPYTER_PATH"] = root + os.pathsep + os.environ.get("JUPYTER_PATH", "")
    return root


class CellResult:
    """What one executed cell sent back on iopub."""

    def __init__(self):
        self.stdout = ""
        self.stderr = ""
        self.results = []  # execute_result data bundles
        self.displays = []  # display_data bundles
        self.updates = []  # update_display_data: (display id, bundle)
        self.errors = []  # (ename, evalue, traceback lines)
        self.reply = None

    @property
    def ok(self):
        return self.reply is not None and self.reply["content"]["status"] == "ok" and not self.errors

    @property
    def text(self):
        """The execute_result as plain text (or None)."""
        return self.results[-1].get("text/plain") if self.results else None

    def error_text(self):
        return "\n".join("%s: %s" % (e[0], e[1]) for e in self.errors)

    def hook(self, msg):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            if content["name"] == "stdout":
                self.stdout += content["text"]
            else:
                self.stderr += content["text"]
        elif kind == "execute_result":
            self.results.append(content["data"])
        elif kind == "display_data":
            self.displays.append(content["data"])
        elif kind == "update_display_data":
            self.updates.append((content["transient"]["display_id"], content["data"]))
        elif kind == "error":
            self.errors.append((content["ename"], content["evalue"], content["traceback"]))


class Kernel:
    """Start a kernel, run cells, shut it down (as a context manager)."""

    def __init__(self, cwd=None, env=None):
        _kernelspec_root()
        self.manager = KernelManager(kernel_name=KERNEL_NAME)
        self._cwd = cwd
        self._env = env
        self.client = None

    def start(self, timeout=60, output=None):
        """Start the kernel; ``output``, a file, gets the kernel process's own stdout and stderr."""
        kwargs = {"cwd": self._cwd} if self._cwd else {}
        if self._env is not None:
            kwargs["env"] = self._env
        if output is not None:
            kwargs.update(stdout=output, stderr=output)
        self.manager.start_kernel(**kwargs)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=timeout)
        return self

    @property
    def pid(self):
        return self.manager.provisioner.process.pid

    def run(self, code, timeout=60):
        result = CellResult()
        result.reply = self.client.execute_interactive(code, output_hook=result.hook, timeout=timeout,
                                                       allow_stdin=False)
        return result

    def shell_reply(self, msg_id, timeout=30):
        """The shell channel's reply to request ``msg_id`` (other replies are skipped)."""
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        return reply

    def complete(self, code):
        """What the kernel offers to complete ``code`` at its end."""
        return self.shell_reply(self.client.complete(code, len(code)))["content"]["matches"]

    def shutdown(self, now=False):
        if self.client is not None:
            self.client.stop_channels()
        self.manager.shutdown_kernel(now=now)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()
