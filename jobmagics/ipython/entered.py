"""``%enter_session``: every following cell runs in a session, until ``%exit_session``.

While a session is entered, an input transformer hands each cell to
:func:`run_cell` instead of the kernel. The cell runs in the session's agent
in one namespace that lives from cell to cell (like Enter-PSSession's remote
prompt); its output streams back tagged with the computer, and the value of
its last expression is the cell's value. Job magic lines in the cell are
translated into the agent's own job functions, so they act on the remote
registry (location ``localhost`` there).
"""
from __future__ import annotations

import re

from IPython.core.error import UsageError

from .. import api
from ..ship import shipping
from ..core.delivery import collapse
from ..core.job import Job
from . import magic_line

_entered = {"session": None}

JOB_MAGICS = ("start_job", "get_job", "receive_job", "wait_job", "stop_job", "remove_job")
_LINE_MAGIC = re.compile(r"^(?P<indent>\s*)(?:(?P<target>[A-Za-z_]\w*)\s*=\s*)?%(?P<name>\w+)\b(?P<args>.*)$")


def entered_session():
    return _entered["session"]


def enter(shell, session):
    _entered["session"] = session
    if transform not in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.insert(0, transform)


def exit_(shell):
    session, _entered["session"] = _entered["session"], None
    if transform in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(transform)
    return session


def transform(lines):
    """IPython input transformer: a cell becomes a call that runs it in the entered session."""
    session = _entered["session"]
    cell = "".join(lines)
    first = cell.lstrip().split("\n", 1)[0]
    if session is None or first.startswith(("%exit_session", "%enter_session")) or not cell.strip():
        return lines
    return ["__import__('jobmagics.ipython.entered').ipython.entered.run_cell(%r)\n" % cell]


def _refs(words):
    # In an entered session, $var names a variable there: it becomes that Python name.
    return [w[1:] if w.startswith("$") else repr(w) for w in words]


def translate_line(name, line, magics):
    """A job magic's line as a call of the same verb there (raises UsageError as the magic would).

    The line is read by the magics' own parser, without expansion (``$name`` names a
    variable there), and its flags become the verb's keyword arguments, as in the magic.
    """
    from .magics import verb_options

    parsed = magic_line.parse(getattr(magics, name), line, takes_code=name == "start_job")
    options = {key: value for key, value in verb_options(parsed.args).items() if value not in (None, False, [])}
    if options.pop("session", None) is not None:
        raise UsageError("--session acts from the notebook: %exit_session first")
    if name == "start_job":
        if not parsed.code.strip():
            raise UsageError("%start_job needs code to run")
        options.pop("capture_names", None)  # a job started there sees the cell's variables there
        positional = [repr(parsed.code)]
    else:
        positional = _refs(parsed.args.jobs)
    return "%s(%s)" % (name, ", ".join(positional + ["%s=%r" % item for item in sorted(options.items())]))


def translate_cell(cell, magics):
    """The cell as plain Python for the agent: job magics become calls, other magics are refused."""
    lines = cell.split("\n")
    header = lines[0].strip()
    if header.startswith("%%"):
        name, _, flags = header[2:].partition(" ")
        if name != "start_job":
            raise UsageError("only job magics work in an entered session, not %%%%%s" % name)
        return "from jobmagics import start_job\n" + translate_line(
            "start_job", flags + " -- " + "\n".join(lines[1:]), magics)
    out = []
    for line in lines:
        match = _LINE_MAGIC.match(line)
        if match is None:
            out.append(line)
            continue
        name = match.group("name")
        if name not in JOB_MAGICS:
            raise UsageError("only job magics work in an entered session, not %%%s (use %%exit_session first)" % name)
        call = translate_line(name, match.group("args"), magics)
        target = match.group("target")
        out.append("%s%s%s" % (match.group("indent"), target + " = " if target else "", call))
    code = "\n".join(out)
    if any(_LINE_MAGIC.match(line) for line in lines):
        code = "from jobmagics import %s\n%s" % (", ".join(JOB_MAGICS), code)
    return code


def run_cell(cell):
    """Run one cell in the entered session; its value is the cell's value."""
    from IPython import get_ipython
    from IPython.display import display

    from .magics import JobMagics

    session = _entered["session"]
    shell = get_ipython()
    code = translate_cell(cell, shell.magics_manager.registry[JobMagics.__name__])
    display({"text/plain": "[in %s on %s]" % (session.name, session.computer_name),
             "text/html": '<span style="color:#6a1b9a;font-size:85%%">&#8680; in session <b>%s</b> on <b>%s</b></span>'
                          % (session.name, session.computer_name)}, raw=True)
    request, buffers, _ = shipping.code_request(code, None, {}, cell, None)
    request["entered"] = True
    job = Job(cell, "RemoteJob")
    session.host.start(job, shipping.ShippedWork(request, buffers))
    outputs = []
    try:
        api.stream_until_done(job, outputs, fail=True)
    except KeyboardInterrupt:
        job.stop()
        raise
    return collapse(outputs)
