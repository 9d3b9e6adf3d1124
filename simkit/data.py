"""Locating the shared real-election data (``../shared/data`` beside the repository root)."""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SIMKIT_DATA"
REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path | None:
    """The folder holding real polling-station data, or None when it is absent.

    ``$SIMKIT_DATA`` wins when set; otherwise ``../shared/data`` beside the repository root
    (independent of the working directory).
    """
    env = os.environ.get(ENV_VAR)
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def data_file(relative: str) -> Path | None:
    """Path of ``relative`` inside the data folder, or None when the folder or file is absent."""
    root = data_dir()
    if root is None:
        return None
    path = root / relative
    return path if path.exists() else None
