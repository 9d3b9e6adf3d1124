"""Fused compiled kernel for the honest draw of one replicate (``kernel = "numba"``).

The numpy path (:func:`simkit.engine.run.honest_replicate` with ``simkit.model``) draws each quantity as a
whole-array numpy call; most of its time goes to numpy's binomial sampler (BTPE, whose set-up is redone for
every conditional binomial of the multinomial split) and its gamma sampler. :func:`honest_stations` draws the
same model station by station in one compiled loop, with samplers chosen for this workload:

- random bits from xoshiro256** (Blackman & Vigna 2021; uniforms from the top 53 bits), one generator per
  component and station group, seeded from
  ``SeedSequence(seed, spawn_key=(replicate, 0, streams.FAST_KERNEL))``
  (:func:`replicate_states`): keyed by logical position like every other stream of simkit;
- standard normals by the ziggurat method (Marsaglia & Tsang 2000, 128 layers);
- standard gamma variates by Marsaglia & Tsang (2000), with ``G(a) = G(a + 1) × U^(1/a)`` below a = 1;
- binomial counts by inversion when ``n × min(p, 1 − p) < 10`` and otherwise by Hörmann's (1993)
  transformed rejection with squeeze (BTRS), the sampler of TensorFlow and JAX.

All four are exact samplers (no approximation beyond floating point), so the kernel draws from the same
distribution as the numpy path, though not the same numbers: bit-identity is promised per kernel (the same
seed, any block size or worker count, gives the same result) and identity in distribution between kernels,
tested with fixed seeds in ``tests/test_kernels.py``.

What it draws (for ``turnout.model = "logit_normal"`` and ``preferences.model = "dirichlet"`` with
``rho = 0``; :func:`supports` says when it applies):

- turnout share ``expit(turnout_location + turnout_dispersion × z)``, z ~ N(0, 1) (turnout stream);
- ballot probabilities ~ Dirichlet(``concentration × composition[region]``) as normalised standard-gamma
  variates (preferences stream; all-zero gammas, possible only for tiny concentrations, fall back to the
  regional composition, as in the numpy path);
- ``ballots ~ Binomial(registered, turnout)``, then ``votes ~ Multinomial(ballots, probabilities)`` as
  sequential conditional binomials (counts stream), so votes sum to ballots exactly.

The engine's default stays the numpy path (``kernel = "numpy"``), so that results keep their numbers whatever
the kernel's samplers become; the forensic nulls draw with these samplers (:mod:`simkit.forensics.nulls.compiled_draws`).
"""
from __future__ import annotations

import math

import numpy as np

from simkit import streams
from simkit.engine.samplers import (binomial_sample, gamma_constants as _gamma_constants, gamma_sample as _gamma,
                                    log_factorial_table, normal_sample)

import numba

#: kernel names accepted by the engine's ``kernel`` setting
KERNELS = ("numpy", "numba")

#: rows of one group's states (:func:`replicate_states`): one xoshiro256** state per model component
TURNOUT_STATE, PREFERENCES_STATE, COUNTS_STATE = 0, 1, 2


def supports(turnout_model: str, preference_model: str, rho: float) -> bool:
    """Whether :func:`honest_stations` implements this model combination (else use the numpy path)."""
    return turnout_model == "logit_normal" and preference_model == "dirichlet" and rho == 0.0


def replicate_states(seed: int, replicate: int, n_groups: int) -> np.ndarray:
    """The kernel's generator states for every station group of one replicate: (group, 3, 4) uint64, rows
    turnout / preferences / counts, drawn as one block from
    ``SeedSequence(seed, spawn_key=(replicate, 0, streams.FAST_KERNEL))`` (group g's states are words
    12 g … 12 g + 11 of it, so they do not depend on how replicates are blocked)."""
    return np.random.SeedSequence(seed, spawn_key=(replicate, 0, streams.FAST_KERNEL)).generate_state(
        12 * n_groups, np.uint64).reshape(n_groups, 3, 4)


