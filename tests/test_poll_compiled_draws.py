"""The compiled poll sampler (simkit.polls.compiled_draws) against exact laws and against the numpy reference
(simkit.model.exit_poll), by distribution with fixed seeds; and its reproducibility whatever the threads."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from simkit.model.exit_poll import PollDesign, allocate_by_region, certain_stations
from simkit.polls.draws import draw_polls, draw_polls_reference
from simkit.polls.elections import SimulatedElections
from simkit.polls.compiled_draws import CHUNK_REPLICATES, MIN_PARALLEL_WORK, ONE_BY_ONE_MAX, draw_replicates, strata

from exit_poll_helpers import synthetic_election

#: a fixed-seed test passes when its p-value is above this (false alarm 1 in 1,000 per test)
ALPHA = 1e-3
#: standard errors a mean or a frequency may stray (two-sided 6.8e-6 per comparison under normality)
K_SE = 4.5


def _chi2_p(observed: np.ndarray, pmf: np.ndarray) -> float:
    """Chi-square goodness-of-fit p-value of ``observed`` values against ``pmf`` (support 0 … len − 1), pooling
    cells with expectation below 5 into one."""
    expected = pmf * len(observed)
    counts = np.bincount(observed, minlength=len(pmf))[:len(pmf)]
    assert counts.sum() == len(observed), "a draw fell outside the support"
    keep = expected >= 5
    table_o = np.append(counts[keep], counts[~keep].sum())
    table_e = np.append(expected[keep], expected[~keep].sum())
    if table_e[-1] == 0:
        table_o, table_e = table_o[:-1], table_e[:-1]
    return float(stats.chi2.sf(((table_o - table_e) ** 2 / table_e).sum(), len(table_e) - 1))


def _one_station(good: int, bad: int, replicates: int) -> np.ndarray:
    """(R, 1, 2) votes of one station with ``good`` and ``bad`` ballots in every replicate."""
    return np.broadcast_to(np.array([good, bad], dtype=np.int64), (replicates, 1, 2)).copy()


@pytest.mark.parametrize("good, bad, approached", [(30, 50, 20), (700, 100, 600), (3, 900, 400), (400, 400, 399),
                                                   (20_000, 15_000, 17_000)])
def test_approached_voters_are_hypergeometric(good, bad, approached):
    """The last case's mode probability sums log-factorials from the samplers' constant table (below 2^14) and from
    ``lgamma`` (above): the two must agree for the law to hold."""
    replicates = 4000
    design = PollDesign(n_stations=1, valid=np.array([True, True]), respondents="fixed", per_station=approached)
    _, _, voters, responders, reported = draw_replicates(_one_station(good, bad, replicates), np.arange(replicates),
                                                         np.array([good + bad]), design, seed=1, poll_index=0)
    assert (voters == good + bad).all() and (responders.sum(axis=-1) == approached).all()
    assert (reported == responders).all()
    pmf = stats.hypergeom.pmf(np.arange(approached + 1), good + bad, good, approached)
    assert _chi2_p(responders[:, 0, 0], pmf) > ALPHA


def test_few_approached_voters_are_multivariate_hypergeometric():
    """Up to ONE_BY_ONE_MAX voters are approached one by one: each option's count is hypergeometric against the
    rest, the counts sum to those approached, and the pair (n0, n1) follows the exact multivariate hypergeometric
    law jointly (chi-square over the pairs, cells expected below 5 pooled, level ALPHA)."""
    replicates, counts, approached = 4000, np.array([9, 25, 6]), ONE_BY_ONE_MAX
    assert approached < counts.sum()
    votes = np.broadcast_to(counts, (replicates, 1, 3)).copy()
    design = PollDesign(n_stations=1, valid=np.ones(3, bool), respondents="fixed", per_station=approached)
    _, _, _, responders, _ = draw_replicates(votes, np.arange(replicates), np.array([counts.sum()]), design, seed=6,
                                             poll_index=0)
    assert (responders.sum(axis=-1) == approached).all()
    for option, good in enumerate(counts):
        pmf = stats.hypergeom.pmf(np.arange(approached + 1), counts.sum(), good, approached)
        assert _chi2_p(responders[:, 0, option], pmf) > ALPHA
    first, second = np.meshgrid(np.arange(approached + 1), np.arange(approached + 1), indexing="ij")
    joint = stats.multivariate_hypergeom.pmf(np.stack([first, second, approached - first - second], axis=-1),
                                             counts, approached)
    joint = np.where(first + second <= approached, joint, 0.0).ravel()
    assert abs(joint.sum() - 1) < 1e-9
    pair = responders[:, 0, 0] * (approached + 1) + responders[:, 0, 1]
    assert _chi2_p(pair, joint) > ALPHA


@pytest.mark.parametrize("mode, rate", [("fixed", 0.6), ("whole_flow", 0.6)])
def test_responders_follow_sampling_then_thinning(mode, rate):
    """The reference law, step by step: Hypergeometric(good, bad, m) approached, then Binomial(approached, rate)
    answer (the compiled sampler draws the number who answer first when every option answers alike)."""
    good, bad, per_station, replicates = 60, 40, 50, 4000
    design = PollDesign(n_stations=1, valid=np.array([True, True]), respondents=mode, per_station=per_station,
                        response_rate=rate)
    _, _, _, responders, _ = draw_replicates(_one_station(good, bad, replicates), np.arange(replicates),
                                             np.array([good + bad]), design, seed=2, poll_index=0)
    approached = per_station if mode == "fixed" else good + bad
    reached = np.arange(approached + 1)
    sampled = stats.hypergeom.pmf(reached, good + bad, good, approached)
    pmf = (sampled[:, None] * stats.binom.pmf(np.arange(good + 1)[None, :], reached[:, None], rate)).sum(axis=0)
    assert _chi2_p(responders[:, 0, 0], pmf) > ALPHA
    total_pmf = stats.binom.pmf(np.arange(approached + 1), approached, rate)
    assert _chi2_p(responders[:, 0].sum(axis=-1), total_pmf) > ALPHA


def test_pooled_answers_are_binomial_and_multinomial_on_the_sums():
    """Pooled, the answers of a whole flow are drawn on the sampled stations' sums: every station sampled, option
    j's responders are Binomial(its votes in all, its probability), and misreporting splits the sums."""
    replicates = 4000
    votes = np.broadcast_to(np.array([[30, 12, 4], [50, 8, 6]], dtype=np.int64), (replicates, 2, 3)).copy()
    probability = np.array([0.7, 0.5, 0.9])
    design = PollDesign(n_stations=2, valid=np.ones(3, bool), respondents="whole_flow", response_rate=1.0,
                        response_propensity=probability)
    _, _, voters, responders, reported = draw_replicates(votes, np.arange(replicates), np.array([46, 64]), design,
                                                         seed=4, poll_index=0, pooled=True)
    assert responders.shape == reported.shape == (replicates, 1, 3) and voters.shape == (replicates, 2)
    np.testing.assert_array_equal(reported, responders)
    for option, total in enumerate(votes[0].sum(axis=0)):
        assert _chi2_p(responders[:, 0, option], stats.binom.pmf(np.arange(total + 1), total, probability[option])) > ALPHA
    misreport = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    design = PollDesign(n_stations=2, valid=np.ones(3, bool), respondents="whole_flow", misreport=misreport)
    _, _, _, responders, reported = draw_replicates(votes, np.arange(replicates), np.array([46, 64]), design,
                                                    seed=5, poll_index=0, pooled=True)
    assert (responders[:, 0] == [80, 20, 10]).all() and (reported.sum(axis=-1) == 110).all()
    assert _chi2_p(reported[:, 0, 1] - 20, stats.binom.pmf(np.arange(81), 80, 0.2)) > ALPHA
    assert _chi2_p(reported[:, 0, 0], stats.binom.pmf(np.arange(81), 80, 0.7)) > ALPHA


