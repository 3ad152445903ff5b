"""tqdm bars inside a job become the job's progress records, with no change to the job's code.

A job that uses ``tqdm`` (``from tqdm import tqdm``, or ``tqdm.auto``, which picks the
notebook widget bar in a kernel) would otherwise write bar after bar to stderr, or draw
a widget in whichever cell is running. When a bar draws itself inside a job, its count,
total and description go to the job's progress stream instead, and closing it writes
nothing (a bar's closing newline would be a stray blank stderr line). Outside a job tqdm
behaves as always.
"""
from __future__ import annotations

from . import context, import_hooks


def progress_from_bar(bar):
    """The progress record data of a tqdm bar."""
    total = bar.total
    n = bar.n
    percent = 100.0 * n / total if total else None
    return {"percent": percent, "status": bar.desc or None, "activity": "tqdm", "current": n,
            "total": total, "completed": bool(total) and n >= total}


class _Discard:
    """Where a job's bar writes on closing: its last state is a progress record already."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def _record_progress(self, *args, **kwargs):
    context.current().record("progress", progress_from_bar(self))
    return True


def _in_job_use(original, replacement):
    def method(self, *args, **kwargs):
        if context.current() is None:
            return original(self, *args, **kwargs)
        return replacement(self, *args, **kwargs)

    method._jobmagics_routing = True
    return method


def _patch_std(module):
    bar_class = module.tqdm
    if getattr(bar_class.display, "_jobmagics_routing", False):
        return
    original_close = bar_class.close

    def close_quietly(self):
        self.fp = _Discard()
        return original_close(self)

    bar_class.display = _in_job_use(bar_class.display, _record_progress)
    bar_class.close = _in_job_use(original_close, close_quietly)


def _patch_notebook(module):
    """The widget bar: in a job, a plain bar that reports progress, with no widget made or shown."""
    bar_class = module.tqdm
    if getattr(bar_class.display, "_jobmagics_routing", False):
        return

    def plain_init(self, *args, **kwargs):
        kwargs.pop("display", None)
        super(bar_class, self).__init__(*args, **kwargs)
        self.disp = lambda *_, **__: None

    bar_class.__init__ = _in_job_use(bar_class.__init__, plain_init)
    bar_class.display = _in_job_use(bar_class.display, _record_progress)


def install():
    """Route tqdm bars drawn inside jobs to progress (now if tqdm is loaded, else on import)."""
    import_hooks.patch_module("tqdm.std", _patch_std)
    import_hooks.patch_module("tqdm.notebook", _patch_notebook)
