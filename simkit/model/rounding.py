"""Integer apportionment shared by the electorate and the manipulation mechanisms."""
from __future__ import annotations

import numpy as np


def largest_remainder(total, weights: np.ndarray) -> np.ndarray:
    """Split integer ``total`` (scalar or shape S) over the last axis of ``weights`` (S + (K,), non-negative,
    each row with a positive sum) proportionally, by largest remainders (Hamilton's method; ties to the
    lower index). The result (S + (K,), int64) sums exactly to ``total`` along the last axis."""
    total = np.asarray(total)
    weights = np.asarray(weights, dtype=float)
    quota = weights / weights.sum(axis=-1, keepdims=True) * total[..., None]
    counts = np.floor(quota).astype(np.int64)
    short = total - counts.sum(axis=-1)
    order = np.argsort(-(quota - counts), axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(weights.shape[-1]), axis=-1)
    return counts + (rank < short[..., None])
