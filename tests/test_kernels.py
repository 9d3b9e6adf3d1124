"""The numba kernel (simkit.engine.kernels): same model as the numpy path, reproducible, valid counts.

The numpy path is :func:`simkit.engine.run.honest_replicate` with ``kernel = "numpy"`` (``_numpy_replicate``),
the kernel the same call with ``kernel = "numba"`` (``_numba_replicate``, the default). The kernel's own samplers (ziggurat normal, Marsaglia-Tsang gamma, inversion/BTRS
binomial) are tested against their exact distributions.
"""
import inspect
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
import tomli_w
import xarray as xr
from scipy import stats

from simkit.engine import run as engine, kernels
from simkit.model import samplers
from simkit import parse_config, streams

from benchmarks.exact_law import binomial_chi_square_pvalue
from conftest import REPO, small_config_dict

#: a (fixed-seed) statistical test fails below this p-value
ALPHA = 1e-4


def _run(**overrides) -> engine.Run:
    raw = small_config_dict(**{"stations": 1500, "registered": 1_200_000, "options": ("a", "b", "c", "d"),
                               "shares": (0.6, 0.2, 0.15, 0.05), **overrides})
    return engine.prepare(parse_config(tomli_w.dumps(raw)))


def _numba_replicate(plan: engine.Plan, electorate, seed: int, replicate: int) -> tuple[np.ndarray, np.ndarray]:
    """``engine.honest_replicate`` with the numba kernel: ballots (station,), votes (station, option)."""
    return engine.honest_replicate(plan, electorate, seed, replicate, kernel="numba")


def _numpy_replicate(plan: engine.Plan, electorate, seed: int, replicate: int) -> tuple[np.ndarray, np.ndarray]:
    """``engine.honest_replicate`` on the numpy reference path."""
    return engine.honest_replicate(plan, electorate, seed, replicate, kernel="numpy")


def _replicates(draw, run: engine.Run, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(replicate, station) ballots and (replicate, station, option) votes."""
    pairs = [draw(run.plans[0], run.electorate, seed, replicate) for replicate in range(n)]
    return np.stack([b for b, _ in pairs]), np.stack([v for _, v in pairs])


def _chi_square_same_distribution(first: np.ndarray, second: np.ndarray, bins: int = 20) -> float:
    """p-value of a chi-square two-sample (homogeneity) test on ``bins`` pooled-quantile bins."""
    edges = np.unique(np.quantile(np.concatenate([first, second]), np.linspace(0, 1, bins + 1)))
    table = np.array([np.histogram(sample, edges)[0] for sample in (first, second)])
    return stats.chi2_contingency(table[:, table.sum(axis=0) > 0]).pvalue


@pytest.fixture(scope="module")
def samples():
    """The numpy path and the numba kernel on the same config, from DIFFERENT seeds (with the same seed
    they draw the same numbers, which would make a distribution test vacuous)."""
    run = _run(regional_sd=0.0, turnout_dispersion=0.5, preference_dispersion=8.0)
    return run, _replicates(_numpy_replicate, run, 11, 120), _replicates(_numba_replicate, run, 12, 120)


def test_station_turnout_has_the_numpy_distribution(samples):
    run, (numpy_ballots, _), (numba_ballots, _) = samples
    registered = run.electorate.registered
    p = _chi_square_same_distribution((numpy_ballots / registered).ravel(), (numba_ballots / registered).ravel())
    assert p > ALPHA


@pytest.mark.parametrize("option", range(4))
def test_station_vote_shares_have_the_numpy_distribution(samples, option):
    _, (numpy_ballots, numpy_votes), (numba_ballots, numba_votes) = samples
    shares = [votes[..., option][ballots > 0] / ballots[ballots > 0]
              for ballots, votes in ((numpy_ballots, numpy_votes), (numba_ballots, numba_votes))]
    assert _chi_square_same_distribution(*shares) > ALPHA


def test_national_totals_agree_within_four_standard_errors(samples):
    _, (_, numpy_votes), (_, numba_votes) = samples
    numpy_totals, numba_totals = numpy_votes.sum(axis=1), numba_votes.sum(axis=1)  # (replicate, option)
    n = len(numpy_totals)
    standard_error = np.sqrt(numpy_totals.var(axis=0, ddof=1) / n + numba_totals.var(axis=0, ddof=1) / n)
    assert (np.abs(numpy_totals.mean(axis=0) - numba_totals.mean(axis=0)) < 4 * standard_error).all()


def test_station_means_match_the_model_expectation(samples):
    """E[ballots] = Σ registered × E[expit(location + σ z)], the quantity the config's mean fixes."""
    run, _, (numba_ballots, _) = samples
    totals = numba_ballots.sum(axis=1)
    expected = run.config.turnout.mean * run.electorate.registered.sum()
    assert abs(totals.mean() - expected) < 4 * totals.std(ddof=1) / np.sqrt(len(totals))


def test_same_seed_same_numbers_and_groups_are_independent():
    """Group g draws from its own states only: redrawing with another group's states changed leaves the
    first group's stations unchanged, and the same states give the same numbers."""
    run = _run(regional_sd=0.3)
    plan, electorate = run.plans[0], run.electorate
    composition = plan.preferences.regional_composition(np.zeros(len(electorate.region_names)))
    arguments = (electorate.registered, plan.turnout_location, plan.config.turnout.dispersion,
                 plan.preferences.dispersion, composition, electorate.region_index)
    states = kernels.replicate_states(5, 0, len(streams.station_groups(electorate.n_stations)))
    first = kernels.honest_stations(*arguments, states)
    again = kernels.honest_stations(*arguments, states.copy())
    changed = states.copy()
    changed[1] = kernels.replicate_states(6, 0, 2)[1]
    other = kernels.honest_stations(*arguments, changed)
    size = streams.STATION_GROUP_SIZE
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a[:size], c[:size])
        assert (a[size:] != c[size:]).any()


