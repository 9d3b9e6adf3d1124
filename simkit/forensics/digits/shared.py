"""Digit helpers shared by the digit tests: which counts are tested and their digits."""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, simulated_p_value


def candidate_counts(e: Election, minimum: int) -> np.ndarray:
    """All candidates' station counts (``invalid`` left out) that are >= ``minimum``, flattened, int64."""
    counts = e.votes[:, e.candidate_columns].ravel()
    return counts[counts >= minimum]


def second_digit(counts: np.ndarray) -> np.ndarray:
    """Second significant digit of counts >= 10 (0..9)."""
    magnitude = np.floor(np.log10(counts)).astype(np.int64)
    return (counts // 10 ** (magnitude - 1)) % 10


def benford_second_digit() -> np.ndarray:
    """Benford's probabilities of second digits 0..9, shape (10,)."""
    first = np.arange(1, 10)[:, None]
    second = np.arange(10)[None, :]
    return np.log10(1 + 1 / (10 * first + second)).sum(axis=0)


def digit_mean_p_value(mean: float, expected_mean: float, variance: float, n: int, null: str,
                       null_statistics) -> tuple[float, float]:
    """(p-value, reference) of a mean digit: two-sided normal test against the digit law's mean and variance
    (``textbook``, ``n`` digits), or the simulated null's statistics (``simulated``)."""
    if null == "textbook":
        z = (mean - expected_mean) / np.sqrt(variance / n)
        return float(2 * stats.norm.sf(abs(z))), expected_mean
    return simulated_p_value(mean, null_statistics, "two-sided")
