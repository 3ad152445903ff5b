"""``start_job(work, foreach=items, throttle_limit=N)``: one parent job, one child job per item.

PowerShell's ``ForEach-Object -Parallel -AsJob``: in each child the item is
``_`` (code) or the first argument (a callable). At most ``throttle_limit``
children run at once; the others wait ``NotStarted``. The parent's state
follows its children's (spec section 2), and receiving the parent gives the
children's records in item order (``Job.records``).

:class:`Throttle` is the children's host until they start, and starts each
one on the real host (a thread host, a process host, or a cluster's) as a
slot frees up.
"""
from __future__ import annotations

import os
import threading

from ..core.job import Job
from ..core.states import JobState
from ..errors import UserInputError


def throttle_of(throttle_limit, default=None):
    if throttle_limit is None:
        return max(1, default or os.cpu_count() or 1)
    try:
        value = int(throttle_limit)
    except (TypeError, ValueError):
        raise UserInputError("--throttle-limit takes a number, not %r" % (throttle_limit,)) from None
    if value < 1:
        raise UserInputError("--throttle-limit must be at least 1")
    return value


class Throttle:
    """Starts children as slots free up (at most ``limit`` unfinished); their host until they start.

    ``start_child(child)`` starts one child on its real host (which becomes the child's host).
    One thread per parent hands out the slots, and ends once every child started.
    """

    def __init__(self, limit, start_child, name="foreach"):
        self.limit = limit
        self._start_child = start_child
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._waiting = []
        self._running = set()
        self._name = name

    def add(self, child):
        child._host = self
        child.add_state_callback(self._on_child_state)
        self._waiting.append(child)

    def start(self):
        threading.Thread(target=self._dispatch, daemon=True, name="jobmagics-foreach-%s" % self._name).start()

    def _dispatch(self):
        while True:
            with self._changed:
                self._changed.wait_for(lambda: len(self._running) < self.limit or not self._waiting)
                if not self._waiting:
                    return
                child = self._waiting.pop(0)
                self._running.add(child.instance_id)
                # Started under the lock: a stop finds the child either waiting or on its host.
                try:
                    self._start_child(child)
                except Exception as exc:  # this child failed to start; the others carry on
                    child._fail(exc)

    def _on_child_state(self, child, old, new):
        if not new.finished:
            return
        with self._changed:
            self._running.discard(child.instance_id)
            self._changed.notify_all()

    def stop(self, child):
        """A child still waiting never starts; a started one is stopped on its host."""
        with self._changed:
            waiting = child in self._waiting
            if waiting:
                self._waiting.remove(child)
                self._changed.notify_all()
            host = child._host
        if waiting or host is self:
            child._set_state(JobState.Stopped, "stopped before it started")
        else:
            host.stop(child)


def start_foreach(items, throttle_limit, job_type, start_child, command, name=None, location="localhost",
                  register=None, child_location=None):
    """The parent job of ``items``, registered with ``register`` and started; ``start_child(child, item)``.

    Children are made (and registered with the parent) before any starts.
    """
    parent = Job(command, job_type, name=name, location=location)
    throttle = Throttle(throttle_limit, lambda child: start_child(child, child._foreach_item),
                        name=name or "foreach")
    for item in items:
        child = Job(command, job_type, location=child_location or location)
        child._foreach_item = item
        parent._add_child(child)
        throttle.add(child)
    if register is not None:
        register(parent)
    throttle.start()
    return parent


def start_local(host, work, args, options):
    """``start_job(..., foreach=items)`` in this kernel: each child on ``host`` (threads or processes)."""
    from .. import api
    from ..core.runner import Work
    from ..ship import shipping

    items, limit = options.pop("foreach"), throttle_of(options.pop("throttle_limit"))
    name = options.pop("name")
    prepared = api.prepare(work, args, **options)
    command, work, init, variables, kwargs, export = prepared
    if host.ships:
        api.shipped_request(prepared, args, name)  # a variable that cannot be sent fails here, before any child

    def start_child(child, item):
        if callable(work):
            child_args, child_vars = (item,) + tuple(args), {}
        else:
            child_args, child_vars = args, dict(variables, _=item)
        child.shipped = shipping.references(child_vars)
        if not host.ships:
            return host.start(child, Work(fn=work, args=child_args, kwargs=kwargs) if callable(work) else
                              Work(code=work, init=init, namespace=child_vars, export=export))
        request, buffers, child.shipped = api.shipped_request(
            (command, work, init, child_vars, kwargs, export), child_args, child.name)
        return host.start(child, shipping.ShippedWork(request, buffers))

    return start_foreach(items, limit, host.job_type, start_child, command, name=name, register=api.registry().add)
