"""Sobyanin–Sukhovolsky slope: least-squares slope of the leader's votes per registered voter on turnout.

With a leader share independent of turnout, the slope equals the national leader share (the reference); every
extra voter going to the leader gives 1, and slopes above 1 need votes taken from others. Textbook null: OLS
t-test of slope = national share, two-sided.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, LawNull, TestResult, check_null, null_for, verdict

ID = "sobyanin"
ALTERNATIVE = "two-sided"  #: the direction in which the statistic is anomalous


def statistic(e: Election) -> float:
    """Slope (leader votes / registered per unit of turnout; dimensionless)."""
    return float(stats.linregress(e.turnout, e.leader_votes / e.registered).slope)


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    fit = stats.linregress(e.turnout, e.leader_votes / e.registered)
    slope = statistic(e)
    national_share = float(e.leader_votes.sum() / e.ballots.sum())
    # textbook: the slope is the national share, with Student's t error of the least-squares slope
    textbook = lambda: LawNull(stats.t(e.n - 2, loc=national_share, scale=fit.stderr))  # noqa: E731
    p_value, reference = null_for(null, textbook, null_statistics).p_value(slope, ALTERNATIVE)
    return TestResult(test=ID, statistic=slope, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={"intercept": float(fit.intercept), "slope_se": float(fit.stderr),
                             "national_share": national_share})
