import ast
import re
import json
import pathlib
import subprocess
import sys
import zlib

import pytest

import jobmagics
from jobmagics.transport.bootstrap import (AGENT_PACKAGE, BOOTSTRAP, CORE_PACKAGE, SHIPPED_ROOT, agent_bundle,
                                           agent_command, shipped_sources)

PACKAGE_DIR = pathlib.Path(jobmagics.__file__).resolve().parent
#: What travels by source: the job core and the agent, each {path: subpackage name}.
SHIPPED_FILES = {path: sub for sub in ("core", "agent") for path in sorted((PACKAGE_DIR / sub).rglob("*.py"))}
AGENT_FILES = sorted(SHIPPED_FILES)
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

def _shipped_name(path):
    parts = list(path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    return ".".join([SHIPPED_ROOT] + (parts[:-1] if parts[-1] == "__init__" else parts))


def test_bundle_holds_the_core_and_the_agent_under_the_private_package_name():
    spec = _unpack(agent_bundle())
    expected = {_shipped_name(p): p for p in AGENT_FILES}
    assert set(spec["modules"]) == set(expected) | {SHIPPED_ROOT}
    assert spec["modules"][SHIPPED_ROOT] == ""  # the parent only: jobmagics/__init__.py is the notebook's API
    for name, path in expected.items():
        assert spec["modules"][name] == path.read_text(encoding="utf-8"), name
    assert spec["packages"] == [SHIPPED_ROOT, CORE_PACKAGE, AGENT_PACKAGE]
    assert spec["entry"] == AGENT_PACKAGE + ".main"
    assert "def main(" in spec["modules"][spec["entry"]]
    assert "class Job:" in spec["modules"][CORE_PACKAGE + ".job"]


def test_shipped_sources_is_what_the_bundle_holds():
    spec = _unpack(agent_bundle("relay"))
    assert shipped_sources() == {"modules": spec["modules"], "packages": spec["packages"]}
    assert spec["entry"] == AGENT_PACKAGE + ".relay"


def test_bundle_is_built_once():
    assert agent_bundle() is agent_bundle()


# ----- Python 3.8 compatibility ------------------------------------------------------------------

def test_bootstrap_parses_as_python_3_8():
    ast.parse(BOOTSTRAP, "<bootstrap>", feature_version=OLDEST_AGENT_PYTHON)


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: "/".join(p.parts[-2:]))
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


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: "/".join(p.parts[-2:]))
def test_agent_module_imports_only_the_standard_library_at_module_level(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    outside = [name for name, in_function, _ in _imports(tree)
               if not in_function and _root(name) not in sys.stdlib_module_names and name != "__future__"]
    assert outside == []


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: "/".join(p.parts[-2:]))
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


def _jobmagics_imports(path):
    """Every import of jobmagics code in ``path``, as the shipped subpackage it reaches ('core', 'agent',
    or the top-level name for anything else); absolute imports of jobmagics as 'jobmagics'."""
    reached = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            reached += ["jobmagics" for alias in node.names if _root(alias.name) == "jobmagics"]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                reached += ["jobmagics"] if _root(node.module) == "jobmagics" else []
            elif node.level == 1:
                reached.append(SHIPPED_FILES[path])
            else:  # from ..X import ...: a sibling of the subpackage (or the top level itself)
                target = (node.module or "").split(".")[0] if node.level == 2 else "jobmagics"
                if target:
                    reached.append(target)
                else:
                    reached += [alias.name for alias in node.names]
    return reached


#: What each shipped subpackage may import of jobmagics (relatively, so it works under SHIPPED_ROOT).
MAY_IMPORT = {"core": {"core"}, "agent": {"core", "agent"}}


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: "/".join(p.parts[-2:]))
def test_the_core_imports_only_itself_and_the_agent_only_itself_and_the_core(path):
    sub = SHIPPED_FILES[path]
    assert set(_jobmagics_imports(path)) <= MAY_IMPORT[sub], path.name


def test_the_layering_check_catches_what_it_should(tmp_path):
    core = tmp_path / "core"
    core.mkdir()
    cases = {"from ..agent import main\n": ["agent"], "from ..errors import UsageError\n": ["errors"],
             "from .. import api\n": ["api"], "import jobmagics.api\n": ["jobmagics"],
             "from ...sessions import remote\n": ["jobmagics"], "from . import job\n": ["core"]}
    for source, expected in cases.items():
        path = core / "probe.py"
        path.write_text(source)
        SHIPPED_FILES[path] = "core"
        try:
            assert _jobmagics_imports(path) == expected, source
        finally:
            del SHIPPED_FILES[path]


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


def _notebook_side_names(path):
    """Strings in ``path`` that name jobmagics code outside what its subpackage may import."""
    allowed = "|".join(sorted(MAY_IMPORT[SHIPPED_FILES[path]]))
    installed = re.compile(r"\bjobmagics\.(?!(?:%s)\b)[a-z_]+" % allowed)  # importlib.import_module("jobmagics.views")
    relative = re.compile(r"^\.\.+(?!(?:%s)\b)[A-Za-z_]" % allowed)  # import_module("..widgets.views", __package__)
    names = [node.value.strip() for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return [n for n in names if " " not in n and (installed.search(n) or relative.search(n))]


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: "/".join(p.parts[-2:]))
def test_the_shipped_code_names_no_notebook_side_module_even_as_a_string(path):
    # importlib.import_module("jobmagics.widgets.views") would reach the notebook side as surely as an import.
    reaching = _notebook_side_names(path)
    assert reaching == [], "%s names %s" % (path.name, reaching)


def test_the_string_check_catches_what_it_should(tmp_path):
    cases = {"core": ['"jobmagics.widgets.views"', '"..widgets"', '"jobmagics.agent.main"', '"..agent"'],
             "agent": ['"jobmagics.ipython.magics"', '"...api"', '"..sessions.remote"']}
    fine = {"core": ['"jobmagics.core.table"', '"jobmagics inside a job"'], "agent": ['"..core.job"', '"jobmagics.agent"']}
    for sub in cases:
        path = tmp_path / sub / "probe.py"
        path.parent.mkdir()
        path.write_text("NAMES = [%s]\n" % ", ".join(cases[sub] + fine[sub]))
        SHIPPED_FILES[path] = sub
        try:
            assert _notebook_side_names(path) == [c.strip('"') for c in cases[sub]], sub
        finally:
            del SHIPPED_FILES[path]
