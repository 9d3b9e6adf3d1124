"""Integer percentages (Kobak, Shpilkin & Pshenichnikov 2016, Ann. Appl. Stat. 10(1)).

Stations used: registered >= 100, ballots > 0, turnout <= 0.99 and leader share <= 0.99. A station is *integer*
when its turnout or its leader share, in percent, lies within 0.05 of a whole number. The paper's null redraws
each used station's counts binomially at its observed rates (``ballots ~ Bin(registered, turnout)``,
``leader ~ Bin(ballots, share)``), ``draws`` times; ``excess = observed - null_mean`` and ``null_sd`` always refer
to that null. Two statistics, named: under the textbook null the integer-station count
(``textbook_statistic``), whose law the paper's null gives; under a simulated null the excess of an election
over its own binomial expectation (``statistic``), compared with the same number in simulated honest elections
(whose lattice of possible percentages differs from the observed one, so raw counts are not comparable).

Two ways to the paper's null (``method``): ``"exact"`` (the default) uses that the integer-station count is a
sum of independent Bernoulli variables (Poisson-binomial) whose probabilities follow exactly from each
station's binomials (:func:`station_probabilities`): mean and SD are exact and the textbook p-value is the
Poisson-binomial tail by the refined normal approximation (normal with continuity and skewness corrections;
Volkova 1996), which needs no resampling; ``"resample"`` redraws the counts ``draws`` times as the paper did
(p-value = share of draws at least as high). The two agree (tested); the exact way takes about 4 s on the
95,225 stations of Russia 2011 with numba (:mod:`simkit.forensics.integer.exact`) against 15 s for 1,000
resamples.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special, stats

from simkit.forensics.core import (DrawnNull, Election, LawNull, TestResult, check_null, null_for, top_regions,
                                   verdict)
from simkit.forensics.nulls import compiled_draws
from simkit.forensics.integer import exact as integer_exact
from simkit.forensics.nulls.flat import as_seed_sequence

ID = "integer_percent"
ALTERNATIVE = "greater"  #: the direction in which the statistic is anomalous
MIN_REGISTERED = 100
MAX_RATE = 0.99
WINDOW = 0.05  # percentage points
CHUNK = 20  # resampling draws per vectorised block
SIMULATED_RESAMPLES = 4
METHODS = ("exact", "resample")  #: ways to the paper's binomial null (see the module docstring)


def used(e: Election) -> np.ndarray:
    """The paper's station criteria (bool, shape (station,))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((e.registered >= MIN_REGISTERED) & (e.ballots > 0) & (e.turnout <= MAX_RATE)
                & (e.leader_share <= MAX_RATE))