def _equiprobable_chi_square(draws: np.ndarray, distribution, bins: int = 500) -> float:
    """p-value of a chi-square goodness-of-fit test on ``bins`` cells of equal probability under
    ``distribution`` (a frozen scipy distribution): fine cells catch local defects (a ziggurat wedge
    accepted wholesale moves ~1% of the mass and passes Kolmogorov-Smirnov at 4 million draws)."""
    edges = distribution.ppf(np.linspace(0, 1, bins + 1))
    observed = np.histogram(draws, edges)[0]
    expected = draws.size / bins
    return stats.chi2.sf(((observed - expected) ** 2 / expected).sum(), bins - 1)


def test_normal_and_gamma_samplers_match_their_distributions():
    """The ziggurat normal (4 million draws) and the Marsaglia-Tsang gamma (1 million per shape, with the
    shape < 1 boost) by Kolmogorov-Smirnov and a 500-cell equiprobable chi-square, fixed seeds."""
    draws = kernels.sampler_draws(kernels.replicate_states(1, 0, 1)[0, 0], 4_000_000, "normal")
    assert stats.kstest(draws, "norm").pvalue > ALPHA
    assert _equiprobable_chi_square(draws, stats.norm()) > ALPHA
    for shape in (0.3, 0.97, 1.0, 4.5, 31.0):
        draws = kernels.sampler_draws(kernels.replicate_states(2, 0, 1)[0, 0], 1_000_000, "gamma", shape)
        assert stats.kstest(draws, stats.gamma(shape).cdf).pvalue > ALPHA, shape
        assert _equiprobable_chi_square(draws, stats.gamma(shape)) > ALPHA, shape


def test_binomial_sampler_matches_the_exact_pmf():
    """Both regimes (inversion below n p = 10, with P(0) as q^n up to n = 4096 and exp(n log1p(-p)) above;
    BTRS above n p = 10; p > 0.5 by reflection), 2 million draws each, by chi-square against the exact pmf
    with thin tails pooled."""
    for n, p in ((40, 0.1), (1000, 0.009), (1000, 0.3), (850, 0.78), (25, 0.6), (5000, 0.5), (3, 0.45),
                 (100_000, 6e-5)):
        draws = kernels.sampler_draws(kernels.replicate_states(3, 0, 1)[0, 0], 2_000_000, "binomial", p, n)
        assert binomial_chi_square_pvalue(draws.astype(np.int64), n, p) > ALPHA, (n, p)


