"""When a forensic test can run: the minimum data every test needs, checked in one place.

A test that cannot run on an election (too few stations, or no spread where its statistic is a correlation, a
regression, a skewness or a fitted cloud, too few stations the integer or spikes test reads (for spikes: too few
where the leader has some but not all of the ballots, the only ones its binomial redraws move), no votes for the
leader where a test reads them, no votes for the others where Shpilkin's test reads its honest ratio, or no
station for the turnout-conditional null to draw from, or no law of its statistic under the null asked for:
:data:`NO_TEXTBOOK_NULL`) is reported as ``n/a`` with the reason, instead of
failing inside its numerics or returning a p-value computed from nothing. :func:`simkit.forensics.run_each` asks
:func:`reason_not_applicable` before it runs a test. A reason is the data's (:func:`data_reason`: the test has
nothing to estimate on them) or the null's (:func:`null_reason`: the data allow the test, its null gives no
p-value); a test n/a for its null's reason still reports what it estimates without a null, when it does (its
module's ``estimates_of``, :mod:`simkit.forensics.core`).
"""
from __future__ import annotations

import numpy as np

from simkit.forensics.digits import last as last_digit, second as second_digit, zero_five
from simkit.forensics.core import Election, TestResult
from simkit.forensics import shpilkin, spikes
from simkit.forensics.integer import percent as integer_percent
from simkit.forensics.klimek import ml as klimek_ml
from simkit.forensics.digits.shared import candidate_counts
from simkit.forensics.nulls import conditional
from simkit.forensics.registry import CONDITIONAL, honest_model
from simkit.schema import MIN_STATIONS

#: digit tests read counts, not stations: each needs MIN_STATIONS counts of its own minimum size
DIGIT_TESTS = {module.ID: module.MIN_COUNT for module in (second_digit, last_digit, zero_five)}
#: tests whose statistic needs turnout and leader share to vary: each must take MIN_STATIONS distinct values
NEEDS_SPREAD = frozenset({"log_vote_rate", "correlation", "sobyanin", "klimek", "klimek_ml"})
#: tests whose statistic reads the leader's votes (the spread tests read its share): a leader without any leaves
#: them nothing to test (every share 0, a whole percent and no spike in every redraw alike)
READS_LEADER = NEEDS_SPREAD | {integer_percent.ID, spikes.ID, shpilkin.ID}
NOT_APPLICABLE = "n/a"
#: tests without a textbook null, test -> why: n/a under ``--null textbook`` at every size
NO_TEXTBOOK_NULL = {klimek_ml.ID: klimek_ml.NO_TEXTBOOK_LAW}


def reason_not_applicable(e: Election, test: str, null: str = "textbook") -> str | None:
    """Why ``test`` cannot run on ``e`` under ``null`` (one short sentence), or None when it can: the null's fit
    needs more stations, else the data's reason (:func:`data_reason`), else the null's (:func:`null_reason`)."""
    if null != "textbook" and e.n < MIN_STATIONS:
        return f"the {null} null is fitted to at least {MIN_STATIONS} usable stations, the data have {e.n}"
    return data_reason(e, test) or null_reason(e, test, null)


def data_reason(e: Election, test: str) -> str | None:
    """Why the data of ``e`` do not allow ``test``'s statistic under any null (one short sentence), or None when
    they do."""
    if test in DIGIT_TESTS:
        tested = candidate_counts(e, DIGIT_TESTS[test]).size
        return None if tested >= MIN_STATIONS else (
            f"needs at least {MIN_STATIONS} candidate counts of {DIGIT_TESTS[test]} or more, the data have {tested}")
    if e.n < MIN_STATIONS:
        return f"needs at least {MIN_STATIONS} usable stations, the data have {e.n}"
    if test in READS_LEADER and not e.leader_votes.any():
        return f"needs votes for the leader ({e.options[e.leader]}), the data have none"
    if test == integer_percent.ID:
        read = int(integer_percent.used(e).sum())
        if read < MIN_STATIONS:
            return (f"needs at least {MIN_STATIONS} stations of {integer_percent.MIN_REGISTERED} voters or more with "
                    f"turnout and leader share at most {integer_percent.MAX_RATE:.0%}, the data have {read}")
    if test == spikes.ID:
        read = spikes.used(e.ballots)
        if read.sum() < MIN_STATIONS:
            return (f"needs at least {MIN_STATIONS} stations of {spikes.MIN_BALLOTS} ballots or more, "
                    f"the data have {int(read.sum())}")
        split = int((read & (e.leader_votes > 0) & (e.leader_votes < e.ballots)).sum())
        if split < MIN_STATIONS:
            return (f"needs at least {MIN_STATIONS} stations of {spikes.MIN_BALLOTS} ballots or more where the "
                    f"leader has some but not all of the ballots (the others redraw to themselves), the data have "
                    f"{split}")
    if test == shpilkin.ID and not shpilkin.has_clean_others(e):
        return "needs votes for other options at or below the clean turnout, the data have none"
    if test in NEEDS_SPREAD:
        for label, values in (("turnout", e.turnout), ("leader share", e.leader_share)):
            distinct = np.unique(values[np.isfinite(values)]).size
            if distinct < MIN_STATIONS:
                return f"needs {label} to take at least {MIN_STATIONS} distinct values, the data have {distinct}"
    return None


def null_reason(e: Election, test: str, null: str) -> str | None:
    """Why ``null`` gives ``test`` no p-value on ``e`` when its data allow it (:func:`data_reason`): the
    conditional null has no station to draw from, or ``test`` has no textbook law (:data:`NO_TEXTBOOK_NULL`);
    None when it gives one."""
    if honest_model(test, null) == CONDITIONAL and not conditional.donors(e):
        return (f"the {CONDITIONAL} null draws from stations sharing their district with another, the data have "
                "none")
    return NO_TEXTBOOK_NULL.get(test) if null == "textbook" else None


def not_applicable(test: str, null: str, reason: str, estimates: dict | None = None) -> TestResult:
    """The result of a test that cannot run: no statistic, no p-value, verdict ``n/a: reason``; ``estimates``:
    what the test estimated on the data all the same (its module's ``estimates_of``, when its null alone is
    lacking: :func:`simkit.forensics.run_each`), kept in ``extra``."""
    return TestResult(test=test, statistic=float("nan"), reference=float("nan"), p_value=None, null=null,
                      verdict=f"{NOT_APPLICABLE}: {reason}", extra={**(estimates or {}), "not_applicable": reason})


def is_not_applicable(result: TestResult) -> bool:
    """Whether ``result`` is an ``n/a`` result of :func:`not_applicable`."""
    return "not_applicable" in result.extra


def ran(result: TestResult) -> bool:
    """Whether a test produced a p-value (False for n/a results and descriptive tests)."""
    return result.p_value is not None
