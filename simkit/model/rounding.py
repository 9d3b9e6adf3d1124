"""Integer apportionment shared by the electorate and the manipulation mechanisms."""
from __future__ import annotations

import math

import numba
import numpy as np


def largest_remainder(total, weights: np.ndarray) -> np.ndarray:
    """Split integer ``total`` (scalar or shape S) over the last axis of ``weights`` (S + (K,), non-negative,
    each row with a positive sum) proportionally, by largest remainders (Hamilton's method; ties to the
    lower index). The result (S + (K,), int64) sums exactly to ``total`` along the last axis. A row whose sum
    is not positive and finite raises ValueError."""
    weights = np.asarray(weights, dtype=float)
    total = np.broadcast_to(np.asarray(total), weights.shape[:-1])
    sums = weights.sum(axis=-1)  # numpy's (pairwise) sums: the quotas of the reference numpy formula, bit for bit
    if not (np.isfinite(sums) & (sums > 0)).all():
        raise ValueError("largest_remainder: every row of weights needs a positive, finite sum")
    width = weights.shape[-1]
    return _apportioned(np.ascontiguousarray(weights).reshape(-1, width), sums.reshape(-1).astype(float),
                        total.reshape(-1).astype(np.int64)).reshape(weights.shape)


#: rows up to this wide are ranked by comparing every pair (no allocation: count matching's many rows of a few
#: options); wider rows (a region's stations) by a stable sort, O(K log K)
_PAIRWISE_MAX_WIDTH = 32


@numba.njit(cache=True, nogil=True)
def _apportioned(weights, sums, total):
    """Row ``r`` of ``weights`` (rows, K) apportioned to ``total[r]`` with the row sums ``sums[r]``: the floors of
    the quotas ``weights / sums * total``, plus one for the ``total - sum of floors`` entries with the largest
    remainders, ties to the lower index (an entry's rank: the entries before it in that order, larger or equal at
    a lower index; a stable sort's order of the negated remainders). int64 (rows, K)."""
    rows, width = weights.shape
    out = np.empty((rows, width), np.int64)
    remainder = np.empty(width)
    for row in range(rows):
        short = total[row]
        for k in range(width):
            quota = weights[row, k] / sums[row] * total[row]
            out[row, k] = np.int64(math.floor(quota))
            remainder[k] = quota - out[row, k]
            short -= out[row, k]
        if short <= 0:
            continue
        if width > _PAIRWISE_MAX_WIDTH:
            order = np.argsort(-remainder, kind="mergesort")
            for rank in range(min(short, width)):
                out[row, order[rank]] += 1
            continue
        for k in range(width):
            rank = 0
            for j in range(width):
                if remainder[j] > remainder[k] or (j < k and remainder[j] == remainder[k]):
                    rank += 1
            out[row, k] += rank < short
    return out
