"""The magic line, as IPython users type it: the one parser every jobmagics magic's line goes through.

A line is read in three steps, each built on IPython's own pieces (spec section 1):

1. **Words** (:mod:`.words`): split like a shell line; quotes are removed, a
   ``#`` word starts a comment. In a magic that takes code, the flags come
   first and the code is everything after them, verbatim (or after ``--``).
2. **Expansion**, as IPython expands any line magic (its ``DollarFormatter``:
   ``$name``, ``$obj.attr``, ``{expression}``, ``$$`` for a literal ``$``), in
   the namespace of the code that ran the magic; single-quoted text is kept as
   typed. A word that is just ``$name`` stands for the object itself when it
   holds a job, a session or a list (a list of host names is several words).
3. **Flags**: the words go to the magic's own ``magic_arguments`` parser. A
   flag that takes several values takes them as words or comma lists.

Every mistake is a one-line ``UsageError`` raised before the magic does anything.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from IPython.core.error import UsageError
from IPython.utils.text import DollarFormatter

from .words import words

_WHOLE_VARIABLE = re.compile(r"^\$([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")
# What a value of a flag looks like on a line with code: a name, host, number, list or $variable;
# "collect_logs()" or "x + 1" do not, so the code starts there.
_VALUE_LIKE = re.compile(r"^[\w.@:/~*?$,+-]+$")


class Ref(str):
    """A word that stands for an object (``$job``): the parser sees its text, the magic gets ``obj``."""

    def __new__(cls, text, obj):
        word = super().__new__(cls, text)
        word.obj = obj
        return word


class Quoted(str):
    """A quoted value: one value even when it holds commas."""


@dataclass
class MagicLine:
    """A parsed line: the magic's flags, its code (verbatim), and what a multi-value flag took."""

    args: object
    code: str = ""
    #: on a line with code: "--computer took 'web1'" when the code follows such a flag, else ""
    took: str = ""
    #: the code is the end of the line (not a cell)
    code_on_line: bool = False

    def code_problem(self, message):
        """``message`` about the code, saying which words were taken as code (a line is ambiguous)."""
        if not self.code_on_line:
            return message
        hint = "; taken as code: %r" % self.code
        if self.took:
            hint += " (%s: join a flag's values with commas, or end the flags with --)" % self.took
        return message + hint


def parse(magic, line, shell=None, takes_code=False, cell=None):
    """Parse ``line`` for ``magic`` (a method decorated with ``magic_arguments``).

    ``shell`` gives the namespace for ``$`` and ``{}`` (None: no expansion).
    ``takes_code``: the line ends with code (a line magic's form of %start_job or %invoke).
    For a cell magic (``cell`` given) the line holds flags only.
    """
    parser = magic.parser
    namespace = _Namespace(shell)
    if takes_code and cell is None:
        flag_words, code, took = _split_code(parser, line)
    else:
        flag_words, code, took = list(words(line)), "", ""
        for word in flag_words:
            if word.problem:
                raise UsageError(word.problem)
    args = parser.parse_args([value for word in flag_words for value in _expand(word, namespace)])
    _finish(parser, args)
    return MagicLine(args, code, took, code_on_line=takes_code and cell is None)


# ----- flags and code --------------------------------------------------------------
def _split_code(parser, line):
    """The flag words of a line that ends with code, the code, and what a multi-value flag took."""
    options = parser._option_string_actions
    found = list(words(line))  # reading the code as words is harmless: its problems are never raised
    flag_words, index, took = [], 0, ""
    while index < len(found):
        word = found[index]
        name = word.raw.split("=", 1)[0]
        if word.raw == "--":
            return flag_words, line[word.end:].strip(), ""
        if not word.raw.startswith("-") or _looks_like_code(word.raw):
            return flag_words, line[word.start:].strip(), took
        _check(word)
        flag_words.append(word)
        index += 1
        action = options.get(name)
        if action is None or "=" in word.raw or action.nargs == 0:
            took = ""
            continue  # an unknown flag is left for the parser to name
        count = _values_taken(found, index, action.nargs)
        for value in found[index:index + count]:
            _check(value)
        flag_words += found[index:index + count]
        took = "%s took %s" % (name, " ".join(repr(w.text) for w in found[index:index + count])) \
            if action.nargs in ("+", "*") else ""
        index += count
    return flag_words, "", took


