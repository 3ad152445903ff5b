"""Which notebook names a piece of code reads before (or without) defining them itself.

A job sees the notebook variables its code reads, as the cell would. The
analysis is static and errs towards capturing: a name read at the top level
counts unless an earlier top-level statement bound it; a name read as a
global inside a function, lambda, class or comprehension counts unless the
code binds it at the top level anywhere.
"""
from __future__ import annotations

import ast
import builtins
import functools
import symtable

from ..core.shell_escape import SHELL_NAME, names_in
from ..errors import CodeSyntaxError

def parse(code, what="job code"):
    """Parse ``code`` or raise CodeSyntaxError with a one-line message."""
    try:
        return ast.parse(code, "<%s>" % what, "exec")
    except SyntaxError as exc:
        where = " (line %d)" % exc.lineno if exc.lineno else ""
        raise CodeSyntaxError("%s does not parse%s: %s" % (what, where, exc.msg)) from None


def _top_level_bindings(statement):
    """Names a top-level statement binds in the module scope."""
    bound = set()
    for node in _walk_outer(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, _Bind) and node.name:
            bound.add(node.name)
    return bound


def _walk_outer(node):
    """Nodes of ``node`` that run in its own scope: nested scopes show only their header."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(current.decorator_list + current.args.defaults
                         + [d for d in current.args.kw_defaults if d is not None])
        elif isinstance(current, ast.Lambda):
            stack.extend(current.args.defaults + [d for d in current.args.kw_defaults if d is not None])
        elif isinstance(current, ast.ClassDef):
            stack.extend(current.decorator_list + current.bases + [k.value for k in current.keywords])
        elif isinstance(current, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            stack.append(current.generators[0].iter)  # the only part evaluated outside
        else:
            stack.extend(ast.iter_child_nodes(current))


def _nested_global_reads(table):
    names = set()
    for child in table.get_children():
        for symbol in child.get_symbols():
            if symbol.is_referenced() and (symbol.is_global() or
                                           (child.get_type() == "class" and not symbol.is_local())):
                names.add(symbol.get_name())
        names |= _nested_global_reads(child)
    return names


def _scan_block(statements, bound, free):
    """Walk statements in execution order: a read counts if nothing bound the name before it."""
    for statement in statements:
        parts = _compound_parts(statement)
        if parts is None:
            _note_reads(statement, bound, free)
            bound |= _top_level_bindings(statement)
            continue
        for part in parts:
            if isinstance(part, list):
                _scan_block(part, bound, free)
            else:
                _note_reads(part, bound, free)
                bound |= _top_level_bindings(part)


def _compound_parts(statement):
    """A compound statement's pieces in the order they run; None for a simple statement."""
    if isinstance(statement, (ast.For, ast.AsyncFor)):
        return [statement.iter, statement.target, statement.body, statement.orelse]
    if isinstance(statement, (ast.If, ast.While)):
        return [statement.test, statement.body, statement.orelse]
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        items = [x for item in statement.items for x in (item.context_expr, item.optional_vars) if x is not None]
        return items + [statement.body]
    if isinstance(statement, ast.Try):
        handlers = [h for handler in statement.handlers for h in ([handler.type] if handler.type else [])
                    + [_Bind(handler.name)] + [handler.body]]
        return [statement.body] + handlers + [statement.orelse, statement.finalbody]
    return None


class _Bind(ast.AST):
    """A pseudo-node that only binds a name (an ``except ... as name``)."""

    def __init__(self, name):
        super().__init__()
        self.name = name


def _note_reads(node, bound, free):
    if isinstance(node, _Bind):
        return
    for child in _walk_outer(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) and child.id not in bound:
            free.add(child.id)


#: How many code strings' analyses are remembered (a notebook starts the same code again and again).
CACHE_SIZE = 256


def check(code, what="job code"):
    """Raise CodeSyntaxError unless ``code`` parses (cheap for code seen before)."""
    _parses(code, what)


def free_names(code, what="job code", include_builtins=False):
    """Names ``code`` reads that it does not define itself first."""
    free = _names_read(code, what)
    if include_builtins:
        return set(free)
    return {name for name in free if not hasattr(builtins, name)}


# Parsing and the symbol table cost more than the rest of starting a thread job: done once per code.
# What is kept is small (a flag, a set of names), never the syntax tree.
@functools.lru_cache(maxsize=CACHE_SIZE)
def _parses(code, what):
    parse(code, what)
    return True


@functools.lru_cache(maxsize=CACHE_SIZE)
def _names_read(code, what):
    bound, free = set(), set()
    tree = parse(code, what)
    _scan_block(tree.body, bound, free)
    table = symtable.symtable(code, "<%s>" % what, "exec")
    free |= _nested_global_reads(table) - bound
    free |= _shell_command_reads(tree)
    return frozenset(free)


def _shell_command_reads(tree):
    """Names read by ``$name`` / ``{expression}`` in the job's ``!command`` lines (jobcode.py rewrote them)."""
    names = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == SHELL_NAME
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names |= names_in(node.args[0].value)
    return names


def notebook_names(codes, user_ns, hidden=None):
    """The user-namespace entries the given code strings read, in a stable order."""
    hidden = hidden or {}
    wanted = set()
    for code in codes:
        if code:
            wanted |= _names_read(code, "job code")  # builtins included: a notebook may shadow one
    return {name: user_ns[name] for name in sorted(wanted)
            if name in user_ns and not name.startswith("_")
            and not (name in hidden and hidden[name] is user_ns[name])}
