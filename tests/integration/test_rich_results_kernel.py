"""A data scientist's run in a real kernel: figures and tables received where they are received,
models handed back with --export as the notebook's own classes, IPython syntax in job code."""
from __future__ import annotations

import base64

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")
pytest.importorskip("sklearn")
pytest.importorskip("joblib")

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

NOTEBOOK = """
import numpy as np, pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

class Scale(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        self.mean_ = X.mean(axis=0)
        return self
    def transform(self, X):
        return X - self.mean_

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 3))
y = (X[:, 0] > 0).astype(int)
df = pd.DataFrame(X, columns=list("abc"))
"""

TRAINING = """
import matplotlib.pyplot as plt
model = Pipeline([("scale", Scale()), ("clf", LogisticRegression())]).fit(X, y)
display(df.describe())
df.plot()
plt.show()
df["a"].plot.hist()
fig = plt.figure()
plt.plot(model.predict_proba(X)[:, 1])
fig
"""


def is_png(text):
    return base64.b64decode(text).startswith(b"\x89PNG")


def completed_and_received(kernel, cell, name):
    """Run a %%start_job cell, wait for its job to complete, receive it: the receiving cell's result."""
    assert kernel.run(cell).ok
    assert "Completed" in kernel.run("%%wait_job %s" % name).text
    return kernel.run("%%receive_job %s" % name)


@pytest.mark.parametrize("kind", ["process", "thread", "session"])
def test_a_model_trained_in_a_job_comes_back_with_its_figures(kernel, kind, tmp_path):
    assert kernel.run(NOTEBOOK).ok
    flags, session = {"process": "", "thread": "--thread", "session": "--session ds-local"}[kind], ""
    if kind == "session":
        assert kernel.run("%new_session --local --name ds-local").ok
        session = "--session ds-local"
    try:
        started = kernel.run("%%%%start_job --name ds-%s --export model %s\n%s" % (kind, flags, TRAINING))
        assert started.ok, started.stderr
        assert "Completed" in kernel.run("%%wait_job ds-%s %s" % (kind, session)).text
        received = kernel.run("%%receive_job ds-%s %s" % (kind, session))
        assert received.ok, received.stderr + received.error_text()
        assert received.stdout == "set model (exported by the job)\n"
        table, shown, left_open = received.displays  # display(df.describe()), plt.show(), the hist left open
        assert "<table" in table["text/html"]
        assert is_png(shown["image/png"]) and is_png(left_open["image/png"])
        assert is_png(received.results[-1]["image/png"])  # the returned figure, as its image
        path = str(tmp_path / "model.joblib")
        dumped = kernel.run("import joblib\njoblib.dump(model, %r)\nloaded = joblib.load(%r)\n"
                            "(isinstance(model.named_steps['scale'], Scale), "
                            "bool((loaded.predict(X) == model.predict(X)).all()))" % (path, path))
        assert dumped.ok, dumped.error_text()
        assert dumped.text == "(True, True)"
    finally:
        if kind == "session":
            kernel.run("%remove_session ds-local")


def test_figures_of_a_thread_job_never_land_in_another_cell(kernel):
    shown = kernel.run("import threading\nimport matplotlib.pyplot as plt\n%matplotlib inline\n"
                       "drawn, go = threading.Event(), threading.Event()\nplt.plot([0, 1]);")
    assert shown.ok and len(shown.displays) == 1  # the notebook's own figure, in its own cell
    job = ("%%start_job --thread --name spill-thread\nimport matplotlib.pyplot as plt\n"
           "fig, ax = plt.subplots()\nax.plot([3, 1, 2])\ndrawn.set()\ngo.wait()\nax.plot([1, 1])")
    assert kernel.run(job).ok
    during = kernel.run("drawn.wait(30)\nopen_here = plt.get_fignums()\nplt.plot([1, 0]);")
    assert during.ok and len(during.displays) == 1  # its own figure only
    assert kernel.run("open_here").text == "[]"  # the job's figure is not this cell's current figure
    after = kernel.run("go.set()\n%wait_job spill-thread")
    assert after.ok and not after.displays
    unrelated = kernel.run("x = 1")
    assert unrelated.ok and not unrelated.displays
    received = kernel.run("%receive_job spill-thread")
    assert [sorted(d) for d in received.displays] == [["image/png", "text/plain"]]


