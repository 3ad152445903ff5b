"""``!command`` inside a job: run by a shell, its output written to the job's stdout.

The kernel rewrites ``!cmd`` to ``<SHELL_NAME>.system('cmd')`` and ``x = !cmd`` to
``x = <SHELL_NAME>.getoutput('cmd')`` (jobmagics/ship/jobcode.py); this is the object
those calls reach, on any computer, IPython or not. As in IPython, ``$name`` and
``{expression}`` in the command are replaced by values from the job's code
(``$$`` is a ``$``).
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys

SHELL_NAME = "__jobmagics_shell__"

_EXPANSION = re.compile(r"\$\$|\$([A-Za-z_]\w*)|\{([^{}]+)\}")


def expand(command, namespace):
    """``command`` with ``$name`` and ``{expression}`` replaced from ``namespace``; what fails stays as typed."""
    def value(match):
        if match.group(0) == "$$":
            return "$"
        name, expression = match.group(1), match.group(2)
        try:
            return str(namespace[name] if name else eval(expression, namespace))
        except Exception:
            return match.group(0)
    return _EXPANSION.sub(value, command)


def names_in(command):
    """The variable names ``command``'s ``$name`` and ``{expression}`` read (for capturing them)."""
    names = set()
    for match in _EXPANSION.finditer(command):
        if match.group(1):
            names.add(match.group(1))
        elif match.group(2):
            try:
                tree = ast.parse(match.group(2).strip(), mode="eval")
            except SyntaxError:
                continue  # not Python: left for the shell, as IPython does
            names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return names


def _caller_namespace():
    frame = sys._getframe(2)
    return dict(frame.f_globals, **frame.f_locals)


class ShellEscape:
    """What ``!cmd`` calls in a job."""

    def system(self, command):
        """Run ``command``; its output (stdout and stderr, in order) goes to the job's stdout."""
        command = expand(command, _caller_namespace())
        process = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
        try:
            for line in process.stdout:
                sys.stdout.write(line)
            process.wait()
        finally:  # the job stopped while the command ran: the command ends with it
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()

    def getoutput(self, command, split=True):
        """The output of ``command``: its lines (IPython's SList where IPython is installed), or one string."""
        command = expand(command, _caller_namespace())
        text = subprocess.run(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace").stdout
        if not split:
            return text
        lines = text.splitlines()
        try:
            from IPython.utils.text import SList
        except ImportError:
            return lines
        return SList(lines)


SHELL = ShellEscape()