def _honest_stations_impl(registered, turnout_location, turnout_dispersion, concentration, composition,
                          region_index, states, group_size, log_factorials, ballots, votes):
    n_stations = registered.shape[0]
    n_regions, n_options = composition.shape
    gamma_constants = _gamma_constants((concentration * composition).ravel()).reshape(n_regions, n_options, 3)
    weights = np.empty(n_options)
    for group in range(states.shape[0]):
        turnout_state = (states[group, TURNOUT_STATE, 0], states[group, TURNOUT_STATE, 1],
                         states[group, TURNOUT_STATE, 2], states[group, TURNOUT_STATE, 3])
        preferences_state = (states[group, PREFERENCES_STATE, 0], states[group, PREFERENCES_STATE, 1],
                             states[group, PREFERENCES_STATE, 2], states[group, PREFERENCES_STATE, 3])
        counts_state = (states[group, COUNTS_STATE, 0], states[group, COUNTS_STATE, 1],
                        states[group, COUNTS_STATE, 2], states[group, COUNTS_STATE, 3])
        for station in range(group * group_size, min((group + 1) * group_size, n_stations)):
            latent, turnout_state = normal_sample(turnout_state)
            turnout = 1.0 / (1.0 + math.exp(-(turnout_location[station] + turnout_dispersion * latent)))
            cast, counts_state = binomial_sample(counts_state, registered[station], turnout, log_factorials)
            ballots[station] = cast
            region = region_index[station]
            total = 0.0
            for option in range(n_options):
                weight, preferences_state = _gamma(preferences_state, gamma_constants[region, option, 0],
                                                   gamma_constants[region, option, 1], gamma_constants[region, option, 2])
                weights[option] = weight
                total += weight
            if total <= 0.0:  # every gamma underflowed to 0: the regional composition (as the numpy path)
                for option in range(n_options):
                    weights[option] = composition[region, option]
                    total += weights[option]
            remaining_ballots = cast
            remaining_weight = total
            for option in range(n_options - 1):
                share = weights[option] / remaining_weight if remaining_weight > 0.0 else 1.0
                drawn, counts_state = binomial_sample(counts_state, remaining_ballots, share, log_factorials)
                votes[station, option] = drawn
                remaining_ballots -= drawn
                remaining_weight -= weights[option]
            votes[station, n_options - 1] = remaining_ballots


_honest_stations_jit = numba.njit(nogil=True, cache=True, error_model="numpy")(_honest_stations_impl)


def _sampler_draws_impl(state_words, n_draws, kind, parameter, trials, log_factorials):
    state = (state_words[0], state_words[1], state_words[2], state_words[3])
    out = np.empty(n_draws)
    if kind == 0:
        for index in range(n_draws):
            out[index], state = normal_sample(state)
    elif kind == 1:
        constants = _gamma_constants(np.array([parameter]))
        for index in range(n_draws):
            out[index], state = _gamma(state, constants[0, 0], constants[0, 1], constants[0, 2])
    else:
        for index in range(n_draws):
            drawn, state = binomial_sample(state, trials, parameter, log_factorials)
            out[index] = drawn
    return out


_sampler_draws_jit = numba.njit(cache=True, error_model="numpy")(_sampler_draws_impl)

#: samplers :func:`sampler_draws` exposes
SAMPLERS = ("normal", "gamma", "binomial")


