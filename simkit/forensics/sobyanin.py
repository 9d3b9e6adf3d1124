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
    """Slope (leader votes / registered per unit of turnout; dimensionless): ``scipy.stats.linregress``'s slope,
    by its own formula (the covariances of ``numpy.cov`` with ``bias=1``, so the same number bit for bit) without
    its p-value and wrapper, which took most of its time on a null draw. Raises ValueError with no station
    (``linregress`` returns NaN there in recent scipy) or when every turnout is the same (as it does)."""
    x, y = e.turnout, e.leader_votes / e.registered
    if x.size == 0:
        raise ValueError("Inputs must not be empty.")
    if x.size > 1 and np.amax(x) == np.amin(x):
        raise ValueError("Cannot calculate a linear regression if all x values are identical")
    ssxm, ssxym, _, _ = np.cov(x, y, bias=1).flat
    return float(ssxym / ssxm)


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
