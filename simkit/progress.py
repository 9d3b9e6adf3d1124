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


class _Stderr(logging.StreamHandler):
    """A handler writing to ``sys.stderr`` as it is when a message comes (a command run again in one process
    after its stderr was redirected or captured writes to the new one)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def log_to_stderr(level: int = logging.INFO) -> None:
    """Show the library's messages of ``level`` and above (loggers ``simkit.*``: a dask run's cluster and resume
    notes, the cleanup after killed runs) on stderr as ``simkit: message``; the library itself only logs (a caller
    that wants them silent does not call this)."""
    logger = logging.getLogger("simkit")
    if not any(isinstance(handler, _Stderr) for handler in logger.handlers):
        handler = _Stderr(sys.stderr)
        handler.setFormatter(logging.Formatter("simkit: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
