"""The IPython magics: parse flags, call one API function, return its result.

User mistakes become ``UsageError`` (one line, no traceback) and change nothing.
``JOB`` arguments are ids, names (wildcards allowed), ``$var`` or a variable
holding a Job (or a list of jobs).
"""
from __future__ import annotations

import contextlib

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, kwds, magic_arguments

from .. import api
from . import entered
from ..sessions import remote
from ..core import context, rich
from ..core.job import Job
from ..core.table import JobInfo
from ..errors import CodeSyntaxError, JobError, JobmagicsError, UserInputError
from . import completion, magic_line


@contextlib.contextmanager
def user_errors(parsed=None):
    """Show a mistake or an unreachable computer as one line, as IPython does for its own magics.

    Code from the magic's line that does not parse says which words were taken as code.
    """
    try:
        yield
    except JobError:
        raise
    except CodeSyntaxError as exc:
        message = str(exc)
        if parsed is not None and message.startswith("job code"):
            message = parsed.code_problem(message)
        raise UsageError(message) from None
    except JobmagicsError as exc:
        raise UsageError(str(exc)) from None


# The rules every magic's line follows (jobmagics/ipython/magic_line.py), at the end of each %magic? help.
LINE_RULES = """\
The line (docs/magic-line.md): flags first; the code of %start_job and %invoke
follows them verbatim (-- ends the flags). Flags, and lines without code,
expand $name, $obj.attr and {expression} as IPython does ($$ is a $; text in
'single quotes' is kept); a $name holding jobs, sessions or a list stands for
them. Quotes group a value, a # word starts a comment, several values go as
words or comma lists, job and session names take * and ? wildcards."""


def line_rules(magic):
    """End ``magic``'s help with the line's rules (a decorator of its own each time: IPython
    writes the description into the keywords it is given)."""
    return kwds(epilog=LINE_RULES)(magic)


jobs_argument = argument("jobs", nargs="*", metavar="JOB", help="job id, name (wildcards allowed), or $variable")
using_argument = argument("--using", nargs="+", metavar="V",
                          help="send exactly these notebook variables (words or a comma list)")
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
    """The SSH options of parsed ``connection_arguments``."""
    return dict(user=args.user, port=args.port, identity=args.identity,
                python=args.python, accept_new_host_key=args.accept_new_host_key)


