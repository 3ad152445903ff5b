"""The IPython magics: parse flags, call one API function, return its result.

User mistakes become ``UsageError`` (one line, no traceback) and change nothing.
``JOB`` arguments are ids, names (wildcards allowed), ``$var`` or a variable
holding a Job (or a list of jobs).
"""
from __future__ import annotations

import contextlib

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import api, entered, remote, session_jobs
from .agent import context, rich
from .agent.job import Job
from .errors import JobError, JobmagicsError, UserInputError
from .lineparse import comma_list, split_flags, unquote


@contextlib.contextmanager
def user_errors():
    """Show a mistake or an unreachable computer as one line, as IPython does for its own magics."""
    try:
        yield
    except JobError:
        raise
    except JobmagicsError as exc:
        raise UsageError(str(exc)) from None


jobs_argument = argument("jobs", nargs="*", metavar="JOB", help="job id, name (wildcards allowed), or $variable")
session_argument = argument("--session", "-s", metavar="S",
                            help="act on the job registry inside session S (the jobs and their results stay there)")


# How to reach a computer over SSH, for the magics that log in to one.
_CONNECTION_ARGUMENTS = (
    argument("--user", "-u", help="user to log in as (default: ~/.ssh/config, else your user name)"),
    argument("--port", "-p", type=int, help="SSH port (default: ~/.ssh/config, else 22)"),
    argument("--identity", "-i", metavar="FILE", help="private key file to log in with"),
    argument("--python", metavar="EXE", help="Python on the remote computer (default python3)"),
    argument("--accept-new-host-key", action="store_true",
             help="accept and remember a host key not yet in known_hosts (never a changed one)"),
)


def connection_arguments(magic):
    """Add the SSH connection flags to a magic (under ``@magic_arguments()``)."""
    for decorator in reversed(_CONNECTION_ARGUMENTS):
        magic = decorator(magic)
    return magic


def connection_options(args):
    """The SSH options of parsed ``connection_arguments`` (quoted values unquoted)."""
    return dict(user=unquote(args.user), port=args.port, identity=unquote(args.identity),
                python=unquote(args.python), accept_new_host_key=args.accept_new_host_key)


