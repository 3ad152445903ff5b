"""Objects to bytes and back: pickle protocol 5 first, dill for what pickle cannot do.

Large buffers (NumPy arrays, bytes-likes that support it) travel out of band as
``PickleBuffer`` views, so the wire can send them without another copy.
Functions and classes defined in a notebook (module ``__main__``) cannot be
pickled by reference, since the other process has a different ``__main__``:
those go to dill, which sends them by value. Modules go by name.

Coming home, a class sent by value is the ``__main__`` class of the same
qualified name where this process has one (a notebook's), and a function the
``__main__`` function of the same name and code: objects a job made from the
notebook's classes are instances of those very classes again, so ``isinstance``
and pickling them by reference work (cloudpickle tracks such classes by id;
the name is what survives dill's round trip).
"""
from __future__ import annotations

import functools
import importlib
import io
import pickle
import sys
import types

from .errors import SerializationError

PICKLE = "pickle"
DILL = "dill"
BYTES = "bytes"  # a big bytes object on its own: sent from its memory as the payload's one buffer
#: From this size on, a bytes object that is the whole value skips pickling (which would copy it).
BYTES_THRESHOLD = 1 << 20


class _NeedsDill(SerializationError):
    """Pickle met a function or class defined in the notebook: dill serializes it by value."""


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        if isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) == "__main__":
            raise _NeedsDill()
        if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
            raise _NeedsDill()
        return NotImplemented


# The shipped code is jobmagics.core and jobmagics.agent in a kernel, and _jobmagics.core and
# _jobmagics.agent where it was sent by source: an object of it (a JobList an entered cell returns)
# is rebuilt with this process's copy.
_SHIPPED_ROOTS = ("jobmagics", "_jobmagics")
_SHIPPED_PACKAGES = ("core", "agent")
#: What a session started by an earlier jobmagics calls the core (it shipped one flat package).
_EARLIER_CORE = "_jobmagics_agent"


def home_module(module):
    """``module`` of the shipped code as this process names it; any other module unchanged."""
    here = __package__.rpartition(".")[0]
    root, _, rest = module.partition(".")
    if root in _SHIPPED_ROOTS and rest.split(".")[0] in _SHIPPED_PACKAGES:
        return here + "." + rest
    if root == _EARLIER_CORE:
        return here + ".core" + ("." + rest if rest else "")
    return module


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return super().find_class(home_module(module), name)


class Payload:
    """A serialized object: its codec, the pickle stream, and out-of-band buffers."""

    __slots__ = ("codec", "data", "buffers")

    def __init__(self, codec, data, buffers=()):
        self.codec = codec
        self.data = data
        self.buffers = list(buffers)

    @property
    def nbytes(self) -> int:
        return len(self.data) + sum(memoryview(b).nbytes for b in self.buffers)


def _dill():
    try:
        import dill
    except ImportError:
        return None
    return dill


def dumps(obj) -> Payload:
    """Serialize ``obj``; SerializationError says why when neither pickle nor dill can."""
    if type(obj) is bytes and len(obj) >= BYTES_THRESHOLD:
        return Payload(BYTES, b"", [obj])
    buffers = []
    stream = io.BytesIO()
    try:
        _Pickler(stream, protocol=5, buffer_callback=buffers.append).dump(obj)
        return Payload(PICKLE, stream.getvalue(), [b.raw() for b in buffers])
    except _NeedsDill:
        first_error = "defined in the notebook (needs dill)"
    except Exception as exc:
        first_error = "%s: %s" % (type(exc).__name__, exc)
    dill = _dill()
    if dill is None:
        raise SerializationError("cannot serialize a %s: %s, and dill is not installed"
                                 % (type(obj).__name__, first_error))
    buffers = []
    try:
        data = dill.dumps(obj, protocol=5, recurse=True, buffer_callback=buffers.append)
    except Exception as exc:
        raise SerializationError("cannot serialize a %s: %s" % (type(obj).__name__, _one_line(exc))) from exc
    return Payload(DILL, data, [b.raw() for b in buffers])


def loads(payload: Payload):
    if payload.codec == BYTES:
        return bytes(payload.buffers[0])
    if payload.codec == PICKLE:
        return _Unpickler(io.BytesIO(payload.data), buffers=payload.buffers).load()
    if payload.codec == DILL:
        dill = _dill()
        if dill is None:
            raise SerializationError("this object was sent with dill, which is not importable here")
        return _home_unpickler(dill)(io.BytesIO(payload.data), buffers=payload.buffers).load()
    raise SerializationError("unknown codec %r" % payload.codec)


def _main_attribute(qualname):
    """What ``__main__.<qualname>`` is in this process (None if nothing)."""
    found = sys.modules.get("__main__")
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found


def _home_type(make_type, typeobj, *args):
    """dill's class constructor, answering with this process's own ``__main__`` class of that name."""
    if len(args) == 3 and isinstance(args[2], dict) and args[2].get("__module__") == "__main__":
        qualname = args[2].get("__qualname__") or args[0]
        home = _main_attribute(qualname)
        if isinstance(home, type) and home.__module__ == "__main__" and home.__qualname__ == qualname:
            return home
    return make_type(typeobj, *args)


def _home_function(make_function, fcode, fglobals, fname=None, *args):
    """dill's function constructor, answering with the ``__main__`` function of that name and code."""
    home = _main_attribute(fname) if fname and fname.isidentifier() else None
    if isinstance(home, types.FunctionType) and home.__module__ == "__main__" and home.__code__ == fcode:
        return home
    return make_function(fcode, fglobals, fname, *args)


@functools.lru_cache(maxsize=None)
def _home_unpickler(dill):
    """A dill Unpickler whose by-value classes and functions come home (see the module's docstring)."""
    internals = sys.modules["dill._dill"]  # where dill's by-value constructors live (loaded with dill)
    make_type, make_function = internals._create_type, internals._create_function
    homes = {"_create_type": functools.partial(_home_type, make_type),
             "_create_function": functools.partial(_home_function, make_function)}

    class HomeUnpickler(dill.Unpickler):
        def find_class(self, module, name):
            if module in ("dill._dill", "dill.dill") and name in homes:
                return homes[name]
            return super().find_class(home_module(module), name)

    return HomeUnpickler


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, text[0] if text else "")


class Unshippable:
    """Stands in for a job's output object that could not be sent back; shows what it was."""

    def __init__(self, type_name, text, reason):
        self.type_name = type_name
        self.text = text
        self.reason = reason

    def __repr__(self):
        return "<unshippable %s: %s>" % (self.type_name, self.text)


#: Streams whose records hold objects (the rest is plain data): they travel serialized, as payloads.
OBJECT_STREAMS = ("output", "export")


def unshippable(stream, data, reason):
    """(stream, data) sent instead of an object record that cannot travel: an output's placeholder
    (stream ``unshippable``), or for an exported variable a warning naming it."""
    if stream == "export":
        name, value = data
        return "warning", "--export: %s (type %s) cannot be sent back: %s\n" % (name, type(value).__name__, reason)
    return "unshippable", placeholder_for(data, reason)


def placeholder_for(obj, reason):
    """The plain tuple an agent sends instead of an output object that cannot travel."""
    try:
        text = repr(obj)
    except Exception:
        text = "?"
    return (type(obj).__name__, text[:2000], reason)
