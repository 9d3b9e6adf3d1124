"""Skew and kurtosis of the log vote rate (Myagkov, Ordeshook & Shakin): ``ln(W / (N - W))`` per station,
with ``W`` the leader's votes and ``N`` the register (stations with 0 < W < N).

Textbook null: a normal distribution (skew 0, Pearson kurtosis 3); D'Agostino's skewness test gives the p-value,
the kurtosis and its test are in ``extra``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, TestResult, check_null, simulated_p_value, verdict

ID = "log_vote_rate"
ALTERNATIVE = "two-sided"  #: the direction in which the statistic is anomalous


def log_vote_rate(e: Election) -> np.ndarray:
    """``ln(W / (N - W))`` for stations with 0 < W < N, shape (used station,)."""
    w, n = e.leader_votes, e.registered
    ok = (w > 0) & (w < n)
    return np.log(w[ok] / (n[ok] - w[ok]))


def statistic(e: Election) -> float:
    """Sample skewness of the log vote rate."""
    return float(stats.skew(log_vote_rate(e)))


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    rate = log_vote_rate(e)
    skew = float(stats.skew(rate))
    kurtosis = float(stats.kurtosis(rate, fisher=False))
    if null == "textbook":
        p_value, reference = float(stats.skewtest(rate).pvalue), 0.0
    else:
        p_value, reference = simulated_p_value(skew, null_statistics, ALTERNATIVE)
    return TestResult(test=ID, statistic=skew, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={"kurtosis": kurtosis, "kurtosis_p_value_textbook": float(stats.kurtosistest(rate).pvalue),
                             "stations_tested": int(rate.size)})
