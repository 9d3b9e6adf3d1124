"""Largest-remainder apportionment (:func:`simkit.model.rounding.largest_remainder`) against its definition."""
from __future__ import annotations

import numpy as np
import pytest

from simkit.model.rounding import largest_remainder


def _by_argsort(total, weights):
    """Hamilton's method written out with numpy: floors of the quotas, then one more for the entries first in a
    stable sort by decreasing remainder (ties to the lower index)."""
    total = np.asarray(total)
    quota = weights / weights.sum(axis=-1, keepdims=True) * total[..., None]
    counts = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - counts), axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(weights.shape[-1]), axis=-1)
    return counts + (rank < (total - counts.sum(axis=-1))[..., None])


def test_largest_remainder_is_hamiltons_method_bit_for_bit_with_ties_to_the_lower_index():
    """Random weights of several scales and shapes, and small integer weights (tied remainders): the same counts as
    the argsort formula, summing to the totals."""
    rng = np.random.default_rng(4)
    for shape in [(2000, 8), (4, 5, 3), (6,), (30, 1), (3, 20_000)]:  # the last ranked by a stable sort
        for scale in (1.0, 1e-3, 1e6):
            total = rng.integers(0, 3000, shape[:-1]) if len(shape) > 1 else np.int64(997)
            for weights in (rng.random(shape) * scale, rng.integers(0, 4, shape) + np.eye(1, shape[-1])[0]):
                counts = largest_remainder(total, weights)
                assert counts.dtype == np.int64 and counts.shape == weights.shape
                assert np.array_equal(counts, _by_argsort(total, weights)), (shape, scale)
                assert np.array_equal(counts.sum(axis=-1), total)
    assert largest_remainder(10, np.ones(3)).tolist() == [4, 3, 3]  # a three-way tie: the lowest index first


def test_a_row_without_a_positive_sum_is_refused():
    for weights in (np.zeros((2, 3)), np.array([[1.0, np.nan]]), np.array([[1.0, -1.0]])):
        with pytest.raises(ValueError, match="every row of weights needs a positive, finite sum"):
            largest_remainder(np.array([5] * weights.shape[0]), weights)
