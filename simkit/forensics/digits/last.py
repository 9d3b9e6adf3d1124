"""Last-digit test (Beber & Scacco): mean last digit of candidates' station counts >= 100.

Textbook null: last digits uniform on 0..9 (mean 4.5, variance 8.25); a two-sided z-test of the mean.
"""
from __future__ import annotations

import numpy as np

from simkit.forensics.core import Election, TestResult, check_null, verdict
from simkit.forensics.digits.shared import digit_counts, digit_mean, digit_mean_null

ID = "last_digit"
ALTERNATIVE = "two-sided"  #: the direction in which the statistic is anomalous
MIN_COUNT = 100
UNIFORM_MEAN, UNIFORM_VARIANCE = 4.5, 8.25


def statistic(e: Election) -> float:
    """Mean last digit (0..9) of the candidates' counts >= 100."""
    return digit_mean(digit_counts(e, MIN_COUNT))


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    tested = int(digit_counts(e, MIN_COUNT).sum())
    mean = statistic(e)
    p_value, reference = digit_mean_null(UNIFORM_MEAN, UNIFORM_VARIANCE, tested, null,
                                         null_statistics).p_value(mean, ALTERNATIVE)
    return TestResult(test=ID, statistic=mean, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value), extra={"counts_tested": int(tested)})
