"""What a long run tells its user on stderr: a progress bar that appears only for runs longer than a couple of
seconds, and the library's ``simkit.*`` log messages (:func:`log_to_stderr`)."""
from __future__ import annotations

import logging
import sys

from tqdm import tqdm

SHOW_AFTER_SECONDS = 2.0


def progress_bar(total: int, enabled: bool = True, unit: str = "replicate") -> tqdm:
    """A bar on stderr counting ``total`` units, shown after :data:`SHOW_AFTER_SECONDS` and only when ``enabled``
    and stderr is a terminal (a log file or a pipe gets no bar)."""
    return tqdm(total=total, disable=None if enabled else True, delay=SHOW_AFTER_SECONDS, file=sys.stderr,
                unit=unit, dynamic_ncols=True)


def log_to_stderr(level: int = logging.INFO) -> None:
    """Show the library's messages (loggers ``simkit.*``, e.g. a dask run's cluster and resume notes) on stderr as
    ``simkit: message``; the library itself only logs (a caller that wants them silent does not call this)."""
    logger = logging.getLogger("simkit")
    if not any(getattr(handler, "simkit_stderr", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("simkit: %(message)s"))
        handler.simkit_stderr = True
        logger.addHandler(handler)
    logger.setLevel(level)
