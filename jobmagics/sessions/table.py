"""The session table (Get-PSSession's columns), as text and as static HTML."""
from __future__ import annotations

from ..core.table import render_html, render_text

COLUMNS = ("Id", "Name", "Transport", "ComputerName", "State", "Availability")


def rows(sessions):
    out = []
    for session in sessions:
        s = session.snapshot()
        out.append((str(s["id"]), s["name"], s["transport"], s["computer_name"], str(s["state"]), s["availability"]))
    return out


def text_table(sessions):
    return render_text(COLUMNS, rows(sessions)) if sessions else "(no sessions)"


def html_table(sessions):
    return render_html(COLUMNS, rows(sessions), "jobmagics-sessions")


class SessionList(list):
    """A list of sessions that shows as one table."""

    def _repr_pretty_(self, p, cycle):
        p.text(text_table(self))

    def _repr_html_(self):
        return html_table(self) if self else "<p>(no sessions)</p>"