def test_misreported_answers_are_multinomial():
    replicates = 4000
    misreport = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    votes = np.broadcast_to(np.array([40, 10, 5], dtype=np.int64), (replicates, 1, 3)).copy()
    design = PollDesign(n_stations=1, valid=np.ones(3, bool), respondents="whole_flow", misreport=misreport)
    _, _, _, responders, reported = draw_replicates(votes, np.arange(replicates), np.array([55]), design, seed=3,
                                                    poll_index=0)
    assert (reported.sum(axis=-1) == 55).all() and (responders[..., 0] == 40).all()
    moved_to_second = reported[:, 0, 1] - 10
    assert _chi2_p(moved_to_second, stats.binom.pmf(np.arange(41), 40, 0.2)) > ALPHA
    assert _chi2_p(reported[:, 0, 0], stats.binom.pmf(np.arange(41), 40, 0.7)) > ALPHA


@pytest.mark.parametrize("selection", ["simple", "pps"])
def test_stations_are_drawn_with_their_inclusion_probabilities(selection):
    """Each station's frequency in the sample equals its inclusion probability (simple: n / S; pps: n × size /
    total, the certain stations always), within K_SE standard errors, and the returned probabilities are those."""
    rng = np.random.default_rng(4)
    sizes = rng.integers(100, 1000, 20)
    sizes[3] = 6000  # taken with certainty by a pps sample of 5
    n, replicates = 5, 4000
    votes = np.ones((replicates, 20, 2), dtype=np.int64)
    design = PollDesign(n_stations=n, valid=np.array([True, True]), selection=selection, respondents="whole_flow")
    stations, inclusion, *_ = draw_replicates(votes, np.arange(replicates), sizes, design, seed=5, poll_index=0)
    assert all(len(set(row)) == n for row in stations)
    if selection == "simple":
        expected = np.full(20, n / 20)
    else:
        certain = certain_stations(sizes, n)
        assert certain[3] and certain.sum() == 1
        expected = np.where(certain, 1.0, (n - certain.sum()) * sizes / sizes[~certain].sum())
    frequency = np.bincount(stations.ravel(), minlength=20) / replicates
    se = np.sqrt(expected * (1 - expected) / replicates)
    assert (np.abs(frequency - expected) <= K_SE * se + 1e-12).all()
    np.testing.assert_allclose(inclusion, expected[stations], rtol=1e-9)


