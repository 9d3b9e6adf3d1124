"""Second-digit Benford test (2BL; Mebane): mean second digit of candidates' station counts >= 10.

Textbook null: digits drawn from Benford's second-digit law (mean 4.187); a two-sided z-test of the mean, and
Pearson's chi-square over the ten digits in ``extra``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, TestResult, check_null, verdict
from simkit.forensics.digits.shared import benford_second_digit, digit_counts, digit_mean, digit_mean_null

ID = "second_digit"
ALTERNATIVE = "two-sided"  #: the direction in which the statistic is anomalous
MIN_COUNT = 10


def statistic(e: Election) -> float:
    """Mean second digit (0..9) of the candidates' counts >= 10."""
    return digit_mean(digit_counts(e, MIN_COUNT, second=True))


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    observed = digit_counts(e, MIN_COUNT, second=True)
    tested = int(observed.sum())
    law = benford_second_digit()
    mean = statistic(e)
    expected_mean = float((np.arange(10) * law).sum())
    variance = float((np.arange(10) ** 2 * law).sum()) - expected_mean ** 2
    chi2 = stats.chisquare(observed, law * tested)
    p_value, reference = digit_mean_null(expected_mean, variance, tested, null,
                                         null_statistics).p_value(mean, ALTERNATIVE)
    return TestResult(test=ID, statistic=mean, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={"counts_tested": tested, "chi2": float(chi2.statistic),
                             "chi2_p_value": float(chi2.pvalue), "digit_shares": (observed / tested).tolist()})
