"""tqdm bars inside a job become the job's progress records, with no change to the job's code.

A job that uses ``tqdm`` (``from tqdm import tqdm``, ``tqdm.auto`` outside a
kernel) would otherwise write bar after bar to stderr. When a bar draws
itself inside a job, its count, total and description go to the job's
progress stream instead. Outside a job tqdm behaves as always.
"""
from __future__ import annotations

from . import context, import_hooks

_TARGET = "tqdm.std"


def progress_from_bar(bar):
    """The progress record data of a tqdm bar."""
    total = bar.total
    n = bar.n
    percent = 100.0 * n / total if total else None
    return {"percent": percent, "status": bar.desc or None, "activity": "tqdm", "current": n,
            "total": total, "completed": bool(total) and n >= total}


def _patch(module):
    bar_class = module.tqdm
    if getattr(bar_class.display, "_jobmagics_routing", False):
        return
    original_display = bar_class.display

    def display(self, msg=None, pos=None):
        ctx = context.current()
        if ctx is None:
            return original_display(self, msg, pos)
        ctx.record("progress", progress_from_bar(self))
        return True

    display._jobmagics_routing = True
    bar_class.display = display


def install():
    """Route tqdm bars drawn inside jobs to progress (now if tqdm is loaded, else on import)."""
    import_hooks.patch_module(_TARGET, _patch)
