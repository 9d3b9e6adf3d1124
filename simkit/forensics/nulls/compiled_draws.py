"""Compiled random draws of the forensic nulls: one honest election per call, and the integer statistic's
binomial resamples.

A simulated null draws ~1,000 honest elections of ~100,000 stations; with numpy most of that time went to
``Generator.binomial`` (its set-up is redone for every station's own probability: about 80 ns a draw, ten
draws per station). These loops use the exact samplers of :mod:`simkit.model.samplers` instead (xoshiro256**
bits, ziggurat normals, binomials by inversion or BTRS), station by station, from one generator per call
whose state is four words of a ``numpy.random.SeedSequence`` (:func:`generator_state`), so a call's
numbers depend on its seed alone.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from simkit.model import samplers
from simkit.forensics.integer import exact as integer_exact


def generator_state(seed: np.random.SeedSequence) -> np.ndarray:
    """The xoshiro256** state (4,) uint64 of one call, from its SeedSequence."""
    return seed.generate_state(4, np.uint64)


@numba.njit(inline="always", error_model="numpy")
def _station_counts(state, station, registered, turnout, share, other_proportions, leader, ballots,
                    votes):
    """Exact counts of one station at latent ``turnout`` and ``share``: ballots, the leader's votes, and the
    other options multinomially (as a chain of binomials) at the station's ``other_proportions``; returns the
    generator state."""
    cast, state = samplers.binomial_sample(state, registered[station], turnout)
    ballots[station] = cast
    return _vote_counts(state, station, cast, share, other_proportions, leader, votes)


@numba.njit(inline="always", error_model="numpy")
def _vote_counts(state, station, cast, share, other_proportions, leader, votes):
    """The votes of one station with ``cast`` ballots at latent leader ``share``: the leader's ``~ Bin(cast,
    share)``, the other options multinomially (a chain of binomials) at the station's ``other_proportions``;
    returns the generator state."""
    n_others = other_proportions.shape[1]
    drawn, state = samplers.binomial_sample(state, cast, share)
    votes[station, leader] = drawn
    remaining = cast - drawn
    mass_left = 1.0
    column = 0
    for other in range(n_others):
        if column == leader:
            column += 1
        if other == n_others - 1:
            votes[station, column] = remaining
            break
        p = other_proportions[station, other] / mass_left if mass_left > 1e-12 else 1.0
        drawn, state = samplers.binomial_sample(state, remaining, min(max(p, 0.0), 1.0))
        votes[station, column] = drawn
        remaining -= drawn
        mass_left -= other_proportions[station, other]
        column += 1
    return state


@numba.njit(inline="always")
def _expit(x):
    return 1.0 / (1.0 + math.exp(-x))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _honest_counts(registered, turnout_center, share_center, turnout_scale, share_scale, correlation,
                   other_proportions, leader, state_words, ballots, votes):
    state = (state_words[0], state_words[1], state_words[2], state_words[3])
    independent = math.sqrt(1.0 - correlation * correlation)
    for station in range(registered.shape[0]):
        z1, state = samplers.normal_sample(state)
        z2, state = samplers.normal_sample(state)
        turnout = _expit(turnout_center[station] + turnout_scale * z1)
        share = _expit(share_center[station] + share_scale * (correlation * z1 + independent * z2))
        state = _station_counts(state, station, registered, turnout, share, other_proportions, leader,
                                ballots, votes)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _resampled_counts(registered, turnout_center, share_center, slope, station_pool, pool_offsets, pool_turnout,
                      pool_share, other_proportions, leader, state_words, ballots, votes):
    state = (state_words[0], state_words[1], state_words[2], state_words[3])
    for station in range(registered.shape[0]):
        pool = station_pool[station]
        start, size = pool_offsets[pool], pool_offsets[pool + 1] - pool_offsets[pool]
        u, state = samplers.uniform_sample(state)
        pick = start + min(int(u * size), size - 1)
        residual_t = pool_turnout[pick]
        turnout = _expit(turnout_center[station] + residual_t)
        share = _expit(share_center[station] + slope[station] * residual_t + pool_share[pick])
        state = _station_counts(state, station, registered, turnout, share, other_proportions, leader,
                                ballots, votes)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _conditional_votes(ballots, share_center, window_start, window_size, skip, donor_share, state_words, votes):
    state = (state_words[0], state_words[1], state_words[2], state_words[3])
    for station in range(ballots.shape[0]):
        u, state = samplers.uniform_sample(state)
        size = window_size[station]
        pick = window_start[station] + min(int(u * size), size - 1)
        if 0 <= skip[station] <= pick:
            pick += 1
        share = _expit(share_center[station] + donor_share[pick])
        drawn, state = samplers.binomial_sample(state, ballots[station], share)
        votes[station, 0] = drawn
        votes[station, 1] = ballots[station] - drawn


def conditional_counts(ballots: np.ndarray, share_center: np.ndarray, window_start: np.ndarray,
                       window_size: np.ndarray, skip: np.ndarray, donor_share: np.ndarray,
                       seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """One honest election of the turnout-conditional model (:mod:`simkit.forensics.nulls.conditional`):
    ``ballots`` (station,), the observed ones unchanged, and ``votes`` (station, 2) int64: the leader's, and
    every other option's together (``ballots`` minus the leader's; the tests of this model read the leader's
    votes alone, so the other options are not drawn apart).

    Station ``s`` draws one residual uniformly among ``window_size[s]`` entries of ``donor_share`` (logit
    scale) from ``window_start[s]`` on, passing over entry ``skip[s]`` (-1: none); latent ``logit v =
    share_center[s] + residual``; the leader's votes ``~ Bin(ballots[s], v)``.
    """
    cast = np.ascontiguousarray(ballots, dtype=np.int64)
    votes = np.empty((cast.shape[0], 2), dtype=np.int64)
    as_int = [np.ascontiguousarray(a, dtype=np.int64) for a in (window_start, window_size, skip)]
    _conditional_votes(cast, np.ascontiguousarray(share_center, dtype=np.float64), *as_int,
                       np.ascontiguousarray(donor_share, dtype=np.float64), generator_state(seed), votes)
    return cast, votes  # the observed ballots: an Election holds them read-only, so no copy per draw


def _empty_counts(registered: np.ndarray, proportions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = registered.shape[0]
    return np.empty(n, dtype=np.int64), np.empty((n, proportions.shape[1] + 1), dtype=np.int64)


def resampled_counts(registered: np.ndarray, turnout_center: np.ndarray, share_center: np.ndarray,
                     slope: np.ndarray, station_pool: np.ndarray, pool_offsets: np.ndarray,
                     pool_turnout: np.ndarray, pool_share: np.ndarray, other_proportions: np.ndarray, leader: int,
                     seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """One honest election of the hierarchical model (:mod:`simkit.forensics.nulls.hierarchical`): ``ballots``
    (station,) and ``votes`` (station, option) int64.

    Station ``s`` draws one residual pair uniformly from its pool ``station_pool[s]`` (pool ``p`` holds
    ``pool_turnout``/``pool_share[pool_offsets[p]:pool_offsets[p + 1]]``); latent ``logit t = turnout_center[s]
    + e_t`` and ``logit v = share_center[s] + slope[s] e_t + e_v``; counts as in :func:`honest_counts`.
    """
    registered = np.ascontiguousarray(registered, dtype=np.int64)
    proportions = np.ascontiguousarray(other_proportions, dtype=np.float64)
    ballots, votes = _empty_counts(registered, proportions)
    as_float = [np.ascontiguousarray(a, dtype=np.float64) for a in (turnout_center, share_center, slope)]
    _resampled_counts(registered, *as_float, np.ascontiguousarray(station_pool, dtype=np.int64),
                      np.ascontiguousarray(pool_offsets, dtype=np.int64),
                      np.ascontiguousarray(pool_turnout, dtype=np.float64),
                      np.ascontiguousarray(pool_share, dtype=np.float64), proportions, int(leader),
                      generator_state(seed), ballots, votes)
    return ballots, votes


def honest_counts(registered: np.ndarray, turnout_center: np.ndarray, share_center: np.ndarray,
                  turnout_scale: float, share_scale: float, correlation: float, other_proportions: np.ndarray,
                  leader: int, seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """One honest election: ``ballots`` (station,) and ``votes`` (station, option) int64, rows summing to
    ballots.

    ``registered`` (station,) voters; ``turnout_center``, ``share_center`` (station,) logit-scale centres;
    latent ``logit t = turnout_center + turnout_scale z1``, ``logit v = share_center + share_scale z2`` with
    ``corr(z1, z2) = correlation``; ``ballots ~ Bin(registered, t)``, the leader's votes (column ``leader``)
    ``~ Bin(ballots, v)``, and the other options (the remaining columns in order) share the rest multinomially
    at ``other_proportions`` (station, option - 1), rows summing to 1.
    """
    registered = np.ascontiguousarray(registered, dtype=np.int64)
    proportions = np.ascontiguousarray(other_proportions, dtype=np.float64)
    ballots, votes = _empty_counts(registered, proportions)
    _honest_counts(registered, np.ascontiguousarray(turnout_center, dtype=np.float64),
                   np.ascontiguousarray(share_center, dtype=np.float64), float(turnout_scale), float(share_scale),
                   float(correlation), proportions, int(leader), generator_state(seed), ballots, votes)
    return ballots, votes


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _integer_resample_counts(registered, turnout, share, resamples, window, state_words):
    state = (state_words[0], state_words[1], state_words[2], state_words[3])
    counts = np.zeros(resamples, dtype=np.int64)
    for draw in range(resamples):
        for station in range(registered.shape[0]):
            cast, state = samplers.binomial_sample(state, registered[station], turnout[station])
            leader, state = samplers.binomial_sample(state, cast, share[station])
            if (integer_exact._is_integer_percent(cast, registered[station], window)
                    or integer_exact._is_integer_percent(leader, cast, window)):
                counts[draw] += 1
    return counts


def integer_resample_counts(registered: np.ndarray, turnout: np.ndarray, share: np.ndarray, resamples: int,
                            window: float, seed: np.random.SeedSequence) -> np.ndarray:
    """Integer-station counts (shape (resamples,)) of the paper's binomial resampling: ``ballots ~
    Bin(registered, turnout)``, ``leader ~ Bin(ballots, share)`` per station (arrays of shape (station,)),
    a station counting when its turnout or leader share is within ``window`` points of a whole percent."""
    registered = np.ascontiguousarray(registered, dtype=np.int64)
    return _integer_resample_counts(registered, np.ascontiguousarray(turnout, dtype=np.float64),
                                    np.ascontiguousarray(share, dtype=np.float64), int(resamples), float(window),
                                    generator_state(seed))