def test_regional_sample_takes_each_region_its_allocation():
    ds = synthetic_election(replicates=50, stations=300, options=["a", "b", "invalid"], shares=[0.6, 0.3, 0.1],
                            concentration=20.0, size_sd=0.4, regions=4, seed=6)
    _, region_index = np.unique(ds["region"].values, return_inverse=True)
    design = PollDesign(n_stations=40, valid=np.array([True, True, False]), selection="pps", by_region=True,
                        respondents="fixed", per_station=30)
    stations, *_ = draw_replicates(ds["votes"].values, np.arange(50), ds["registered"].values, design, seed=7,
                                   poll_index=0, region_index=region_index)
    allocation = allocate_by_region(40, region_index, ds["registered"].values)
    for row in stations:
        np.testing.assert_array_equal(np.bincount(region_index[row], minlength=4), allocation)


@pytest.mark.parametrize("design", [
    PollDesign(n_stations=60, valid=np.array([True, True, True, False]), selection="simple", respondents="fixed",
               per_station=40, response_rate=0.7, estimator="raw"),
    PollDesign(n_stations=60, valid=np.array([True, True, True, False]), selection="pps", by_region=True,
               respondents="every_kth", every_kth=4, response_rate=0.8,
               response_propensity=np.array([1.0, 1.2, 0.9, 1.0]),
               misreport=np.array([[0.9, 0.1, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                                   [0.5, 0.0, 0.0, 0.5]]), estimator="weighted"),
    PollDesign(n_stations=40, valid=np.array([True, True, True, False]), selection="pps", respondents="whole_flow",
               response_rate=0.6, misreport=np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0],
                                                      [0.0, 0.0, 1.0, 0.0], [0.4, 0.0, 0.0, 0.6]]),
               estimator="raw"),
], ids=["simple-fixed-raw", "pps-regional-kth-biased-weighted", "pps-whole-flow-misreport-raw"])
def test_published_shares_have_the_numpy_distribution(design):
    """Mean within K_SE standard errors of the difference, and SD within K_SE standard errors of the log SD
    ratio (1 / (R − 1) for two samples), between the compiled sampler and the numpy reference (a raw estimate's
    answers are drawn on the stations' sums, the reference's station by station)."""
    replicates = 600
    ds = synthetic_election(replicates=replicates, stations=400, options=["a", "b", "c", "invalid"],
                            shares=[0.55, 0.25, 0.15, 0.05], concentration=30.0, size_sd=0.3, seed=8)
    _, region_index = np.unique(ds["region"].values, return_inverse=True)
    election = SimulatedElections(ds["votes"], ds["registered"].values, region_index, ds["replicate"].values)
    fast = draw_polls(election, design, seed=9, poll_index=0).shares
    reference = draw_polls_reference(election, design, seed=9, poll_index=0).shares
    se = np.sqrt(fast.var(axis=0, ddof=1) / replicates + reference.var(axis=0, ddof=1) / replicates)
    assert (np.abs(fast.mean(axis=0) - reference.mean(axis=0)) <= K_SE * se).all()
    log_ratio = np.log(fast.std(axis=0, ddof=1) / reference.std(axis=0, ddof=1))
    assert (np.abs(log_ratio) <= K_SE * np.sqrt(1.0 / (replicates - 1))).all()