def test_counts_are_valid():
    run = _run(preference_dispersion=0.05, turnout_dispersion=2.0)  # tiny concentration: many zero gammas
    ballots, votes = _replicates(_numba_replicate, run, 3, 5)
    assert ballots.dtype == votes.dtype == np.int64
    assert (ballots >= 0).all() and (votes >= 0).all()
    assert (ballots <= run.electorate.registered).all()
    assert (votes.sum(axis=-1) == ballots).all()


@numba.njit(error_model="numpy")
def _station_by_station(registered, location, dispersion, concentration, composition, region_index, states,
                        group_size, ballots, votes):
    """The honest draw of :func:`kernels.honest_stations` one station at a time (turnout, ballots, gammas, then
    the multinomial split), from the same three generators per station group: the order each stream draws in."""
    n_regions, n_options = composition.shape
    constants = samplers.gamma_constants((concentration * composition).ravel()).reshape(n_regions, n_options, 3)
    weights = np.empty(n_options)
    for group in range(states.shape[0]):
        turnout_state = (states[group, 0, 0], states[group, 0, 1], states[group, 0, 2], states[group, 0, 3])
        preferences_state = (states[group, 1, 0], states[group, 1, 1], states[group, 1, 2], states[group, 1, 3])
        counts_state = (states[group, 2, 0], states[group, 2, 1], states[group, 2, 2], states[group, 2, 3])
        for station in range(group * group_size, min((group + 1) * group_size, registered.shape[0])):
            latent, turnout_state = samplers.normal_sample(turnout_state)
            turnout = 1.0 / (1.0 + math.exp(-(location[station] + dispersion * latent)))
            ballots[station], counts_state = samplers.binomial_sample(counts_state, registered[station], turnout)
            region = region_index[station]
            total = 0.0
            for option in range(n_options):
                weights[option], preferences_state = samplers.gamma_sample(
                    preferences_state, constants[region, option, 0], constants[region, option, 1],
                    constants[region, option, 2])
                total += weights[option]
            counts_state = samplers.multinomial_sample(counts_state, ballots[station], weights, total, votes[station])


def test_the_fused_kernel_draws_the_numbers_of_a_station_by_station_loop():
    """:func:`kernels.honest_stations` draws a station's turnout and gammas during the split of the station before
    it; each stream still draws in station order, so the numbers are those of the plain loop, to the bit (three
    station groups, one of them short, and stations with no voters)."""
    run = _run(regional_sd=0.3, stations=2100)
    plan, electorate = run.plans[0], run.electorate
    registered = electorate.registered.copy()
    registered[::97] = 0
    composition = plan.preferences.regional_composition(np.full(len(electorate.region_names), 0.2))
    arguments = (registered, plan.turnout_location, plan.config.turnout.dispersion, plan.preferences.dispersion,
                 composition, electorate.region_index)
    states = kernels.replicate_states(8, 3, len(streams.station_groups(electorate.n_stations)))
    assert states.shape[0] == 3
    ballots, votes = kernels.honest_stations(*arguments, states)
    expected_ballots, expected_votes = np.empty_like(ballots), np.empty_like(votes)
    _station_by_station(*arguments, states, streams.STATION_GROUP_SIZE, expected_ballots, expected_votes)
    np.testing.assert_array_equal(ballots, expected_ballots)
    np.testing.assert_array_equal(votes, expected_votes)


@numba.njit(error_model="numpy")
def _step(words, remaining_ballots, remaining_weight, weight):
    """:func:`samplers.multinomial_step` from the state ``words`` (4,) uint64; returns its three numbers and the
    state as an array."""
    drawn, ballots_left, weight_left, state = samplers.multinomial_step(
        (words[0], words[1], words[2], words[3]), remaining_ballots, remaining_weight, weight)
    return drawn, ballots_left, weight_left, np.array(state)


