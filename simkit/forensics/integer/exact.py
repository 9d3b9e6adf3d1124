"""Exact per-station probabilities of an integer percentage under the binomial null, compiled with numba.

The same quantity as :func:`simkit.forensics.integer.percent.station_probabilities` computes with numpy
(which stays the reference), but in one pass per station with the pmf read
from a log-factorial table: for ``ballots ~ Bin(registered, turnout)`` over ±``sds`` standard deviations,
``P(integer) = Σ_b P(b) × (1 if 100 b / registered is integer else P(100 W / b is integer))`` with
``W ~ Bin(b, share)``, the inner sum running over the few ``W`` on the integer-percent lattice within
±``sds`` standard deviations. The loop is serial: a ``prange`` would start numba's OpenMP threading layer,
after which no process pool of this process could fork (GNU OpenMP is not fork-safe), and the tests already
run side by side in threads.
"""
from __future__ import annotations

import math

import numpy as np

import numba

from simkit.engine import kernels


@numba.njit(inline="always")
def _is_integer_percent(count, total, window):
    """The predicate of :func:`simkit.forensics.integer.percent.is_integer_percent` for one pair."""
    if total <= 0:
        return False
    percent = 100.0 * count / total
    return abs(percent - np.round(percent)) <= window + 1e-9


@numba.njit(inline="always")
def log_binomial_pmf(log_factorials, k, n, log_p, log_q):
    """log P(K = k) for K ~ Bin(n, p) with ``log_p = log p``, ``log_q = log(1 - p)`` (0 < p < 1)."""
    return log_factorials[n] - log_factorials[k] - log_factorials[n - k] + k * log_p + (n - k) * log_q


@numba.njit
def _share_integer_probability(ballots, share, window, sds, log_factorials):
    """P(100 W / ballots within ``window`` of a whole number) for W ~ Bin(ballots, share)."""
    if ballots <= 0:
        return 0.0
    if share <= 0.0 or share >= 1.0:  # W is 0 or ballots: 0% and 100% are whole numbers
        return 1.0
    log_p, log_q = math.log(share), math.log1p(-share)
    mean = ballots * share
    spread = sds * math.sqrt(ballots * share * (1.0 - share))
    low = max(0, int(math.floor(mean - spread)) - 1)
    high = min(ballots, int(math.ceil(mean + spread)) + 1)
    half = (window + 1e-9) * ballots / 100.0
    total = 0.0
    for percent in range(int(math.floor(100.0 * low / ballots)), int(math.ceil(100.0 * high / ballots)) + 1):
        center = percent * ballots / 100.0
        first = max(low, int(math.ceil(center - half - 1e-7)))  # the lattice points within the window
        last = min(high, int(math.floor(center + half + 1e-7)))  # (the predicate below is the judge)
        for w in range(first, last + 1):
            value = 100.0 * w / ballots
            if np.round(value) == percent and abs(value - percent) <= window + 1e-9:
                total += math.exp(log_binomial_pmf(log_factorials, w, ballots, log_p, log_q))
    return total


@numba.njit(cache=True)
def _station_probabilities(registered, turnout, share, window, sds, log_factorials):
    probability = np.zeros(registered.shape[0])
    for station in range(registered.shape[0]):
        n = registered[station]
        t = turnout[station]
        if n <= 0 or t <= 0.0:
            continue
        if t >= 1.0:
            probability[station] = 1.0 if _is_integer_percent(n, n, window) else 0.0
            continue
        log_p, log_q = math.log(t), math.log1p(-t)
        mean = n * t
        spread = sds * math.sqrt(n * t * (1.0 - t))
        total = 0.0
        for b in range(max(0, int(math.floor(mean - spread)) - 1), min(n, int(math.ceil(mean + spread)) + 1) + 1):
            weight = math.exp(log_binomial_pmf(log_factorials, b, n, log_p, log_q))
            if _is_integer_percent(b, n, window):
                total += weight
            else:
                total += weight * _share_integer_probability(b, share[station], window, sds, log_factorials)
        probability[station] = total
    return probability


def station_probabilities(registered: np.ndarray, turnout: np.ndarray, share: np.ndarray, window: float,
                          sds: float) -> np.ndarray:
    """P(integer turnout or integer leader share) per station under the binomial null, shape (station,).

    ``registered`` (station,) int voters; ``turnout``, ``share`` (station,) float observed rates in [0, 1];
    ``window`` the half-width in percentage points; ``sds`` how many standard deviations each binomial sum
    spans (the tails beyond 6 carry less than 1e-8)."""
    registered = np.ascontiguousarray(registered, dtype=np.int64)
    table = kernels.log_factorial_table(int(registered.max(initial=0)))
    return _station_probabilities(registered, np.ascontiguousarray(turnout, dtype=np.float64),
                                      np.ascontiguousarray(share, dtype=np.float64), float(window), float(sds),
                                      table)
