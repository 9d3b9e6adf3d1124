"""Turnout–leader-share correlation across stations (Pearson's r).

Textbook null: no correlation (r = 0), Student's t test, two-sided. Honest elections often show some regional
correlation, which the simulated null (regional centres) reproduces.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, LawNull, TestResult, check_null, null_for, top_regions, verdict

ID = "correlation"
ALTERNATIVE = "two-sided"  #: the direction in which the statistic is anomalous


def statistic(e: Election) -> float:
    """Pearson correlation of turnout and leader share (both shares in [0, 1])."""
    return float(np.corrcoef(e.turnout, e.leader_share)[0, 1])


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    r = statistic(e)
    # under independence of normal variables r follows Beta(n/2 - 1, n/2 - 1) on [-1, 1] (scipy's pearsonr)
    textbook = lambda: LawNull(stats.beta(e.n / 2 - 1, e.n / 2 - 1, loc=-1, scale=2))  # noqa: E731
    p_value, reference = null_for(null, textbook, null_statistics).p_value(r, ALTERNATIVE)
    t, v = e.turnout, e.leader_share
    contribution = (t - t.mean()) * (v - v.mean()) / (t.std() * v.std() * e.n)  # sums to r
    return TestResult(test=ID, statistic=r, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value), extra={"top_regions": top_regions(e, contribution)})
