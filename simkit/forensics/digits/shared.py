"""Digit helpers shared by the digit tests: which counts are tested and their digits."""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, LawNull, Null, null_for


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


def digit_mean_null(expected_mean: float, variance: float, n: int, null: str, null_statistics) -> Null:
    """The null of a mean digit: the normal law of the mean of ``n`` digits with the digit law's mean and
    variance (``textbook``), or the simulated null's statistics."""
    return null_for(null, lambda: LawNull(stats.norm(expected_mean, np.sqrt(variance / n))), null_statistics)