@magics_class
class JobMagics(Magics):
    """PowerShell-style background jobs: %start_job, %get_job, %receive_job, %wait_job, ...

    Every line goes through one parser (:mod:`jobmagics.ipython.magic_line`): flags first,
    ``$name``/``{expr}`` expanded in the flags, code after them verbatim.
    """

    def _line(self, magic, line, takes_code=False, cell=None):
        return magic_line.parse(magic, line, self.shell, takes_code=takes_code, cell=cell)

    def _code(self, magic, line, cell):
        """A code magic's parsed line and its code: the rest of the line, or the cell."""
        parsed = self._line(magic, line, takes_code=True, cell=cell)
        name = magic.__name__
        if cell is not None:
            if parsed.args.code:
                raise UsageError("%%%%%s takes only flags on its line, not code: %r"
                                 % (name, " ".join(parsed.args.code)))
            parsed.code = cell
        if not parsed.code.strip():
            problem = "%%%s needs code to run" % name
            raise UsageError(problem + (" (%s; end the flags with --)" % parsed.took if parsed.took else ""))
        return parsed

    # ----- job refs ----------------------------------------------------------------
    def _refs(self, values, session=None):
        """Job refs: ids, names, jobs; a bare word naming a variable that holds jobs stands for them.

        For a session's registry, jobs shown from there (snapshots) stand for themselves.
        """
        if session is not None:
            return [value if isinstance(value, (str, JobInfo)) else str(getattr(value, "name", value))
                    for value in values]
        refs = []
        for value in values:
            if isinstance(value, str):
                held = self.shell.user_ns.get(value)
                if _holds_jobs(held) and not _is_job_name(value):
                    refs += list(held) if isinstance(held, (list, tuple)) else [held]
                else:
                    refs.append(value)
            elif isinstance(value, Job):
                refs.append(value)
            else:
                raise UsageError("%s is not a job" % _short(value))
        return refs

    def _items(self, value):
        """The items of --foreach: a notebook expression (its text), or the object a $variable held."""
        if not isinstance(value, str):
            return value
        try:
            return eval(value, self.shell.user_ns)  # noqa: S307 - the user's own expression, as in a cell
        except Exception as exc:
            raise UserInputError("--foreach %s: %s: %s" % (value, type(exc).__name__, exc)) from None

    def _session(self, ref):
        """The session a --session flag or S argument names (an id, a name, a pattern or a Session)."""
        return remote.sessions().resolve(ref)

    # ----- magics ------------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("--name", "-n", help="the job's name (default Job<id>)")
    @argument("--thread", action="store_true", help="run in a thread of the kernel (ThreadJob) instead of a process")
    @argument("--reuse", action="store_true",
              help="run in a warm process that may have served earlier jobs: many small jobs go faster, "
                   "and each sees what earlier ones left in that process")
    @argument("--init", metavar="CODE", help="code that runs first, in the job (like -InitializationScript)")
    @using_argument
    @argument("--no-capture", action="store_true", help="send no notebook variables")
    @argument("--export", nargs="+", metavar="V",
              help="hand these variables back when the job ends: %%receive_job sets them in the notebook "
                   "(words or a comma list)")
    @argument("--foreach", metavar="ITEMS",
              help="one child job per item of ITEMS (a notebook expression, e.g. items or 'range(8)'); "
                   "the item is _ in the code")
    @argument("--throttle-limit", type=int, metavar="N",
              help="with --foreach: at most N children at once (default: the CPUs here, or a cluster's threads)")
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
        parsed = self._code(self.start_job, line, cell)
        args, code = parsed.args, parsed.code
        with user_errors(parsed):
            if args.foreach is not None:
                args.foreach = self._items(args.foreach)
            return api.start_job(code, namespace=self.shell.user_ns, hidden=self.shell.user_ns_hidden,
                                 **verb_options(args))

    @no_var_expand
    @magic_arguments()
    @line_rules
    @jobs_argument
    @argument("--state", help="only jobs in this state (Running, Completed, Failed, Stopped, ...)")
    @argument("--type", dest="job_type", help="only jobs of this type (ThreadJob, BackgroundJob, RemoteJob)")
    @argument("--has-more-data", action="store_true", help="only jobs with output not yet received")
    @argument("--include-child-jobs", action="store_true", help="list child jobs as well")
    @session_argument
    @line_magic
    def get_job(self, line):
        """List jobs as a table (Get-Job); the value is the list of jobs."""
        args = self._line(self.get_job, line).args
        with user_errors():
            return api.get_job(*self._refs(args.jobs, args.session), **verb_options(args))

    @no_var_expand
    @magic_arguments()
    @line_rules
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
        args = self._line(self.receive_job, line).args
        if not args.jobs:
            raise UsageError("%receive_job needs at least one job")
        with user_errors():
            return api.receive_job(*self._refs(args.jobs, args.session), export_into=self.shell.user_ns,
                                   **verb_options(args))

    @no_var_expand
    @magic_arguments()
    @line_rules
    @jobs_argument
    @argument("--any", action="store_true", help="return when any one of the jobs finished")
    @argument("--timeout", type=float, metavar="SEC", help="give up waiting after SEC seconds (no error)")
    @session_argument
    @line_magic
    def wait_job(self, line):
        """Wait until the jobs (all, or any) finished; the value is the finished jobs (Wait-Job).

        Interrupting the cell stops the waiting, not the jobs.
        """
        args = self._line(self.wait_job, line).args
        with user_errors():
            return api.wait_job(*self._refs(args.jobs, args.session), **verb_options(args))

    @no_var_expand
    @magic_arguments()
    @line_rules
    @jobs_argument
    @session_argument
    @line_magic
    def stop_job(self, line):
        """Stop jobs (Stop-Job): a process job's process tree is terminated, then killed; a thread job is cancelled."""
        args = self._line(self.stop_job, line).args
        if not args.jobs:
            raise UsageError("%stop_job needs at least one job")
        with user_errors():
            api.stop_job(*self._refs(args.jobs, args.session), **verb_options(args))

    @no_var_expand
    @magic_arguments()
    @line_rules
    @jobs_argument
    @argument("--force", action="store_true", help="stop running jobs first instead of refusing")
    @argument("--state", help="remove the jobs in this state")
    @session_argument
    @line_magic
    def remove_job(self, line):
        """Forget finished jobs and their data (Remove-Job); running ones need --force."""
        args = self._line(self.remove_job, line).args
        with user_errors():
            api.remove_job(*self._refs(args.jobs, args.session), **verb_options(args))

    # ----- sessions ---------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("--computer", "-c", nargs="+", metavar="HOST",
              help="computers to connect to (names from ~/.ssh/config work; words or a comma list)")
    @argument("--local", action="store_true",
              help="a detached session on this machine: it outlives this kernel once disconnected")
    @argument("--idle-timeout", type=float, metavar="SEC",
              help="with --local: end it (and its jobs) after SEC seconds with no kernel connected (default 7200)")
    @argument("--cluster", metavar="ADDRESS",
              help="a session on a Dask cluster: its scheduler (tcp://host:8786 or a scheduler file), or local "
                   "(a LocalCluster the session owns); needs jobmagics[dask]")
    @argument("--name", "-n", help="the session's name (default Session<id>; with several computers, NAME-1, NAME-2, ...)")
    @connection_arguments
    @line_magic
    def new_session(self, line):
        """Open a persistent session on each computer (New-PSSession); the value is the session(s).

        The remote computer needs only Python 3.8+: jobmagics sends its agent over
        the connection. Host keys are checked against ~/.ssh/known_hosts.
        """
        args = self._line(self.new_session, line).args
        with user_errors():
            return remote.new_session(args.computer, local=args.local, idle_timeout=args.idle_timeout,
                                      name=args.name, cluster=args.cluster, **connection_options(args))

    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("sessions", nargs="*", metavar="S", help="session id, name (wildcards allowed) or $variable")
    @argument("--local", action="store_true", help="also the detached sessions of this user on this machine")
    @argument("--computer", "-c", nargs="+", metavar="HOST",
              help="also this user's sessions on these computers that no kernel here is connected to")
    @argument("--cluster", metavar="ADDRESS", help="also the cluster sessions left disconnected on this Dask cluster")
    @connection_arguments
    @line_magic
    def get_session(self, line):
        """List sessions (Get-PSSession): Id Name Transport ComputerName State Availability.

        With --local (this machine) or --computer HOST, sessions this kernel is not
        connected to show too, as Disconnected, Available or Busy (another kernel
        is connected); %receive_session or %connect_session takes one back. The
        connection flags say how to reach those computers, as for %new_session.
        """
        args = self._line(self.get_session, line).args
        with user_errors():
            return remote.get_session(*args.sessions, local=args.local, computer=args.computer,
                                      cluster=args.cluster, **connection_options(args))

    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("sessions", nargs="+", metavar="S", help="session id, name (wildcards allowed) or $variable")
    @line_magic
    def disconnect_session(self, line):
        """Leave sessions and their jobs running without this kernel (Disconnect-PSSession).

        The jobs show Disconnected here; %connect_session or, from any kernel,
        %receive_session picks them up again, with nothing lost.
        """
        args = self._line(self.disconnect_session, line).args
        with user_errors():
            return remote.disconnect_session(*args.sessions)

    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("session", metavar="S", help="session name (or id, or $variable)")
    @line_magic
    def connect_session(self, line):
        """Connect to a disconnected session again (Connect-PSSession); its jobs carry on here."""
        args = self._line(self.connect_session, line).args
        with user_errors():
            return remote.connect_session(args.session)

    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("session", metavar="S", help="session name (or id, or $variable)")
    @argument("--job-name", metavar="N", help="name for the job(s) that come back")
    @line_magic
    def receive_session(self, line):
        """Connect to a session and get a job for each piece of work still there (Receive-PSSession).

        Output the jobs produced while no kernel was connected is delivered by
        %receive_job as usual, every record exactly once.
        """
        args = self._line(self.receive_session, line).args
        with user_errors():
            return remote.receive_session(args.session, job_name=args.job_name)

    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("sessions", nargs="+", metavar="S", help="session id, name (wildcards allowed) or $variable")
    @line_magic
    def remove_session(self, line):
        """Close sessions and stop their jobs (Remove-PSSession)."""
        args = self._line(self.remove_session, line).args
        with user_errors():
            remote.remove_session(*args.sessions)

    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("--computer", "-c", nargs="+", metavar="HOST",
              help="run on these computers through temporary sessions (words or a comma list)")
    @argument("--session", "-s", nargs="+", metavar="S", help="run in these open sessions (words or a comma list)")
    @argument("--as-job", action="store_true", help="return a RemoteJob at once instead of waiting")
    @argument("--job-name", metavar="N", help="name of the job (implies --as-job)")
    @argument("--throttle-limit", type=int, default=32, metavar="N", help="at most N computers at once (default 32)")
    @using_argument
    @argument("code", nargs="*", help="the code to run (the rest of the line, or the cell for %%%%invoke)")
    @line_cell_magic
    def invoke(self, line, cell=None):
        """Run code on remote computers (Invoke-Command).

        Without --as-job the remote output streams into the cell (each line tagged
        with its computer when there are several) and the output objects are the
        value; an error there fails the cell, as an error in the cell would. With
        --as-job a RemoteJob comes back at once, with one child job per computer;
        manage it with the job magics.
        """
        parsed = self._code(self.invoke, line, cell)
        args = parsed.args
        with user_errors(parsed):
            return remote.invoke(parsed.code, computer=args.computer, session=args.session,
                                 as_job=args.as_job or bool(args.job_name), job_name=args.job_name,
                                 throttle_limit=args.throttle_limit, using=args.using,
                                 namespace=self.shell.user_ns, hidden=self.shell.user_ns_hidden)

    @no_var_expand
    @magic_arguments()
    @line_rules
    @argument("session", metavar="S", help="session id, name or $variable")
    @line_magic
    def enter_session(self, line):
        """From now on every cell runs in session S, until %exit_session (Enter-PSSession).

        Cells run in one namespace that lives in the session; their output comes
        back tagged with the computer, and an error there fails the cell. Job
        magics in those cells act on the session's own registry.
        """
        args = self._line(self.enter_session, line).args
        with user_errors():
            session = self._session(args.session)
        if session.transport == "Cluster":
            raise UsageError("%s is a cluster session: it runs jobs, not cells (%%start_job --session %s, "
                             "%%invoke --session %s)" % (session.name, session.name, session.name))
        entered.enter(self.shell, session)
        print("entered %s on %s: cells now run there; %%exit_session to come back" % (
            session.name, session.computer_name))

    @no_var_expand
    @magic_arguments()
    @line_rules
    @line_magic
    def exit_session(self, line):
        """Cells run in this kernel again (Exit-PSSession); the session stays open."""
        self._line(self.exit_session, line)
        session = entered.exit_(self.shell)
        if session is None:
            raise UsageError("no session is entered")
        print("left %s" % session.name)


