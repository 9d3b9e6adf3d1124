"""Spikes of leader share at coarse fractions (after Rozenas 2017, R package ``spikes``).

Coarse fractions: multiples of 1/20 and 1/3, 2/3. A station (>= 100 ballots) is *at a spike* when its leader
share is within ``HALF_WIDTH`` of one; the *control* band is the ring from ``HALF_WIDTH`` to ``3 HALF_WIDTH`` around
each fraction (twice as wide). The spike statistic is (stations at spikes - control / 2) / stations, the spike
mass above a locally smooth density. Small denominators put honest mass on simple fractions too (e.g. 1/2 with an
even ballot count), so the textbook null redraws each station's leader votes binomially at its observed share
(the resampled density of Rozenas), ``draws`` times (only when that null is asked for). ``fraud_share`` =
observed - the redraws' expected spike mass, computed exactly (:func:`expected_spike_mass`): the estimated share
of stations whose results were written to a round fraction.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from simkit.forensics.core import (DrawnNull, Election, TestResult, check_null, drawn_count, null_for, top_regions,
                                  verdict)
from simkit.forensics.integer.exact import log_binomial_pmf, log_factorial_table
from simkit.forensics.nulls.compiled_draws import generator_state
from simkit.forensics.nulls.flat import as_seed_sequence
from simkit.model import samplers

ID = "spikes"
ALTERNATIVE = "greater"  #: the direction in which the statistic is anomalous
MIN_BALLOTS = 100
HALF_WIDTH = 0.002
#: the coarse fractions: multiples of 1 / GRID strictly between 0 and 1, and THIRDS
GRID = 20
THIRDS = (1 / 3, 2 / 3)
FRACTIONS = np.unique(np.concatenate([np.arange(1, GRID) / GRID, THIRDS]))
#: the exact expectation sums each station's binomial over this many standard deviations either side of its mean
#: (the tails beyond carry less than 1e-8)
SDS = 6.0


@numba.njit(inline="always")
def _score(share):
    """+1 at a spike, -1/2 in the control ring, 0 elsewhere: by the distance of ``share`` to the nearest of the
    ``FRACTIONS`` (the nearest multiple of 1 / GRID is one of the two around ``share``, held within 1 ... GRID - 1;
    the same distances as a scan of all of them)."""
    below = min(max(math.floor(share * GRID), 1.0), GRID - 1.0)
    above = min(below + 1.0, GRID - 1.0)
    distance = min(abs(share - below / GRID), abs(share - above / GRID), abs(share - THIRDS[0]),
                   abs(share - THIRDS[1]))
    return 1.0 if distance <= HALF_WIDTH else (-0.5 if distance <= 3 * HALF_WIDTH else 0.0)


@numba.njit(cache=True, nogil=True)
def _scores(share):
    out = np.empty(share.shape[0])
    for station in range(share.shape[0]):
        out[station] = _score(share[station])
    return out


def _station_score(share: np.ndarray) -> np.ndarray:
    """:func:`_score` of each share (shape (station,))."""
    return _scores(np.ascontiguousarray(share, dtype=np.float64))


def used(ballots: np.ndarray) -> np.ndarray:
    """The stations the statistic reads (bool, shape (station,)): ``ballots >= MIN_BALLOTS``."""
    return ballots >= MIN_BALLOTS


def spike_mass(ballots: np.ndarray, leader_votes: np.ndarray) -> float:
    """Spike mass above the smooth density, as a share of the stations used (ballots >= ``MIN_BALLOTS``):
    the statistic, on the data and on every redraw of its null."""
    mask = used(ballots)
    return float(_station_score(leader_votes[mask] / ballots[mask]).mean())


def statistic(e: Election) -> float:
    """:func:`spike_mass` of the election."""
    return spike_mass(e.ballots, e.leader_votes)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _resampled_masses(ballots, share, state_words):
    """Mean :func:`_score` of ``W / ballots``, ``W ~ Bin(ballots, share)`` per station (shape (station,)), on
    each of the draws whose generator states are the rows of ``state_words`` (draw, 4): shape (draw,)."""
    out = np.empty(state_words.shape[0])
    for draw in range(state_words.shape[0]):
        state = (state_words[draw, 0], state_words[draw, 1], state_words[draw, 2], state_words[draw, 3])
        total = 0.0
        for station in range(ballots.shape[0]):
            drawn, state = samplers.binomial_sample(state, ballots[station], share[station])
            total += _score(drawn / ballots[station])
        out[draw] = total / ballots.shape[0]
    return out


def resampled(e: Election, draws: int, rng) -> np.ndarray:
    """:func:`spike_mass` on ``draws`` binomial redraws of the leader's votes at the observed shares, shape
    (draws,): the stations used (ballots >= ``MIN_BALLOTS``) redrawn by the compiled exact binomial sampler
    (:mod:`simkit.model.samplers`), draw ``i`` from the generator of the ``i``-th child of ``rng``'s
    SeedSequence alone (:func:`simkit.forensics.nulls.compiled_draws.generator_state`)."""
    mask = used(e.ballots)
    ballots = np.ascontiguousarray(e.ballots[mask], dtype=np.int64)
    states = np.array([generator_state(s) for s in as_seed_sequence(rng).spawn(draws)], dtype=np.uint64)
    if ballots.size == 0:  # the statistic's mean over no station
        return np.full(draws, np.nan)
    return _resampled_masses(ballots, np.ascontiguousarray(e.leader_share[mask], dtype=np.float64),
                             states.reshape(draws, 4))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _expected_scores(ballots, share, fractions, sds, log_factorials):
    """Sum over stations of E[score(W / ballots)], W ~ Bin(ballots, share): the pmf over the lattice points
    within ``3 HALF_WIDTH`` of a fraction (where the score is not 0) and ``sds`` SDs of the mean."""
    total = 0.0
    for station in range(ballots.shape[0]):
        b, p = ballots[station], share[station]
        if p <= 0.0 or p >= 1.0:  # W is 0 or b
            total += _score(p)
            continue
        log_p, log_q = math.log(p), math.log1p(-p)
        spread = sds * math.sqrt(b * p * (1.0 - p))
        low = max(0, int(math.floor(b * p - spread)) - 1)
        high = min(b, int(math.ceil(b * p + spread)) + 1)
        done = low - 1  # the last w summed: windows of neighbouring fractions may meet
        for fraction in fractions:
            first = max(done + 1, int(math.floor(b * (fraction - 3 * HALF_WIDTH))) - 1)
            last = min(high, int(math.ceil(b * (fraction + 3 * HALF_WIDTH))) + 1)
            for w in range(first, last + 1):
                score = _score(w / b)
                if score != 0.0:
                    total += score * math.exp(log_binomial_pmf(log_factorials, w, b, log_p, log_q))
            done = max(done, last)
    return total


def expected_spike_mass(e: Election) -> float:
    """The mean of :func:`spike_mass` over binomial redraws of the leader's votes at the observed shares (the
    textbook null's centre), exactly: the stations' expected scores, averaged."""
    mask = used(e.ballots)
    ballots = np.ascontiguousarray(e.ballots[mask], dtype=np.int64)
    if ballots.size == 0:
        return float("nan")
    table = log_factorial_table(int(ballots.max()))
    total = _expected_scores(ballots, np.ascontiguousarray(e.leader_share[mask], dtype=np.float64), FRACTIONS,
                             SDS, table)
    return float(total / ballots.size)


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    observed = statistic(e)
    tested = null_for(null, lambda: DrawnNull("textbook", resampled(e, draws, rng)), null_statistics)
    p_value, reference = tested.p_value(observed, ALTERNATIVE)
    mask = used(e.ballots)
    score = np.zeros(e.n)
    score[mask] = _station_score(e.leader_share[mask])
    return TestResult(test=ID, statistic=observed, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={"fraud_share": max(observed - expected_spike_mass(e), 0.0),
                             "stations_used": int(mask.sum()), "top_regions": top_regions(e, score),
                             **drawn_count(tested)})