def sampler_draws(state: np.ndarray, n_draws: int, sampler: str, parameter: float = 0.0,
                  trials: int = 0) -> np.ndarray:
    """``n_draws`` (float64) from one of the kernel's samplers, for tests of their distributions:
    ``"normal"`` (standard), ``"gamma"`` (shape ``parameter``) or ``"binomial"`` (``trials``, probability
    ``parameter``), from the xoshiro256** ``state`` (4,) uint64 (e.g. ``replicate_states(...)[0, 0]``)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    return _sampler_draws_jit(np.asarray(state, dtype=np.uint64), int(n_draws), SAMPLERS.index(sampler),
                              float(parameter), int(trials), log_factorial_table(int(trials)))


def honest_stations(registered: np.ndarray, turnout_location: np.ndarray, turnout_dispersion: float,
                    concentration: float, composition: np.ndarray, region_index: np.ndarray,
                    states: np.ndarray, ballots: np.ndarray | None = None,
                    votes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one replicate's honest election at every station; returns ``(ballots, votes)``.

    Parameters (``station`` = all stations, ``option`` = ballot options incl. ``invalid``):

    - ``registered`` (station,) int64 voters on the register;
    - ``turnout_location`` (station,) float64 logit-scale location of each station's turnout
      (``Plan.turnout_location``); ``turnout_dispersion`` its SD on the logit scale;
    - ``concentration`` the Dirichlet concentration κ (``preferences.dispersion``); ``composition``
      (region, option) float64 mean ballot probabilities per region for this replicate
      (``PreferencePlan.regional_composition(region_shift)``, rows summing to 1); ``region_index``
      (station,) int64 rows of ``composition``: the Dirichlet parameters are κ × ``composition[region]``;
    - ``states`` (group, 3, 4) uint64 generator states (:func:`replicate_states`; read, not modified):
      station group g (stations ``g × STATION_GROUP_SIZE`` onwards, :func:`simkit.streams.station_groups`)
      draws from ``states[g]`` alone, so a group's numbers do not depend on the others;
    - ``ballots`` (station,) int64 and ``votes`` (station, option) int64 C-contiguous output arrays,
      allocated when omitted.

    Returns ``ballots`` (station,) ballots cast and ``votes`` (station, option) counts, rows summing to
    ``ballots``; both int64 counts.
    """
    registered = np.ascontiguousarray(registered, dtype=np.int64)
    turnout_location = np.ascontiguousarray(turnout_location, dtype=np.float64)
    composition = np.ascontiguousarray(composition, dtype=np.float64)
    region_index = np.ascontiguousarray(region_index, dtype=np.int64)
    n_stations, n_options = registered.shape[0], composition.shape[1]
    n_groups = len(streams.station_groups(n_stations))
    if turnout_location.shape != (n_stations,) or region_index.shape != (n_stations,):
        raise ValueError(f"turnout_location and region_index must have shape (station,) = ({n_stations},), "
                         f"got {turnout_location.shape} and {region_index.shape}")
    if states.shape != (n_groups, 3, 4) or states.dtype != np.uint64 or not states.flags.c_contiguous:
        raise ValueError(f"states must be a C-contiguous ({n_groups}, 3, 4) uint64 array (replicate_states), "
                         f"got {states.dtype} {states.shape}")
    if ballots is None:
        ballots = np.empty(n_stations, dtype=np.int64)
    if votes is None:
        votes = np.empty((n_stations, n_options), dtype=np.int64)
    for name, array, shape in (("ballots", ballots, (n_stations,)), ("votes", votes, (n_stations, n_options))):
        if array.shape != shape or array.dtype != np.int64 or not array.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous int64 array of shape {shape}, "
                             f"got {array.dtype} {array.shape}")
    _honest_stations_jit(registered, turnout_location, float(turnout_dispersion), float(concentration),
                         composition, region_index, states, streams.STATION_GROUP_SIZE,
                         log_factorial_table(int(registered.max(initial=0))), ballots, votes)
    return ballots, votes


def warm_up() -> None:
    """Compile the kernel (or load it from numba's on-disk cache) on a one-station election, so that the
    first real call is not timed with the compilation (benchmarks call this first)."""
    honest_stations(np.array([10]), np.zeros(1), 0.5, 10.0, np.full((1, 2), 0.5), np.zeros(1, np.int64),
                    replicate_states(0, 0, 1))
