"""Live ipywidgets views of jobs: one job, or a table of jobs.

Views hold no job logic: they draw snapshots of jobs, throttled by the view
updater, and their buttons call the job API. Each view's mimebundle also
carries the plain-text and HTML tables, so a notebook without a widget
frontend (nbconvert, GitHub) still shows the jobs.
"""
from __future__ import annotations

import datetime
import html
import threading

import ipywidgets as widgets

from . import comm_routing
from ..core.delivery import collapse
from ..core.states import JobState
from ..core.table import html_table, text_table
from .updater import updater

STATE_COLOURS = {
    JobState.NotStarted: "#757575", JobState.Running: "#1565c0", JobState.Completed: "#2e7d32",
    JobState.Failed: "#c62828", JobState.Stopping: "#ef6c00", JobState.Stopped: "#6d4c41",
    JobState.Disconnected: "#6a1b9a", JobState.Blocked: "#f9a825",
}
RECEIVED_CHARS = 20_000


def state_badge(state):
    colour = STATE_COLOURS.get(state, "#757575")
    return ('<span class="jobmagics-state" style="background:%s;color:white;padding:1px 8px;'
            'border-radius:8px;font-weight:bold">%s</span>' % (colour, html.escape(str(state))))


def elapsed_text(snapshot, now=None):
    begin, end = snapshot["begin_time"], snapshot["end_time"]
    if begin is None:
        return "not started"
    seconds = int(((end or now or datetime.datetime.now()) - begin).total_seconds())
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def tail_html(tail):
    lines = []
    for stream, line in tail:
        text = html.escape(line)
        lines.append('<span style="color:#c62828">%s</span>' % text if stream == "stderr" else text)
    # No scroll box: the tail is a bounded number of lines, and the newest must be in view.
    return ('<pre class="jobmagics-tail" style="margin:0;font-size:90%%">'
            "%s</pre>" % "\n".join(lines)) if lines else ""


def received_text(records):
    """What a Receive click took from the job, as text for the view (and the objects)."""
    parts, outputs = [], []
    for record in records:
        if record.stream == "output":
            outputs.append(record.data)
            parts.append("Out: %r\n" % (record.data,))
        elif record.stream in ("stdout", "stderr", "warning"):
            parts.append(record.data)
        elif record.stream == "error":
            parts.append("\n".join(record.data._render_traceback_()) + "\n")
        elif record.stream == "display":
            parts.append(str(record.data["data"].get("text/plain", "")) + "\n")
    text = "".join(parts)
    if len(text) > RECEIVED_CHARS:
        text = "...\n" + text[-RECEIVED_CHARS:]
    return text, outputs


