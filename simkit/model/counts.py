"""Exact counts: ballots ~ Binomial(registered, turnout), votes ~ Multinomial(ballots, probabilities).

The same distribution as drawing each voter's turnout and choice individually, at a fraction of the cost.
"""
from __future__ import annotations

import numpy as np


def draw_counts(rng: np.random.Generator, registered: np.ndarray, turnout: np.ndarray,
                probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ballots`` (station,) int64 and ``votes`` (station, option) int64 with rows summing to ballots."""
    ballots = rng.binomial(registered, turnout)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    votes = rng.multinomial(ballots, probabilities)
    return ballots.astype(np.int64, copy=False), votes.astype(np.int64, copy=False)
