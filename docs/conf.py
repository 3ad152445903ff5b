"""Sphinx configuration of the jobmagics documentation site.

Build it with ``bash scripts/docs.sh`` (it sets up ``.venv`` with the ``docs`` extra, fetches the
widget renderer and runs ``sphinx-build -W``); the site is written to ``docs/_build/html``.

The source is the repository root, so that the pages link to each other exactly as they do on
GitHub: the Markdown files of ``docs/`` (MyST), the notebooks of ``notebooks/`` (executed by myst-nb
at every build, their widget state kept so the job widgets render in the static pages), the pages
generated from the magics' parsers (``docs/magics/``) and an API reference from the docstrings
(``docs/api.md``). The site's front page is ``docs/index.md``; ``index.html`` at the top of the
site sends the browser there.
"""
from __future__ import annotations

import os
import pathlib

DOCS = pathlib.Path(__file__).resolve().parent

project = "jobmagics"
author = "the jobmagics authors"
copyright = "the jobmagics authors"

extensions = [
    "myst_nb",  # Markdown (MyST) pages and executed notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_copybutton",
]

root_doc = "docs/index"
include_patterns = ["docs/**", "notebooks/*.ipynb"]
exclude_patterns = ["docs/_build", "docs/_static", "docs/_extra", "notebooks/*.out.ipynb", "**/.ipynb_checkpoints"]

# ----- MyST ---------------------------------------------------------------------------------
myst_heading_anchors = 3  # [the Python API](jobs.md#the-python-api) links work as on GitHub
myst_enable_extensions = ["colon_fence"]

# ----- notebooks ----------------------------------------------------------------------------
nb_execution_mode = os.environ.get("JOBMAGICS_DOCS_EXECUTE", "force")  # run every notebook, every build
nb_execution_timeout = 180  # seconds per cell
nb_execution_raise_on_error = True  # an unexpected error fails the build; cells tagged raises-exception may raise
nb_execution_show_tb = True
nb_merge_streams = True
# The widget renderer comes from this site, not from a CDN (scripts/docs.sh puts it in _static/).
nb_ipywidgets_js = {"embed.js": {}}

# ----- API reference ------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # signatures as written; type hints are rare and said in prose

# ----- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "jobmagics"
html_favicon = "images/favicon.svg"
html_static_path = ["_static"]
html_extra_path = ["_extra"]  # index.html: the top of the site leads to docs/index.html
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_context = {"default_mode": "auto"}  # light or dark as the reader's system says
html_show_sourcelink = False
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True


def setup(app):
    # The ```python blocks of these pages hold IPython: magic lines with $name and {expression}.
    from IPython.lib.lexers import IPython3Lexer

    app.add_lexer("python", IPython3Lexer)
