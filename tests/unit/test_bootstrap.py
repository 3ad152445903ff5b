import ast
import re
import json
import pathlib
import subprocess
import sys
import zlib

import pytest

import jobmagics.agent
from jobmagics.transport.bootstrap import AGENT_PACKAGE, BOOTSTRAP, agent_bundle, agent_command

AGENT_DIR = pathlib.Path(jobmagics.agent.__file__).resolve().parent
AGENT_FILES = sorted(AGENT_DIR.glob("*.py"))
OLDEST_AGENT_PYTHON = (3, 8)
#: Third-party modules the agent may use when present, each only inside a function (imported lazily).
#: dill and IPython when importable; matplotlib only once the job itself imported it (figures.py);
#: distributed in the Dask worker's module (daskworker.py), which runs only in a Dask worker.
OPTIONAL_IMPORTS = {"dill", "IPython", "matplotlib", "distributed"}


def _unpack(bundle):
    header, _, blob = bundle.partition(b"\n")
    assert int(header) == len(blob)
    return json.loads(zlib.decompress(blob).decode("utf-8"))


def _pack(spec):
    blob = zlib.compress(json.dumps(spec).encode("utf-8"))
    return b"%d\n" % len(blob) + blob


def _root(name):
    return name.split(".")[0]


# ----- the bundle ------------------------------------------------------------------------------

def test_bundle_holds_every_agent_module_under_the_private_package_name():
    spec = _unpack(agent_bundle())
    expected = {AGENT_PACKAGE if p.stem == "__init__" else "%s.%s" % (AGENT_PACKAGE, p.stem): p for p in AGENT_FILES}
    assert set(spec["modules"]) == set(expected)
    for name, path in expected.items():
        assert spec["modules"][name] == path.read_text(encoding="utf-8"), name
    assert spec["packages"] == [AGENT_PACKAGE]
    assert spec["entry"] == AGENT_PACKAGE + ".main"
    assert "def main(" in spec["modules"][spec["entry"]]


def test_bundle_is_built_once():
    assert agent_bundle() is agent_bundle()


# ----- Python 3.8 compatibility ------------------------------------------------------------------

def test_bootstrap_parses_as_python_3_8():
    ast.parse(BOOTSTRAP, "<bootstrap>", feature_version=OLDEST_AGENT_PYTHON)


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: p.name)
def test_agent_module_parses_as_python_3_8(path):
    ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=OLDEST_AGENT_PYTHON)


# ----- agent_command ----------------------------------------------------------------------------

def test_agent_command_from_a_path():
    assert agent_command("/usr/bin/python3") == ["/usr/bin/python3", "-u", "-c", BOOTSTRAP]


def test_agent_command_from_a_list_keeps_its_arguments_and_does_not_change_it():
    python = ["/opt/python3.8", "-S"]
    assert agent_command(python) == ["/opt/python3.8", "-S", "-u", "-c", BOOTSTRAP]
    assert agent_command(tuple(python)) == ["/opt/python3.8", "-S", "-u", "-c", BOOTSTRAP]
    assert python == ["/opt/python3.8", "-S"]


# ----- the agent's imports ------------------------------------------------------------------------

def _imports(tree):
    """(absolute module name, in a function, in a try that catches ImportError) for every import."""
    found = []

    def catches_import_error(handler):
        names = [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts
        return handler.type is None or any(getattr(n, "id", None) in ("ImportError", "ModuleNotFoundError",
                                                                      "Exception") for n in names)

    def visit(node, in_function, in_try):
        if isinstance(node, ast.Import):
            found.extend((alias.name, in_function, in_try) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.module, in_function, in_try))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        if isinstance(node, ast.Try):
            guarded = any(catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, in_function, in_try or guarded)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, in_function, in_try)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, in_function, in_try)

    visit(tree, False, False)
    return found


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: p.name)
def test_agent_module_imports_only_the_standard_library_at_module_level(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    outside = [name for name, in_function, _ in _imports(tree)
               if not in_function and _root(name) not in sys.stdlib_module_names and name != "__future__"]
    assert outside == []


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: p.name)
def test_agent_module_uses_third_party_modules_only_lazily(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    third_party = [(name, in_function, in_try) for name, in_function, in_try in _imports(tree)
                   if _root(name) not in sys.stdlib_module_names and name != "__future__"]
    assert {_root(name) for name, _, _ in third_party} <= OPTIONAL_IMPORTS
    for name, in_function, in_try in third_party:
        assert in_function, name
        if _root(name) == "dill":
            assert in_try, "dill is optional: its import must sit in try/except ImportError"


def test_the_agent_imports_dill_somewhere_and_only_guarded():
    seen = []
    for path in AGENT_FILES:
        seen += [(path.name, in_try) for name, _, in_try in _imports(ast.parse(path.read_text(encoding="utf-8")))
                 if _root(name) == "dill"]
    assert seen and all(in_try for _, in_try in seen)


def test_agent_modules_import_each_other_relatively():
    for path in AGENT_FILES:
        names = [name for name, _, _ in _imports(ast.parse(path.read_text(encoding="utf-8")))]
        assert not [n for n in names if _root(n) == "jobmagics"], path.name


# ----- the bootstrap program itself ----------------------------------------------------------------

def _run_bootstrap(stdin):
    return subprocess.run(agent_command([sys.executable, "-I"]), input=stdin, capture_output=True, timeout=60)


def test_bootstrap_serves_a_package_from_the_bundle_and_runs_its_entry():
    spec = {
        "modules": {
            "_bootpkg": "",
            "_bootpkg.helper": "ANSWER = 42\n",
            "_bootpkg.entry": ("import linecache\nfrom . import helper\n\n"
                               "def main():\n"
                               "    print(helper.ANSWER, __name__, __file__)\n"
                               "    print(linecache.getline(__file__, 1).strip())\n"),
        },
        "packages": ["_bootpkg"],
        "entry": "_bootpkg.entry",
    }
    result = _run_bootstrap(_pack(spec))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == ["42 _bootpkg.entry <jobmagics-sent>/_bootpkg/entry.py",
                                                   "import linecache"]


def test_bootstrap_says_so_when_the_bundle_is_cut_short():
    bundle = _pack({"modules": {"_m": "def main():\n    pass\n"}, "packages": [], "entry": "_m"})
    result = _run_bootstrap(bundle[:-5])
    assert result.returncode == 1
    assert "connection closed while receiving the agent" in result.stderr.decode()


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: p.name)
def test_the_shipped_core_names_no_notebook_side_module_even_as_a_string(path):
    # importlib.import_module("jobmagics.widgets.views") would reach the notebook side as surely as an import.
    names = [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    reaching = [n for n in names if re.search(r"\bjobmagics\.(?!agent\b)[a-z_]+", n) and " " not in n.strip()]
    assert reaching == [], "%s names %s" % (path.name, reaching)
