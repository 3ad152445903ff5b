"""The display bundle of an object inside a job, with and without IPython where the job runs."""
import base64
import builtins

import pytest

from jobmagics.core import rich


class Rich:
    def _repr_html_(self):
        return "<b>rich</b>"

    def _repr_png_(self):
        return b"\x89PNG fake"

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/markdown": "*md*"}, {}

    def __repr__(self):
        return "Rich()"


@pytest.fixture(params=["ipython", "bare"])
def where(request, monkeypatch):
    """A process with IPython, or a bare Python where importing it fails."""
    if request.param == "bare":
        real_import = builtins.__import__

        def no_ipython(name, *args, **kwargs):
            if name.startswith("IPython"):
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(rich, "_formatter", None)
        monkeypatch.setattr(builtins, "__import__", no_ipython)
    return request.param


def test_the_bundle_has_every_representation_and_binary_as_base64(where):
    data, metadata = rich.mimebundle(Rich())
    assert data["text/plain"] == "Rich()" and data["text/markdown"] == "*md*"
    assert base64.b64decode(data["image/png"]) == b"\x89PNG fake"
    assert metadata == {}


def test_a_matplotlib_figure_is_its_png(where):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([1, 2])
    data, _ = rich.mimebundle(figure)
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