def _values_taken(found, index, nargs):
    """How many words from ``index`` a flag with ``nargs`` takes, on a line with code."""
    if nargs not in ("+", "*"):
        return 1 if index < len(found) else 0
    # Several values: all the value-like words up to the next flag; when code follows them
    # instead of a flag, only the first (commas join more), the rest is the code.
    run = index
    while run < len(found) and _is_value(found[run]):
        run += 1
    if run < len(found) and found[run].raw.startswith("-") and not _looks_like_code(found[run].raw):
        return run - index
    return min(1, run - index)


def _is_value(word):
    """Whether a word may be a flag's value: a name, a number, a quoted text, or one with ``{...}``."""
    if word.raw.startswith("-") or word.problem:
        return False
    return word.quoted or bool(_VALUE_LIKE.match(word.raw)) or ("{" in word.raw and word.raw.endswith("}"))


def _looks_like_code(word):
    # "-1", "-x + y" and "-(...)" are code; "-q" and "--quiet" are flags.
    return not re.match(r"^--?[A-Za-z]", word)


def _check(word):
    if word.problem:
        raise UsageError(word.problem)


def _finish(parser, args):
    """Comma lists flattened for flags that take several values; words standing for objects as objects."""
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest == "code" or value is None:
            continue
        if isinstance(value, list):
            setattr(args, action.dest, _objects(_comma_list(value)))
        elif isinstance(value, str):
            setattr(args, action.dest, getattr(value, "obj", str(value)))


def _comma_list(values):
    out = []
    for value in values:
        if isinstance(value, (Ref, Quoted)):
            out.append(value)
        else:
            out += [part for part in value.split(",") if part]
    return out


def _objects(values):
    return [getattr(value, "obj", str(value)) for value in values]


# ----- expansion -------------------------------------------------------------------
class _Namespace:
    """The variables ``$`` and ``{}`` see: the user's, and the locals of the code that ran the magic."""

    def __init__(self, shell):
        self.shell = shell
        self._merged = None

    @property
    def enabled(self):
        return self.shell is not None

    def mapping(self):
        if self._merged is None:
            self._merged = dict(self.shell.user_ns)
            caller = _magic_caller()
            if caller is not None and caller.f_locals is not self.shell.user_ns:
                self._merged.update(caller.f_locals)
        return self._merged


def _magic_caller():
    """The frame that called ``run_line_magic``/``run_cell_magic`` (a cell, or a function in it)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name in ("run_line_magic", "run_cell_magic") and \
                frame.f_globals.get("__name__") == "IPython.core.interactiveshell":
            return frame.f_back
        frame = frame.f_back
    return None


def _expand(word, namespace):
    """The values one word stands for: usually one string; a list variable gives several."""
    if not namespace.enabled:
        return [Quoted(word.text) if word.quoted else word.text]
    whole = _WHOLE_VARIABLE.match(word.raw)
    if whole is not None:
        return _values_of(_lookup(whole.group(1), namespace.mapping()), word.raw)
    # Single-quoted text is kept as typed, as IPython does ('$5' stays '$5').
    text = "".join(text if quote == "'" else _format(text, namespace) for quote, text in word.pieces)
    return [Quoted(text) if word.quoted else text]


def _format(text, namespace):
    if "$" not in text and "{" not in text:
        return text
    try:
        return DollarFormatter().vformat(text, args=[], kwargs=namespace.mapping())
    except Exception:
        return text  # what cannot be expanded stays as typed, as in any IPython line magic


def _lookup(dotted, mapping):
    name, *attributes = dotted.split(".")
    if name not in mapping:
        raise UsageError("no variable named %r" % name)
    value = mapping[name]
    for attribute in attributes:
        try:
            value = getattr(value, attribute)
        except AttributeError as exc:
            raise UsageError("$%s: %s" % (dotted, exc)) from None
    return value


def _values_of(value, raw):
    if isinstance(value, (list, tuple)):
        if not value:
            raise UsageError("%s is empty" % raw)
        return [_scalar(item, raw) for item in value]
    return [_scalar(value, raw)]


def _scalar(value, raw):
    if isinstance(value, str):
        return Quoted(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return Ref(raw, value)
