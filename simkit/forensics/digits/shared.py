"""Digit helpers shared by the digit tests: which counts are tested and their digits."""
from __future__ import annotations

import numba
import numpy as np
from scipy import stats

from simkit.forensics.core import Election, LawNull, Null, null_for


def candidate_counts(e: Election, minimum: int) -> np.ndarray:
    """All candidates' station counts (``invalid`` left out) that are >= ``minimum``, flattened, int64."""
    counts = e.votes[:, e.candidate_columns].ravel()
    return counts[counts >= minimum]


@numba.njit(cache=True, nogil=True)
def _digit_counts(votes, columns, minimum, second):
    """How often each digit 0..9 ends (``second`` False) or is the second digit of (``second`` True) the counts
    ``votes[:, columns]`` >= ``minimum``, shape (10,) int64 (integer arithmetic)."""
    tally = np.zeros(10, dtype=np.int64)
    for station in range(votes.shape[0]):
        for column in columns:
            count = votes[station, column]
            if count >= minimum:
                if second:
                    while count >= 100:
                        count //= 10
                tally[count % 10] += 1
    return tally


def digit_counts(e: Election, minimum: int, second: bool = False) -> np.ndarray:
    """Counts of each last digit (or, with ``second``, second significant digit; ``minimum`` >= 10) 0..9 among
    :func:`candidate_counts` ``(e, minimum)``, shape (10,) int64: one pass over the votes, computed once per
    election (:meth:`simkit.forensics.core.Election.derived`)."""
    if second and minimum < 10:
        raise ValueError(f"a second digit needs counts of 10 or more, got minimum {minimum}")
    return e.derived(("digit_counts", minimum, second),
                     lambda: _digit_counts(e.votes, e.candidate_columns.astype(np.int64), minimum, second))


def tally_mean(tally: np.ndarray, values: np.ndarray) -> float:
    """The mean of ``values`` (shape (10,), a number per digit) over a digit tally (shape (10,)): NaN when the
    tally is empty."""
    total = int(tally.sum())
    return float(np.dot(values, tally) / total) if total else float("nan")


def digit_mean(tally: np.ndarray) -> float:
    """The mean digit of a digit tally (shape (10,)): NaN when it is empty."""
    return tally_mean(tally, np.arange(10))


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
