"""A progress bar on stderr that appears only for runs longer than a couple of seconds."""
from __future__ import annotations

import sys

from tqdm import tqdm

SHOW_AFTER_SECONDS = 2.0


def progress_bar(total: int, enabled: bool = True, unit: str = "replicate") -> tqdm:
    return tqdm(total=total, disable=not enabled, delay=SHOW_AFTER_SECONDS, file=sys.stderr, unit=unit,
                dynamic_ncols=True)
