"""The generated magic pages in docs/ are up to date, and every magic is documented and indexed."""
from __future__ import annotations

import importlib.util
import pathlib

from jobmagics.ipython.magics import MAGIC_NAMES, JobMagics

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_magic_docs", DOCS / "gen_magic_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_magic_pages_are_what_the_generator_writes():
    problems = _generator().check()
    assert not problems, "stale magic pages (run .venv/bin/python docs/gen_magic_docs.py):\n" + "\n".join(problems)


def test_every_magic_has_a_page_listed_in_the_index():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for name in MAGIC_NAMES:
        assert (DOCS / "magics" / ("%s.md" % name)).is_file(), "no page for %%%s" % name
        assert "(magics/%s.md)" % name in index, "docs/index.md does not link %%%s" % name


def test_pages_carry_the_magics_own_help():
    # The pages render the help at a fixed width; apart from line wrapping it is the docstring.
    generator = _generator()
    for name in MAGIC_NAMES:
        rendered = "".join(generator.help_text(name).split())
        assert rendered == "".join(getattr(JobMagics, name).__doc__.split()), name
