"""Manipulation mechanisms: pure functions that rewrite a station's counts, with ground truth.

Every mechanism has the same signature, so the engine can loop over the config's blocks::

    ballots, votes, added_ballots, touched = MECHANISMS[block.kind](
        registered, ballots, votes,
        selected=selected, beneficiary=beneficiary, invalid=invalid, params=block, rng=rng)

Arguments (``S`` is the station shape: ``(station,)``, or ``(replicate, station)`` for a batch)

registered : int array broadcastable to ``S``, voters on the register
ballots    : int64 ``S``, ballots cast
votes      : int64 ``S + (option,)``, ballots counted per option; sums over options to ``ballots``.
             The invalid ballots are the column ``invalid`` (``None`` when the ballot has no such column)
selected   : bool, broadcastable to ``S``: stations the block may touch (regions and the random
             station fraction, chosen by the engine from a separate stream)
beneficiary: int, index of the option that gains
params     : the block's model from :mod:`simkit.config.manipulation` (read by attribute)
rng        : ``numpy.random.Generator``, the block's own child stream

Returns new arrays (inputs are never modified)

ballots       : int64 ``S``
votes         : int64 ``S + (option,)``, summing to ``ballots``
added_ballots : int64 ``S``, the signed change ``ballots_out - ballots_in`` caused by the block: ballots
                that exist only because of it (stuffed, coerced, fabricated). It is negative only where
                :func:`protocol_fabrication` lowers the reported turnout.
touched       : bool ``S``, stations the mechanism acted on (their counts may by chance be unchanged); a
                station with an empty register (closed, or abroad with nobody registered) never is: its counts
                are 0 and stay 0 whatever the block, so it is not marked even when selected

Invariants: counts stay non-negative integers; votes sum to ballots; ballots never exceed the register
(stuffing and coercion add ballots only from non-voters; fabrication clips to the register);
:func:`vote_stealing` and :func:`invalidation` keep every station's total; a block whose rate is 0
returns the inputs unchanged (``touched`` all False) without drawing from ``rng``.

Random draws are made in a fixed order that depends only on the shapes, the parameters and the inputs, so
results are reproducible from the block's stream alone. The binomials of :func:`coerced_turnout` and
:func:`ballot_stuffing` are compiled (the exact samplers of :mod:`simkit.model.samplers`, seeded with four words
of the block's stream) and drawn at the stations they touch only.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Callable

import numba
import numpy as np

from ..errors import InputError
from .rounding import largest_remainder
from .samplers import binomial_sample, inline_jit, multinomial_sample

if TYPE_CHECKING:  # pragma: no cover
    from simkit.config.manipulation import (BallotStuffing, CoercedTurnout, Invalidation, ProtocolFabrication,
                                            VoteStealing)

Result = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# -- shared helpers ------------------------------------------------------------------------------
def _prepare(registered, ballots, votes, selected, beneficiary, invalid):
    """Validate shapes and indices; return int64 copies and broadcast arrays."""
    ballots = np.array(ballots, dtype=np.int64, copy=True)
    votes = np.array(votes, dtype=np.int64, copy=True)
    shape = ballots.shape
    if votes.shape[:-1] != shape:
        raise ValueError(f"votes must have shape ballots.shape + (option,) = {shape} + (K,), got {votes.shape}")
    n_options = votes.shape[-1]
    try:
        registered = np.broadcast_to(np.asarray(registered, dtype=np.int64), shape)
        selected = np.broadcast_to(np.asarray(selected, dtype=bool), shape)
    except ValueError:
        raise ValueError(f"registered {np.shape(registered)} and selected {np.shape(selected)} must broadcast "
                         f"to the station shape {shape}") from None
    if (votes < 0).any() or not np.array_equal(votes.sum(axis=-1), ballots) or (ballots > registered).any():
        raise ValueError("inconsistent counts: votes must be non-negative and sum to ballots, and ballots must not "
                         "exceed registered")
    if not 0 <= beneficiary < n_options:
        raise ValueError(f"beneficiary must be an option index in [0, {n_options}), got {beneficiary}")
    if invalid is not None:
        if not 0 <= invalid < n_options:
            raise ValueError(f"invalid must be None or an option index in [0, {n_options}), got {invalid}")
        if invalid == beneficiary:
            raise ValueError("the beneficiary cannot be the invalid-ballot column")
    return registered, ballots, votes, selected


def _with_voters(stations: np.ndarray, registered) -> np.ndarray:
    """``stations`` (bool ``S``) less those with an empty ``registered`` (int, broadcastable to ``S``): no mechanism
    can act where nobody is registered."""
    return stations & (np.asarray(registered, dtype=np.int64) > 0)


def _mechanism(draw: Callable[..., Result]) -> Callable[..., Result]:
    """The mechanism ``draw`` (the signature of the module docstring) whose ``touched`` leaves out the stations with
    an empty register, whichever stations ``draw`` marks: the one place that rule is applied to ``touched``."""
    @functools.wraps(draw)
    def mechanism(registered, ballots, votes, **arguments) -> Result:
        ballots, votes, added, touched = draw(registered, ballots, votes, **arguments)
        return ballots, votes, added, _with_voters(touched, registered)
    return mechanism


def _unchanged(ballots, votes) -> Result:
    return ballots, votes, np.zeros(ballots.shape, np.int64), np.zeros(ballots.shape, bool)


def _others(n_options: int, beneficiary: int, invalid: int | None = None) -> np.ndarray:
    """(option,) bool: the options other than the beneficiary, and other than the ``invalid`` column when one
    is given (the rival candidates)."""
    mask = np.ones(n_options, bool)
    mask[beneficiary] = False
    if invalid is not None:
        mask[invalid] = False
    return mask


def _compiled_draws(draws: Callable, rng: np.random.Generator, registered, ballots, votes,
                    *parameters) -> tuple[np.ndarray, np.ndarray]:
    """Run the compiled station loop ``draws`` (:func:`_stuffing_draws`, :func:`_coercion_draws`) over the
    stations flattened in C order, seeded with four words taken from ``rng``: ``draws(state_words, registered,
    ballots, votes, *parameters, added, new_votes)``. ``registered`` broadcast to ``S``,
    ``ballots`` int64 ``S`` and ``votes`` int64 ``S + (option,)`` as :func:`_prepare` returns them; per-station
    ``parameters`` already flat. Returns ``added`` int64 ``S`` and ``new_votes`` int64 ``S + (option,)``."""
    n_options = votes.shape[-1]
    flat_registered = np.ascontiguousarray(registered).reshape(-1)
    added = np.empty(flat_registered.shape, np.int64)
    new_votes = np.empty((added.shape[0], n_options), np.int64)
    draws(rng.integers(2**64, size=4, dtype=np.uint64), flat_registered, ballots.reshape(-1),
          votes.reshape(-1, n_options), *parameters, added, new_votes)
    return added.reshape(ballots.shape), new_votes.reshape(votes.shape)


@inline_jit
def _move_binomial(state, votes, new_votes, sources, probability, target):
    """At one station, move ``Binomial(votes[j], probability)`` ballots of each source option j (``sources``
    (option,) bool), in option order, from ``new_votes[j]`` to ``new_votes[target]`` (``votes``, ``new_votes``
    (option,) int64; ``new_votes`` changed in place). Returns the xoshiro256** ``state`` after the draws."""
    for option in range(votes.shape[0]):
        if sources[option]:
            moved, state = binomial_sample(state, votes[option], probability)
            new_votes[option] -= moved
            new_votes[target] += moved
    return state


def _move_to(votes: np.ndarray, moved: np.ndarray, target: int) -> np.ndarray:
    """votes - moved, with the moved ballots added to option ``target`` (totals kept)."""
    out = votes - moved
    out[..., target] += moved.sum(axis=-1)
    return out


def _move_share(registered, ballots, votes, selected, sources, fraction: float, target: int,
                rng: np.random.Generator) -> Result:
    """At the selected stations, move ``Binomial(votes[j], fraction)`` ballots of each source option j
    (``sources`` (option,) bool) to option ``target``; ballots (and every station's total) unchanged."""
    probability = np.where(selected[..., None] & sources, fraction, 0.0)
    moved = rng.binomial(votes, probability)
    return ballots, _move_to(votes, moved, target), np.zeros(ballots.shape, np.int64), selected


#: rounds of redraws before :func:`_open_unit_draw` gives up. At the largest SD the config allows (10) a draw
#: falls in (0, 1) with probability 0.08, so a station is still outside after 1,000 rounds with probability
#: 0.92**1000 = 5e-37: the cap is reached only by parameters outside the validated ranges
MAX_REDRAW_ROUNDS = 1000


def _open_unit_draw(rng: np.random.Generator, shape, transform, field: str) -> np.ndarray:
    """``transform(z)`` for standard normals z, each redrawn until the value lies in (0, 1); InputError naming
    the config ``field`` (the SD) after :data:`MAX_REDRAW_ROUNDS` rounds of redraws."""
    values = transform(rng.standard_normal(shape))
    outside = (values <= 0) | (values >= 1)
    for _ in range(MAX_REDRAW_ROUNDS):  # loops over rejected draws (about 7 % at theta 0.56), not over stations
        if not outside.any():
            return values
        values[outside] = transform(rng.standard_normal(int(outside.sum())))
        outside = (values <= 0) | (values >= 1)
    if outside.any():
        raise InputError(f"{field}: {int(outside.sum())} stuffing fractions still outside (0, 1) after "
                         f"{MAX_REDRAW_ROUNDS} rounds of redraws; the SD is too large")
    return values


def _round_half_up(values: np.ndarray) -> np.ndarray:
    return np.floor(values + 0.5).astype(np.int64)


# -- mechanisms ------------------------------------------------------------------------------------
@_mechanism
def ballot_stuffing(registered, ballots, votes, *, selected, beneficiary, invalid,
                    params: "BallotStuffing", rng: np.random.Generator) -> Result:
    """Klimek, Yegorov, Hanel & Thurner (2012, PNAS 109:16469): stuffing plus stealing.

    Each selected station independently gets incremental fraud with probability ``f_incremental``,
    extreme fraud with probability ``f_extreme``, otherwise none. Its stuffing fraction is
    ``x = |N(0, theta)|`` (incremental) or ``x = 1 - |N(0, extreme_sd)|`` (extreme), each redrawn until
    it lies in (0, 1). Then, in counts:

    - ``Binomial(registered - ballots, x)`` non-voters are added as ballots for the beneficiary;
    - ``Binomial(votes[j], x ** alpha)`` votes of each other candidate j move to the beneficiary.

    This is the paper's continuous model (winner gains ``x (1 - v) N + x**alpha (1 - nu) v N``) drawn
    voter by voter, so its expectation equals the paper's equations. Invalid ballots are not moved:
    the paper moves votes of the other parties; a spoiled ballot is nobody's vote (use
    :func:`vote_stealing` with ``from_invalid`` for that).

    theta convention: ``theta`` is the standard deviation. The paper writes all its normals as
    N(mean, scale) with the scale a standard deviation (N(tau, sigma_tau), N(nu, sigma_nu)) and the
    extreme fraction as 1 - |N(0, 0.075)|, where 0.075 can only be an SD (as a variance the "extreme"
    stations would average x = 0.78, not near-total stuffing).

    Random draws, for all stations in this order: fraud-type uniforms; incremental then extreme
    fractions (standard normals, with redraws of those falling outside (0, 1)); then, compiled
    (:func:`_stuffing_draws`, from a xoshiro256** state of four words taken from ``rng``), station by
    station at the fraudulent stations only, the stuffed and the stolen binomials. The uniforms and fractions do not depend on the rates or the selection, so a sweep
    over ``f_incremental`` or ``f_extreme`` with the same stream nests the fraudulent stations and keeps
    their stuffing fractions.
    """
    registered, ballots, votes, selected = _prepare(registered, ballots, votes, selected, beneficiary, invalid)
    if params.f_incremental == 0 and params.f_extreme == 0:
        return _unchanged(ballots, votes)
    shape = ballots.shape
    kind_draw = rng.random(shape)
    incremental = selected & (kind_draw < params.f_incremental)
    extreme = selected & (kind_draw >= 1.0 - params.f_extreme) & ~incremental  # disjoint as f_i + f_e <= 1
    touched = incremental | extreme
    # Both candidate fractions are drawn for every station, so the stream does not depend on the rates or
    # on the selection: with one stream, raising f_incremental adds incremental stations and leaves the
    # extreme ones and every station's x as they were (and likewise for f_extreme).
    where = f"manipulation.{params.name}"
    incremental_fraction = _open_unit_draw(rng, shape, lambda z: np.abs(params.theta * z), f"{where}.theta")
    extreme_fraction = _open_unit_draw(rng, shape, lambda z: 1.0 - np.abs(params.extreme_sd * z),
                                       f"{where}.extreme_sd")
    stuffed_fraction = np.where(incremental, incremental_fraction, np.where(extreme, extreme_fraction, 0.0))

    stuffed, new_votes = _compiled_draws(_stuffing_draws, rng, registered, ballots, votes,
                                         stuffed_fraction.reshape(-1), float(params.alpha),
                                         _others(votes.shape[-1], beneficiary, invalid), beneficiary)
    return ballots + stuffed, new_votes, stuffed, touched


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _stuffing_draws(state_words, registered, ballots, votes, fraction, alpha, rivals, beneficiary, stuffed,
                    new_votes):
    """The binomial draws of :func:`ballot_stuffing` over flat stations, those with a stuffing ``fraction`` x > 0
    only, in station order: ``stuffed ~ Binomial(registered - ballots, x)`` ballots for the ``beneficiary``,
    then ``Binomial(votes[j], x ** alpha)`` votes of each rival j (``rivals`` (option,) bool) moved to it.
    ``registered``, ``ballots`` (station,) int64, ``votes`` (station, option) int64, ``fraction`` (station,)
    float64; writes ``stuffed`` (station,) and ``new_votes`` (station, option) int64; ``state_words`` (4,)
    uint64 seeds xoshiro256**."""
    state = (state_words[0], state_words[1], state_words[2], state_words[3])
    for station in range(votes.shape[0]):
        new_votes[station] = votes[station]
        stuffed[station] = 0
        if fraction[station] <= 0.0:
            continue
        added, state = binomial_sample(state, registered[station] - ballots[station], fraction[station])
        stuffed[station] = added
        new_votes[station, beneficiary] += added
        state = _move_binomial(state, votes[station], new_votes[station], rivals, fraction[station] ** alpha,
                               beneficiary)


@_mechanism
def vote_stealing(registered, ballots, votes, *, selected, beneficiary, invalid,
                  params: "VoteStealing", rng: np.random.Generator) -> Result:
    """Move ``Binomial(votes[j], fraction)`` ballots of each source option j to the beneficiary.

    Sources are the candidates other than the beneficiary (invalid column excluded) or, with
    ``from_invalid``, the invalid column only. Ballots are unchanged; every station keeps its total.
    """
    registered, ballots, votes, selected = _prepare(registered, ballots, votes, selected, beneficiary, invalid)
    if params.from_invalid and invalid is None:
        raise ValueError("vote_stealing.from_invalid needs an invalid-ballot column, but the ballot has none")
    if params.fraction == 0:
        return _unchanged(ballots, votes)
    sources = (np.arange(votes.shape[-1]) == invalid if params.from_invalid
               else _others(votes.shape[-1], beneficiary, invalid))
    return _move_share(registered, ballots, votes, selected, sources, params.fraction, beneficiary, rng)


@_mechanism
def invalidation(registered, ballots, votes, *, selected, beneficiary, invalid,
                 params: "Invalidation", rng: np.random.Generator) -> Result:
    """Declare ``Binomial(votes[j], fraction)`` ballots of each candidate j other than the beneficiary
    invalid (moved into the invalid column). Ballots are unchanged."""
    registered, ballots, votes, selected = _prepare(registered, ballots, votes, selected, beneficiary, invalid)
    if invalid is None:
        raise ValueError("invalidation needs an invalid-ballot column, but the ballot has none")
    if params.fraction == 0:
        return _unchanged(ballots, votes)
    rivals = _others(votes.shape[-1], beneficiary, invalid)
    return _move_share(registered, ballots, votes, selected, rivals, params.fraction, invalid, rng)


@_mechanism
def coerced_turnout(registered, ballots, votes, *, selected, beneficiary, invalid,
                    params: "CoercedTurnout", rng: np.random.Generator) -> Result:
    """Coercion of a share of the register (employer pressure), voter by voter.

    Each registered voter of a selected station is coerced independently with probability ``share``,
    independently of whether and how they would have voted. Then

    - coerced non-voters turn out with probability ``compliance``: ``added ~ Binomial(registered -
      ballots, share * compliance)`` new ballots (``added_ballots``);
    - each added voter votes for the beneficiary with probability ``loyalty``; the others vote as the
      station's honest voters did: ``Multinomial(added - loyal, votes / ballots)`` (invalid included);
      at a station with no honest ballots they vote for the beneficiary;
    - each coerced voter who would have voted anyway votes for the beneficiary with probability
      ``loyalty`` instead of their honest choice: ``Binomial(votes[j], share * loyalty)`` ballots of every
      other option j, the invalid column included, move to the beneficiary.

    Turnout and the beneficiary's share both rise; ballots never exceed the register.

    The draws are compiled (:func:`_coercion_draws`, the exact samplers of :mod:`simkit.model.samplers`),
    station by station in the stations' (C) order, selected stations only, from a xoshiro256** state of four
    words taken from ``rng``.
    """
    registered, ballots, votes, selected = _prepare(registered, ballots, votes, selected, beneficiary, invalid)
    if params.share == 0:
        return _unchanged(ballots, votes)
    added, new_votes = _compiled_draws(_coercion_draws, rng, registered, ballots, votes,
                                       np.ascontiguousarray(selected).reshape(-1), beneficiary,
                                       params.share * params.compliance, params.loyalty,
                                       params.share * params.loyalty, _others(votes.shape[-1], beneficiary))
    return ballots + added, new_votes, added, selected


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _coercion_draws(state_words, registered, ballots, votes, selected, beneficiary, turnout_probability, loyalty,
                    switch_probability, switchers, added, new_votes):
    """The draws of :func:`coerced_turnout` over flat stations: ``registered``, ``ballots`` (station,) int64,
    ``votes`` (station, option) int64, ``selected`` (station,) bool; probabilities ``turnout_probability``
    (share × compliance, of a non-voter turning out), ``loyalty`` (of an added voter choosing the beneficiary)
    and ``switch_probability`` (share × loyalty, of an honest voter of a ``switchers`` option ((option,) bool:
    every option but the beneficiary, invalid included) switching to it). Writes ``added``
    (station,) int64 new ballots and ``new_votes`` (station, option) int64; ``state_words`` (4,) uint64 seeds
    xoshiro256**."""
    state = (state_words[0], state_words[1], state_words[2], state_words[3])
    n_stations, n_options = votes.shape
    weights = np.empty(n_options)
    free_votes = np.empty(n_options, np.int64)
    for station in range(n_stations):
        new_votes[station] = votes[station]
        added[station] = 0
        if not selected[station]:
            continue
        extra, state = binomial_sample(state, registered[station] - ballots[station], turnout_probability)
        loyal, state = binomial_sample(state, extra, loyalty)
        free = extra - loyal
        if free > 0 and ballots[station] > 0:  # as the station's honest voters did
            for option in range(n_options):
                weights[option] = votes[station, option]
            state = multinomial_sample(state, free, weights, float(ballots[station]), free_votes)
            for option in range(n_options):
                new_votes[station, option] += free_votes[option]
        else:
            new_votes[station, beneficiary] += free
        new_votes[station, beneficiary] += loyal
        state = _move_binomial(state, votes[station], new_votes[station], switchers, switch_probability,
                               beneficiary)
        added[station] = extra


@_mechanism
def protocol_fabrication(registered, ballots, votes, *, selected, beneficiary, invalid,
                         params: "ProtocolFabrication", rng: np.random.Generator) -> Result:
    """Rewrite the protocol of every selected station (deterministic: ``rng`` is not used).

    1. Ballots: ``round(target_turnout * registered)``, or with rounding of turnout
       ``round(P * registered / 100)`` where P is the whole percent nearest to the honest turnout;
       otherwise unchanged. Ballots may go down as well as up (``added_ballots`` is the signed change)
       and never exceed the register.
    2. Beneficiary: ``round(target_share * ballots')``, or with rounding of the share
       ``round(P * ballots' / 100)`` where P is the whole percent nearest to its honest share of the
       ballots; otherwise its honest share of the new ballots.
    3. The remaining ballots go to the other options (invalid included) in proportion to their honest
       counts, by largest remainders; when they had none, in equal parts.

    Rounding is "to the nearest whole percent reachable with integer counts": the closest integer count
    to P percent. At a station of n voters the reported percent is then within 50 / n points of P; it is
    a whole percent (to a tolerance t) only when some count lies within t * n / 100 of P * n / 100,
    which small stations often miss. Stations with an empty register are left alone; a station with
    no honest ballots given new ballots reports them for the beneficiary.
    """
    registered, ballots, votes, selected = _prepare(registered, ballots, votes, selected, beneficiary, invalid)
    active = _with_voters(selected, registered)
    if not active.any():
        return _unchanged(ballots, votes)
    safe_registered = np.maximum(registered, 1)
    safe_ballots = np.maximum(ballots, 1)

    if params.target_turnout is not None:
        new_ballots = _round_half_up(params.target_turnout * registered)
    elif params.rounds_turnout:
        percent = _round_half_up(100.0 * ballots / safe_registered)
        new_ballots = _round_half_up(percent * registered / 100.0)
    else:
        new_ballots = ballots
    new_ballots = np.where(active, np.clip(new_ballots, 0, registered), ballots)

    honest_share = np.where(ballots > 0, votes[..., beneficiary] / safe_ballots, 1.0)
    if params.target_share is not None:
        target_percent = np.full(ballots.shape, 100.0 * params.target_share)
    elif params.rounds_share:
        target_percent = _round_half_up(100.0 * honest_share)
    else:
        target_percent = None
    n_options = votes.shape[-1]
    others = np.arange(n_options) != beneficiary
    if target_percent is None:  # beneficiary keeps its share: scale every option together
        weights = np.where(ballots[..., None] > 0, votes, np.where(others, 0, 1)).astype(float)
        new_votes = largest_remainder(new_ballots, weights)
    else:
        new_beneficiary = np.clip(_round_half_up(target_percent * new_ballots / 100.0), 0, new_ballots)
        other_votes = np.where(others, votes, 0)
        weights = np.where(other_votes.sum(axis=-1, keepdims=True) > 0, other_votes, others).astype(float)
        new_votes = largest_remainder(new_ballots - new_beneficiary, weights)
        new_votes[..., beneficiary] = new_beneficiary
    new_votes = np.where(active[..., None], new_votes, votes)
    return new_ballots, new_votes, (new_ballots - ballots).astype(np.int64), active


#: kind -> mechanism; the engine calls ``MECHANISMS[block.kind](...)``
MECHANISMS: dict[str, Callable[..., Result]] = {
    "ballot_stuffing": ballot_stuffing,
    "vote_stealing": vote_stealing,
    "coerced_turnout": coerced_turnout,
    "protocol_fabrication": protocol_fabrication,
    "invalidation": invalidation,
}
