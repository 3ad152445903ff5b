import pytest
from IPython.core.error import UsageError

from jobmagics.lineparse import split_flags
from jobmagics.magics import JobMagics

parser = JobMagics.start_job.parser


@pytest.mark.parametrize("line, name, code", [
    ('print("a  b")', None, 'print("a  b")'),
    ('--name "my job" x = {"k": \'v\'}', "my job", 'x = {"k": \'v\'}'),
    ("--name=j1 -1 + 2", "j1", "-1 + 2"),
    ("--thread -- --not-a-flag", None, "--not-a-flag"),
])
def test_code_after_flags_is_kept_verbatim(line, name, code):
    args, rest = split_flags(parser, line)
    assert args.name == name and rest == code


def test_unknown_flag_is_a_usage_error():
    with pytest.raises(UsageError, match="--bogus"):
        split_flags(parser, "--bogus 1")


def test_help_is_generated_from_the_parser():
    doc = JobMagics.start_job.__doc__
    for flag in ("--name", "--thread", "--init", "--using", "--no-capture"):
        assert flag in doc