class JobView(widgets.VBox):
    """A job's live status: state, clock, progress, output tail, and Stop / Receive / Remove."""

    def __init__(self, job, **kwargs):
        self.job = job
        self.header = widgets.HTML()
        self.state_html = widgets.HTML()
        self.elapsed = widgets.Label()
        self.bar = widgets.FloatProgress(min=0.0, max=100.0, layout=widgets.Layout(width="40%"))
        self.progress_label = widgets.Label()
        self.progress_box = widgets.HBox([self.bar, self.progress_label], layout=widgets.Layout(display="none"))
        self.tail = widgets.HTML()
        self.stop_button = widgets.Button(description="Stop", icon="stop", layout=widgets.Layout(width="auto"))
        self.receive_button = widgets.Button(description="Receive", icon="download",
                                             layout=widgets.Layout(width="auto"))
        self.remove_button = widgets.Button(description="Remove", icon="trash", layout=widgets.Layout(width="auto"))
        self.message = widgets.HTML()
        self.received = widgets.HTML()
        self.last_received = None  # the objects the last Receive click took
        self.removed = False
        self._received_text = ""
        self._message_text = ""
        self.stop_button.on_click(lambda _: self._in_background(self._stop))
        self.receive_button.on_click(lambda _: self._receive())
        self.remove_button.on_click(lambda _: self._remove())
        buttons = widgets.HBox([self.stop_button, self.receive_button, self.remove_button])
        top = widgets.HBox([self.header, self.state_html, self.elapsed],
                           layout=widgets.Layout(align_items="center", grid_gap="12px"))
        super().__init__([top, self.progress_box, self.tail, buttons, self.message, self.received], **kwargs)
        self.add_class("jobmagics-job")
        mark_dirty = updater().mark_dirty
        job.add_state_callback(lambda *_: mark_dirty(self))
        job.add_record_callback(lambda *_: mark_dirty(self))
        self.redraw()
        updater().tick(self, on=not job.finished)

    def redraw(self):
        # Each child widget sends its own message: the details go first and the state badge
        # last, so a frontend never shows "Completed" beside a bar or tail that is behind.
        snap = self.job.snapshot()
        finished = snap["state"] in (JobState.Completed, JobState.Failed, JobState.Stopped)
        with self.hold_sync():
            self.header.value = "<b>%s</b> &nbsp;#%s &nbsp;%s &nbsp;on %s" % (
                html.escape(str(snap["name"])), snap["id"], snap["job_type"], html.escape(snap["location"]))
            self.tail.value = tail_html(self.job.tail())
            self._draw_progress(self.job.last_progress)
            self.elapsed.value = elapsed_text(snap)
            self.received.value = ('<pre class="jobmagics-received" style="margin:0;border-left:3px solid #1565c0;'
                                   'padding-left:6px">%s</pre>' % html.escape(self._received_text)
                                   if self._received_text else "")
            self.message.value = self._message_text
            self.stop_button.disabled = finished or self.removed
            self.receive_button.disabled = self.remove_button.disabled = self.removed
            reason = ' <span style="color:#555">%s</span>' % html.escape(snap["reason"]) if snap["reason"] else ""
            self.state_html.value = state_badge(snap["state"]) + reason
        if finished:
            updater().tick(self, on=False)

    def _draw_progress(self, progress):
        if progress is None:
            return
        self.progress_box.layout.display = "flex"
        if progress.get("percent") is not None:
            self.bar.value = max(0.0, min(100.0, progress["percent"]))
        self.progress_label.value = " ".join(
            str(x) for x in (progress.get("activity"), progress.get("status"), "%.0f%%" % self.bar.value) if x)

    def _in_background(self, action):
        # Stopping waits for the job's processes to end: never in the thread handling clicks.
        threading.Thread(target=action, name="jobmagics-view-action", daemon=True).start()

    def _stop(self):
        try:
            self.job.stop()
        except Exception as exc:
            self._say("Stop failed: %s" % exc)
        updater().mark_dirty(self)

    def _receive(self):
        text, outputs = received_text(self.job.records(keep=False))
        self.last_received = collapse(outputs)
        self._received_text = text or "(nothing new)"
        updater().mark_dirty(self)

    def _remove(self):
        try:
            self.job.remove()
        except Exception as exc:
            self._say(html.escape(str(exc)))
            return
        self.removed = True
        self._say("removed from the job list")

    def _say(self, text):
        self._message_text = '<span style="color:#555">%s</span>' % text
        updater().mark_dirty(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = super()._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle["text/plain"] = text_table([self.job])
        bundle["text/html"] = html_table([self.job])
        return bundle


class JobTableView(widgets.VBox):
    """A live table of jobs: a fixed list, or a query on the registry that follows new and removed jobs."""

    def __init__(self, jobs, registry=None, query=None, **kwargs):
        self.jobs = list(jobs)
        self.registry = registry
        self.query = query
        self.table = widgets.HTML()
        super().__init__([self.table], **kwargs)
        self.add_class("jobmagics-table")
        self._watched = set()
        for job in self.jobs:
            self._watch(job)
        if registry is not None and query is not None:
            registry.add_listener(self._on_registry)
        self.redraw()

    def _watch(self, job):
        if job.instance_id in self._watched:
            return
        self._watched.add(job.instance_id)
        mark_dirty = updater().mark_dirty
        job.add_state_callback(lambda *_: mark_dirty(self))
        job.add_record_callback(lambda *_: mark_dirty(self))
        for child in job.child_jobs:
            child.add_state_callback(lambda *_: mark_dirty(self))

    def _on_registry(self, event, job):
        if event == "added":
            self._watch(job)
        updater().mark_dirty(self)

    def current_jobs(self):
        if self.query is None:
            return self.jobs
        return self.registry.select(**self.query)

    def redraw(self):
        jobs = self.current_jobs()
        self.table.value = coloured_html_table(jobs) if jobs else "<p>(no jobs)</p>"

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = super()._repr_mimebundle_(include=include, exclude=exclude) or {}
        jobs = self.current_jobs()
        bundle["text/plain"] = text_table(jobs) if jobs else "(no jobs)"
        bundle["text/html"] = html_table(jobs) if jobs else "<p>(no jobs)</p>"
        return bundle


SESSION_COLOURS = {"Opened": "#2e7d32", "Disconnected": "#6a1b9a", "Broken": "#c62828", "Closed": "#757575"}


class SessionView(widgets.HBox):
    """A session's live status: name, computer, transport, coloured state, and its jobs' count."""

    def __init__(self, session, **kwargs):
        self.session = session
        self.label = widgets.HTML()
        super().__init__([self.label], **kwargs)
        self.add_class("jobmagics-session")
        session.add_state_callback(lambda _: updater().mark_dirty(self))
        self.redraw()

    def redraw(self):
        snap = self.session.snapshot()
        colour = SESSION_COLOURS.get(str(snap["state"]), "#757575")
        jobs = self.session.jobs()
        running = sum(1 for job in jobs if not job.finished)
        reason = ' <span style="color:#555">%s</span>' % html.escape(self.session.reason) if self.session.reason else ""
        self.label.value = (
            '<b>%s</b> &nbsp;#%s &nbsp;%s to <b>%s</b> &nbsp;<span class="jobmagics-session-state" style="background:%s;'
            'color:white;padding:1px 8px;border-radius:8px;font-weight:bold">%s</span>%s &nbsp;%d job(s), %d running'
            % (html.escape(snap["name"]), snap["id"], snap["transport"], html.escape(snap["computer_name"]), colour,
               snap["state"], reason, len(jobs), running))

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..sessions.table import html_table, text_table

        bundle = super()._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle["text/plain"] = text_table([self.session])
        bundle["text/html"] = html_table([self.session])
        return bundle


def coloured_html_table(jobs):
    """The HTML job table with each state drawn as a coloured badge."""
    return html_table(jobs, state_html=lambda value: state_badge(JobState(value)))


def job_view(job):
    """A live view of ``job`` whose buttons work even while a cell is running."""
    view = JobView(job)
    for button in (view.stop_button, view.receive_button, view.remove_button):
        comm_routing.pin_widget(button)
    return view


def table_view(jobs, registry=None, query=None):
    """A live table of ``jobs``; with a registry and a query it follows the registry."""
    return JobTableView(jobs, registry=registry if query is not None else None, query=query)
