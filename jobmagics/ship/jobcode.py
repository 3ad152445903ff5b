"""IPython syntax in job code: ``!command`` runs in the job; any other magic is refused up front.

Job code is what a user would type in a cell. Plain Python goes to the job as it
is. Code that does not parse is given to IPython's own input transformer (the one
the kernel uses for cells): ``!cmd`` and ``x = !cmd`` become calls of the job's
shell escape (:mod:`jobmagics.core.shell_escape`, which needs no IPython where
the job runs); a magic (``%time``, ``%%bash``, ``obj?``) cannot run inside a job,
and naming it in a one-line error beats a job that fails later.
"""
from __future__ import annotations

import ast

from ..core.shell_escape import SHELL_NAME
from ..errors import CodeSyntaxError

#: What IPython's transformer writes for ``!cmd`` and ``x = !cmd``, and what the job calls instead.
_ESCAPES = {"get_ipython().system(": SHELL_NAME + ".system(",
            "get_ipython().getoutput(": SHELL_NAME + ".getoutput("}
_MAGIC_CALLS = {"run_line_magic": "%", "run_cell_magic": "%%"}


def prepare(code, what="job code"):
    """``code`` as the job runs it (None stays None); a magic in it raises CodeSyntaxError naming it."""
    if not code or _parses(code):
        return code
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # no IPython here: the syntax error is reported as it is
        return code
    transformed = TransformerManager().transform_cell(code)
    try:
        tree = ast.parse(transformed)
    except SyntaxError:
        return code  # not IPython syntax either: the check that follows reports the original error
    magic = _first_magic(tree)
    if magic is not None:
        raise CodeSyntaxError("%s uses the magic %s, which cannot run inside a job (of IPython's syntax, "
                              "jobs run !command only)" % (what, magic))
    for ipython_call, job_call in _ESCAPES.items():
        transformed = transformed.replace(ipython_call, job_call)
    return transformed


def _parses(code):
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _first_magic(tree):
    """``%name`` of the first magic call IPython's transformer wrote (help ``obj?`` is ``%pinfo``)."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _MAGIC_CALLS and node.args and isinstance(node.args[0], ast.Constant)):
            return _MAGIC_CALLS[node.func.attr] + str(node.args[0].value)
    return None
