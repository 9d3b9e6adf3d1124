"""Exact per-station probabilities of an integer percentage under the binomial null, compiled with numba.

The same quantity as :func:`simkit.forensics.integer.percent.station_probabilities` computes with numpy
(which stays the reference), in one pass per station: for ``ballots ~ Bin(registered, turnout)`` over
±``sds`` standard deviations, ``P(integer) = Σ_b P(b) × (1 if 100 b / registered is integer else P(100 W / b
is integer))`` with ``W ~ Bin(b, share)``, the inner sum running over the counts ``W`` within ±``sds``
standard deviations whose share is a whole percent (read from :func:`share_lattice`, built once for all
stations), each term a product of two tabulated factors (the factorised pmf of
:func:`_station_probabilities`), so a station costs one ``exp`` per count, not one per (ballots, leader) pair:
about 3x faster than one ``exp`` per pair, equal to it within 1e-11 relative. The loop is serial: a
``prange`` would start numba's OpenMP threading layer, after which no process pool of this process could fork
(GNU OpenMP is not fork-safe), and the tests already run side by side in threads.
"""
from __future__ import annotations

import functools
import math

import numpy as np

import numba
from scipy import special

from simkit.model.samplers import CONSTANT_LOG_FACTORIALS


@numba.njit(inline="always")
def _is_integer_percent(count, total, window):
    """The predicate of :func:`simkit.forensics.integer.percent.is_integer_percent` for one pair."""
    if total <= 0:
        return False
    percent = 100.0 * count / total
    return abs(percent - np.round(percent)) <= window + 1e-9


def log_factorial_table(n: int) -> np.ndarray:
    """log(k!) for k = 0 … at least ``n`` (float64, read-only, from ``gammaln``): the table
    :func:`log_binomial_pmf` indexes (every count up to the largest trials, no ``lgamma`` fallback). The samplers'
    :data:`~simkit.model.samplers.CONSTANT_LOG_FACTORIALS` (k < 2^14), extended in powers of two when ``n`` needs
    more, the extension cached."""
    global _LOG_FACTORIALS
    table = _LOG_FACTORIALS
    if table.shape[0] <= n:  # grown, never shrunk: two threads growing it at once each return a large enough table
        tail = np.arange(table.shape[0], 1 << int(n).bit_length(), dtype=np.float64)
        table = np.concatenate([table, special.gammaln(tail + 1.0)])
        table.setflags(write=False)
        if table.shape[0] > _LOG_FACTORIALS.shape[0]:
            _LOG_FACTORIALS = table
    return table


_LOG_FACTORIALS = CONSTANT_LOG_FACTORIALS


@numba.njit(inline="always")
def log_binomial_pmf(log_factorials, k, n, log_p, log_q):
    """log P(K = k) for K ~ Bin(n, p) with ``log_p = log p``, ``log_q = log(1 - p)`` (0 < p < 1);
    ``log_factorials`` from :func:`log_factorial_table` (at least ``n + 1`` long)."""
    return log_factorials[n] - log_factorials[k] - log_factorials[n - k] + k * log_p + (n - k) * log_q


@numba.njit(inline="always")
def _binomial_range(trials, p, sds):
    """The counts ``[low, high]`` within ±``sds`` standard deviations (and one count) of the mean of Bin(trials,
    p), clipped to ``[0, trials]``."""
    mean = trials * p
    spread = sds * math.sqrt(trials * p * (1.0 - p))
    return max(0, int(math.floor(mean - spread)) - 1), min(trials, int(math.ceil(mean + spread)) + 1)


#: ballot counts up to this have their whole-percent shares tabulated (:func:`share_lattice`: about 0.05 b²
#: counts, 29 MB at this size); the rare larger ones find theirs as they go (:func:`_share_run`)
LATTICE_MAX_BALLOTS = 12_000


@numba.njit(inline="always")
def _share_run(ballots, percent, window):
    """The first and last count ``w`` of ``ballots`` ballots whose share ``100 w / ballots`` is within ``window``
    points of ``percent`` and rounds to it (the predicate of :func:`_is_integer_percent` is the judge; first >
    last when none). Such counts are consecutive: the predicate is monotone in the distance to the percent."""
    half = (window + 1e-9) * ballots / 100.0
    center = percent * ballots / 100.0
    first = max(0, int(math.ceil(center - half - 1e-7)))
    last = min(ballots, int(math.floor(center + half + 1e-7)))
    while first <= last and not _is_share_of(first, ballots, percent, window):
        first += 1
    while last >= first and not _is_share_of(last, ballots, percent, window):
        last -= 1
    return first, last


@numba.njit(inline="always")
def _is_share_of(count, ballots, percent, window):
    """Whether ``count`` of ``ballots`` is within ``window`` of the whole percent ``percent`` (the predicate of
    :func:`_is_integer_percent`, at that percent)."""
    return _is_integer_percent(count, ballots, window) and np.round(100.0 * count / ballots) == percent


@numba.njit(cache=True, nogil=True)
def share_lattice(max_ballots, window):
    """The whole-percent shares of every ballot count up to ``max_ballots``: ``offsets`` (max_ballots + 2,) and
    ``counts`` such that ``counts[offsets[b]:offsets[b + 1]]`` are the counts ``w`` of ``b`` ballots (ascending)
    whose share ``100 w / b`` is within ``window`` points of a whole percent (none for ``b = 0``)."""
    offsets = np.zeros(max_ballots + 2, np.int64)
    for b in range(1, max_ballots + 1):
        found = 0
        for percent in range(101):
            first, last = _share_run(b, percent, window)
            found += max(last - first + 1, 0)
        offsets[b + 1] = offsets[b] + found
    counts = np.empty(offsets[-1], np.int32)
    for b in range(1, max_ballots + 1):
        at = offsets[b]
        for percent in range(101):
            first, last = _share_run(b, percent, window)
            for w in range(first, last + 1):
                counts[at] = w
                at += 1
    return offsets, counts