def test_a_multinomial_step_returns_the_next_options_remainders():
    """One conditional binomial of the split: the count and what the next option splits (ballots less the count,
    weight less this option's); nothing left draws nothing (the state unchanged); no weight left gives this option
    the rest; the steps of :func:`samplers.multinomial_sample` are its draws."""
    words = kernels.replicate_states(4, 0, 1)[0, 2]
    drawn, ballots_left, weight_left, state = _step(words, 1000, 1.0, 0.25)
    assert 150 < drawn < 350 and ballots_left == 1000 - drawn and weight_left == 0.75
    assert (state != words).any()
    assert _step(words, 0, 0.5, 0.25)[:3] == (0, 0, 0.5)
    np.testing.assert_array_equal(_step(words, 0, 0.5, 0.25)[3], words)
    assert _step(words, 7, 0.0, 0.0)[:2] == (7, 0)
    weights, out = np.array([0.25, 0.5, 0.25]), np.empty(3, np.int64)
    samplers.multinomial_sample(tuple(words), 1000, weights, 1.0, out)
    second = _step(_step(words, 1000, 1.0, 0.25)[3], ballots_left, 0.75, 0.5)
    assert out[0] == drawn and out[1] == second[0] and out[2] == second[1]


def test_same_inputs_same_result_whatever_the_threads():
    run = _run()
    serial = [_numba_replicate(run.plans[0], run.electorate, 9, r) for r in range(4)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda r: _numba_replicate(run.plans[0], run.electorate, 9, r), range(4)))
    for (b1, v1), (b2, v2) in zip(serial, threaded):
        np.testing.assert_array_equal(b1, b2)
        np.testing.assert_array_equal(v1, v2)


def test_empty_register_casts_no_ballots():
    composition = np.array([[0.5, 0.3, 0.2]])
    ballots, votes = kernels.honest_stations(
        np.array([0, 10]), np.zeros(2), 0.5, 20.0, composition, np.zeros(2, dtype=np.int64),
        kernels.replicate_states(0, 0, 1))
    assert ballots[0] == 0 and (votes[0] == 0).all()
    assert votes[1].sum() == ballots[1] <= 10


def test_wrong_output_shape_says_what_was_expected():
    with pytest.raises(ValueError, match=r"votes must be a C-contiguous int64 array of shape \(2, 3\)"):
        kernels.honest_stations(np.array([5, 10]), np.zeros(2), 0.5, 20.0, np.full((1, 3), 1 / 3),
                                np.zeros(2, dtype=np.int64), kernels.replicate_states(0, 0, 1),
                                votes=np.empty((2, 2), dtype=np.int64))


def test_wrong_states_shape_says_what_was_expected():
    with pytest.raises(ValueError, match=r"states must be a C-contiguous \(1, 3, 4\) uint64 array"):
        kernels.honest_stations(np.array([5, 10]), np.zeros(2), 0.5, 20.0, np.full((1, 3), 1 / 3),
                                np.zeros(2, dtype=np.int64), kernels.replicate_states(0, 0, 2))


def test_supports_only_logit_normal_turnout_with_uncorrelated_dirichlet():
    assert kernels.supports("logit_normal", "dirichlet", 0.0)
    assert not kernels.supports("beta", "dirichlet", 0.0)
    assert not kernels.supports("logit_normal", "logistic_normal", 0.0)
    assert not kernels.supports("logit_normal", "dirichlet", 0.5)


@pytest.mark.skipif("kernel" not in inspect.signature(engine.simulate).parameters,
                    reason="the engine does not take kernel= yet")
@pytest.mark.parametrize("block_size,workers", [(1, 1), (3, 2), (7, 2)])
def test_engine_numba_kernel_is_bit_identical_whatever_the_blocks(block_size, workers):
    cfg = parse_config(tomli_w.dumps(small_config_dict(stations=2100, registered=500_000, replicates=7)))
    reference = engine.simulate(cfg, kernel="numba", workers=1, block_size=1000)
    again = engine.simulate(cfg, kernel="numba", workers=workers, block_size=block_size)
    xr.testing.assert_identical(reference.drop_attrs(), again.drop_attrs())
    assert again.attrs["kernel"] == "numba"



