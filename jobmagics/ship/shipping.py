"""Turning what a job needs into a START request: variables, code, or a callable with arguments."""
from __future__ import annotations

from typing import NamedTuple

from ..core import serialize, wire
from ..errors import ShipError


def _type_name(value):
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else "%s.%s" % (kind.__module__, kind.__qualname__)


def ship(name, value, buffers, shipped):
    """Serialize one named value into ``buffers``; record it in ``shipped``; ShipError names it."""
    try:
        payload = serialize.dumps(value)
    except serialize.SerializationError as exc:
        raise ShipError(name, _type_name(value), str(exc)) from None
    shipped[name] = {"type": _type_name(value), "codec": payload.codec, "bytes": payload.nbytes}
    return wire.payload_to_control(payload, buffers)


class ShippedWork(NamedTuple):
    """Work for a host that runs jobs in another process: the START request and its out-of-band buffers.

    Every host starts a job the same way, ``host.start(job, work)``: a thread host
    takes a :class:`~jobmagics.core.runner.Work`, a host with ``ships = True`` this.
    """

    request: dict
    buffers: list


def code_request(code, init, variables, command, name, export=()):
    """(request, buffers, shipped) for a code job; nothing is sent if any variable fails."""
    buffers, shipped = [], {}
    shipped_vars = {key: ship(key, value, buffers, shipped) for key, value in variables.items()}
    request = {"code": code, "init": init, "variables": shipped_vars, "command": command, "name": name,
               "export": list(export)}
    return request, buffers, shipped


def call_request(fn, args, kwargs, command, name):
    """(request, buffers, shipped) for a callable job."""
    buffers, shipped = [], {}
    label = getattr(fn, "__name__", "function")
    request = {"fn": ship(label, fn, buffers, shipped), "args": ship("args", tuple(args), buffers, shipped),
               "kwargs": ship("kwargs", dict(kwargs), buffers, shipped), "command": command, "name": name}
    return request, buffers, shipped


def references(variables):
    """``job.shipped`` for a thread job: the same objects, nothing serialized."""
    return {key: {"type": _type_name(value), "codec": "reference", "bytes": 0} for key, value in variables.items()}
