"""The forensic tests by id: the registry every runner, null and command reads (``TESTS``), and each test's
direction."""
from __future__ import annotations

from types import ModuleType
from typing import Callable

from simkit.forensics.core import Election, check_null
from simkit.forensics import correlation, dip, fingerprint, log_vote_rate, shpilkin, sobyanin, spikes
from simkit.forensics.digits import last as last_digit, second as second_digit, zero_five
from simkit.forensics.integer import percent as integer_percent
from simkit.forensics.klimek import histogram as klimek_histogram, ml as klimek_ml

_MODULES = (second_digit, last_digit, zero_five, log_vote_rate, dip, correlation, sobyanin, fingerprint,
            klimek_histogram, klimek_ml, integer_percent, spikes, shpilkin)
#: test id -> its module (the interface of :mod:`simkit.forensics.core`)
TESTS: dict[str, ModuleType] = {m.ID: m for m in _MODULES}


def alternative(test: str) -> str | None:
    """The direction in which ``test``'s statistic is anomalous (``ALTERNATIVE`` of its module); None for the
    descriptive fingerprint."""
    if test == fingerprint.ID:
        return None
    return TESTS[test].ALTERNATIVE


def statistic_function(test: str, null: str) -> Callable[[Election], float]:
    """The function whose value ``test`` reports under ``null``, and of which its null is the law: the
    module's ``statistic`` (computed on the data and on every simulated draw), or under the textbook null its
    ``textbook_statistic`` when that null is about another number (``integer_percent``: the integer-station
    count)."""
    check_null(null)
    module = TESTS[test]
    return getattr(module, "textbook_statistic", module.statistic) if null == "textbook" else module.statistic


def parse_tests(text: str | None) -> list[str]:
    """Test ids from a comma-separated list (all tests when None); raises ValueError on an unknown id."""
    if text is None:
        return list(TESTS)
    ids = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in ids if t not in TESTS]
    if unknown or not ids:
        raise ValueError(f"unknown test id {', '.join(unknown) or '(none)'} (choose from {', '.join(TESTS)})")
    return ids
