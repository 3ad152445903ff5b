"""Rich results on every host: display bundles, figures, --export, classes that come home,
!command, and PowerShell's HasMoreData and progress (spec sections 2 and 3)."""
from __future__ import annotations

import base64
import sys

import pytest

import jobmagics
from jobmagics import JobState
from jobmagics.errors import CodeSyntaxError, UserInputError

PNG_MAGIC = b"\x89PNG"


def needs_matplotlib(host):
    pytest.importorskip("matplotlib")
    if host.kind == "ssh":
        pytest.skip("the SSH host's bare Python has no matplotlib")


def is_png(text):
    return base64.b64decode(text).startswith(PNG_MAGIC)


def test_has_more_data_is_true_while_the_job_runs(host):
    job = host.start("import time\nfrom jobmagics import stop_requested\nwhile not stop_requested():\n"
                     "    time.sleep(0.01)")
    while job.state == JobState.NotStarted:  # a thread job, for an instant
        job.wait_for_activity(job.activity, timeout=5)
    assert job.state == JobState.Running
    assert job.has_more_data and job.receive() == [] and job.has_more_data  # running: more may come
    job.stop()
    job.receive()
    assert not job.has_more_data


def test_the_latest_progress_stays_readable_after_a_receive(host):
    job = host.run("from jobmagics import progress\nprogress(30, status='a')\nprogress(60, status='b')")
    assert [p["percent"] for p in job.progress] == [30.0, 60.0]
    job.receive()
    assert [p["status"] for p in job.progress] == ["b"]


def test_display_records_the_bundle_a_cell_would_show(host):
    code = ("class Rich:\n"
            "    def _repr_html_(self):\n        return '<b>rich</b>'\n"
            "    def _repr_png_(self):\n        return b'\\x89PNG fake'\n"
            "class Bundle:\n"
            "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
            "        return {'text/markdown': '*md*', 'application/json': {'k': 1}}\n"
            "display(Rich())\ndisplay(Bundle())")
    job = host.run(code)
    rich, bundle = (item["data"] for item in job.display)
    assert rich["text/html"] == "<b>rich</b>" and is_png(rich["image/png"])
    assert bundle["text/markdown"] == "*md*" and bundle["application/json"] == {"k": 1}


def test_a_display_with_an_id_can_be_updated(host):
    job = host.run("handle = display('first', display_id=True)\nhandle.update('second')")
    first, second = job.display
    assert first["data"]["text/plain"] == "'first'" and "update" not in first
    assert second["data"]["text/plain"] == "'second'" and second["update"] is True
    assert first["transient"] == second["transient"] and first["transient"]["display_id"]


def test_figures_become_png_display_records_and_stay_in_the_job(host):
    needs_matplotlib(host)
    from matplotlib import pyplot

    before = pyplot.get_fignums()
    code = ("import matplotlib.pyplot as plt\n"
            "plt.plot([1, 2, 3])\nplt.show()\n"  # shown, then closed: not shown again at the end
            "fig, ax = plt.subplots()\nax.bar([1, 2], [3, 4])\ndisplay(fig)\n"  # unchanged since: shown once
            "left_open = plt.figure()\nplt.plot([3, 1])\n"  # left open: shown when the job ends
            "returned = plt.figure()\nreturned")  # the value: comes back as the figure itself
    job = host.run(code)
    assert job.state == JobState.Completed, job.error
    images = [item["data"]["image/png"] for item in job.display]
    assert len(images) == 3 and all(is_png(image) for image in images)
    (figure,) = job.output
    assert type(figure).__name__ == "Figure"
    assert pyplot.get_fignums() == before  # no job figure joined this process's pyplot (nor its inline backend)


def test_export_hands_values_back(host):
    job = host.run("import fractions\nmodel = {'w': fractions.Fraction(1, 3)}\nscore = 0.9",
                   export="model, score")
    assert job.exports == {"model": {"w": __import__("fractions").Fraction(1, 3)}, "score": 0.9}
    namespace = {}
    job.receive(export_into=namespace)
    assert namespace == job.exports  # and job.exports stays after the receive


def test_export_of_a_name_the_job_never_set_is_a_note(host):
    job = host.run("a = 1", export=["a", "never"])
    assert job.state == JobState.Completed and job.exports == {"a": 1}
    assert job.warning == ["--export: the job never set never\n"]


@pytest.mark.parametrize("export, message", [("a-b", "--export takes variable names: 'a-b' is not one")])
def test_bad_export_starts_nothing(host, export, message):
    before = len(jobmagics.api.registry())
    with pytest.raises(UserInputError, match=message):
        host.start("1", export=export)
    assert len(jobmagics.api.registry()) == before


def test_a_callable_job_has_nothing_to_export(host):
    with pytest.raises(UserInputError, match="--export needs code"):
        host.start(len, [1], export="x")


@pytest.fixture
def notebook_class(monkeypatch):
    """A class and a function defined in "the notebook" (this process's __main__)."""
    namespace = {"__name__": "__main__"}
    exec("class Scale:\n    def __init__(self, k):\n        self.k = k\n"
         "def double(v):\n    return 2 * v\n", namespace)
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "Scale", namespace["Scale"], raising=False)
    monkeypatch.setattr(main, "double", namespace["double"], raising=False)
    return namespace


def test_objects_of_notebook_classes_come_home(host, notebook_class):
    import pickle

    host.namespace.update(notebook_class)
    job = host.run("made = {'nested': [Scale(3)], 'fn': double}\nmade")
    (made,) = job.receive()
    assert isinstance(made["nested"][0], notebook_class["Scale"]) and made["nested"][0].k == 3
    assert made["fn"] is notebook_class["double"]
    assert pickle.loads(pickle.dumps(made))["nested"][0].k == 3  # by reference, as the notebook's own


def test_shell_commands_run_in_the_job(host):
    host.namespace["greeting"] = "from the notebook"  # read only by a command: captured all the same
    job = host.run("word = 'hi'\n!echo $word {1 + 1} $greeting; echo err >&2\nlines = !printf 'a\\nb\\n'\n"
                   "list(lines)")
    assert job.state == JobState.Completed, job.error
    assert job.stdout == "hi 2 from the notebook\nerr\n" and job.receive() == [["a", "b"]]
    assert job.command.startswith("word = 'hi'\n!echo")  # as typed


@pytest.mark.parametrize("code, magic", [("%time 1", "%time"), ("%%bash\necho", "%%bash"), ("len?", "%pinfo")])
def test_other_magics_are_refused_before_anything_starts(host, code, magic):
    before = len(jobmagics.api.registry())
    with pytest.raises(CodeSyntaxError, match="job code uses the magic %s, which cannot run inside a job" % magic):
        host.start(code)
    assert len(jobmagics.api.registry()) == before
