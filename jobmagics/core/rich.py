"""``display()`` inside a job: rich data goes to the job's display stream.

Inside a job, ``display`` (the name, and ``from IPython.display import
display``, redirected by :func:`install_display_hook`) is :func:`display`,
which formats as the kernel would: with the shell's formatter in a kernel,
IPython's where it is importable, plain ``_repr_*_`` methods otherwise; a
matplotlib figure as its PNG. What other code publishes from a job's thread in
a kernel goes through the shell's display publisher, which
:func:`route_publisher` wraps.
"""
from __future__ import annotations

import base64
import sys
import uuid

from . import context, figures, import_hooks

_formatter = None

#: What a plain Python (no IPython) shows for an object: the notebook's ``_repr_*_`` methods.
_REPR_METHODS = (("text/html", "_repr_html_"), ("text/markdown", "_repr_markdown_"),
                 ("text/latex", "_repr_latex_"), ("application/json", "_repr_json_"),
                 ("image/png", "_repr_png_"), ("image/jpeg", "_repr_jpeg_"), ("image/svg+xml", "_repr_svg_"))


def _formatted_without_ipython(obj):
    data = {"text/plain": repr(obj)}
    bundle = getattr(obj, "_repr_mimebundle_", None)
    if callable(bundle):
        result = bundle()
        if isinstance(result, tuple):
            result = result[0]
        data.update(result or {})
    for mime, method in _REPR_METHODS:
        fn = getattr(obj, method, None)
        value = fn() if callable(fn) and mime not in data else None
        if value is not None:
            data[mime] = value
    return data, {}


def _ipython_formatter():
    global _formatter
    shell = running_shell()
    if shell is not None:
        return shell.display_formatter  # with what the notebook registered (the inline backend's figures)
    if _formatter is None:
        from IPython.core.formatters import DisplayFormatter
        _formatter = DisplayFormatter()
    return _formatter


def mimebundle(obj):
    """(data, metadata) for ``obj`` as a notebook would show it; a matplotlib figure as its PNG.

    Binary data (images) is base64 text, as in a notebook file.
    """
    try:
        formatter = _ipython_formatter()
    except ImportError:
        data, meta = _formatted_without_ipython(obj)
    else:
        data, meta = formatter.format(obj)
    if figures.is_figure(obj):
        if "image/png" not in data:
            data = dict(data, **figures.png_bundle(obj))
        figures.note_shown(obj)
    return {mime: _as_text(value) for mime, value in data.items()}, meta or {}


def _as_text(value):
    return base64.b64encode(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else value


def display(*objs, raw=False, metadata=None, display_id=None, update=False, **kwargs):
    """Show objects in the job's display stream (print them outside a job).

    As IPython's: ``display_id`` (True for a new one) returns a handle whose
    ``update(obj)`` replaces that output where the job is received.
    """
    ctx = context.current()
    if ctx is None:
        print(*objs)
        return None
    if display_id is True:
        display_id = uuid.uuid4().hex
    for obj in objs:
        if raw:
            data, meta = obj, metadata or {}
        else:
            data, meta = mimebundle(obj)
            meta = dict(meta, **(metadata or {}))
        ctx.record("display", display_item(data, meta, {"display_id": display_id} if display_id else None, update))
    return DisplayHandle(display_id) if display_id and not update else None


def display_item(data, metadata, transient=None, update=False):
    """A display record's data: the bundle, and (for an output that can be updated) its display id."""
    item = {"data": dict(data), "metadata": dict(metadata or {})}
    if transient:
        item["transient"] = dict(transient)
        if update:
            item["update"] = True
    return item


class DisplayHandle:
    """What ``display(obj, display_id=...)`` returns in a job."""

    def __init__(self, display_id):
        self.display_id = display_id

    def display(self, obj, **kwargs):
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj, **kwargs):
        display(obj, display_id=self.display_id, update=True, **kwargs)

    def __repr__(self):
        return "<DisplayHandle display_id=%s>" % self.display_id


def route_publisher(display_pub):
    """Wrap an IPython DisplayPublisher so a job thread's ``display`` goes to its job."""
    if getattr(display_pub.publish, "_jobmagics_routing", False):
        return
    original = display_pub.publish

    def publish(data, metadata=None, *args, transient=None, update=False, **kwargs):
        ctx = context.current()
        if ctx is None:
            return original(data, metadata, *args, transient=transient, update=update, **kwargs)
        ctx.record("display", display_item(data, metadata, transient, update))

    publish._jobmagics_routing = True
    display_pub.publish = publish


def running_shell():
    """The IPython shell running in this process, or None; never starts one."""
    module = sys.modules.get("IPython.core.interactiveshell")
    if module is None or not module.InteractiveShell.initialized():
        return None
    return module.InteractiveShell.instance()


_views = {"provider": None}


def use_live_views(provider):
    """The notebook side says how to get its widget views: ``provider()`` returns them, or None.

    This module is shipped with the agent and names no view itself: jobs and job
    lists show as widgets only where the notebook side registered them.
    """
    _views["provider"] = provider


def live_views():
    """jobmagics' widget views when this process is a kernel that can show them, else None."""
    shell = running_shell()
    if shell is None or getattr(shell, "kernel", None) is None or _views["provider"] is None:
        return None
    return _views["provider"]()


def route_ipython_display():
    """Route the running IPython shell's display publisher, if there is one."""
    shell = running_shell()
    if shell is not None:
        route_publisher(shell.display_pub)


def _patch_display_functions(module):
    original = module.display
    if getattr(original, "_jobmagics_routing", False):
        return

    def job_aware_display(*objs, **kwargs):
        if context.current() is None:
            return original(*objs, **kwargs)
        return display(*objs, **kwargs)

    job_aware_display._jobmagics_routing = True
    module.display = job_aware_display


#: Where IPython's ``display`` function is found by name (each module holds its own reference).
_DISPLAY_MODULES = ("IPython.core.display_functions", "IPython.display")


def install_display_hook():
    """``from IPython.display import display`` inside a job uses ours (a figure as its image, kept
    from showing again at the job's end); outside a job, IPython's as before."""
    for name in _DISPLAY_MODULES:
        import_hooks.patch_module(name, _patch_display_functions)
