"""The compiled kernel for the honest draw of one replicate (``kernel = "numba"``, the engine's default).

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
- binomial counts by inversion (steps multiplying by tabulated reciprocals) when ``n × min(p, 1 − p) < 10``
  and otherwise by Hörmann's (1993) transformed rejection with squeeze (BTRS), the sampler of TensorFlow and JAX;
  its log-factorials read (by the sampler itself) from :data:`~simkit.model.samplers.CONSTANT_LOG_FACTORIALS`,
  compiled in as a constant (an array argument would cost an atomic reference count at every inlined binomial),
  ``lgamma`` beyond it;
- (the poll sampler, :mod:`simkit.polls.compiled_draws`, adds hypergeometric counts by inversion searched
  outward from the mode).

All are exact samplers (no approximation beyond floating point), so the kernel draws from the same
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

Each stream draws its stations in order, one after the other; :func:`honest_stations` draws a station's turnout
share and gammas while the station before it splits its ballots (the gammas between the split's conditional
binomials), so that the processor overlaps the split's chain of dependent binomials with draws that do not depend on
it: the same numbers as drawing station by station, faster (measured in ``docs/performance.md``).

For every other model (truncated-normal or beta turnout, logistic-normal or truncated-normal preferences,
any rho != 0) the engine draws turnout and preferences with numpy and hands them to :func:`count_stations`,
which draws the ballots and the multinomial split (most of the time) with the same samplers.

The numba kernel is the engine's default (:data:`DEFAULT_KERNEL`); ``kernel = "numpy"`` is the reference
path. The forensic nulls draw with these samplers too (:mod:`simkit.forensics.nulls.compiled_draws`).
"""
from __future__ import annotations

import math

import numpy as np

from simkit import streams
from simkit.model.samplers import (binomial_sample, gamma_constants as _gamma_constants, gamma_sample as _gamma,
                                   inline_jit as _jit, multinomial_sample, multinomial_step, normal_sample)

import numba

#: kernel names accepted by the engine's ``kernel`` setting
KERNELS = ("numpy", "numba")
#: the engine's kernel when none is asked for
DEFAULT_KERNEL = "numba"

#: rows of one group's states (:func:`replicate_states`): one xoshiro256** state per model component
TURNOUT_STATE, PREFERENCES_STATE, COUNTS_STATE = 0, 1, 2


def supports(turnout_model: str, preference_model: str, rho: float) -> bool:
    """Whether :func:`honest_stations` fuses this model combination (else the engine draws turnout and
    preferences with numpy and the counts with :func:`count_stations`)."""
    return turnout_model == "logit_normal" and preference_model == "dirichlet" and rho == 0.0


def replicate_states(seed: int, replicate: int, n_groups: int) -> np.ndarray:
    """The kernel's generator states for every station group of one replicate: (group, 3, 4) uint64, rows
    turnout / preferences / counts, drawn as one block from
    ``SeedSequence(seed, spawn_key=(replicate, 0, streams.FAST_KERNEL))`` (group g's states are words
    12 g … 12 g + 11 of it, so they do not depend on how replicates are blocked)."""
    return np.random.SeedSequence(seed, spawn_key=(replicate, 0, streams.FAST_KERNEL)).generate_state(
        12 * n_groups, np.uint64).reshape(n_groups, 3, 4)


@_jit
def _state_tuple(states, group, row):
    """The 4-word xoshiro256** state ``states[group, row]`` as a tuple (kept in registers)."""
    return states[group, row, 0], states[group, row, 1], states[group, row, 2], states[group, row, 3]


@_jit
def _gamma_at(state, gamma_constants, region, option):
    """The Dirichlet gamma of ``option`` at a station of ``region``, from its Marsaglia-Tsang constants
    ``gamma_constants[region, option]`` ((region, option, 3), :func:`~simkit.model.samplers.gamma_constants`) and
    ``state`` (the preferences stream); returns ``(gamma, state)``."""
    return _gamma(state, gamma_constants[region, option, 0], gamma_constants[region, option, 1],
                  gamma_constants[region, option, 2])


@_jit
def _turnout_share(state, location, dispersion):
    """One station's turnout share ``expit(location + dispersion × z)``, z ~ N(0, 1) from ``state`` (the turnout
    stream); returns ``(share, state)``."""
    latent, state = normal_sample(state)
    return 1.0 / (1.0 + math.exp(-(location + dispersion * latent))), state


