"""Turnout–leader-share correlation across stations (Pearson's r).

Textbook null: no correlation (r = 0), Student's t test, two-sided. Honest elections often show some regional
correlation, which the simulated null (regional centres) reproduces.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, TestResult, check_null, simulated_p_value, top_regions, verdict

ID = "correlation"
ALTERNATIVE = "two-sided"  #: the direction in which the statistic is anomalous


def statistic(e: Election) -> float:
    """Pearson correlation of turnout and leader share (both shares in [0, 1])."""
    return float(np.corrcoef(e.turnout, e.leader_share)[0, 1])


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    r = statistic(e)
    if null == "textbook":
        p_value, reference = float(stats.pearsonr(e.turnout, e.leader_share).pvalue), 0.0
    else:
        p_value, reference = simulated_p_value(r, null_statistics, ALTERNATIVE)
    t, v = e.turnout, e.leader_share
    contribution = (t - t.mean()) * (v - v.mean()) / (t.std() * v.std() * e.n)  # sums to r
    return TestResult(test=ID, statistic=r, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value), extra={"top_regions": top_regions(e, contribution)})
