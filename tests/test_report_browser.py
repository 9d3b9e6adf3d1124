"""A report opened as a reader opens it: a real headless Chromium loads the HTML with no console errors, every
image decodes and is not blank, and the first screen is not blank. Skipped (with the reason) when no Chromium
is installed, except in CI (env CI=true), where ``.ci/run`` installs it and its absence is a failure."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from browser_helpers import browser, open_page
from test_report import FORENSIC_TESTS, MAP, returns_lines, write_config
from simkit.cli.main import main

EXECUTABLE = browser()
if EXECUTABLE is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI: no chromium installed (.ci/run installs Debian's chromium)")
    pytest.skip("no chromium on this machine (apt-get install chromium)", allow_module_level=True)

#: a figure or a screen is blank when its pixel values span fewer levels than this (of 255)
MIN_RANGE = 32


def screen_range(png: bytes) -> int:
    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    return int(grey.max()) - int(grey.min())


def test_report_with_polls_and_returns_renders_in_a_browser(tmp_path):
    lines = returns_lines(300, seed=9)
    (tmp_path / "returns.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "map.toml").write_text(MAP)
    target = tmp_path / "report.html"
    assert main(["report", str(write_config(tmp_path / "c.toml")), "-o", str(target), "--replicates", "20",
                 "--returns", str(tmp_path / "returns.csv"), "--map", str(tmp_path / "map.toml"),
                 "--tests", FORENSIC_TESTS, "--null", "textbook", "--draws", "20", "--power", "0", "--quiet"]) == 0
    page = open_page(target, EXECUTABLE)
    assert page.errors == []
    assert len(page.images) == 1 + len(FORENSIC_TESTS.split(","))
    for image in page.images:
        assert image["ok"] and image["width"] > 100 and image["height"] > 100
        assert image["range"] >= MIN_RANGE
    assert screen_range(page.screenshot) >= MIN_RANGE


def test_the_probe_sees_a_broken_image_and_a_console_error(tmp_path):
    page_path = tmp_path / "broken.html"
    page_path.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                         '<img src="data:image/png;base64,AAAA"><script>console.error("broken")</script></body></html>')
    page = open_page(page_path, EXECUTABLE)
    assert page.errors and not page.images[0]["ok"]
