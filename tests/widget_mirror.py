"""The kernel side of ipywidgets as a frontend sees it: models built from comm messages."""
from __future__ import annotations

import queue


class WidgetMirror:
    """Reads a kernel client's iopub messages and keeps every widget model's state up to date."""

    def __init__(self, client):
        self.client = client
        self.models = {}  # comm_id -> state dict
        self.updates = {}  # comm_id -> number of update messages
        self.parents = {}  # comm_id -> msg_id of the request that opened it

    def pump(self, timeout=1.0):
        """Apply one iopub message (False if none came within ``timeout``)."""
        try:
            msg = self.client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return False
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.models[content["comm_id"]] = dict(content["data"].get("state", {}))
            self.updates[content["comm_id"]] = 0
            self.parents[content["comm_id"]] = msg["parent_header"].get("msg_id")
        elif kind == "comm_msg" and content["comm_id"] in self.models:
            data = content["data"]
            if data.get("method") == "update":
                self.models[content["comm_id"]].update(data.get("state", {}))
                self.updates[content["comm_id"]] += 1
        return True

    def wait_for(self, predicate, timeout=60):
        """Pump messages until ``predicate(self)`` is true; fail after ``timeout`` seconds of messages."""
        import time

        deadline = time.monotonic() + timeout
        while not predicate(self):
            assert time.monotonic() < deadline, "widget state never reached the expected condition"
            self.pump(timeout=0.5)
        return predicate(self)

    def find(self, marker, model="HTMLModel"):
        """Comm ids of models of type ``model`` whose value contains ``marker``."""
        return [cid for cid, state in self.models.items()
                if state.get("_model_name") == model and marker in str(state.get("value", ""))]

    def buttons(self, description):
        return [cid for cid, state in self.models.items()
                if state.get("_model_name") == "ButtonModel" and state.get("description") == description]

    def view_button(self, job_name, description, state=None):
        """Wait for the view of ``job_name`` (and, if given, a view in ``state``); its button's comm id."""
        self.wait_for(lambda m: m.find("<b>%s</b>" % job_name))
        parent = self.parents[self.find("<b>%s</b>" % job_name)[0]]
        if state is not None:
            self.wait_for(lambda m: m.find(">%s</span>" % state))
        return [cid for cid in self.buttons(description) if self.parents[cid] == parent][0]

    def click(self, comm_id):
        """Send the click a browser would send for a button."""
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        msg = self.client.session.msg("comm_msg", content)
        self.client.shell_channel.send(msg)
