"""Matplotlib inside jobs: drawn off screen, kept per job, shown where the job is received.

A job draws on matplotlib's non-interactive Agg canvas whatever backend its process
uses (a thread job shares the kernel's pyplot), and pyplot's list of open figures is
per job: the notebook's inline backend never sees a job's figures, so none of them
appears in another cell. ``plt.show()`` and the figures left open when the job ends
become ``image/png`` display records and are closed, as the inline backend does at the
end of a cell. A figure the job returns comes back as the figure, and displays as
its image where it is received (:func:`make_displayable`). Matplotlib is used
only when the job imports it.
"""
from __future__ import annotations

import base64
import collections
import io
import sys
import weakref

from . import context, import_hooks


def figure_class():
    """matplotlib's Figure class if matplotlib is loaded here (None otherwise; never imports it)."""
    module = sys.modules.get("matplotlib.figure")
    return getattr(module, "Figure", None)


def is_figure(obj):
    cls = figure_class()
    return cls is not None and isinstance(obj, cls)


def png_bytes(fig):
    """The figure as PNG, cropped as the inline backend shows it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def png_bundle(fig):
    """The display data of a figure: its PNG (base64, as in a notebook) and its text."""
    return {"image/png": base64.b64encode(png_bytes(fig)).decode("ascii"), "text/plain": repr(fig)}


def make_displayable(obj, shell):
    """A received figure displays as its image in ``shell``, whether or not the notebook imported pyplot."""
    if not is_figure(obj):
        return
    formatter = shell.display_formatter.formatters.get("image/png")
    try:
        formatter.lookup_by_type(type(obj))
    except KeyError:
        formatter.for_type(figure_class(), png_bytes)


class _FiguresByJob:
    """Stands in for pyplot's ``Gcf.figs``: a job sees its own open figures, the rest of the process its own."""

    def __init__(self, shared):
        self._shared = shared

    def _figs(self):
        ctx = context.current()
        if ctx is None:
            return self._shared
        if ctx.figures is None:
            ctx.figures = collections.OrderedDict()
        return ctx.figures

    def __getattr__(self, name):  # get, pop, values, clear, move_to_end, ...
        return getattr(self._figs(), name)

    def __contains__(self, key):
        return key in self._figs()

    def __len__(self):
        return len(self._figs())

    def __iter__(self):
        return iter(self._figs())

    def __getitem__(self, key):
        return self._figs()[key]

    def __setitem__(self, key, value):
        self._figs()[key] = value

    def __delitem__(self, key):
        del self._figs()[key]


def _shown(ctx):
    if ctx.shown_figures is None:
        ctx.shown_figures = weakref.WeakSet()
    return ctx.shown_figures


def note_shown(fig):
    """A job displayed ``fig``: at its end the figure is shown again only if it changed since."""
    ctx = context.current()
    if ctx is not None:
        _shown(ctx).add(fig)
        fig.stale = False  # drawn as it is now (a tight-cropped savefig leaves it marked stale)


def show_open_figures(ctx, skip=None):
    """Record the job's open figures as images (except ``skip`` and unchanged displayed ones), close them."""
    if not ctx.figures:
        return
    from matplotlib import pyplot

    shown = _shown(ctx)
    for manager in list(ctx.figures.values()):
        fig = manager.canvas.figure
        if fig is not skip and (fig not in shown or fig.stale):
            ctx.record("display", {"data": png_bundle(fig), "metadata": {}})
        pyplot.close(fig)


def job_ended(value):
    """The job's code returned ``value``: figures it left open are shown (a returned one comes back as itself)."""
    ctx = context.current()
    if ctx is None or not ctx.figures:
        return
    try:
        show_open_figures(ctx, skip=value if is_figure(value) else None)
    except Exception as exc:  # a figure that cannot be drawn must not fail the job's result
        ctx.record("warning", "a figure left open could not be drawn: %s: %s\n" % (type(exc).__name__, exc))


def _patch_pyplot(pyplot):
    if getattr(pyplot.show, "_jobmagics_routing", False):
        return
    from matplotlib import _pylab_helpers

    gcf = _pylab_helpers.Gcf
    if not isinstance(gcf.__dict__["figs"], _FiguresByJob):
        gcf.figs = _FiguresByJob(gcf.figs)
    original_new, original_show, original_draw = pyplot.new_figure_manager, pyplot.show, pyplot.draw_if_interactive

    def new_figure_manager(num, *args, **kwargs):
        if context.current() is None:
            return original_new(num, *args, **kwargs)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = kwargs.pop("FigureClass", None) or Figure
        return FigureCanvasAgg.new_manager(figure(*args, **kwargs), num)

    def show(*args, **kwargs):
        ctx = context.current()
        if ctx is None:
            return original_show(*args, **kwargs)
        show_open_figures(ctx)

    def draw_if_interactive(*args, **kwargs):
        if context.current() is None:
            return original_draw(*args, **kwargs)

    for name, function in (("new_figure_manager", new_figure_manager), ("show", show),
                           ("draw_if_interactive", draw_if_interactive)):
        function._jobmagics_routing = True
        setattr(pyplot, name, function)


def install():
    """Jobs draw off screen with figures of their own (now if pyplot is loaded, else when it is imported)."""
    import_hooks.patch_module("matplotlib.pyplot", _patch_pyplot)
