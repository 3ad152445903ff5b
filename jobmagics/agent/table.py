"""The PowerShell-style job table, as text and as static HTML."""
from __future__ import annotations

import html

COLUMNS = ("Id", "Name", "JobType", "State", "HasMoreData", "Location", "Command")
_COMMAND_WIDTH = 40


def _row(snapshot, indent=""):
    command = " ".join(str(snapshot["command"]).split())
    if len(command) > _COMMAND_WIDTH:
        command = command[: _COMMAND_WIDTH - 3] + "..."
    return (indent + str(snapshot["id"]), snapshot["name"], snapshot["job_type"], str(snapshot["state"]),
            str(snapshot["has_more_data"]), snapshot["location"], command)


def rows(jobs):
    """Table rows for ``jobs``, each child job folded under its parent."""
    out = []
    listed = {id(job) for job in jobs}
    for job in jobs:
        if job.parent is not None and id(job.parent) in listed:
            continue  # shown under its parent
        out.append(_row(job.snapshot()))
        for child in job.child_jobs:
            out.append(_row(child.snapshot(), indent="  "))
    return out


def text_table(jobs):
    body = rows(jobs)
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in body]
    return "\n".join(lines)


def html_table(jobs, state_html=html.escape):
    """The table as HTML; ``state_html(state)`` draws the State cell (e.g. as a coloured badge)."""
    state_column = COLUMNS.index("State")
    head = "".join("<th>%s</th>" % c for c in COLUMNS)
    body = "".join("<tr>%s</tr>" % "".join(
        "<td>%s</td>" % (state_html(v) if i == state_column else html.escape(v)) for i, v in enumerate(r))
        for r in rows(jobs))
    return '<table class="jobmagics-jobs"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (head, body)


class JobList(list):
    """A list of jobs that shows as one table.

    ``query`` (Get-Job's filters) and ``registry`` make its live view follow
    the registry: jobs started or removed later show up in it.
    """

    def __init__(self, jobs=(), query=None, registry=None):
        super().__init__(jobs)
        self.query = query
        self.registry = registry

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .rich import live_views

        views = live_views()
        if views is None:
            return None
        return views.table_view(self, self.registry, self.query)._repr_mimebundle_(include, exclude)

    def _repr_pretty_(self, p, cycle):
        p.text(text_table(self) if self else "(no jobs)")

    def _repr_html_(self):
        return html_table(self) if self else "<p>(no jobs)</p>"
