"""Digit, distribution, correlation and excess-vote tests on planted and honest synthetic returns."""
from __future__ import annotations

import numpy as np
import pytest

from forensics_helpers import honest_dataset, stuff_ballots
from simkit.forensics import correlation, dip, fingerprint, log_vote_rate, shpilkin, sobyanin, spikes
from simkit.forensics.digits import last as last_digit, second as second_digit, zero_five
from simkit.forensics.core import election
from simkit.forensics.digits.shared import benford_second_digit, second_digit as second_digits


def test_benford_second_digit_law_has_its_textbook_mean():
    law = benford_second_digit()
    assert law.sum() == pytest.approx(1.0)
    assert (np.arange(10) * law).sum() == pytest.approx(4.187, abs=5e-4)


def test_second_digit_of_counts():
    assert second_digits(np.array([10, 19, 123, 4567])).tolist() == [0, 9, 2, 5]


def _rounded_counts(ds, fraction, seed):
    """Replace ``fraction`` of stations' counts by multiples of 10 (an invented-numbers pattern)."""
    out = ds.copy(deep=True)
    chosen = np.random.default_rng(seed).random(ds.sizes["station"]) < fraction
    votes = out["votes"].values
    votes[chosen] = (votes[chosen] // 10) * 10
    out["ballots"].values[:] = votes.sum(axis=1)
    return out


@pytest.mark.parametrize("module", [last_digit, zero_five])
def test_digit_tests_reject_invented_round_counts(module):
    e = election(_rounded_counts(honest_dataset(3000, seed=20), 0.2, seed=21))
    assert module.run(e).p_value < 0.001


@pytest.mark.parametrize("module", [last_digit, zero_five, log_vote_rate])
def test_textbook_tests_accept_binomial_returns(module):
    """Honest binomial counts of hundreds have uniform last digits and a normal-looking log rate: a fixed-seed
    check that the test does not reject at 0.01 (size is checked by simulation in test_forensics_core)."""
    e = election(honest_dataset(3000, seed=22, share_sd=0.03, turnout_sd=0.03))
    assert module.run(e).p_value > 0.01


def test_dip_rejects_two_turnout_modes():
    low = honest_dataset(3000, seed=23, turnout_mean=0.4, turnout_sd=0.03)
    high = honest_dataset(3000, seed=24, turnout_mean=0.8, turnout_sd=0.03)
    import xarray as xr

    e = election(xr.concat([low, high], dim="station"))
    assert dip.run(e).p_value < 0.001
    assert dip.run(election(low)).p_value > 0.01


def test_ballot_stuffing_raises_correlation_slope_and_excess():
    honest = honest_dataset(5000, seed=25)
    stuffed = election(stuff_ballots(honest, 0.05, seed=26))
    e = election(honest)
    assert correlation.statistic(stuffed) > correlation.statistic(e) + 0.1
    assert sobyanin.run(stuffed).statistic > sobyanin.run(stuffed).reference
    result = shpilkin.run(stuffed, draws=200, rng=1)
    assert result.p_value < 0.01 and result.extra["excess_votes"] > 0
    assert fingerprint.statistic(stuffed) > fingerprint.statistic(e)


def test_shpilkin_finds_no_excess_in_honest_returns():
    result = shpilkin.run(election(honest_dataset(5000, seed=27)), draws=200, rng=2)
    assert result.p_value > 0.01


def test_spikes_detects_shares_written_as_round_fractions():
    ds = honest_dataset(5000, seed=28)
    chosen = np.random.default_rng(29).random(5000) < 0.05
    ballots = ds["ballots"].values
    ds["votes"].values[:, 0] = np.where(chosen, np.round(ballots * 0.6), ds["votes"].values[:, 0])
    ds["votes"].values[:, 1] = ballots - ds["votes"].values[:, 0]
    planted = spikes.run(election(ds), draws=200, rng=3)
    assert planted.p_value < 0.01
    assert planted.extra["fraud_share"] == pytest.approx(chosen.mean(), abs=0.02)
    assert spikes.run(election(honest_dataset(5000, seed=30)), draws=200, rng=4).p_value > 0.01


def test_second_digit_runs_on_counts_of_two_digits_and_more():
    result = second_digit.run(election(honest_dataset(2000, seed=31)))
    assert result.extra["counts_tested"] == 4000 and 0 <= result.p_value <= 1


@pytest.mark.parametrize("seed", range(5))
def test_sample_skewness_equals_scipy_skew(seed):
    """The log vote rate's skewness is scipy's biased sample skewness, to the bit (and NaN on constant data)."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=int(rng.integers(3, 20000))) * rng.uniform(0.01, 10) + rng.uniform(-5, 5)
    assert log_vote_rate.sample_skewness(x) == float(stats.skew(x))
    assert np.isnan(log_vote_rate.sample_skewness(np.full(7, 2.5)))


def _small_station_returns(n_stations: int, seed: int, *, latent_turnout):
    """Two-option returns of ``n_stations`` stations of 3 to 7 voters: binomial ballots at a latent turnout drawn
    by ``latent_turnout(gen, size)``, the leader's votes binomial at one half."""
    import xarray as xr

    gen = np.random.default_rng(seed)
    registered = gen.integers(3, 8, n_stations)
    ballots = gen.binomial(registered, latent_turnout(gen, n_stations))
    leader = gen.binomial(ballots, 0.5)
    return xr.Dataset({"registered": ("station", registered), "ballots": ("station", ballots),
                       "votes": (("station", "option"), np.stack([leader, ballots - leader], axis=-1))},
                      coords={"option": ["a", "b"]})


def test_dip_spread_turnout_is_uniform_under_the_least_favourable_null():
    """Ballots of a uniform latent turnout are uniform on 0..n, so the spread turnout is exactly uniform on [0, 1]
    at every register: a Kolmogorov-Smirnov test does not reject it, where the raw turnout's lattice fails (every
    station, those without ballots included, which an election leaves out)."""
    from scipy import stats

    ds = _small_station_returns(20000, seed=31, latent_turnout=lambda gen, n: gen.random(n))
    registered, ballots = ds["registered"].values, ds["ballots"].values
    spread = dip.spread_turnout(registered, ballots, np.random.default_rng(0))
    assert stats.kstest(spread, "uniform").pvalue > 0.01
    assert stats.kstest(ballots / registered, "uniform").pvalue < 1e-6


def test_dip_textbook_null_does_not_read_small_stations_lattice_as_modes():
    """A clean election of stations of 3 to 7 voters (unimodal latent turnout): the turnout's atoms on its
    lattice made the textbook dip reject (dip 0.0997 on these 1,967 stations with ballots, p below 1e-6); the
    spread turnout's dip does not, and the simulated null, whose draws share the lattice, still reads the raw
    turnout."""
    e = election(_small_station_returns(2000, seed=32, latent_turnout=lambda gen, n: gen.beta(14, 6, n)))
    assert dip.DipLaw(e.n).sf(dip.statistic(e)) < 1e-6
    result = dip.run(e)
    assert result.statistic == dip.textbook_statistic(e)
    assert result.p_value > 0.05
    assert dip.run(e, null="simulated", null_statistics=np.full(19, 0.0)).statistic == dip.statistic(e)
