"""Command-line value types: counts in their stated ranges, so a bad value is a one-line usage error (exit 2)
before any work starts."""
from __future__ import annotations

import argparse

#: worker processes or threads: more than any machine simkit runs on has cores
MAX_WORKERS = 1024


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def positive(text: str) -> int:
    """An integer of at least 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def workers(text: str) -> int:
    """A number of worker processes or threads: 1 … :data:`MAX_WORKERS`."""
    value = positive(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WORKERS}, got {value}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (``simkit run: argument …``), exit 2."""

    def error(self, message: str):
        from simkit.errors import one_line

        self.exit(2, f"{self.prog}: {one_line(message)}\n")
