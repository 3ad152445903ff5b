"""Splitting a magic's line into its flags and the code that follows them, verbatim.

IPython's argument splitting is shell-like: it would eat the quotes of
``%start_job print("hi")``. Here the leading flags are parsed with the
magic's own parser and everything from the first non-flag word on is kept
exactly as typed.
"""
from __future__ import annotations

import re
import shlex

_TOKEN = re.compile(r"""\s*("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|\S+)""")


def _takes_value(action):
    return action.nargs != 0


def split_flags(parser, line, code_on_line=True):
    """(parsed flags, code) for ``line``; flags are parsed by ``parser`` (which raises UsageError).

    With code on the line, an option that takes several values takes one word
    (use commas: ``--session a,b``); without (a cell magic's line), every word
    is a flag or a value, as usual.
    """
    if not code_on_line:
        return parser.parse_args([unquote(t) for t in _TOKEN.findall(line)]), ""
    options = parser._option_string_actions
    flags, position, expect_value = [], 0, False
    while True:
        match = _TOKEN.match(line, position)
        if match is None:
            code = ""
            break
        token = match.group(1)
        if expect_value:
            flags.append(unquote(token))
            expect_value = False
        elif token == "--":
            position = match.end()
            code = line[position:].strip()
            break
        elif token.startswith("-") and token.split("=", 1)[0] in options:
            flags.append(token if "=" in token else token)
            expect_value = "=" not in token and _takes_value(options[token])
        elif token.startswith("-") and not _looks_like_code(token):
            flags.append(token)  # unknown flag: the parser will say so
        else:
            code = line[match.start(1):].strip()
            break
        position = match.end()
    return parser.parse_args(flags), code


def _looks_like_code(token):
    # "-1", "-x + y" and "-(...)" are code, "-q" or "--quiet" would be a flag.
    return not re.match(r"^--?[A-Za-z]", token)


def unquote(token):
    """A value as the user meant it: ``"a b"`` is ``a b`` (IPython's splitting keeps the quotes)."""
    if token is None:
        return None
    try:
        parts = shlex.split(token)
    except ValueError:
        return token
    return parts[0] if len(parts) == 1 else token


def comma_list(values):
    """Values given as several words and/or comma-separated, flattened: ["a,b", "c"] -> [a, b, c]."""
    return [v for value in (values or []) for v in value.split(",") if v]