@magics_class
class JobMagics(Magics):
    """PowerShell-style background jobs: %start_job, %get_job, %receive_job, %wait_job, ..."""

    # ----- helpers -----------------------------------------------------------------
    def _refs(self, words):
        """Job refs with ``$var`` (and plain variables holding jobs) replaced by the jobs."""
        refs = []
        for word in words:
            name = word[1:] if word.startswith("$") else None
            value = self.shell.user_ns.get(name if name else word)
            if name and name not in self.shell.user_ns:
                raise UsageError("no variable named %r" % name)
            if name or (isinstance(value, (Job, list)) and not _is_job_name(word)):
                refs += _jobs_in(value, word)
            else:
                refs.append(word)
        return refs

    # ----- magics ------------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("--name", "-n", help="the job's name (default Job<id>)")
    @argument("--thread", action="store_true", help="run in a thread of the kernel (ThreadJob) instead of a process")
    @argument("--init", metavar="CODE", help="code that runs first, in the job (like -InitializationScript)")
    @argument("--using", metavar="V,..", help="send exactly these notebook variables (comma-separated)")
    @argument("--no-capture", action="store_true", help="send no notebook variables")
    @argument("--export", metavar="V,..",
              help="hand these variables back when the job ends: %%receive_job sets them in the notebook")
    @session_argument
    @argument("code", nargs="*", help="the code to run (the rest of the line, or the cell for %%%%start_job)")
    @line_cell_magic
    def start_job(self, line, cell=None):
        """Start code in the background and return its job at once (Start-Job, Start-ThreadJob).

        The job sees the notebook variables its code reads: the same objects in
        a thread job, copies in a process job. The value of the last expression
        and every ``emit(obj)`` become its output; print, warnings, errors,
        progress and display() go to its other streams until received.
        """
        args, code = split_flags(self.start_job.parser, line)
        if cell is not None:
            if code:
                raise UsageError("%%%%start_job takes only flags on its line, not code: %r" % code)
            code = cell
        if not code.strip():
            raise UsageError("%start_job needs code to run")
        with user_errors():
            if args.session:
                if args.thread:
                    raise UsageError("--thread and --session cannot be used together (jobs in a session run there)")
                return session_jobs.start_job(self._session(args.session), code, name=args.name, init=args.init,
                                              using=args.using, capture_names=not args.no_capture,
                                              namespace=self.shell.user_ns, hidden=self.shell.user_ns_hidden,
                                              export=args.export)
            return api.start_job(code, name=args.name, thread=args.thread, init=args.init, using=args.using,
                                 capture_names=not args.no_capture, namespace=self.shell.user_ns,
                                 hidden=self.shell.user_ns_hidden, export=args.export)

    @no_var_expand
    @magic_arguments()
    @jobs_argument
    @argument("--state", help="only jobs in this state (Running, Completed, Failed, Stopped, ...)")
    @argument("--type", dest="job_type", help="only jobs of this type (ThreadJob, BackgroundJob, RemoteJob)")
    @argument("--has-more-data", action="store_true", help="only jobs with output not yet received")
    @argument("--include-child-jobs", action="store_true", help="list child jobs as well")
    @session_argument
    @line_magic
    def get_job(self, line):
        """List jobs as a table (Get-Job); the value is the list of jobs."""
        args = parse_argstring(self.get_job, line)
        with user_errors():
            if args.session:
                return session_jobs.get_job(self._session(args.session), *args.jobs, state=args.state,
                                            job_type=args.job_type, has_more_data=True if args.has_more_data else None)
            return api.get_job(*self._refs(args.jobs), state=args.state, job_type=args.job_type,
                               has_more_data=True if args.has_more_data else None,
                               include_child_jobs=args.include_child_jobs)

    @no_var_expand
    @magic_arguments()
    @jobs_argument
    @argument("--keep", action="store_true", help="leave what was received in the job")
    @argument("--wait", action="store_true", help="wait for the jobs to finish, streaming as they go")
    @argument("--auto-remove", action="store_true", help="with --wait: remove the jobs afterwards")
    @session_argument
    @line_magic
    def receive_job(self, line):
        """Deliver what jobs produced since the last receive (Receive-Job).

        Text goes to the cell, errors show as tracebacks, display data is
        displayed; the output objects are the value: the object itself when
        there is one, a list when several, nothing when none.
        """
        args = parse_argstring(self.receive_job, line)
        if not args.jobs:
            raise UsageError("%receive_job needs at least one job")
        with user_errors():
            if args.session:
                if args.wait or args.auto_remove:
                    raise UsageError("with --session, receive takes --keep only (wait first with %wait_job --session)")
                return session_jobs.receive_job(self._session(args.session), *self._remote_refs(args.jobs),
                                                keep=args.keep, export_into=self.shell.user_ns)
            return api.receive_job(*self._refs(args.jobs), keep=args.keep, wait=args.wait,
                                   auto_remove=args.auto_remove, export_into=self.shell.user_ns)

    @no_var_expand
    @magic_arguments()
    @jobs_argument
    @argument("--any", action="store_true", help="return when any one of the jobs finished")
    @argument("--timeout", type=float, metavar="SEC", help="give up waiting after SEC seconds (no error)")
    @session_argument
    @line_magic
    def wait_job(self, line):
        """Wait until the jobs (all, or any) finished; the value is the finished jobs (Wait-Job).

        Interrupting the cell stops the waiting, not the jobs.
        """
        args = parse_argstring(self.wait_job, line)
        with user_errors():
            if args.session:
                return session_jobs.wait_job(self._session(args.session), *self._remote_refs(args.jobs),
                                             any=args.any, timeout=args.timeout)
            return api.wait_job(*self._refs(args.jobs), any=args.any, timeout=args.timeout)

    @no_var_expand
    @magic_arguments()
    @jobs_argument
    @session_argument
    @line_magic
    def stop_job(self, line):
        """Stop jobs (Stop-Job): a process job's process tree is terminated, then killed; a thread job is cancelled."""
        args = parse_argstring(self.stop_job, line)
        if not args.jobs:
            raise UsageError("%stop_job needs at least one job")
        with user_errors():
            if args.session:
                session_jobs.stop_job(self._session(args.session), *self._remote_refs(args.jobs))
                return
            api.stop_job(*self._refs(args.jobs))

    @no_var_expand
    @magic_arguments()
    @jobs_argument
    @argument("--force", action="store_true", help="stop running jobs first instead of refusing")
    @argument("--state", help="remove the jobs in this state")
    @session_argument
    @line_magic
    def remove_job(self, line):
        """Forget finished jobs and their data (Remove-Job); running ones need --force."""
        args = parse_argstring(self.remove_job, line)
        with user_errors():
            if args.session:
                session_jobs.remove_job(self._session(args.session), *self._remote_refs(args.jobs),
                                        force=args.force, state=args.state)
                return
            api.remove_job(*self._refs(args.jobs), force=args.force, state=args.state)


    # ----- sessions ---------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("--computer", "-c", nargs="+", metavar="HOST", help="computers to connect to (names from ~/.ssh/config work)")
    @argument("--local", action="store_true",
              help="a detached session on this machine: it outlives this kernel once disconnected")
    @argument("--idle-timeout", type=float, metavar="SEC",
              help="with --local: end it (and its jobs) after SEC seconds with no kernel connected (default 7200)")
    @argument("--name", "-n", help="the session's name (default Session<id>; with several computers, NAME-1, NAME-2, ...)")
    @connection_arguments
    @line_magic
    def new_session(self, line):
        """Open a persistent session on each computer (New-PSSession); the value is the session(s).

        The remote computer needs only Python 3.8+: jobmagics sends its agent over
        the connection. Host keys are checked against ~/.ssh/known_hosts.
        """
        args = parse_argstring(self.new_session, line)
        with user_errors():
            return remote.new_session(comma_list(args.computer), local=args.local, idle_timeout=args.idle_timeout,
                                      name=unquote(args.name), **connection_options(args))

    @no_var_expand
    @magic_arguments()
    @argument("sessions", nargs="*", metavar="S", help="session id or name")
    @argument("--local", action="store_true", help="also the detached sessions of this user on this machine")
    @argument("--computer", "-c", nargs="+", metavar="HOST",
              help="also this user's sessions on these computers that no kernel here is connected to")
    @connection_arguments
    @line_magic
    def get_session(self, line):
        """List sessions (Get-PSSession): Id Name Transport ComputerName State Availability.

        With --local (this machine) or --computer HOST, sessions this kernel is not
        connected to show too, as Disconnected, Available or Busy (another kernel
        is connected); %receive_session or %connect_session takes one back. The
        connection flags say how to reach those computers, as for %new_session.
        """
        args = parse_argstring(self.get_session, line)
        with user_errors():
            return remote.get_session(*args.sessions, local=args.local, computer=comma_list(args.computer),
                                      **connection_options(args))

    @no_var_expand
    @magic_arguments()
    @argument("sessions", nargs="+", metavar="S", help="session id, name or $variable")
    @line_magic
    def disconnect_session(self, line):
        """Leave sessions and their jobs running without this kernel (Disconnect-PSSession).

        The jobs show Disconnected here; %connect_session or, from any kernel,
        %receive_session picks them up again, with nothing lost.
        """
        args = parse_argstring(self.disconnect_session, line)
        with user_errors():
            return remote.disconnect_session(*self._session_refs(args.sessions))

    @no_var_expand
    @magic_arguments()
    @argument("session", metavar="S", help="session name (or id, or $variable)")
    @line_magic
    def connect_session(self, line):
        """Connect to a disconnected session again (Connect-PSSession); its jobs carry on here."""
        args = parse_argstring(self.connect_session, line)
        with user_errors():
            (ref,) = self._session_refs([args.session])
            return remote.connect_session(ref)

    @no_var_expand
    @magic_arguments()
    @argument("session", metavar="S", help="session name (or id, or $variable)")
    @argument("--job-name", metavar="N", help="name for the job(s) that come back")
    @line_magic
    def receive_session(self, line):
        """Connect to a session and get a job for each piece of work still there (Receive-PSSession).

        Output the jobs produced while no kernel was connected is delivered by
        %receive_job as usual, every record exactly once.
        """
        args = parse_argstring(self.receive_session, line)
        with user_errors():
            (ref,) = self._session_refs([args.session])
            return remote.receive_session(ref, job_name=unquote(args.job_name))

    @no_var_expand
    @magic_arguments()
    @argument("sessions", nargs="+", metavar="S", help="session id or name")
    @line_magic
    def remove_session(self, line):
        """Close sessions and stop their jobs (Remove-PSSession)."""
        args = parse_argstring(self.remove_session, line)
        with user_errors():
            remote.remove_session(*self._session_refs(args.sessions))

    @no_var_expand
    @magic_arguments()
    @argument("--computer", "-c", nargs="+", metavar="HOST",
              help="run on these computers through temporary sessions (on the magic's line: HOST,HOST)")
    @argument("--session", "-s", nargs="+", metavar="S", help="run in these open sessions (on the line: S,S)")
    @argument("--as-job", action="store_true", help="return a RemoteJob at once instead of waiting")
    @argument("--job-name", metavar="N", help="name of the job (implies --as-job)")
    @argument("--throttle-limit", type=int, default=32, metavar="N", help="at most N computers at once (default 32)")
    @argument("--using", metavar="V,..", help="send exactly these notebook variables (comma-separated)")
    @argument("code", nargs="*", help="the code to run (the rest of the line, or the cell for %%%%invoke)")
    @line_cell_magic
    def invoke(self, line, cell=None):
        """Run code on remote computers (Invoke-Command).

        Without --as-job the remote output streams into the cell (each line tagged
        with its computer when there are several) and the output objects are the
        value. With --as-job a RemoteJob comes back at once, with one child job per
        computer; manage it with the job magics.
        """
        args, code = split_flags(self.invoke.parser, line, code_on_line=cell is None)
        if cell is not None:
            if code:
                raise UsageError("%%%%invoke takes only flags on its line, not code: %r" % code)
            code = cell
        if not code.strip():
            raise UsageError("%invoke needs code to run")
        with user_errors():
            return remote.invoke(code, computer=comma_list(args.computer),
                                 session=self._session_refs(comma_list(args.session)),
                                 as_job=args.as_job or bool(args.job_name), job_name=args.job_name,
                                 throttle_limit=args.throttle_limit, using=args.using,
                                 namespace=self.shell.user_ns, hidden=self.shell.user_ns_hidden)

    @no_var_expand
    @magic_arguments()
    @argument("session", metavar="S", help="session id, name or $variable")
    @line_magic
    def enter_session(self, line):
        """From now on every cell runs in session S, until %exit_session (Enter-PSSession).

        Cells run in one namespace that lives in the session; their output comes
        back tagged with the computer. Job magics in those cells act on the
        session's own registry.
        """
        args = parse_argstring(self.enter_session, line)
        with user_errors():
            session = self._session(args.session)
        entered.enter(self.shell, session)
        print("entered %s on %s: cells now run there; %%exit_session to come back" % (
            session.name, session.computer_name))

    @magic_arguments()
    @line_magic
    def exit_session(self, line):
        """Cells run in this kernel again (Exit-PSSession); the session stays open."""
        parse_argstring(self.exit_session, line)
        session = entered.exit_(self.shell)
        if session is None:
            raise UsageError("no session is entered")
        print("left %s" % session.name)

    def _session(self, word):
        """The session a --session flag names (an id, a name, or $var)."""
        (ref,) = self._session_refs([unquote(word)])
        return remote.sessions().resolve(ref)

    def _remote_refs(self, words):
        """Job refs for a session's registry: ``$var`` holding a job there becomes its name."""
        refs = []
        for word in words:
            if word.startswith("$"):
                value = self.shell.user_ns.get(word[1:])
                if value is None:
                    raise UsageError("no variable named %r" % word[1:])
                refs += [str(getattr(v, "name", v)) for v in (value if isinstance(value, list) else [value])]
            else:
                refs.append(word)
        return refs

    def _session_refs(self, words):
        """Session refs with ``$var`` replaced by the session(s) it holds."""
        refs = []
        for word in words:
            if word.startswith("$"):
                value = self.shell.user_ns.get(word[1:])
                refs += list(value) if isinstance(value, (list, tuple)) else [value]
            else:
                refs.append(word)
        return refs


