"""An agent in a subprocess of this machine: the transport behind process jobs."""
from __future__ import annotations

import os
import subprocess
import sys

from ..hosts import processes
from ..core.group import KILL_GRACE
from ..errors import AgentStartError
from . import forkserver
from .base import Transport
from .bootstrap import agent_bundle, agent_command
from .textpipes import JobTextPipes


class LocalTransport(Transport):
    """An agent process of this machine in its own process session, and its pipes.

    With the kernel's own Python it is forked, warm, by the fork server
    (``jobmagics/transport/forkserver.py``); with another Python it is
    ``python -c BOOTSTRAP``, started cold. Its own session keeps Ctrl-C and the
    kernel's interrupts away from the job, and makes the process group the
    unit that :meth:`kill` ends.
    """

    location = "localhost"

    def __init__(self, python=None, cwd=None, env=None, spare=None):
        self.forked = python is None and forkserver.available()
        self.spare = spare  # forked ahead of its job: the name it shows until then (spares.py)
        self.python = python or sys.executable
        self.cwd = cwd or os.getcwd()
        self.env = env
        self.process = None
        self.text = None  # JobTextPipes: the process's output, read here so that it outlives it

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def open(self):
        self.text = JobTextPipes()
        try:
            if self.forked:
                self.process = forkserver.spawn(self.cwd, dict(os.environ if self.env is None else self.env),
                                                self.text.write_fds, self.spare)
            else:
                self._start_cold()
        except BaseException:
            self.text.close()
            raise
        finally:
            self.text.handed_over()
        self.reader = self.process.stdout
        self.writer = self.process.stdin

    def _start_cold(self):
        try:
            self.process = subprocess.Popen(
                agent_command(self.python, *self.text.write_fds), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=self.cwd, env=self.env, start_new_session=True,
                pass_fds=self.text.write_fds)
        except OSError as exc:
            raise AgentStartError("cannot start %s: %s" % (self.python, exc.strerror or exc)) from exc

    def ordered(self):
        return self.text.ordered()

    def send_bootstrap(self):
        if not self.forked:  # a forked agent has its modules already
            self.writer.write(agent_bundle())
            self.writer.flush()

    def close(self):
        try:
            if self.forked:
                self.process.close_input()
            else:
                self.process.stdin.close()
        except OSError:
            pass

    def forget(self):
        """In a fork of this process: close its copies of the pipes, leaving the agent to its owner."""
        self.text.forget()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()
        if self.forked:
            self.process.release()

    def kill(self, grace=KILL_GRACE):
        if self.process is not None:
            processes.end_tree(self.process.pid, pgid=self.process.pid, grace=grace)

    def reap(self, grace=KILL_GRACE):
        """After the agent exited: end whatever its job left behind in its process group."""
        self.process.wait()
        leftovers = processes.group_members(self.process.pid)
        if leftovers:
            processes.end_tree(self.process.pid, pgid=self.process.pid, grace=grace)
        self.text.close()
        if self.forked:
            self.process.release()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass

    def _read_exit_reason(self, timeout):
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return "the job's process stopped answering"
        if code is None:  # forked, and the fork server ended before it: nobody could learn its status
            reason = "the job's process ended (how is not known: the fork server that started it ended first)"
        else:
            reason = processes.describe_returncode(code)
        try:
            tail = self.process.stderr.read().decode("utf-8", "replace").strip().splitlines()
        except (OSError, ValueError):
            tail = []
        if tail:
            reason += ": " + tail[-1]
        return reason