@numba.njit(inline="always")
def _scaled_terms(out, first, last, log_factorials, log_rate):
    """``out[k - first] = exp(x_k - max x)`` for ``x_k = -log k! + k log_rate``, k in ``[first, last]``;
    returns ``max x``."""
    top = -math.inf
    for k in range(first, last + 1):
        out[k - first] = -log_factorials[k] + k * log_rate
        top = max(top, out[k - first])
    for k in range(last - first + 1):
        out[k] = math.exp(out[k] - top)
    return top


@numba.njit(cache=True, nogil=True)
def _station_probabilities(registered, turnout, share, window, sds, log_factorials, offsets, lattice):
    """P(integer) per station (see :func:`station_probabilities`). The inner binomial pmf factorises: with any
    constant ``c``, ``P(W = w | b) = exp(log b! - b c) g(w) h(b - w)`` where ``g(w) = exp(-log w! + w (log s +
    c))`` and ``h(j) = exp(-log j! + j (log(1 - s) + c))``; so a station needs one ``exp`` per count of
    ``g``'s and ``h``'s ranges and per ballot count, not one per (ballots, leader) pair. ``c = log(n t)`` centres
    both near their modes, and each is scaled by its maximum (no overflow)."""
    n_max = registered.max() if registered.size else 0
    low_w, high_w = np.empty(n_max + 1, np.int64), np.empty(n_max + 1, np.int64)
    g, h = np.empty(n_max + 1), np.empty(n_max + 1)
    probability = np.zeros(registered.shape[0])
    for station in range(registered.shape[0]):
        n, t, s = registered[station], turnout[station], share[station]
        if n <= 0 or t <= 0.0:
            continue
        if t >= 1.0:
            probability[station] = 1.0 if _is_integer_percent(n, n, window) else 0.0
            continue
        log_p, log_q = math.log(t), math.log1p(-t)
        b_low, b_high = _binomial_range(n, t, sds)
        degenerate = s <= 0.0 or s >= 1.0  # W is 0 or ballots: 0% and 100% are whole numbers
        total = 0.0
        if degenerate:
            for b in range(b_low, b_high + 1):  # b = 0 is a whole-percent turnout too
                total += math.exp(log_binomial_pmf(log_factorials, b, n, log_p, log_q))
            probability[station] = total
            continue
        w_first, w_last, j_first, j_last = n, 0, n, 0
        for b in range(max(b_low, 1), b_high + 1):
            low, high = _binomial_range(b, s, sds)
            low_w[b], high_w[b] = low, high
            w_first, w_last = min(w_first, low), max(w_last, high)
            j_first, j_last = min(j_first, b - high), max(j_last, b - low)
        c = math.log(n * t)
        scale = (_scaled_terms(g, w_first, w_last, log_factorials, math.log(s) + c)
                 + _scaled_terms(h, j_first, j_last, log_factorials, math.log1p(-s) + c))
        for b in range(b_low, b_high + 1):
            log_weight = log_binomial_pmf(log_factorials, b, n, log_p, log_q)
            if _is_integer_percent(b, n, window):  # b = 0 included
                total += math.exp(log_weight)
            else:
                inner = 0.0
                low, high = low_w[b], high_w[b]
                if b < offsets.shape[0] - 1:  # tabulated
                    hits = lattice[offsets[b]:offsets[b + 1]]
                    for i in range(np.searchsorted(hits, low), hits.shape[0]):
                        if hits[i] > high:
                            break
                        inner += g[hits[i] - w_first] * h[b - hits[i] - j_first]
                else:
                    for percent in range(100 * low // b, min(100, -(-100 * high // b)) + 1):
                        first, last = _share_run(b, percent, window)
                        for w in range(max(first, low), min(last, high) + 1):
                            inner += g[w - w_first] * h[b - w - j_first]
                total += math.exp(log_weight + log_factorials[b] - b * c + scale) * inner
        probability[station] = total
    return probability


@functools.lru_cache(maxsize=2)
def _cached_share_lattice(max_ballots: int, window: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`share_lattice`, kept for the next call (a calibration tests elections of one register in turn)."""
    return share_lattice(max_ballots, window)


def station_probabilities(registered: np.ndarray, turnout: np.ndarray, share: np.ndarray, window: float,
                          sds: float) -> np.ndarray:
    """P(integer turnout or integer leader share) per station under the binomial null, shape (station,).

    ``registered`` (station,) int voters; ``turnout``, ``share`` (station,) float observed rates in [0, 1];
    ``window`` the half-width in percentage points; ``sds`` how many standard deviations each binomial sum
    spans (the tails beyond 6 carry less than 1e-8)."""
    registered = np.ascontiguousarray(registered, dtype=np.int64)
    largest = int(registered.max(initial=0))
    table = log_factorial_table(largest)
    offsets, lattice = _cached_share_lattice(min(largest, LATTICE_MAX_BALLOTS), float(window))
    return _station_probabilities(registered, np.ascontiguousarray(turnout, dtype=np.float64),
                                  np.ascontiguousarray(share, dtype=np.float64), float(window), float(sds), table,
                                  offsets, lattice)
