"""A warm fork server: an agent already imported, forked into a fresh process per job.

Starting an interpreter and importing the agent costs far more than a job's
trivial code. The kernel starts this server once (from source, as any agent)
with one end of a private ``AF_UNIX`` socket pair -- no path, no listener.
For each process job it sends a request with two descriptors: the job's
protocol socket and a pipe for its stderr. The server forks; the child leads a
process session of its own, puts the descriptors where a freshly started
agent would have its pipes, and runs the same agent ``main``. Isolation is a
new process per job; only the imports are shared.

The server runs no Python thread but its main one (a fork copies only the
forking thread, and a lock another thread held would stay locked in the child;
NumPy's BLAS worker threads hold none and are rebuilt after a fork), reaps its
children and tells the kernel how each one ended. It exits when the kernel's
end of the socket closes.

Messages are JSON over ``SOCK_SEQPACKET`` (one message per packet):
kernel -> server ``{"cwd", "env", "spare"}`` + 6 fds (protocol socket, stderr pipe, and the kernel's pipes
for the job's fds 1 and 2 and its stdout and stderr text, ``textpipe.py``; ``spare``: the name to show
until a job arrives, for a process forked ahead of its job); server -> kernel
``{"forked": pid}`` or ``{"error": text}`` in request order, and
``{"exited": pid, "code": returncode}`` whenever a child ends.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys

from . import procname

MAX_MESSAGE = 1 << 20
server_pid = [None]  # this server's pid: after a fork, only the server renames itself back
#: Imported once in the server where installed, so that jobs using them start warm: dill for
#: notebook functions, NumPy for arrays (importing it costs a job about 85 ms).
PRELOAD = ("dill", "numpy")


def preload(also=()):
    """Import what every job's agent imports, the usual heavy modules and ``also`` (modules the
    notebook uses), so a forked child starts warm."""
    from . import main  # noqa: F401  (the whole agent: wire, jobs, hosts, capture)
    from ..core import serialize  # noqa: F401
    os.environ["MPLBACKEND"] = "agg"  # as every job draws (main.prepare): a preloaded pyplot agrees
    for name in PRELOAD + tuple(also):
        try:
            importlib.import_module(name)
        except Exception:  # not installed, or broken here: a job that needs it imports it itself
            pass


def _reseed():
    """Random state copied from the server would repeat in every job: each child draws its own.

    (The standard ``random`` module reseeds itself after a fork; NumPy's global generator does not.)
    """
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def serve(control):
    """Fork on request until the kernel closes ``control``."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # a handler, so the wakeup fd is written
    poller = select.poll()  # not select(): the kernel's descriptor numbers it inherits may pass FD_SETSIZE
    poller.register(control, select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    try:
        while True:
            ready = [fd for fd, _event in poller.poll()]
            if wake_read in ready:
                _drain(wake_read)
                _report_exits(control)
            if control.fileno() in ready:
                try:
                    data, fds, _flags, _addr = socket.recv_fds(control, MAX_MESSAGE, 6)
                except InterruptedError:
                    continue
                if not data:
                    return  # the kernel ended
                _fork_one(control, json.loads(data), fds, (control, wake_read, wake_write))
    finally:
        _report_exits(control)


def _drain(fd):
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _report_exits(control):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(control, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _send(control, message):
    try:
        control.send(json.dumps(message).encode("utf-8"))
    except OSError:
        pass  # the kernel is gone; the next receive ends the server


def _fork_one(control, request, fds, own_fds):
    if len(fds) != 6:
        for fd in fds:
            os.close(fd)
        _send(control, {"error": "a fork request needs a protocol socket, a stderr pipe and four text pipes"})
        return
    # A spare is born with its name (named after the fork, it would show as a stray job process
    # for a moment): the server wears it while it forks.
    usual_name = procname.rename(request["spare"]) if request.get("spare") else None
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        _send(control, {"error": "cannot fork a job process: %s" % exc})
        return
    finally:
        if usual_name is not None and os.getpid() == server_pid[0]:
            procname.rename(usual_name)
    if pid == 0:
        _become_agent(request, fds, own_fds, usual_name)  # never returns
    for fd in fds:
        os.close(fd)
    _send(control, {"forked": pid})


def _become_agent(request, fds, own_fds, usual_name):
    """In the child: look exactly like an agent started by ``python -c BOOTSTRAP``, then be one."""
    try:
        os.setsid()  # a process group of its own from the start: the kernel ends the job by it
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        own_socket, wake_read, wake_write = own_fds
        own_socket.close()
        os.close(wake_read)
        os.close(wake_write)
        protocol, stderr, *text_fds = fds
        os.dup2(protocol, 0)
        os.dup2(protocol, 1)
        os.dup2(stderr, 2)
        os.close(protocol)
        os.close(stderr)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _reseed()
        if usual_name is not None:  # a spare: it takes the usual name back when its job comes
            from . import main
            main.usual_name_after_waiting(usual_name)
        sys.argv = ["-c"] + [str(fd) for fd in text_fds]  # as a cold start passes them
        from . import main
        main.main()
    except BaseException as exc:  # noqa: BLE001  (the child must never return into the server's loop)
        try:
            os.write(2, ("jobmagics: the forked job process failed to start: %r\n" % (exc,)).encode())
        except OSError:
            pass
    finally:
        os._exit(1)


def main():
    """Entry point: the control socket's descriptor number, modules to preload too, the process tag."""
    control = socket.socket(fileno=int(sys.argv[1]))
    server_pid[0] = os.getpid()
    preload(sys.argv[2:-1])
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):  # the bundle has been read; nothing is ever written to stdout
        os.dup2(devnull, fd)
    os.close(devnull)
    # What the server holds now is never freed: moved out of the collector's sight, a child's
    # collections do not touch (and so copy) every page of it (measured: 1.2 ms a child instead of 14).
    gc.freeze()
    serve(control)
    os._exit(0)
