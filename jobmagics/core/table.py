"""The PowerShell-style job table, as text and as static HTML."""
from __future__ import annotations

import html

COLUMNS = ("Id", "Name", "JobType", "State", "HasMoreData", "Location", "Command")
#: Shown after the others when a listed job failed or was stopped for a reason: why.
REASON = "Reason"
_COMMAND_WIDTH = 40
_REASON_WIDTH = 50


def shorten(text, width):
    """The first line of ``text``, cut to ``width`` with "..." (also when more lines follow)."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    first = " ".join(lines[0].split()) if lines else ""
    if len(first) > width:
        return first[: width - 3] + "..."
    return first + (" ..." if len(lines) > 1 else "")


def _row(snapshot, indent=""):
    return (indent + str(snapshot["id"]), snapshot["name"], snapshot["job_type"], str(snapshot["state"]),
            str(snapshot["has_more_data"]), snapshot["location"], shorten(snapshot["command"], _COMMAND_WIDTH),
            shorten(snapshot.get("reason"), _REASON_WIDTH))


def rows(jobs):
    """(columns, rows) for ``jobs``, each child job folded under its parent; a Reason column
    when any of them has a reason."""
    out = []
    listed = {id(job) for job in jobs}
    for job in jobs:
        if job.parent is not None and id(job.parent) in listed:
            continue  # shown under its parent
        out.append(_row(job.snapshot()))
        for child in job.child_jobs:
            out.append(_row(child.snapshot(), indent="  "))
    if any(row[-1] for row in out):
        return COLUMNS + (REASON,), out
    return COLUMNS, [row[:-1] for row in out]


def render_text(columns, body):
    """A PowerShell-style text table: header, dashes, rows padded to the widest cell."""
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in body]
    return "\n".join(lines)


def render_html(columns, body, css_class, cell_html=None):
    """A static HTML table; ``cell_html(column, value)`` may draw a cell itself (None: escaped text)."""
    def cell(column, value):
        drawn = cell_html(column, value) if cell_html else None
        return html.escape(value) if drawn is None else drawn

    head = "".join("<th>%s</th>" % c for c in columns)
    rows_html = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % cell(c, v) for c, v in zip(columns, r))
                        for r in body)
    return '<table class="%s"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (css_class, head, rows_html)


def text_table(jobs):
    return render_text(*rows(jobs))


def html_table(jobs, state_html=html.escape):
    """The table as HTML; ``state_html(state)`` draws the State cell (e.g. as a coloured badge)."""
    return render_html(*rows(jobs), "jobmagics-jobs",
                       lambda column, value: state_html(value) if column == "State" else None)


class JobInfo:
    """A job as it was when it was looked at: its fields as data, shown as the job table.

    A job that leaves its process (a job list an entered cell returns, a job a
    job process hands back, a session's answer) travels as this: the kernel
    shows it as it shows its own jobs, never as an object it cannot rebuild.
    """

    parent = None

    def __init__(self, data, children=()):
        from .states import JobState

        self._data = dict(data)
        for key in ("id", "name", "instance_id", "job_type", "location", "command", "has_more_data", "reason",
                    "begin_time", "end_time"):
            setattr(self, key, self._data.get(key))
        self.state = JobState(str(self._data["state"]))
        self.child_jobs = [JobInfo(child) for child in children]
        for child in self.child_jobs:
            child.parent = self

    @classmethod
    def of(cls, job):
        """The info of a live job (and its children), read now."""
        return cls(job.snapshot(), [child.snapshot() for child in job.child_jobs])

    @property
    def finished(self):
        return self.state.finished

    def snapshot(self):
        return dict(self._data, state=self.state)

    def __reduce__(self):
        return (JobInfo, (self._data, [child._data for child in self.child_jobs]))

    def __repr__(self):
        return "<%s %s %r %s>" % (self.job_type, self.id, self.name, self.state)

    def _repr_pretty_(self, p, cycle):
        p.text(text_table([self]))

    def _repr_html_(self):
        return html_table([self])


class JobList(list):
    """A list of jobs that shows as one table.

    ``query`` (Get-Job's filters) and ``registry`` make its live view follow
    the registry: jobs started or removed later show up in it.
    """

    def __init__(self, jobs=(), query=None, registry=None):
        super().__init__(jobs)
        self.query = query
        self.registry = registry

    def _text(self):
        return text_table(self) if self else "(no jobs)"

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .rich import live_views

        views = live_views()
        if views is None or not all(hasattr(job, "add_state_callback") for job in self):
            return None  # no widget frontend, or snapshots of jobs elsewhere: a static table
        return views.table_view(self, self.registry, self.query)._repr_mimebundle_(include, exclude)

    def _repr_pretty_(self, p, cycle):
        p.text(self._text())

    def _repr_html_(self):
        return html_table(self) if self else "<p>(no jobs)</p>"

    def __reduce__(self):
        # Out of its process a list of jobs is a list of what they were: its live view stays here.
        return (JobList, ([job if isinstance(job, JobInfo) else JobInfo.of(job) for job in self],))