def _honest_stations_impl(registered, turnout_location, turnout_dispersion, concentration, composition,
                          region_index, states, group_size, ballots, votes):
    # Each station's turnout share and gammas are drawn while the station before it splits its ballots, the gammas
    # option by option between its conditional binomials (row ``following`` of ``gammas`` and ``turnouts``; the
    # station's own are row ``current``). Each stream draws in the same order as station by station, so the numbers
    # are the same; the processor overlaps the split's chain of dependent binomials with the independent draws.
    n_stations = registered.shape[0]
    n_regions, n_options = composition.shape
    gamma_constants = _gamma_constants((concentration * composition).ravel()).reshape(n_regions, n_options, 3)
    gammas = np.empty((2, n_options))
    turnouts = np.empty(2)
    for group in range(states.shape[0]):
        turnout_state = _state_tuple(states, group, TURNOUT_STATE)
        preferences_state = _state_tuple(states, group, PREFERENCES_STATE)
        counts_state = _state_tuple(states, group, COUNTS_STATE)
        start, stop = group * group_size, min((group + 1) * group_size, n_stations)
        turnouts[0], turnout_state = _turnout_share(turnout_state, turnout_location[start], turnout_dispersion)
        for option in range(n_options):
            gammas[0, option], preferences_state = _gamma_at(preferences_state, gamma_constants, region_index[start],
                                                             option)
        for station in range(start, stop):
            current = (station - start) % 2
            following = 1 - current
            cast, counts_state = binomial_sample(counts_state, registered[station], turnouts[current])
            ballots[station] = cast
            total = 0.0
            for option in range(n_options):
                total += gammas[current, option]
            if total <= 0.0:  # every gamma underflowed to 0: the regional composition (as the numpy path)
                for option in range(n_options):
                    gammas[current, option] = composition[region_index[station], option]
                    total += gammas[current, option]
            has_next = station + 1 < stop
            next_region = region_index[station + 1] if has_next else 0
            if has_next:
                turnouts[following], turnout_state = _turnout_share(turnout_state, turnout_location[station + 1],
                                                                    turnout_dispersion)
            remaining_ballots, remaining_weight = cast, total
            for option in range(n_options):
                if has_next:
                    gammas[following, option], preferences_state = _gamma_at(preferences_state, gamma_constants,
                                                                             next_region, option)
                if option < n_options - 1:  # the multinomial split (the last option takes the rest)
                    votes[station, option], remaining_ballots, remaining_weight, counts_state = multinomial_step(
                        counts_state, remaining_ballots, remaining_weight, gammas[current, option])
            votes[station, n_options - 1] = remaining_ballots


def _count_stations_impl(registered, turnout, probabilities, states, group_size, ballots, votes):
    n_stations, n_options = probabilities.shape
    weights = np.empty(n_options)
    for group in range(states.shape[0]):
        counts_state = _state_tuple(states, group, COUNTS_STATE)
        for station in range(group * group_size, min((group + 1) * group_size, n_stations)):
            cast, counts_state = binomial_sample(counts_state, registered[station], turnout[station])
            ballots[station] = cast
            total = 0.0
            for option in range(n_options):
                weights[option] = probabilities[station, option]
                total += weights[option]
            counts_state = multinomial_sample(counts_state, cast, weights, total, votes[station])


_count_stations_jit = numba.njit(nogil=True, cache=True, error_model="numpy")(_count_stations_impl)


_honest_stations_jit = numba.njit(nogil=True, cache=True, error_model="numpy")(_honest_stations_impl)


def _sampler_draws_impl(state_words, n_draws, kind, parameter, trials):
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
            drawn, state = binomial_sample(state, trials, parameter)
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
                              float(parameter), int(trials))


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
    n_stations = registered.shape[0]
    if turnout_location.shape != (n_stations,) or region_index.shape != (n_stations,):
        raise ValueError(f"turnout_location and region_index must have shape (station,) = ({n_stations},), "
                         f"got {turnout_location.shape} and {region_index.shape}")
    ballots, votes = _outputs(n_stations, composition.shape[1], states, ballots, votes)
    _honest_stations_jit(registered, turnout_location, float(turnout_dispersion), float(concentration),
                         composition, region_index, states, streams.STATION_GROUP_SIZE, ballots, votes)
    return ballots, votes


def count_stations(registered: np.ndarray, turnout: np.ndarray, probabilities: np.ndarray, states: np.ndarray,
                   ballots: np.ndarray | None = None, votes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The counts of one replicate given each station's turnout share and ballot probabilities, drawn by the
    kernel's samplers: ``ballots ~ Binomial(registered, turnout)``, ``votes ~ Multinomial(ballots,
    probabilities)`` (sequential conditional binomials); the compiled half of the models that
    :func:`honest_stations` does not fuse (the engine draws their turnout and preferences with numpy).

    ``registered`` (station,) int64; ``turnout`` (station,) float64 in [0, 1]; ``probabilities``
    (station, option) float64 >= 0 with positive rows (normalised here); ``states`` (group, 3, 4) uint64
    (:func:`replicate_states`): group g's counts draw from ``states[g, COUNTS_STATE]`` alone; ``ballots``,
    ``votes`` optional outputs as in :func:`honest_stations`. Returns ``(ballots, votes)``, int64 counts,
    rows of ``votes`` summing to ``ballots``.
    """
    registered = np.ascontiguousarray(registered, dtype=np.int64)
    turnout = np.ascontiguousarray(turnout, dtype=np.float64)
    probabilities = np.ascontiguousarray(probabilities, dtype=np.float64)
    n_stations = registered.shape[0]
    if turnout.shape != (n_stations,) or probabilities.ndim != 2 or probabilities.shape[0] != n_stations:
        raise ValueError(f"turnout must have shape (station,) and probabilities (station, option), station = "
                         f"{n_stations}; got {turnout.shape} and {probabilities.shape}")
    ballots, votes = _outputs(n_stations, probabilities.shape[1], states, ballots, votes)
    _count_stations_jit(registered, turnout, probabilities, states, streams.STATION_GROUP_SIZE, ballots, votes)
    return ballots, votes


def _outputs(n_stations: int, n_options: int, states: np.ndarray, ballots: np.ndarray | None,
             votes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Check ``states`` against the station groups and return the output arrays, allocated when None."""
    n_groups = len(streams.station_groups(n_stations))
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
    return ballots, votes


def warm_up() -> None:
    """Compile the kernel (or load it from numba's on-disk cache) on a one-station election, so that the
    first real call is not timed with the compilation (benchmarks call this first)."""
    states = replicate_states(0, 0, 1)
    honest_stations(np.array([10]), np.zeros(1), 0.5, 10.0, np.full((1, 2), 0.5), np.zeros(1, np.int64), states)
    count_stations(np.array([10]), np.full(1, 0.5), np.full((1, 2), 0.5), states)
