"""IPython syntax in job code, rewritten (or refused) in the kernel before a job starts."""
import pytest

from jobmagics.ship import jobcode
from jobmagics.core.shell_escape import SHELL_NAME, expand
from jobmagics.errors import CodeSyntaxError


@pytest.mark.parametrize("code", ["x = 1", "print('get_ipython().system(')", "", None])
def test_plain_python_is_left_as_it_is(code):
    assert jobcode.prepare(code) is code


def test_shell_escapes_become_calls_of_the_jobs_shell():
    code = jobcode.prepare("!echo hi\nfiles = !ls\nfor f in files:\n    !echo {f}")
    assert code == ("%s.system('echo hi')\nfiles = %s.getoutput('ls')\nfor f in files:\n"
                    "    %s.system('echo {f}')\n" % (SHELL_NAME, SHELL_NAME, SHELL_NAME))


@pytest.mark.parametrize("code, magic", [("%time f()", "%time"), ("x = %env", "%env"),
                                         ("%%writefile a.txt\nhi", "%%writefile"), ("f?", "%pinfo")])
def test_magics_are_refused_by_name(code, magic):
    with pytest.raises(CodeSyntaxError, match="^init code uses the magic %s, which cannot run inside a job" % magic):
        jobcode.prepare(code, "init code")


def test_code_that_is_not_ipython_syntax_either_is_left_for_the_syntax_check():
    assert jobcode.prepare("def broken(:") == "def broken(:"


@pytest.mark.parametrize("command, expanded", [
    ("echo $name", "echo Ada"), ("echo {n + 1}", "echo 3"), ("echo $$HOME", "echo $HOME"),
    ("echo $missing {undefined}", "echo $missing {undefined}"),
])
def test_commands_expand_names_and_expressions_as_ipython_does(command, expanded):
    assert expand(command, {"name": "Ada", "n": 2}) == expanded


def test_notebook_variables_a_command_expands_are_captured():
    from jobmagics.ship import capture

    code = jobcode.prepare("!echo $who {n + 1} $HOME {not python}")
    assert capture.notebook_names([code], {"who": "x", "n": 1, "other": 2, "HOME": "h"}) == {"who": "x", "n": 1,
                                                                                          "HOME": "h"}