def test_count_stations_draws_binomial_ballots_and_multinomial_votes():
    """Exact law of the counts kernel: with every station at n = 60 voters, turnout 0.65 and probabilities
    (0.5, 0.3, 0.15, 0.05), ballots ~ Binomial(60, 0.65) and each option's votes ~ Binomial(60, 0.65 p_j)
    (a multinomial of a binomial thins it), by chi-square over 200,000 stations (in 196 station groups, so
    that the groups' streams are tested too); rows sum to ballots."""
    n_stations, probabilities = 200_000, np.array([0.5, 0.3, 0.15, 0.05])
    registered = np.full(n_stations, 60)
    states = kernels.replicate_states(21, 0, len(streams.station_groups(n_stations)))
    ballots, votes = kernels.count_stations(registered, np.full(n_stations, 0.65),
                                            np.tile(2 * probabilities, (n_stations, 1)), states)  # normalised
    assert (votes.sum(axis=1) == ballots).all()
    assert binomial_chi_square_pvalue(ballots, 60, 0.65) > ALPHA
    for option, p in enumerate(probabilities):
        assert binomial_chi_square_pvalue(votes[:, option], 60, 0.65 * p) > ALPHA, option


def test_the_constant_log_factorial_table_is_log_gamma():
    """The samplers' compiled-in table holds log(k!) for k < 2^14, read-only: 0 at k = 0 and 1 and, beyond, within
    8 ulps of ``math.lgamma(k + 1)`` (libm's, an implementation independent of scipy's ``gammaln`` that fills the
    table; each is accurate to a few ulps), so a shifted or miscomputed entry fails."""
    table = samplers.CONSTANT_LOG_FACTORIALS
    assert table.shape == (2**14,) and table.dtype == np.float64 and not table.flags.writeable
    assert table[0] == table[1] == 0.0
    reference = np.array([math.lgamma(k + 1.0) for k in range(2, table.shape[0])])
    assert (np.abs(table[2:] - reference) <= 8 * np.spacing(reference)).all()


def test_binomials_whose_counts_straddle_the_constant_table_draw_the_exact_law():
    """BTRS reads log(k!) and log((n − k)!) from the table below 2^14 and from ``lgamma`` above: at n = 2^15,
    p = 0.5 both straddle 2^14, at n = 5 × 2^14, p = 0.2 the count k does (n − k is beyond); 2 million draws
    each against the exact pmf by chi-square, thin tails pooled."""
    for n, p in ((2**15, 0.5), (5 * 2**14, 0.2)):
        draws = kernels.sampler_draws(kernels.replicate_states(4, 0, 1)[0, 0], 2_000_000, "binomial", p, n)
        assert ((draws < 2**14) & (draws > 2**14 - 300)).any() and ((draws >= 2**14) & (draws < 2**14 + 300)).any()
        assert binomial_chi_square_pvalue(draws.astype(np.int64), n, p) > ALPHA, (n, p)


def test_registers_beyond_the_constant_table_draw_the_exact_law():
    """Counts beyond the compiled table read ``lgamma``: with every station at n = 3 × the table's size
    (BTRS throughout), ballots ~ Binomial(n, 0.4) and the first option's votes ~ Binomial(n, 0.4 × 0.3), by
    chi-square over 20,000 stations."""
    n_stations, n = 20_000, 3 * samplers.CONSTANT_LOG_FACTORIALS.shape[0]
    states = kernels.replicate_states(23, 0, len(streams.station_groups(n_stations)))
    ballots, votes = kernels.count_stations(np.full(n_stations, n), np.full(n_stations, 0.4),
                                            np.tile([0.3, 0.7], (n_stations, 1)), states)
    assert (votes.sum(axis=1) == ballots).all()
    assert binomial_chi_square_pvalue(ballots, n, 0.4) > ALPHA
    assert binomial_chi_square_pvalue(votes[:, 0], n, 0.4 * 0.3) > ALPHA


def test_count_stations_checks_its_shapes():
    with pytest.raises(ValueError, match=r"turnout must have shape \(station,\) and probabilities \(station, option\)"):
        kernels.count_stations(np.array([5, 10]), np.full(3, 0.5), np.full((2, 3), 1 / 3),
                               kernels.replicate_states(0, 0, 1))