def test_bit_identical_whatever_the_threads_and_the_replicates_drawn():
    replicates, n = 2 * CHUNK_REPLICATES + 7, 200
    assert replicates * n >= MIN_PARALLEL_WORK  # two workers do run in threads
    ds = synthetic_election(replicates=replicates, stations=500, options=["a", "b", "invalid"],
                            shares=[0.6, 0.3, 0.1], concentration=20.0, size_sd=0.4, seed=10)
    votes, registered = ds["votes"].values, ds["registered"].values
    design = PollDesign(n_stations=n, valid=np.array([True, True, False]), selection="pps", respondents="fixed",
                        per_station=50, response_rate=0.6)
    for pooled in (False, True):
        one = draw_replicates(votes, np.arange(replicates), registered, design, seed=11, poll_index=2, workers=1,
                              pooled=pooled)
        two = draw_replicates(votes, np.arange(replicates), registered, design, seed=11, poll_index=2, workers=2,
                              pooled=pooled)
        some = draw_replicates(votes[70:75], np.arange(70, 75), registered, design, seed=11, poll_index=2,
                               workers=1, pooled=pooled)
        for whole, threaded, part in zip(one, two, some):
            np.testing.assert_array_equal(whole, threaded)
            np.testing.assert_array_equal(whole[70:75], part)
    other_poll = draw_replicates(votes, np.arange(replicates), registered, design, seed=11, poll_index=3, workers=1)
    assert not np.array_equal(one[0], other_poll[0])


def test_a_job_s_reduction_writes_each_chunk_s_draws_reduced_into_its_rows():
    """A job with a reduction (one optional pair: the reducer and the shape of a chunk's draws) draws each chunk
    into its own arrays and writes their reduction into its rows: across chunks, the numbers of the whole draw
    reduced after it."""
    from simkit.polls.compiled_draws import _Job, _job, _Reduction, _run

    replicates, n = CHUNK_REPLICATES + 3, 10
    ds = synthetic_election(replicates=replicates, stations=50, options=["a", "b", "invalid"], shares=[0.6, 0.3, 0.1],
                            concentration=5.0, size_sd=0.8, seed=14)
    votes, registered = ds["votes"].values, ds["registered"].values
    design = PollDesign(n_stations=n, valid=np.array([True, True, False]), respondents="fixed", per_station=5)
    whole = draw_replicates(votes, np.arange(replicates), registered, design, seed=15, poll_index=1)
    _, fields = _job(votes, np.arange(replicates), registered, design, 15, 1, None, False)
    out = (np.empty(replicates, np.int64), np.empty((replicates, 3), np.int64))
    reduction = _Reduction(lambda drawn: (drawn[2].sum(axis=-1), drawn[4].sum(axis=1)), (n, n, 3))
    _run(_Job(**fields, out=out, reduction=reduction), replicates, n, workers=1)
    np.testing.assert_array_equal(out[0], whole[2].sum(axis=-1))
    np.testing.assert_array_equal(out[1], whole[4].sum(axis=1))


