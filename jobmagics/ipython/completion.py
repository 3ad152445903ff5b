"""Tab completion on a jobmagics magic's line, through IPython's completer API (a v2 matcher).

What is offered depends on where the cursor is: flags after ``-``, states
after ``--state``, job types after ``--type``, sessions after ``--session``,
variables after ``$``, and job or session names and ids where the magic
expects them. On a magic's line (before its code) nothing else is offered:
Python keywords and builtins mean nothing there.
"""
from __future__ import annotations

import re

from IPython.core.completer import SimpleCompletion, completion_matcher

from .. import api
from ..sessions import remote
from ..core.states import JobState
from .words import words

_MAGIC = re.compile(r"^\s*(?:[A-Za-z_]\w*\s*=\s*)?(?P<cell>%%?)(?P<name>\w+)\s")
JOB_TYPES = ("ThreadJob", "BackgroundJob", "RemoteJob")
CODE_MAGICS = ("start_job", "invoke")
SESSION_MAGICS = ("get_session", "disconnect_session", "connect_session", "receive_session", "remove_session",
                  "enter_session")


def install(shell):
    """Add the matcher to the shell's completer (once)."""
    matchers = shell.Completer.custom_matchers
    if not any(getattr(m, "matcher_identifier", None) == magic_line_matcher.matcher_identifier for m in matchers):
        matchers.append(magic_line_matcher)


def uninstall(shell):
    matchers = shell.Completer.custom_matchers
    matchers[:] = [m for m in matchers if m is not magic_line_matcher]


@completion_matcher(identifier="jobmagics.magic_line", priority=100, api_version=2)
def magic_line_matcher(context):
    """Completions for the word at the cursor on a jobmagics magic's line; others are suppressed there."""
    nothing = {"completions": [], "suppress": False}
    if context.cursor_line != 0 and context.full_text.split("\n")[0].lstrip().startswith("%%"):
        return nothing  # in the body of a cell magic: code
    before = context.text_until_cursor
    match = _MAGIC.match(before)
    if match is None:
        return nothing
    from .magics import JobMagics, MAGIC_NAMES

    name = match.group("name")
    if name not in MAGIC_NAMES:
        return nothing
    magic = getattr(JobMagics, name)
    rest = before[match.end():]
    typed = [w for w in words(rest)]
    current = "" if not rest or rest[-1].isspace() else typed.pop().raw if typed else ""
    if name in CODE_MAGICS and match.group("cell") == "%" and _in_code(magic.parser, typed, current):
        return nothing  # completing the code: Python's own completion applies
    fragment, offers = _offers(name, magic.parser, typed, current)
    candidates = [text for text in offers if text.startswith(fragment)]
    if not candidates:
        # Nothing to offer on a magic's line: the word as typed, so that IPython leaves out
        # Python's keywords and builtins (it only lets a matcher with results suppress others).
        candidates = [fragment]
    return {"completions": [SimpleCompletion(text, type="jobmagics") for text in candidates],
            "matched_fragment": fragment, "suppress": True, "ordered": True}


def _offers(name, parser, typed, current):
    """(the part of the word being completed, what may stand there)."""
    if current.startswith("$"):
        return current[1:], _variables()
    if current.startswith("-"):
        return current, [option for option in parser._option_string_actions if option.startswith("--")]
    fragment = current.rsplit(",", 1)[-1]
    previous = typed[-1].raw if typed else ""
    action = parser._option_string_actions.get(previous)
    if action is not None and action.nargs != 0:
        return fragment, _values_for(action.dest, name)
    if name in CODE_MAGICS:
        return fragment, []
    return fragment, _sessions() if name in SESSION_MAGICS else _jobs()


def _values_for(dest, magic):
    if dest == "state":
        return [state.value for state in JobState]
    if dest == "job_type":
        return list(JOB_TYPES)
    if dest == "session" or dest == "sessions":
        return _sessions()
    if dest == "jobs":
        return _jobs()
    return []


def _in_code(parser, typed, current):
    """Whether the cursor is past the flags of a line that ends with code."""
    options = parser._option_string_actions
    expecting_value = False
    for word in typed:
        if word.raw == "--":
            return True
        if word.raw.startswith("-"):
            action = options.get(word.raw.split("=", 1)[0])
            expecting_value = action is not None and action.nargs != 0 and "=" not in word.raw
            continue
        if expecting_value:
            expecting_value = False
            continue
        return True
    return not (current.startswith("-") or current.startswith("$") or expecting_value or not current)


def _variables():
    from IPython import get_ipython

    shell = get_ipython()
    hidden = shell.user_ns_hidden
    return sorted(name for name in shell.user_ns if not name.startswith("_") and name not in hidden)


def _jobs():
    jobs = api.registry().jobs(include_children=True)
    return [j.name for j in jobs] + [str(j.id) for j in jobs]


def _sessions():
    found = remote.sessions().sessions()
    return [s.name for s in found] + [str(s.id) for s in found]
