"""The exit-poll model: sampling theory (SRS, Kish), station selection, feasibility and invariants.

Tolerances come from theory: the sample SD of R replicates has relative standard error ≈ 1/√(2(R−1)),
and an empirical frequency of n draws has standard error √(π(1−π)/n); tests allow 4 of those.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simkit.model.exit_poll import (PollDesign, allocate_by_region, certain_stations, design_feasibility, draw_exit_poll,
                                    intra_cluster_correlation, kish_design_effect, sample_stations)

from exit_poll_helpers import dirichlet_votes

SHARES = np.array([0.6, 0.3, 0.1])
ALL_VALID = np.ones(3, dtype=bool)


def sd_tolerance(replicates: int) -> float:
    """Four relative standard errors of a sample standard deviation."""
    return 4.0 / np.sqrt(2.0 * (replicates - 1))


def poll_estimates(design: PollDesign, *, replicates: int, stations: int, ballots: int,
                   concentration: float | None, seed: int) -> tuple[np.ndarray, list]:
    """Estimates (R, V) of ``design`` over R independently simulated elections of equal-sized stations."""
    rng = np.random.default_rng(seed)
    registered = np.full(stations, ballots)
    estimates, draws = [], []
    for _ in range(replicates):
        votes = dirichlet_votes(rng, registered, SHARES, concentration)
        draw = draw_exit_poll(votes, registered, design, rng)
        estimates.append(draw.shares)
        draws.append((votes, draw))
    return np.array(estimates), draws


def test_simple_random_sample_standard_error_matches_binomial_theory():
    replicates, n, m = 3000, 20, 25
    design = PollDesign(n_stations=n, valid=ALL_VALID, respondents="fixed", per_station=m)
    estimates, _ = poll_estimates(design, replicates=replicates, stations=200, ballots=700, concentration=None,
                                  seed=11)
    p = SHARES[0]
    expected_sd = np.sqrt(p * (1 - p) / (n * m))
    assert abs(estimates[:, 0].mean() - p) < 4 * expected_sd / np.sqrt(replicates)
    assert estimates[:, 0].std(ddof=1) / expected_sd == pytest.approx(1.0, abs=sd_tolerance(replicates))


def test_clustered_design_effect_matches_kish_when_rho_is_known():
    # Dirichlet(α × shares) station preferences: ρ = 1 / (α + 1) exactly for every option.
    replicates, n, m, concentration = 2000, 30, 40, 20.0
    rho = 1.0 / (concentration + 1.0)
    design = PollDesign(n_stations=n, valid=ALL_VALID, respondents="fixed", per_station=m)
    estimates, _ = poll_estimates(design, replicates=replicates, stations=300, ballots=600,
                                  concentration=concentration, seed=12)
    p = SHARES[1]
    expected_sd = np.sqrt(p * (1 - p) * kish_design_effect(m, rho) / (n * m))
    assert estimates[:, 1].std(ddof=1) / expected_sd == pytest.approx(1.0, abs=sd_tolerance(replicates))


@pytest.mark.parametrize("concentration", [15.0, 300.0])
def test_whole_flow_standard_error_tracks_kish_with_measured_rho(concentration):
    replicates, n, stations = 1500, 40, 400
    design = PollDesign(n_stations=n, valid=ALL_VALID, respondents="whole_flow")
    estimates, draws = poll_estimates(design, replicates=replicates, stations=stations, ballots=500,
                                      concentration=concentration, seed=13)
    rho = np.mean([intra_cluster_correlation(votes[:, 0], votes.sum(axis=1)) for votes, _ in draws])
    mean_respondents = np.mean([draw.respondents.mean() for _, draw in draws])
    p = estimates[:, 0].mean()
    kish_sd = np.sqrt(p * (1 - p) * kish_design_effect(mean_respondents, rho) / (n * mean_respondents))
    assert estimates[:, 0].std(ddof=1) / kish_sd == pytest.approx(1.0, abs=sd_tolerance(replicates))


def test_precision_comes_from_stations_not_respondents():
    # Whole flow at ~500 voters a station with ρ = 1/16: the design effect is ~32, so the 20,000
    # respondents of 40 stations are worth ~600 independent interviews.
    deff = kish_design_effect(500, 1.0 / 16.0)
    assert deff == pytest.approx(1 + 499 / 16)
    assert 40 * 500 / deff < 700


def test_intra_cluster_correlation_recovers_dirichlet_rho():
    rng = np.random.default_rng(5)
    concentration = 30.0
    ballots = np.full(4000, 400)
    votes = dirichlet_votes(rng, ballots, SHARES, concentration)
    rho = intra_cluster_correlation(votes[:, 0], ballots)
    # SE of the ANOVA estimator ≈ √2 (1 − ρ)(1 + (m−1)ρ) / √(m(m−1)(c−1)) (Donner & Koval); 4 of them
    true_rho = 1 / (concentration + 1)
    se = np.sqrt(2) * (1 - true_rho) * (1 + 399 * true_rho) / np.sqrt(400 * 399 * 3999)
    assert abs(rho - true_rho) < 4 * se


def test_pps_inclusion_probabilities_are_proportional_to_size():
    rng = np.random.default_rng(7)
    sizes = np.array([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
    n, draws = 3, 20000
    counts = np.zeros(len(sizes))
    for _ in range(draws):
        stations, inclusion = sample_stations(rng, sizes, n, "pps")
        assert len(set(stations.tolist())) == n
        np.testing.assert_allclose(inclusion, n * sizes[stations] / sizes.sum())
        counts[stations] += 1
    expected = n * sizes / sizes.sum()
    assert np.all(np.abs(counts / draws - expected) < 4 * np.sqrt(expected * (1 - expected) / draws))


def test_pps_takes_a_station_larger_than_the_sampling_step_with_certainty():
    sizes = np.array([10_000, 10, 10, 10, 10, 10, 10, 10])
    stations, inclusion = sample_stations(np.random.default_rng(1), sizes, 3, "pps")
    assert 0 in stations
    assert inclusion[list(stations).index(0)] == 1.0


def test_a_station_without_voters_is_never_taken_with_certainty():
    """Once the stations with voters are all certain, the rest have size 0 and probability 0: not certain."""
    sizes = np.array([900, 0, 100, 0, 0])
    assert certain_stations(sizes, 2).tolist() == [True, False, True, False, False]
    assert certain_stations(sizes, 4).tolist() == [True, False, True, False, False]


def test_pps_never_samples_a_station_without_voters():
    sizes = np.array([0, 300, 0, 500, 200, 0])
    rng = np.random.default_rng(5)
    for _ in range(200):
        stations, inclusion = sample_stations(rng, sizes, 2, "pps")
        assert (sizes[stations] > 0).all()
        np.testing.assert_allclose(inclusion, np.minimum(1.0, 2 * sizes[stations] / sizes.sum()))


@pytest.mark.parametrize("region_index", [None, np.array([0, 0, 0, 1, 1, 1])])
def test_pps_of_more_stations_than_hold_voters_is_refused(region_index):
    """3 stations with voters cannot give a sample of 4 drawn proportional to size, by region or not."""
    sizes = np.array([0, 300, 400, 500, 0, 0])
    with pytest.raises(ValueError, match=r"^4 stations to draw proportional to size, but only 3 hold voters$"):
        sample_stations(np.random.default_rng(0), sizes, 4, "pps", region_index)


def test_pps_allocation_caps_each_region_at_its_stations_with_voters():
    """A region's stations of 0 voters cannot be drawn proportional to size: its share of the sample goes to the
    others rather than the design being refused (2 + 3 works where [5, 0] would ask 5 of 2 stations)."""
    registered = np.array([100, 100, 0, 0, 0, 1, 1, 1, 1, 1])
    region_index = np.repeat([0, 1], 5)
    assert allocate_by_region(5, region_index, registered, "pps").tolist() == [2, 3]
    assert allocate_by_region(5, region_index, registered).tolist() == [5, 0]
    stations, inclusion = sample_stations(np.random.default_rng(0), registered, 5, "pps", region_index)
    assert sorted(stations[:2]) == [0, 1] and (stations[2:] >= 5).all()
    np.testing.assert_allclose(inclusion, [1, 1, 0.6, 0.6, 0.6])


def test_regional_allocation_is_proportional_to_the_register():
    region_index = np.repeat([0, 1, 2], [10, 20, 30])
    registered = np.ones(60)
    assert allocate_by_region(12, region_index, registered).tolist() == [2, 4, 6]
    stations, _ = sample_stations(np.random.default_rng(2), registered, 12, "simple", region_index)
    assert np.bincount(region_index[stations]).tolist() == [2, 4, 6]


@pytest.mark.parametrize("estimator", ["raw", "weighted"])
@pytest.mark.parametrize("selection", ["simple", "pps"])
def test_quick_count_of_every_station_is_the_exact_count(estimator, selection):
    """Every station's protocol copied is the count, to floating point, whatever the estimator: the weighted one
    weighs a station's valid shares by its valid votes (stations' invalid shares differ here, from 0 to ~40%)."""
    rng = np.random.default_rng(3)
    registered = rng.integers(100, 2000, size=50)
    votes = dirichlet_votes(rng, registered, SHARES, 10.0)
    valid = np.array([True, True, False])
    design = PollDesign(n_stations=50, valid=valid, selection=selection, respondents="whole_flow", estimator=estimator)
    draw = draw_exit_poll(votes, registered, design, rng)  # a quick count: every voter's ballot, as counted
    np.testing.assert_allclose(draw.shares, votes[:, :2].sum(axis=0) / votes[:, :2].sum(), rtol=1e-13, atol=0)


def test_misreporting_moves_the_expected_share():
    # Whole flow everywhere, a → b at rate q: E[share b] = p_b + q p_a (shares of all valid answers).
    q = 0.2
    misreport = np.eye(3)
    misreport[0] = [1 - q, q, 0.0]
    rng = np.random.default_rng(4)
    registered = np.full(100, 1000)
    votes = dirichlet_votes(rng, registered, SHARES, None)
    design = PollDesign(n_stations=100, valid=ALL_VALID, respondents="whole_flow", misreport=misreport)
    estimates = np.array([draw_exit_poll(votes, registered, design, rng).shares[1] for _ in range(200)])
    true = votes.sum(axis=0) / votes.sum()
    expected = true[1] + q * true[0]
    se = np.sqrt(q * (1 - q) * votes[:, 0].sum()) / votes.sum()  # SD of the binomial moved count, as a share
    assert abs(estimates.mean() - expected) < 4 * se / np.sqrt(200)


def test_every_kth_voter_approaches_about_a_kth_of_the_flow():
    rng = np.random.default_rng(6)
    registered = np.full(50, 1000)
    votes = dirichlet_votes(rng, registered, SHARES, None)
    draw = draw_exit_poll(votes, registered, PollDesign(n_stations=50, valid=ALL_VALID, respondents="every_kth",
                                                        every_kth=7), rng)
    # ceil((B − start) / k) for a start in 0..k−1: between floor(B/k) and ceil(B/k)
    assert np.all(draw.respondents >= registered[0] // 7) and np.all(draw.respondents <= -(-registered[0] // 7))


def test_claimed_design_beyond_the_electorate_is_flagged_with_the_nearest_feasible_design():
    # Kazakhstan 2022: ~11.95 million registered at 10,101 stations, ~69% turnout; SOCIS-A claimed 482,000
    # respondents at 379 stations (1,272 per station).
    rng = np.random.default_rng(8)
    registered = np.round(1183 * np.exp(0.6 * rng.standard_normal(10101) - 0.18)).astype(int)
    mean_voters = 0.694 * registered
    check = design_feasibility(379, 482_000, registered, mean_voters)
    assert not check.feasible
    assert check.capacity_simple == pytest.approx(379 * mean_voters.mean())
    assert check.capacity_pps == pytest.approx(379 * (mean_voters * registered).sum() / registered.sum())
    assert check.capacity_pps > check.capacity_simple
    assert check.selection == "pps"
    assert check.respondents == ("whole_flow" if 482_000 > check.capacity_pps else "fixed")
    assert design_feasibility(325, 13_200, registered, mean_voters).feasible  # Qogamdyq Pikir 2019


@st.composite
def elections_and_designs(draw):
    n_options = draw(st.integers(2, 5))
    n_stations = draw(st.integers(2, 25))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    registered = rng.integers(0, 300, size=n_stations)
    ballots = rng.binomial(registered, rng.uniform(0, 1))
    votes = rng.multinomial(ballots, rng.dirichlet(np.ones(n_options)))
    valid = np.ones(n_options, dtype=bool)
    valid[-1] = draw(st.booleans()) or n_options == 1
    rate = draw(st.floats(0.05, 1.0))
    propensity = rng.uniform(0.1, 1.0 / rate, size=n_options) if draw(st.booleans()) else None
    if propensity is not None:
        propensity = np.minimum(propensity, 1.0 / rate)
    misreport = rng.dirichlet(np.ones(n_options), size=n_options) if draw(st.booleans()) else None
    design = PollDesign(
        n_stations=draw(st.integers(1, n_stations)), valid=valid,
        selection=draw(st.sampled_from(["simple", "pps"])), by_region=draw(st.booleans()),
        respondents=draw(st.sampled_from(["fixed", "every_kth", "whole_flow"])),
        per_station=draw(st.integers(1, 400)), every_kth=draw(st.integers(1, 20)), response_rate=rate,
        response_propensity=propensity, misreport=misreport, estimator=draw(st.sampled_from(["raw", "weighted"])))
    region_index = np.arange(n_stations) % draw(st.integers(1, 3))
    return votes, np.maximum(registered, 1), design, region_index, seed


@settings(max_examples=60, deadline=None)
@given(elections_and_designs())
def test_poll_invariants(case):
    votes, registered, design, region_index, seed = case
    draw = draw_exit_poll(votes, registered, design, np.random.default_rng(seed), region_index)
    assert len(set(draw.stations.tolist())) == design.n_stations
    assert np.all(draw.respondents <= draw.voters)
    assert np.all(draw.responders <= votes[draw.stations])
    assert np.all(draw.reported >= 0)
    np.testing.assert_array_equal(draw.reported.sum(axis=-1), draw.responders.sum(axis=-1))
    if draw.reported[:, design.valid].sum() > 0:
        assert np.all((draw.shares >= 0) & (draw.shares <= 1))
        assert draw.shares.sum() == pytest.approx(1.0)
    else:
        assert np.all(np.isnan(draw.shares))