#: seconds a NaN check may take in a process of its own (importing simkit and loading the kernels from numba's
#: cache take a few, compiling them afresh under a minute on two busy cores): a sampler that loops forever on a
#: NaN fails its test here instead of hanging the suite
NAN_CHECK_SECONDS = 180
#: calls that hand a sampler a NaN (run with ``math``, ``np``, ``kernels``, ``samplers``, ``ThreadPoolExecutor``
#: and ``states``, one station group's generator states, in scope), each with the name of the message it raises
NAN_CALLS = {
    "binomial probability through sampler_draws": (
        "kernels.sampler_draws(states[0, 0], 3, 'binomial', math.nan, 100)", "NAN_PROBABILITY"),
    "weight through multinomial_sample": (
        "samplers.multinomial_sample(tuple(states[0, 0]), 100, np.array([0.5, math.nan, 0.5]), 1.0, "
        "np.empty(3, np.int64))", "NAN_PROBABILITY"),
    "probability through count_stations": (
        "kernels.count_stations(np.array([100]), np.array([0.5]), np.array([[math.nan, 0.5]]), states)",
        "NAN_PROBABILITY"),
    "turnout through count_stations": (
        "kernels.count_stations(np.array([100, 100]), np.array([0.5, math.nan]), np.full((2, 2), 0.5), states)",
        "NAN_PROBABILITY"),
    "turnout location through honest_stations": (
        "kernels.honest_stations(np.array([100]), np.array([math.nan]), 0.5, 10.0, np.full((1, 2), 0.5), "
        "np.zeros(1, np.int64), states)", "NAN_PROBABILITY"),
    "concentration through honest_stations": (
        "kernels.honest_stations(np.array([100]), np.zeros(1), 0.5, math.nan, np.full((1, 2), 0.5), "
        "np.zeros(1, np.int64), states)", "NAN_PROBABILITY"),
    "turnout through count_stations in a worker thread": (
        "ThreadPoolExecutor(1).submit(kernels.count_stations, np.array([100]), np.array([math.nan]), "
        "np.full((1, 2), 0.5), states).result()", "NAN_PROBABILITY"),
}


