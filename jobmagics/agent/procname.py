"""The name a process shows in ``ps -o comm`` and ``top`` (Linux: ``/proc/self/comm``)."""
from __future__ import annotations


def rename(name):
    """Show this process as ``name`` (cut to 15 characters); its previous name, or None where it
    cannot be changed."""
    try:
        with open("/proc/self/comm", "r+") as fh:
            previous = fh.read().strip()
            fh.seek(0)
            fh.write(name[:15])
        return previous
    except OSError:
        return None