def test_counts_are_consistent():
    ds = synthetic_election(replicates=40, stations=300, options=["a", "b", "invalid"], shares=[0.6, 0.3, 0.1],
                            concentration=5.0, size_sd=0.8, seed=12)
    votes = ds["votes"].values
    design = PollDesign(n_stations=100, valid=np.array([True, True, False]), respondents="every_kth", every_kth=3,
                        response_rate=0.9, response_propensity=np.array([1.0, 1.1, 0.5]))
    stations, _, voters, responders, reported = draw_replicates(votes, np.arange(40), ds["registered"].values,
                                                                design, seed=13, poll_index=0)
    station_votes = np.take_along_axis(votes, stations[..., None], axis=1)
    np.testing.assert_array_equal(voters, station_votes.sum(axis=-1))
    assert (responders <= station_votes).all() and (responders >= 0).all()
    assert (responders.sum(axis=-1) <= -(-voters // 3)).all()
    np.testing.assert_array_equal(reported, responders)


def test_response_probability_above_one_is_refused():
    design = PollDesign(n_stations=1, valid=np.array([True, True]), response_rate=0.9,
                        response_propensity=np.array([1.0, 1.5]))
    with pytest.raises(ValueError, match="response probability above 1"):
        draw_replicates(_one_station(5, 5, 2), np.arange(2), np.array([10]), design, seed=0, poll_index=0)


def test_pps_with_stations_without_voters_draws_only_stations_with_voters():
    """Stations of 0 voters have inclusion probability 0: never drawn, never certain, even in a region whose
    stations with voters are all taken with certainty; the others are drawn with their probabilities."""
    sizes = np.array([0, 400, 0, 900, 300, 0, 0, 5000, 0, 0])
    region_index = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    n, replicates = 3, 4000
    votes = np.ones((replicates, 10, 2), dtype=np.int64)
    design = PollDesign(n_stations=n, valid=np.array([True, True]), selection="pps", by_region=True,
                        respondents="whole_flow")
    assert allocate_by_region(n, region_index, sizes, "pps").tolist() == [2, 1]  # region 1 has 1 with voters
    stations, *_ = draw_replicates(votes, np.arange(replicates), sizes, design, seed=5, poll_index=0,
                                   region_index=region_index)
    assert (stations[:, 2] == 7).all() and np.isin(stations[:, :2], [1, 3, 4]).all()
    design = replace(design, by_region=False)
    stations, inclusion, *_ = draw_replicates(votes, np.arange(replicates), sizes, design, seed=5, poll_index=0)
    expected = np.array([0, 400 / 700, 0, 1, 300 / 700, 0, 0, 1, 0, 0])  # 5000 and then 900 are certain
    frequency = np.bincount(stations.ravel(), minlength=10) / replicates
    se = np.sqrt(expected * (1 - expected) / replicates)
    assert (frequency[sizes == 0] == 0).all()
    assert (np.abs(frequency - expected) <= K_SE * se + 1e-12).all()
    np.testing.assert_allclose(inclusion, expected[stations], rtol=1e-9)


def test_kept_strata_belong_to_their_design_and_electorate():
    """The strata kept between draws are those of the design's size, selection and regions and of the register:
    each equals the strata built for that case alone (a region split or a changed register is not served
    another's)."""
    rng = np.random.default_rng(6)
    registered = rng.integers(50, 3000, size=300)
    registered[[0, 5, 9]] = 60_000  # taken with certainty by pps
    region_index = np.arange(300) % 4
    valid = np.array([True, False])
    cases = [(PollDesign(n_stations=30, valid=valid, selection="pps"), registered),
             (PollDesign(n_stations=30, valid=valid, selection="pps", by_region=True), registered),
             (PollDesign(n_stations=30, valid=valid, selection="simple", by_region=True), registered),
             (PollDesign(n_stations=31, valid=valid, selection="pps"), registered),
             (PollDesign(n_stations=30, valid=valid, selection="pps"), registered[::-1].copy())]
    for design, register in cases:
        kept = strata(design, register, region_index)
        regions = [np.flatnonzero(region_index == g) for g in range(4)] if design.by_region else [np.arange(300)]
        takes = allocate_by_region(30, region_index, register) if design.by_region else [design.n_stations]
        certain = np.concatenate([members[certain_stations(register[members], int(take))] if design.selection == "pps"
                                  else members[:0] for members, take in zip(regions, takes)])
        assert np.array_equal(kept.takes, takes)
        assert np.array_equal(kept.certain, certain)
        assert np.array_equal(kept.sizes, register)
        assert len(kept.candidates) + len(kept.certain) == 300
    assert len(strata(cases[0][0], registered, region_index).certain) == 3


def test_kept_poll_states_are_each_replicates_own_whatever_the_order_asked():
    """The kept states are the replicates' own (:func:`replicate_state`) whichever replicates are asked in what
    order, and asking many polls keeps at most KEPT_POLLS of them."""
    from simkit.polls import compiled_draws

    compiled_draws._STATE_TABLES.clear()
    for replicates in ([3, 1], [0, 7, 7, 2], [], [12, 5]):
        states = compiled_draws.poll_states(9, 1, np.array(replicates, dtype=np.int64))
        expected = [compiled_draws.replicate_state(9, replicate, 1) for replicate in replicates]
        assert states.shape == (len(replicates), 4) and np.array_equal(states, np.array(expected).reshape(-1, 4))
    assert compiled_draws._STATE_TABLES[9, 1].shape == (13, 4)
    for poll in range(compiled_draws.KEPT_POLLS + 5):
        compiled_draws.poll_states(10, poll, np.arange(2))
    assert len(compiled_draws._STATE_TABLES) == compiled_draws.KEPT_POLLS
    assert (9, 1) not in compiled_draws._STATE_TABLES and (10, compiled_draws.KEPT_POLLS + 4) in compiled_draws._STATE_TABLES
