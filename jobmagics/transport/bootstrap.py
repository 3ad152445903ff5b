"""Starting an agent from nothing but a ``python3``: its source travels over the connection.

The interpreter is started with a one-line program (:data:`BOOTSTRAP`) that
reads a length-prefixed, compressed bundle of module sources from stdin,
serves them to ``import`` from memory under the private package name
``_jobmagics_agent`` (so an installed jobmagics of another version never
mixes in), and runs the agent. Model: execnet's gateway bootstrap.
"""
from __future__ import annotations

import functools
import json
import pathlib
import zlib

AGENT_PACKAGE = "_jobmagics_agent"

# Kept to what old Pythons can parse: it runs on the far side before anything else,
# and says so when that Python is too old for the agent.
BOOTSTRAP = r"""
import sys
if sys.version_info < (3, 8):
    sys.exit("jobmagics: this Python (%d.%d) is too old for the agent, which needs 3.8 or newer" % sys.version_info[:2])
import json, zlib, linecache, importlib, importlib.abc, importlib.util
_r = sys.stdin.buffer
_n = int(_r.readline())
_blob = b""
while len(_blob) < _n:
    _part = _r.read(_n - len(_blob))
    if not _part:
        raise SystemExit("jobmagics bootstrap: connection closed while receiving the agent")
    _blob += _part
_src = json.loads(zlib.decompress(_blob).decode("utf-8"))
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    jobmagics_sources = True
    def add(self, modules, packages):
        _src["modules"].update(modules)
        _src["packages"].extend(packages)
    def find_spec(self, name, path=None, target=None):
        if name in _src["modules"]:
            return importlib.util.spec_from_loader(name, self, is_package=name in _src["packages"])
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        name = module.__name__
        filename = "<jobmagics-sent>/" + name.replace(".", "/") + ".py"
        code = _src["modules"][name]
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        module.__file__ = filename
        exec(compile(code, filename, "exec"), module.__dict__)
sys.meta_path.insert(0, _Finder())
importlib.import_module(_src["entry"]).main()
""".strip()


def package_sources(package_dir, package_name):
    """{module name: source} and the package names, for every .py file of a package."""
    root = pathlib.Path(package_dir)
    modules, packages = {}, []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join([package_name] + parts)
        modules[name] = path.read_text(encoding="utf-8")
        if is_package:
            packages.append(name)
    return modules, packages


@functools.lru_cache(maxsize=None)
def dill_sources():
    """dill's modules, sent to an agent whose Python lacks dill; None if dill is not here either."""
    try:
        import dill
    except ImportError:
        return None
    modules, packages = package_sources(pathlib.Path(dill.__file__).parent, "dill")
    return {"modules": modules, "packages": packages}


def shipped_sources():
    """What travels to a bare Python: {"modules": {name: source}, "packages": [names]}, the agent's
    modules under the private package name (an SSH or local agent's bundle, a Dask worker's plugin)."""
    modules, packages = package_sources(pathlib.Path(__file__).resolve().parent.parent / "agent", AGENT_PACKAGE)
    return {"modules": modules, "packages": packages}


@functools.lru_cache(maxsize=None)
def agent_bundle(entry="main") -> bytes:
    """The agent's modules as the length-prefixed bundle the bootstrap reads; ``entry`` is run."""
    bundle = dict(shipped_sources(), entry=AGENT_PACKAGE + "." + entry)
    blob = zlib.compress(json.dumps(bundle).encode("utf-8"), 6)
    return b"%d\n" % len(blob) + blob


def agent_command(python, *args):
    """The argv that starts an agent with ``python`` (a path, or a list such as [path, "-S"])."""
    argv = [python] if isinstance(python, str) else list(python)
    return argv + ["-u", "-c", BOOTSTRAP] + [str(arg) for arg in args]
