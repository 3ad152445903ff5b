"""A process job's text through the kernel's pipes: exact sizes, any str, and what a death leaves."""
from __future__ import annotations

import os

import pytest

from jobmagics.core import textpipe

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


def test_text_arrives_exactly_as_written_lone_surrogates_too(pipe):
    read_fd, write_fd = pipe
    pieces = ["plain\n", "ünïcödé ✓\n", "lone \udc80 surrogate\n"]
    sizes = []
    for text in pieces:
        data = textpipe.encode(text)
        sizes.append(len(data))
        textpipe.write_all(write_fd, data)
    assert [textpipe.decode(textpipe.read_exactly(read_fd, size)) for size in sizes] == pieces


def test_a_placeholder_bigger_than_what_came_reads_what_there_is_once_the_writer_is_gone(pipe):
    read_fd, write_fd = pipe
    textpipe.write_all(write_fd, textpipe.encode("ab✓")[:-1])  # the writer died in the middle of a character
    os.close(write_fd)
    assert textpipe.decode(textpipe.read_exactly(read_fd, 100)) == "ab\ufffd"


def test_read_available_takes_what_is_there_and_says_when_the_writers_are_gone(pipe):
    read_fd, write_fd = pipe
    os.set_blocking(read_fd, False)
    assert textpipe.read_available(read_fd) == (b"", False)
    os.write(write_fd, b"last words\n")
    assert textpipe.read_available(read_fd) == (b"last words\n", False)
    os.write(write_fd, b"more")
    os.close(write_fd)
    assert textpipe.read_available(read_fd) == (b"more", True)
