"""Every notebook (jupytext percent format) runs top to bottom at reduced size (SIMKIT_QUICK=1), with the
notebook's own inline backend (no MPLBACKEND override), and every figure it shows decodes and is not blank."""
import base64
import io
from pathlib import Path

import numpy as np
import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.py"))
#: an image is blank when its pixel values span fewer levels than this (of 255)
MIN_RANGE = 32
#: figures notebook 01 shows: station turnout, the poll comparison, the coercion sweep
KAZAKHSTAN_FIGURES = 3


def images(notebook) -> list[bytes]:
    return [base64.b64decode(output["data"]["image/png"]) for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]


def pixel_range(png: bytes) -> int:
    from PIL import Image

    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    return int(grey.max()) - int(grey.min())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("SIMKIT_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as a reader's notebook has
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    shown = images(notebook)
    if path.stem.startswith("01_"):
        assert len(shown) == KAZAKHSTAN_FIGURES
    for index, png in enumerate(shown):
        assert pixel_range(png) >= MIN_RANGE, f"{path.name}: figure {index + 1} is blank"