def test_a_figure_sent_back_by_a_process_job_never_lands_in_another_cell(kernel, tmp_path):
    release = tmp_path / "release"
    assert kernel.run("import matplotlib.pyplot as plt\n%matplotlib inline").ok
    job = ("%%%%start_job --name spill-process\nimport matplotlib.pyplot as plt, os, time\nfrom jobmagics import emit\n"
           "fig, ax = plt.subplots()\nax.plot([3, 1, 2])\nemit(fig)\n"  # sent while open in the job's pyplot
           "while not os.path.exists(%r):\n    time.sleep(0.01)" % str(release))
    assert kernel.run(job).ok
    arrived = kernel.run("sp = %%get_job spill-process\nsp = sp[0]\nwhile not sp.output:\n"
                         "    sp.wait_for_activity(sp.activity, 30)\nopen(%r, 'w').close()" % str(release))
    assert arrived.ok and not arrived.displays
    assert not kernel.run("%wait_job spill-process").displays
    assert not kernel.run("x = 2").displays
    received = kernel.run("%receive_job spill-process")
    assert is_png(received.results[-1]["image/png"])
    assert not kernel.run("x = 3").displays
    assert kernel.run("plt.get_fignums()").text == "[]"


def test_ipythons_display_of_a_figure_in_a_thread_job_shows_it_once(kernel):
    job = ("%%start_job --thread --name shown-once\nfrom IPython.display import display\n"
           "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 3, 2])\ndisplay(fig)")
    received = completed_and_received(kernel, job, "shown-once")
    assert [sorted(d) for d in received.displays] == [["image/png", "text/plain"]]


def test_a_job_output_with_a_display_id_is_updated_in_place_when_received(kernel):
    job = ("%%start_job --name updated\nfrom IPython.display import display\n"
           "handle = display('step 1', display_id=True)\nhandle.update('step 2')")
    received = completed_and_received(kernel, job, "updated")
    assert [d["text/plain"] for d in received.displays] == ["'step 1'"]
    assert [bundle["text/plain"] for _, bundle in received.updates] == ["'step 2'"]


def test_tqdm_auto_in_a_thread_job_feeds_its_progress_not_a_widget(kernel):
    assert kernel.run("import threading\nbar_made, finish = threading.Event(), threading.Event()").ok
    job = ("%%start_job --thread --name auto-bar\nfrom tqdm.auto import tqdm\nbar = tqdm(total=4, desc='auto')\n"
           "bar_made.set()\nfinish.wait()\nbar.update(4)\nbar.close()")
    assert kernel.run(job).ok
    during = kernel.run("bar_made.wait(30)\nfinish.set()\n%wait_job auto-bar")
    assert during.ok and not during.displays and during.stdout == "" and during.stderr == ""
    job_view = kernel.run("j = %get_job auto-bar\nj = j[0]\n(j.display, j.stderr, j.progress[-1]['percent'])")
    assert job_view.text == "([], '', 100.0)"


def test_shell_commands_in_job_code_and_magics_refused(kernel):
    received = completed_and_received(kernel, "%%start_job --name shell-job\n!echo hi from the shell\n"
                                      "roots = !ls /\nlen(roots) > 0", "shell-job")
    assert received.stdout == "hi from the shell\n" and received.text == "True"
    refused = kernel.run("%start_job --thread %time 1")
    assert not refused.errors and len(refused.stderr.strip().splitlines()) == 1
    assert refused.stderr.startswith("UsageError: job code uses the magic %time, which cannot run inside a job")