def _is_job_name(word):
    try:
        api.registry().resolve(word)
    except UserInputError:
        return False
    return True


def _jobs_in(value, word):
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(item, Job) for item in items):
        raise UsageError("%s does not hold a job" % word)
    return list(items)


def _complete_jobs(shell, event):
    jobs = api.registry().jobs(include_children=True)
    return [str(j.id) for j in jobs] + [j.name for j in jobs]


def _complete_sessions(shell, event):
    sessions = remote.sessions().sessions()
    return [str(s.id) for s in sessions] + [s.name for s in sessions]


MAGIC_NAMES = ("start_job", "get_job", "receive_job", "wait_job", "stop_job", "remove_job",
               "new_session", "get_session", "remove_session", "invoke", "enter_session", "exit_session",
               "disconnect_session", "connect_session", "receive_session")


def load(shell):
    api.registry()  # creates the registry and its shutdown hook now, not at the first job
    context.install_routing()
    rich.route_ipython_display()
    shell.register_magics(JobMagics)
    for name in MAGIC_NAMES:
        completer = _complete_sessions if "session" in name or name == "invoke" else _complete_jobs
        shell.set_hook("complete_command", completer, str_key="%" + name)


def unload(shell):
    for name in MAGIC_NAMES:
        shell.magics_manager.magics["line"].pop(name, None)
        shell.magics_manager.magics["cell"].pop(name, None)