@pytest.mark.parametrize("call", NAN_CALLS)
def test_a_nan_raises_a_clear_error(call):
    """A NaN probability fails every test of the binomial's rejection or inversion loop, which would never end,
    and a NaN multinomial total (a NaN weight, or gammas of a NaN concentration) gave every ballot to the first
    option: both raise ValueError instead, from the compiled (nogil) kernels and from a worker thread alike. Each
    call runs in a process of its own, so that a regression fails after :data:`NAN_CHECK_SECONDS` instead of
    hanging."""
    code, message = NAN_CALLS[call]
    script = ("import math\nfrom concurrent.futures import ThreadPoolExecutor\nimport numpy as np\n"
              "from simkit.engine import kernels\nfrom simkit.model import samplers\n"
              f"states = kernels.replicate_states(0, 0, 1)\n{code}\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                               timeout=NAN_CHECK_SECONDS, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert completed.returncode == 1 and completed.stdout == ""
    assert completed.stderr.rstrip().endswith(f"ValueError: {getattr(samplers, message)}"), completed.stderr


def test_a_nan_probability_of_no_trials_draws_nothing():
    """Binomial(0, p) is 0 whatever p, NaN included: a station with no voters raises nothing."""
    draws = kernels.sampler_draws(kernels.replicate_states(0, 0, 1)[0, 0], 3, "binomial", math.nan, 0)
    np.testing.assert_array_equal(draws, np.zeros(3))
    ballots, votes = kernels.count_stations(np.array([0]), np.array([math.nan]), np.full((1, 2), 0.5),
                                            kernels.replicate_states(0, 0, 1))
    assert ballots[0] == 0 and (votes[0] == 0).all()


#: the models the fused kernel does not fuse, each drawn by numpy turnout and preferences with the kernel's
#: counts: (config overrides, what the attrs record)
HYBRID_MODELS = {
    "truncated_normal turnout": dict(turnout_model="truncated_normal", turnout_dispersion=0.12),
    "beta turnout": dict(turnout_model="beta", turnout_dispersion=25.0),
    "logistic_normal preferences": dict(preference_model="logistic_normal", preference_dispersion=0.4, rho=0.3),
    "truncated_normal preferences": dict(preference_model="truncated_normal", preference_dispersion=0.1, rho=-0.4),
    "dirichlet rho 0.5": dict(preference_dispersion=12.0, rho=0.5),
}  # regional_sd = 0: a replicate's regional shift moves all its stations together, and the station-level
#    homogeneity test below needs stations that are independent draws


@pytest.mark.parametrize("model", HYBRID_MODELS)
def test_every_other_model_has_the_numpy_distribution(model):
    """Station turnout, the leader's station share and the national totals of the numba kernel (numpy
    turnout and preferences, the kernel's counts) against the numpy path, different seeds, 60 replicates of
    400 stations each: chi-square homogeneity on pooled-quantile bins, totals within 4 standard errors."""
    raw = small_config_dict(**{"stations": 400, "registered": 300_000, "options": ("a", "b", "c", "d"),
                               "shares": (0.6, 0.2, 0.15, 0.05), **HYBRID_MODELS[model]})
    run = engine.prepare(parse_config(tomli_w.dumps(raw)))
    assert not engine.fused(run.plans[0], "numba")
    (numpy_ballots, numpy_votes), (numba_ballots, numba_votes) = (
        _replicates(_numpy_replicate, run, 31, 60), _replicates(_numba_replicate, run, 32, 60))
    registered = run.electorate.registered
    assert _chi_square_same_distribution((numpy_ballots / registered).ravel(),
                                         (numba_ballots / registered).ravel()) > ALPHA
    leader = [(votes[..., 0] / np.maximum(ballots, 1)).ravel() for ballots, votes
              in ((numpy_ballots, numpy_votes), (numba_ballots, numba_votes))]
    assert _chi_square_same_distribution(*leader) > ALPHA
    numpy_totals, numba_totals = numpy_votes.sum(axis=1), numba_votes.sum(axis=1)
    standard_error = np.sqrt((numpy_totals.var(axis=0, ddof=1) + numba_totals.var(axis=0, ddof=1)) / 60)
    assert (np.abs(numpy_totals.mean(axis=0) - numba_totals.mean(axis=0)) < 4 * standard_error).all()
    assert (numba_votes.sum(axis=-1) == numba_ballots).all() and (numba_ballots <= registered).all()


@pytest.mark.parametrize("block_size,workers", [(1, 1), (3, 2)])
def test_engine_numba_counts_are_bit_identical_whatever_the_blocks(block_size, workers):
    """The models the kernel does not fuse (here beta turnout, correlated Dirichlet) are reproducible too."""
    cfg = parse_config(tomli_w.dumps(small_config_dict(stations=2100, registered=500_000, replicates=5,
                                                       turnout_model="beta", turnout_dispersion=25.0, rho=0.4)))
    reference = engine.simulate(cfg, workers=1, block_size=1000)
    again = engine.simulate(cfg, workers=workers, block_size=block_size)
    xr.testing.assert_identical(reference.drop_attrs(), again.drop_attrs())
    assert json.loads(again.attrs["kernel_draws"])["honest"] == {"0/honest": engine.kernel_draws(
        engine.prepare(cfg).plans[0], "numba")} == {"0/honest": "numba counts; numpy turnout and preferences"}


def test_default_kernel_is_numba_and_the_attrs_say_what_drew_what():
    cfg = parse_config(tomli_w.dumps(small_config_dict(replicates=2)))
    default, reference = engine.simulate(cfg), engine.simulate(cfg, kernel="numpy")
    assert default.attrs["kernel"] == "numba" and reference.attrs["kernel"] == "numpy"
    assert json.loads(default.attrs["kernel_draws"]) == {
        "honest": {"0/honest": "numba (fused: turnout, preferences and counts)"},
        "manipulation": engine.MANIPULATION_DRAWS, "timeline": "numpy"}
    assert json.loads(reference.attrs["kernel_draws"])["honest"] == {"0/honest": "numpy"}
