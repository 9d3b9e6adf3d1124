"""Skew and kurtosis of the log vote rate (Myagkov, Ordeshook & Shakin): ``ln(W / (N - W))`` per station,
with ``W`` the leader's votes and ``N`` the register (stations with 0 < W < N).

Textbook null: a normal distribution (skew 0, Pearson kurtosis 3); D'Agostino's skewness test gives the p-value,
the kurtosis and its test are in ``extra``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, LawNull, TestResult, check_null, null_for, verdict

ID = "log_vote_rate"
ALTERNATIVE = "two-sided"  #: the direction in which the statistic is anomalous


def log_vote_rate(e: Election) -> np.ndarray:
    """``ln(W / (N - W))`` for stations with 0 < W < N, shape (used station,)."""
    w, n = e.leader_votes, e.registered
    ok = (w > 0) & (w < n)
    return np.log(w[ok] / (n[ok] - w[ok]))


def skew_z(skew: float, n: int) -> float:
    """D'Agostino's transform of a sample skewness of ``n`` values to a standard normal under normality (the
    ``z`` of ``scipy.stats.skewtest``)."""
    y = skew * np.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
    beta2 = 3.0 * (n * n + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
    w2 = -1 + np.sqrt(2 * (beta2 - 1))
    delta = 1 / np.sqrt(0.5 * np.log(w2))
    alpha = np.sqrt(2.0 / (w2 - 1))
    y = y if y != 0 else 1.0
    return float(delta * np.log(y / alpha + np.sqrt((y / alpha) ** 2 + 1)))


def sample_skewness(x: np.ndarray) -> float:
    """Biased sample skewness m3 / m2^1.5 of ``x`` (n,), the same numbers as ``scipy.stats.skew`` (its moments,
    computed alike) without its wrapper's overhead, which dominated at a null draw's sizes; NaN when the
    values are constant to rounding, as there."""
    mean = x.mean()
    deviation = x - mean
    square = deviation * deviation
    m2 = square.mean()
    if m2 <= (np.finfo(float).eps * mean) ** 2:
        return float("nan")
    return float((square * deviation).mean() / m2 ** 1.5)


def statistic(e: Election) -> float:
    """Sample skewness of the log vote rate."""
    return sample_skewness(log_vote_rate(e))


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    rate = log_vote_rate(e)
    skew = statistic(e)
    kurtosis = float(stats.kurtosis(rate, fisher=False))
    textbook = lambda: LawNull(stats.norm(), transform=lambda s: skew_z(s, rate.size), reference=0.0)  # noqa: E731
    p_value, reference = null_for(null, textbook, null_statistics).p_value(skew, ALTERNATIVE)
    return TestResult(test=ID, statistic=skew, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={"kurtosis": kurtosis, "kurtosis_p_value_textbook": float(stats.kurtosistest(rate).pvalue),
                             "stations_tested": int(rate.size)})