def is_integer_percent(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Whether 100 count / total is within ``WINDOW`` of a whole number (False where total = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = 100.0 * count / total
    return (total > 0) & (np.abs(percent - np.round(percent)) <= WINDOW + 1e-9)


def integer_stations(registered: np.ndarray, ballots: np.ndarray, leader: np.ndarray) -> np.ndarray:
    """Integer turnout or integer leader share (bool; arrays broadcast)."""
    return is_integer_percent(ballots, registered) | is_integer_percent(leader, ballots)


def integer_count(e: Election) -> int:
    """Number of used stations with an integer turnout or leader share."""
    mask = used(e)
    return int(integer_stations(e.registered[mask], e.ballots[mask], e.leader_votes[mask]).sum())


def textbook_statistic(e: Election) -> float:
    """The integer-station count (:func:`integer_count`): the statistic of the textbook (binomial) null."""
    return float(integer_count(e))


def statistic(e: Election) -> float:
    """Integer stations in excess of their own binomial expectation (the mean count of
    ``SIMULATED_RESAMPLES`` compiled resamplings with a fixed seed,
    :func:`simkit.forensics.nulls.compiled_draws.integer_resample_counts`): the number compared with simulated honest
    elections, whose lattice of possible percentages differs from the observed one."""
    mask = used(e)
    resampled = compiled_draws.integer_resample_counts(e.registered[mask], e.turnout[mask], e.leader_share[mask],
                                                       SIMULATED_RESAMPLES, WINDOW, np.random.SeedSequence(0))
    return float(integer_count(e) - resampled.mean())


def binomial_null(e: Election, draws: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Binomial resampling of the used stations, ``draws`` times.

    Returns the integer-station count of each draw (shape (draws,)) and each used station's share of draws in
    which it was integer (shape (used station,)).
    """
    mask = used(e)
    registered, turnout, share = e.registered[mask], e.turnout[mask], e.leader_share[mask]
    seed = as_seed_sequence(rng)
    counts, hits = [], np.zeros(registered.size)
    for start, child in zip(range(0, draws, CHUNK), seed.spawn((draws + CHUNK - 1) // CHUNK)):
        gen = np.random.default_rng(child)
        size = (min(CHUNK, draws - start), registered.size)
        ballots = gen.binomial(registered, turnout, size=size)
        leader = gen.binomial(ballots, share)
        integer = integer_stations(registered, ballots, leader)
        counts.append(integer.sum(axis=1))
        hits += integer.sum(axis=0)
    return np.concatenate(counts).astype(float), hits / draws


def _binom_logpmf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
               + special.xlogy(k, p) + special.xlog1py(n - k, -p))
    return np.where((k >= 0) & (k <= n), out, -np.inf)


def _integer_share_probability(ballots: np.ndarray, share: np.ndarray, sds: float) -> np.ndarray:
    """P(100 W / b is within WINDOW of a whole number) for W ~ Bin(b, share); arrays of shape (m,)."""
    b = ballots.astype(float)
    mean, sd = b * share, np.sqrt(b * share * (1 - share))
    k_low = np.floor(100 * np.maximum(mean - sds * sd - 1, 0) / np.maximum(b, 1)).astype(np.int64)
    k_high = np.ceil(100 * np.minimum(mean + sds * sd + 1, b) / np.maximum(b, 1)).astype(np.int64)
    total = np.zeros(b.shape)
    reach = int(np.ceil(WINDOW * b.max(initial=0) / 100.0)) + 1  # |w - b k / 100| <= 0.0005 b for a hit
    for offset in range(int((k_high - k_low).max()) + 1):
        k = k_low + offset
        live = (k <= k_high) & (b > 0)
        base = np.floor(b * k / 100.0)
        for shift in range(-reach, reach + 2):  # every w with |100 w / b - k| <= 0.05 (several when b > 1000)
            w = base + shift
            hit = live & (np.abs(100.0 * w / np.maximum(b, 1) - k) <= WINDOW + 1e-9) & (w >= 0) & (w <= b)
            total[hit] += np.exp(_binom_logpmf(w[hit], b[hit], share[hit]))
    return total


def station_probabilities(e: Election, sds: float = 6.0, chunk: int = 4096, compiled: bool = True) -> np.ndarray:
    """Exact P(integer) of each used station under the binomial null, shape (used station,).

    Sums the binomial pmf of ``ballots`` over +-``sds`` standard deviations (the tail beyond carries less than
    1e-8), and for each ballot count the exact probability of an integer leader share. ``compiled`` (the
    default) uses :mod:`simkit.forensics.integer.exact`; ``compiled=False`` numpy, with stations in
    blocks of similar size so each block loops only over its own range (the reference, about 15x slower).
    """
    mask = used(e)
    if compiled:
        return integer_exact.station_probabilities(e.registered[mask], e.turnout[mask], e.leader_share[mask],
                                                   WINDOW, sds)
    registered, turnout, share = e.registered[mask].astype(float), e.turnout[mask], e.leader_share[mask]
    spread = registered * turnout * (1 - turnout)
    probability = np.zeros(registered.shape)
    order = np.argsort(spread, kind="stable")
    for start in range(0, order.size, chunk):
        block = order[start:start + chunk]
        probability[block] = _block_probabilities(registered[block], turnout[block], share[block], sds)
    return probability


def _block_probabilities(registered: np.ndarray, turnout: np.ndarray, share: np.ndarray, sds: float) -> np.ndarray:
    mean, sd = registered * turnout, np.sqrt(registered * turnout * (1 - turnout))
    start = np.maximum(np.floor(mean - sds * sd) - 1, 0)
    stop = np.minimum(registered, mean + sds * sd + 1)
    probability = np.zeros(registered.shape)
    for offset in range(int(np.max(stop - start)) + 1):
        b = start + offset
        live = b <= stop
        pmf = np.where(live, np.exp(_binom_logpmf(b, registered, turnout)), 0.0)
        turnout_integer = is_integer_percent(b, registered)
        share_integer = np.where(turnout_integer | ~live, 0.0, _integer_share_probability(b, share, sds))
        probability += pmf * np.where(turnout_integer, 1.0, share_integer)
    return probability


def exact_null_moments(e: Election) -> tuple[float, float]:
    """Mean and standard deviation of the integer-station count under the binomial null (Poisson-binomial).

    The library never calls it: it is the exact reference the tests hold :func:`binomial_null`'s resampling to."""
    p = station_probabilities(e)
    return float(p.sum()), float(np.sqrt((p * (1 - p)).sum()))


class PoissonBinomialLaw:
    """The law of a sum of independent Bernoulli(``probabilities``) (scipy's discrete conventions:
    ``sf(k)`` = P(X > k), ``cdf(k)`` = P(X <= k)), by :func:`poisson_binomial_upper_tail`."""

    discrete = True

    def __init__(self, probabilities: np.ndarray):
        self.probabilities = probabilities

    def sf(self, k: float) -> float:
        return poisson_binomial_upper_tail(k + 1, self.probabilities)

    def cdf(self, k: float) -> float:
        return 1.0 - self.sf(k)

    def mean(self) -> float:
        return float(self.probabilities.sum())


def poisson_binomial_upper_tail(observed: float, probabilities: np.ndarray) -> float:
    """P(X >= observed) for X a sum of independent Bernoulli(``probabilities``): the refined normal
    approximation (Volkova 1996), Φ with a continuity correction and a skewness term, clipped to [0, 1]."""
    mean = probabilities.sum()
    sd = np.sqrt((probabilities * (1 - probabilities)).sum())
    if sd == 0:
        return float(observed <= mean)
    skew = (probabilities * (1 - probabilities) * (1 - 2 * probabilities)).sum() / sd ** 3
    z = (observed - 0.5 - mean) / sd
    return float(np.clip(stats.norm.sf(z) - skew * (1 - z * z) * stats.norm.pdf(z) / 6, 0.0, 1.0))


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None, method: str = "exact", estimates: bool = True) -> TestResult:
    """Excess of integer stations over the paper's binomial null (by ``method``, see the module docstring);
    p-value from ``null``. ``draws`` counts resamples with ``method="resample"``. ``estimates`` False: without the
    paper's null's figures (excess, mean, SD, top regions; under a simulated null the paper's null is then not
    computed, its p-value not reading it), for sizes and powers."""
    check_null(null)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    observed = textbook_statistic(e)
    paper = paper_null(e, method, draws, rng) if estimates or null == "textbook" else None
    statistic_value = observed if null == "textbook" else statistic(e)
    p_value, reference = null_for(null, lambda: paper.law, null_statistics).p_value(statistic_value, ALTERNATIVE)
    return TestResult(
        test=ID, statistic=statistic_value, reference=reference, p_value=p_value, null=null, verdict=verdict(p_value),
        extra=_estimates(e, observed, paper, method, draws) if estimates else {})


class PaperNull(NamedTuple):
    """The paper's binomial null of one election by one ``method``: its law of the integer-station count
    (``law``: the Poisson-binomial, or the resampled counts), each used station's probability of being integer
    (``expected``, shape (used station,)), the count's mean and SD."""

    law: LawNull | DrawnNull
    expected: np.ndarray
    mean: float
    sd: float


def paper_null(e: Election, method: str, draws: int, rng) -> PaperNull:
    """:class:`PaperNull` of ``e`` by ``method`` (``"resample"``: ``draws`` resamples from ``rng``)."""
    if method == "exact":  # computed once per election (both nulls of a calibration read it)
        expected = e.derived("integer_percent.station_probabilities", lambda: station_probabilities(e))
        return PaperNull(LawNull(PoissonBinomialLaw(expected)), expected, float(expected.sum()),
                         float(np.sqrt((expected * (1 - expected)).sum())))
    resampled, expected = binomial_null(e, draws, rng)
    return PaperNull(DrawnNull("textbook", resampled), expected, float(resampled.mean()),
                     float(resampled.std(ddof=1)))


def _estimates(e: Election, observed: float, paper: PaperNull, method: str, draws: int) -> dict:
    """:func:`run`'s ``extra``: the ``observed`` integer-station count's excess over ``paper``'s mean, its mean and
    SD, the stations used, the method, and the regions whose stations are integer most beyond their probability."""
    mask = used(e)
    surplus = np.zeros(e.n)  # observed integer (0/1) minus its null probability
    surplus[mask] = integer_stations(e.registered[mask], e.ballots[mask], e.leader_votes[mask]) - paper.expected
    return {"excess": observed - paper.mean, "null_mean": paper.mean, "null_sd": paper.sd,
            "stations_used": int(mask.sum()), "method": method, "draws": draws if method == "resample" else 0,
            "top_regions": top_regions(e, surplus)}
