"""Values an election computes once (:mod:`simkit.forensics.computed`), and the fast paths of the statistics that
use them: each is checked against the plain numpy computation it replaces."""
from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest
from scipy import stats

from simkit.forensics import shpilkin, sobyanin, spikes
from simkit.forensics.computed import Computed
from simkit.forensics.core import Election
from simkit.forensics.digits import last, second, zero_five
from simkit.forensics.digits.shared import candidate_counts, digit_counts, second_digit
from simkit.forensics.klimek.first_stage import MIN_GROUP_STATIONS, honest_groups


def _election(n: int = 400, seed: int = 0, region=None, district=None) -> Election:
    rng = np.random.default_rng(seed)
    registered = rng.integers(100, 3000, n)
    ballots = rng.binomial(registered, 0.6)
    leader = rng.binomial(ballots, 0.55)
    invalid = rng.binomial(ballots - leader, 0.05)
    votes = np.column_stack([leader, ballots - leader - invalid, invalid])
    region = np.array(["north", "south"])[rng.integers(0, 2, n)] if region is None else region
    return Election(registered=registered, ballots=ballots, votes=votes, options=("a", "b", "invalid"), leader=0,
                    region=region, station_id=np.arange(n).astype(str), district=district)


def test_election_arrays_and_derived_values_are_read_only_and_the_callers_arrays_are_not():
    registered = np.array([100, 200, 300])
    ballots = np.array([50, 100, 150])
    e = Election(registered=registered, ballots=ballots, votes=np.column_stack([ballots // 2, ballots - ballots // 2]),
                 options=("a", "b"), leader=0, region=np.array(["r"] * 3), station_id=np.array(["1", "2", "3"]))
    for values in (e.registered, e.ballots, e.votes, e.turnout, e.leader_share, e.leader_votes):
        with pytest.raises(ValueError, match="read-only"):
            values[0] = 0
    registered[0] = 1  # the caller's own array stays writeable
    assert registered.flags.writeable
    assert e.turnout is e.turnout  # computed once


def test_other_counts_recompute_count_values_and_keep_the_geography():
    e = _election()
    groups, turnout = honest_groups(e), e.turnout
    other = e.with_counts(e.ballots // 2, e.votes // 2)
    assert honest_groups(other) is groups  # regions and districts unchanged: shared
    assert np.array_equal(other.turnout, (e.ballots // 2) / e.registered) and other.turnout is not turnout
    assert np.array_equal(e.turnout, turnout)


@pytest.mark.parametrize("options, leader", [(("a", "b", "invalid"), None), (None, 1)])
def test_other_counts_take_both_column_names_or_neither(options, leader):
    e = _election(20)
    with pytest.raises(ValueError, match="both options and leader"):
        e.with_counts(e.ballots, e.votes, options, leader)
    assert e.with_counts(e.ballots, e.votes, ("b", "a", "invalid"), 1).options[1] == "a"


def test_fewer_stations_recompute_their_honest_groups():
    region = np.array(["a"] * 40 + ["b"] * 40)
    e = _election(80, region=region)
    assert np.unique(honest_groups(e)).size == 2
    keep = np.arange(80) >= 15  # region a keeps 25 stations: too few for a group of its own
    fewer = e.stations(keep)
    fresh = _election(80, region=region).stations(keep)  # never computed on the whole election
    assert np.array_equal(honest_groups(fewer), honest_groups(fresh))
    assert np.unique(honest_groups(fewer)).size == 2 and np.sum(honest_groups(fewer) == 0) == 25  # a: pooled


def test_a_pickled_election_is_read_only_and_computes_afresh():
    e = _election()
    honest_groups(e)
    copy = pickle.loads(pickle.dumps(e))
    assert not copy.ballots.flags.writeable and "honest_groups" not in copy._geographic
    assert np.array_equal(honest_groups(copy), honest_groups(e))


def test_a_value_asked_for_by_several_threads_is_computed_once():
    computed, calls = Computed(), []

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return np.arange(3)

    threads = [threading.Thread(target=computed.get, args=("key", slow)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and not computed.get("key", slow).flags.writeable


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_computes_the_value_a_parent_thread_was_computing():
    """The lock a parent thread held at the fork is not inherited locked: the child computes the value itself."""
    computed, started, release = Computed(), threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait()
        return np.arange(2)

    thread = threading.Thread(target=computed.get, args=("key", slow))
    thread.start()
    started.wait()
    child = os.fork()
    if child == 0:  # the child: exit 0 when it computed its own value
        os._exit(0 if computed.get("key", lambda: np.arange(5)).size == 5 else 1)
    release.set()
    thread.join()
    deadline = time.monotonic() + 30
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert done[0] == child and os.waitstatus_to_exitcode(done[1]) == 0
    assert computed.get("key", slow).size == 2


def _labelled_groups(e: Election) -> np.ndarray:
    """Honest groups by their string labels: district label ``region\\x1fdistrict``, else region, else pooled."""
    levels = [np.char.add(np.char.add(e.region, "\x1f"), e.district), e.region]
    label = np.full(e.n, "", dtype=object)
    for level in levels:
        free = np.flatnonzero(label == "")
        _, index, counts = np.unique(level[free], return_inverse=True, return_counts=True)
        take = free[counts[index] >= MIN_GROUP_STATIONS]
        label[take] = level[take]
    return np.unique(label.astype(str), return_inverse=True)[1]


def test_honest_groups_number_groups_in_the_order_of_their_labels():
    """Names that are prefixes of others, and regions whose districts share names, keep the labels' order."""
    rng = np.random.default_rng(3)
    names = np.array(["A", "A b", "Ab", "A\tq", "B", "AB", "a"])
    for trial in range(40):
        n = int(rng.integers(50, 400))
        region = names[rng.integers(0, names.size, n)]
        district = names[rng.integers(0, 3, n)] if trial % 2 else region
        e = _election(n, seed=trial, region=region, district=district)
        assert np.array_equal(honest_groups(e), _labelled_groups(e)), trial


def test_digit_tallies_equal_the_digits_of_the_counts():
    e = _election(300, seed=5)
    votes = np.array(e.votes)
    votes[:12, 1] = [10, 99, 100, 101, 999, 1000, 1009, 9999, 10000, 10500, 12, 55]
    e = e.with_counts(e.ballots, votes)
    counts = candidate_counts(e, 10)
    assert np.array_equal(digit_counts(e, 10, second=True), np.bincount(second_digit(counts), minlength=10))
    assert second.statistic(e) == second_digit(counts).mean()
    big = candidate_counts(e, 100)
    assert np.array_equal(digit_counts(e, 100), np.bincount(big % 10, minlength=10))
    assert last.statistic(e) == (big % 10).mean() and zero_five.statistic(e) == ((big % 5) == 0).mean()


def test_expected_spike_mass_is_the_mean_score_under_the_binomial_redraw():
    """Exact against the sum over every possible count; the 6-SD window drops less than 1e-8 per station."""
    e = _election(60, seed=7)
    votes = np.array(e.votes)
    votes[:3, 0] = [e.ballots[0] // 2, 0, e.ballots[2]]  # a spike, a share of 0 and one of 1
    votes[:3, 1] = e.ballots[:3] - votes[:3, 0]
    votes[:3, 2] = 0
    e = e.with_counts(e.ballots, votes)
    used = e.ballots >= spikes.MIN_BALLOTS
    assert used[:3].all() and not used.all()
    brute = np.mean([(stats.binom.pmf(np.arange(b + 1), b, p) * spikes._station_score(np.arange(b + 1) / b)).sum()
                     for b, p in zip(e.ballots[used], e.leader_share[used])])
    assert spikes.expected_spike_mass(e) == pytest.approx(brute, abs=1e-8)


def test_spikes_textbook_redraws_follow_the_binomial_law_and_each_draw_its_own_seed():
    """The compiled redraws of the textbook null: over 2,000 draws their mean and variance match the exact mean
    and variance of the spike mass under W ~ Bin(ballots, share) per used station (mean within 4 SE; variance
    within the chi-square's central 99.98%), and draw ``i`` depends on the ``i``-th child seed alone."""
    e = _election(400, seed=11)
    used = e.ballots >= spikes.MIN_BALLOTS
    moments = []
    for b, p in zip(e.ballots[used], e.leader_share[used]):
        pmf, score = stats.binom.pmf(np.arange(b + 1), b, p), spikes._station_score(np.arange(b + 1) / b)
        moments.append(((pmf * score).sum(), (pmf * score ** 2).sum() - (pmf * score).sum() ** 2))
    mean, variance = np.mean([m for m, _ in moments]), np.sum([v for _, v in moments]) / used.sum() ** 2
    draws = 2000
    redrawn = spikes.resampled(e, draws, np.random.SeedSequence(5))
    assert redrawn.shape == (draws,)
    assert abs(redrawn.mean() - mean) < 4 * np.sqrt(variance / draws)
    chi2 = (draws - 1) * redrawn.var(ddof=1) / variance
    assert stats.chi2.ppf(1e-4, draws - 1) < chi2 < stats.chi2.ppf(1 - 1e-4, draws - 1)
    assert np.array_equal(spikes.resampled(e, 7, np.random.SeedSequence(5)), redrawn[:7])
    assert not np.array_equal(spikes.resampled(e, 7, np.random.SeedSequence(6)), redrawn[:7])


def test_sobyanin_slope_is_linregress_slope_bit_for_bit():
    """The slope by linregress's own covariance formula is its slope exactly, and fails where it fails."""
    for seed in range(5):
        e = _election(300 + 50 * seed, seed=seed)
        assert sobyanin.statistic(e) == stats.linregress(e.turnout, e.leader_votes / e.registered).slope
    flat = _election(20, seed=1)
    flat = Election(registered=np.full(20, 1000), ballots=np.full(20, 600), votes=flat.votes * 0 + [300, 290, 10],
                    options=flat.options, leader=0, region=flat.region, station_id=flat.station_id)
    with pytest.raises(ValueError):
        stats.linregress(flat.turnout, flat.leader_votes / flat.registered)
    with pytest.raises(ValueError):
        sobyanin.statistic(flat)


def test_clean_turnout_bins_as_numpy_histogram():
    """Turnouts on and beside the 1-point edges land in numpy's bins (the last one closed)."""
    rng = np.random.default_rng(9)
    edges = np.arange(0, 1 + shpilkin.BIN_WIDTH, shpilkin.BIN_WIDTH)
    for trial in range(30):
        registered = np.full(500, 100) if trial % 2 else rng.integers(1, 3000, 500)
        ballots = np.clip(np.round(registered * rng.integers(0, 101, 500) / 100), 1, registered).astype(np.int64)
        e = Election(registered=registered, ballots=ballots, votes=np.column_stack([ballots // 2, ballots - ballots // 2]),
                     options=("a", "b"), leader=0, region=np.full(500, "r"), station_id=np.arange(500).astype(str))
        weights, _ = np.histogram(np.clip(e.turnout, 0, 1), bins=edges, weights=e.registered)
        assert shpilkin.clean_turnout(e) == float(edges[np.argmax(weights) + 1]), trial


def test_spike_scores_find_the_nearest_coarse_fraction_as_a_scan_of_all_does():
    """The spikes score looks at a share's two neighbouring multiples of 1/GRID and the thirds: on every lattice
    share k/n of 1 to 600 ballots and on random shares, it scores as a scan of all the coarse fractions does."""
    lattice = np.concatenate([np.arange(n + 1) / n for n in range(1, 601)])
    shares = np.concatenate([lattice, np.random.default_rng(3).random(100_000), [0.0, 1.0]])
    distance = np.abs(shares[:, None] - spikes.FRACTIONS[None, :]).min(axis=1)
    scan = np.where(distance <= spikes.HALF_WIDTH, 1.0, np.where(distance <= 3 * spikes.HALF_WIDTH, -0.5, 0.0))
    assert spikes.FRACTIONS.size == 21
    assert np.array_equal(spikes._station_score(shares), scan)
    assert (scan == 1.0).sum() > 1000 and (scan == -0.5).sum() > 1000  # both bands are exercised
