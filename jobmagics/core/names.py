"""Finding things by name, as every jobmagics verb does: wildcards, and "did you mean" for a misspelling.

Standard library only: the job registry inside the agent uses it too.
"""
from __future__ import annotations

import difflib
import fnmatch


def is_pattern(text):
    """A name with ``*``, ``?`` or ``[...]`` in it matches names like a shell pattern."""
    return any(char in text for char in "*?[")


def matching(items, text, name_of):
    """The items whose name is ``text``, or matches it when it is a pattern."""
    if is_pattern(text):
        return [item for item in items if fnmatch.fnmatchcase(name_of(item), text)]
    return [item for item in items if name_of(item) == text]


def suggestion(text, names):
    """`` (did you mean 'x'?)`` for the closest known name, or "" when none is close."""
    close = difflib.get_close_matches(text, list(names), n=1, cutoff=0.6)
    return " (did you mean %r?)" % close[0] if close else ""
