"""Widget clicks handled while the kernel's main thread is busy (e.g. blocked in %wait_job).

ipykernel 7 reads every shell message in a channel thread and hands a comm
message to the subshell its comm names (``_reply_subshell_for``). jobmagics
creates one subshell for its views and pins their comms to it, so a Stop
click is handled in that subshell's thread even while a cell runs. With a
kernel without subshells, clicks are handled when the main thread is free.
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_subshell_id = None
_tried = False


def _kernel():
    try:
        from ipykernel.kernelbase import Kernel
    except ImportError:
        return None
    return Kernel.instance() if Kernel.initialized() else None


def views_subshell():
    """The id of jobmagics' own subshell in this kernel, created once; None when unsupported."""
    global _subshell_id, _tried
    with _lock:
        if _tried:
            return _subshell_id
        _tried = True
        kernel = _kernel()
        manager = getattr(getattr(kernel, "shell_channel_thread", None), "manager", None)
        loop = getattr(manager, "_shell_channel_io_loop", None)
        create = getattr(manager, "_create_subshell", None)
        if loop is None or create is None:
            return None
        created, box = threading.Event(), {}

        def create_in_channel_thread():  # the manager only creates subshells in its own thread
            try:
                box["id"] = create()
            finally:
                created.set()

        loop.add_callback(create_in_channel_thread)
        if created.wait(10):
            _subshell_id = box.get("id")
        return _subshell_id


def pin_widget(widget):
    """Have the frontend's messages for ``widget`` handled in jobmagics' subshell."""
    subshell_id = views_subshell()
    comm = getattr(widget, "comm", None)
    if subshell_id is not None and comm is not None:
        comm._reply_subshell_for = lambda data, default: subshell_id
