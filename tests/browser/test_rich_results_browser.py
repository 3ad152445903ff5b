"""A received figure and table in JupyterLab: a process job's plot shows as an image where it is
received, and the model it exported is set in the notebook (docs/images/received-figure.png)."""
from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"  # as in this directory's conftest.py

if not os.path.exists(CHROMIUM):
    pytest.skip("browser tests need Debian's Chromium at %s (scripts/install_browser.sh installs it)" % CHROMIUM,
                allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package (the browser extra)")
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

UI_TIMEOUT = 60_000  # ms

TRAIN = """\
%%start_job --name train --export model
import numpy as np, pandas as pd
import matplotlib.pyplot as plt
rng = np.random.default_rng(1)
df = pd.DataFrame({"loss": np.exp(-np.arange(50) / 12) + rng.normal(0, 0.02, 50)})
model = {"epochs": len(df), "final_loss": round(float(df.loss.iloc[-1]), 3)}
display(df.describe().T)
df.plot(title="training loss", figsize=(6, 3))"""


def test_a_received_figure_shows_as_an_image_in_the_receiving_cell(lab):
    panel = lab.open_notebook("received-figure", ["%load_ext jobmagics", TRAIN, "%wait_job train",
                                                  "%receive_job train\nmodel"])
    lab.run_all_cells()
    receiving = panel.locator(".jp-CodeCell").nth(3)
    expect(receiving.locator(".jp-OutputArea img")).to_have_count(1, timeout=UI_TIMEOUT)
    expect(receiving.locator(".jp-OutputArea table")).to_have_count(1)
    expect(receiving.locator(".jp-OutputArea")).to_contain_text("set model (exported by the job)")
    expect(receiving.locator(".jp-OutputArea")).to_contain_text("'epochs': 50")
    for cell in range(3):  # the job's table and figure are nowhere else
        expect(panel.locator(".jp-CodeCell").nth(cell).locator(".jp-OutputArea img")).to_have_count(0)
    panel.locator(".jp-Cell").first.locator(".jp-InputPrompt").click()  # no selection bar in the picture
    lab.screenshot("received-figure.png", receiving)  # docs/jobs.md's picture (docs/images/received-figure.png)
