"""Delivering received records where a user sees them: text to the streams, errors, display."""
from __future__ import annotations

import sys

from .figures import make_displayable
from .rich import running_shell


def show_error(error):
    shell = running_shell()
    if shell is not None:
        shell.showtraceback(exc_tuple=(type(error), error, None))
        return
    sys.stderr.write("\n".join(error._render_traceback_()) + "\n")


def show_display(item):
    shell = running_shell()
    if shell is not None:
        from IPython.display import publish_display_data
        # An output with a display id can be updated in place by a later record of the job.
        extra = {"update": True} if item.get("update") else {}
        publish_display_data(item["data"], item.get("metadata") or {}, transient=item.get("transient"), **extra)
        return
    sys.stdout.write(str(item["data"].get("text/plain", "")) + "\n")


class ComputerTagger:
    """Prefixes each line of text with the computer it came from, across chunks of one stream."""

    def __init__(self):
        self._at_line_start = {}

    def tag(self, record, text):
        if not record.computer or not text:
            return text
        key = (record.computer, record.stream)
        prefix = "[%s] " % record.computer
        lines = text.split("\n")
        start = self._at_line_start.get(key, True)
        tagged = [(prefix + line if (i > 0 or start) and line else line) for i, line in enumerate(lines)]
        self._at_line_start[key] = text.endswith("\n")
        return "\n".join(tagged)


def deliver(records, outputs=None, tagger=None, exports=None, errors=None):
    """Show every record's data; the output objects are appended to ``outputs`` (returned).

    With a ``tagger`` text lines are prefixed with the computer they came from.
    Exported variables are set in ``exports`` (a namespace), if given; with an
    ``errors`` list, errors are appended to it instead of shown.
    """
    outputs = [] if outputs is None else outputs
    shown = False  # flushed only if something was shown: in a kernel a flush waits for its IO thread
    for record in records:
        stream, data = record.stream, record.data
        if tagger is not None and stream in ("stdout", "stderr", "warning"):
            data = tagger.tag(record, data)
        if stream == "output":
            shell = running_shell()
            if shell is not None:
                make_displayable(data, shell)
            outputs.append(data)
            continue
        if stream == "export":
            if exports is not None:
                exports[data[0]] = data[1]
            continue
        if stream == "error" and errors is not None:
            errors.append(data)
            continue
        if stream == "stdout":
            sys.stdout.write(data)
        elif stream in ("stderr", "warning"):
            sys.stderr.write(data)
        elif stream == "error":
            _flush()
            show_error(data)
        elif stream == "display":
            _flush()
            show_display(data)
        else:
            continue
        shown = True
    if shown:
        _flush()
    return outputs


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def collapse(outputs):
    """Receive-Job's value: the object for one, the list for several, None for none."""
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else outputs