def verb_options(args):
    """The keyword arguments of a job verb, from a job magic's parsed flags (their names are the verb's)."""
    options = {key: value for key, value in vars(args).items() if key not in ("jobs", "code")}
    if "no_capture" in options:
        options["capture_names"] = not options.pop("no_capture")
    if "has_more_data" in options:
        options["has_more_data"] = True if options["has_more_data"] else None
    return options


def _is_job_name(word):
    try:
        api.registry().resolve(word)
    except UserInputError:
        return False
    return True


def _holds_jobs(value):
    if isinstance(value, Job):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(item, Job) for item in value)


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


MAGIC_NAMES = ("start_job", "get_job", "receive_job", "wait_job", "stop_job", "remove_job",
               "new_session", "get_session", "remove_session", "invoke", "enter_session", "exit_session",
               "disconnect_session", "connect_session", "receive_session")


def load(shell):
    api.registry()  # creates the registry and its shutdown hook now, not at the first job
    context.install_routing()
    rich.route_ipython_display()
    shell.register_magics(JobMagics)
    completion.install(shell)


def unload(shell):
    for name in MAGIC_NAMES:
        shell.magics_manager.magics["line"].pop(name, None)
        shell.magics_manager.magics["cell"].pop(name, None)
    completion.uninstall(shell)
