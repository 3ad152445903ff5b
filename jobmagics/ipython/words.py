"""A magic's line as words: split like a shell line, with IPython's ``{...}`` kept whole.

Quotes group a word and are removed (``"My Job"`` is ``My Job``); a ``{...}``
group may hold spaces and quotes (``{'a' + 'b'}``); a word that starts with
``#`` starts a comment. Scanning never raises: a word that cannot be read
(an unbalanced quote) says so in ``problem``, and only words that are flags
count it as a mistake (``don't`` in a job's code is none).
"""
from __future__ import annotations

from dataclasses import dataclass, field

QUOTES = "'\""


@dataclass
class Word:
    """One word of a line: where it stands, and its pieces (quoted or not)."""

    raw: str
    start: int
    end: int
    #: (quote, text) pieces: quote is ``'``, ``"`` or "" for unquoted text (``{...}`` included)
    pieces: list = field(default_factory=list)
    #: why the word cannot be read (an unbalanced quote), or None
    problem: str = None

    @property
    def quoted(self):
        return any(quote for quote, _ in self.pieces)

    @property
    def text(self):
        """The word without its quotes, unexpanded."""
        return "".join(text for _, text in self.pieces)


def words(line, start=0):
    """The words of ``line`` from ``start``, one at a time, up to a ``#`` comment."""
    position, end = start, len(line)
    while True:
        while position < end and line[position].isspace():
            position += 1
        if position >= end or line[position] == "#":
            return
        word = _word(line, position)
        yield word
        position = word.end


def _word(line, start):
    pieces, plain, position, end = [], [], start, len(line)
    while position < end and not line[position].isspace():
        char = line[position]
        if char in QUOTES:
            close = _closing_quote(line, position)
            if close is None:
                stop = _word_end(line, position)
                return Word(line[start:stop], start, stop, pieces,
                            "unbalanced %s quote in %s" % (char, line[start:stop]))
            if plain:
                pieces.append(("", "".join(plain)))
                plain = []
            text = line[position + 1:close]
            pieces.append((char, text.replace('\\"', '"').replace("\\\\", "\\") if char == '"' else text))
            position = close + 1
        elif char == "{":
            close = _closing_brace(line, position)
            if close is None:  # a lone "{" is text, as IPython leaves what it cannot expand
                plain.append(char)
                position += 1
            else:
                plain.append(line[position:close + 1])
                position = close + 1
        else:
            plain.append(char)
            position += 1
    if plain:
        pieces.append(("", "".join(plain)))
    return Word(line[start:position], start, position, pieces)


def _closing_quote(line, opening):
    quote, position = line[opening], opening + 1
    while position < len(line):
        char = line[position]
        if char == "\\" and quote == '"':
            position += 2
            continue
        if char == quote:
            return position
        position += 1
    return None


def _closing_brace(line, opening):
    depth, position = 0, opening
    while position < len(line):
        char = line[position]
        if char in QUOTES:
            close = _closing_quote(line, position)
            if close is None:
                return None
            position = close
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return None


def _word_end(line, position):
    while position < len(line) and not line[position].isspace():
        position += 1
    return position
