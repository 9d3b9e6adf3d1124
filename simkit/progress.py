"""A progress bar on stderr that appears only for runs longer than a couple of seconds, on a terminal."""
from __future__ import annotations

import sys

from tqdm import tqdm

SHOW_AFTER_SECONDS = 2.0


def progress_bar(total: int, enabled: bool = True, unit: str = "replicate") -> tqdm:
    """A bar on stderr counting ``total`` units, shown after :data:`SHOW_AFTER_SECONDS` and only when ``enabled``
    and stderr is a terminal (a log file or a pipe gets no bar)."""
    return tqdm(total=total, disable=None if enabled else True, delay=SHOW_AFTER_SECONDS, file=sys.stderr,
                unit=unit, dynamic_ncols=True)
