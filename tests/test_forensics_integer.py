"""Integer-percentage test (Kobak, Shpilkin & Pshenichnikov 2016): planted data, size, exact moments, real data."""
from __future__ import annotations

import numpy as np
import pytest

from forensics_helpers import honest_dataset
from simkit.data import data_file
from simkit.forensics.integer import percent as integer_percent
from simkit.forensics.core import election
from simkit.schema import rejects


def _planted(n, fraction, seed):
    """Honest returns where ``fraction`` of stations report a leader share rounded to a whole percent."""
    ds = honest_dataset(n, seed=seed)
    gen = np.random.default_rng(seed + 1)
    chosen = gen.random(n) < fraction
    ballots = ds["ballots"].values
    share = ds["votes"].values[:, 0] / ballots
    rounded = np.round(np.round(share * 100) / 100 * ballots).astype(np.int64)
    ds["votes"].values[:, 0] = np.where(chosen, rounded, ds["votes"].values[:, 0])
    ds["votes"].values[:, 1] = ballots - ds["votes"].values[:, 0]
    return ds, int(chosen.sum())


def test_planted_integer_percentages_are_detected_and_counted():
    ds, planted = _planted(4000, 0.1, seed=10)
    result = integer_percent.run(election(ds), draws=300, rng=1)
    assert result.p_value < 0.01
    # planted stations that would have been integer anyway (about the null rate) add no excess
    null_rate = result.extra["null_mean"] / result.extra["stations_used"]
    expected = planted * (1 - null_rate)
    assert abs(result.extra["excess"] - expected) <= 4 * result.extra["null_sd"]


def test_binomial_returns_have_nominal_size():
    """Binomial elections are the null itself: rejection rate 0.05 within 3 binomial standard errors."""
    replicates, rejected = 120, 0
    for r in range(replicates):
        e = election(honest_dataset(600, seed=1000 + r))
        rejected += rejects(integer_percent.run(e, draws=99, rng=r).p_value)
    se = np.sqrt(0.05 * 0.95 / replicates)
    assert abs(rejected / replicates - 0.05) <= 3 * se + 1 / 100  # + one p step: the statistic is a count (ties)


def test_exact_poisson_binomial_moments_agree_with_resampling():
    e = election(honest_dataset(400, seed=11))
    draws = 4000
    resampled, _ = integer_percent.binomial_null(e, draws, 5)
    mean, sd = integer_percent.exact_null_moments(e)
    assert abs(resampled.mean() - mean) <= 4 * sd / np.sqrt(draws)
    assert abs(resampled.std(ddof=1) / sd - 1) <= 4 / np.sqrt(2 * (draws - 1))


def test_station_probabilities_match_a_direct_sum_on_a_small_station():
    """One station: P(integer) summed over every (ballots, leader) pair by brute force."""
    from scipy import stats

    registered, ballots, leader = 150, 90, 50
    ds = honest_dataset(1, seed=0)
    ds["registered"].values[:] = registered
    ds["ballots"].values[:] = ballots
    ds["votes"].values[:] = [[leader, ballots - leader]]
    e = election(ds)
    t, v = ballots / registered, leader / ballots
    total = 0.0
    for b in range(registered + 1):
        pb = stats.binom.pmf(b, registered, t)
        for w in range(b + 1):
            integer = integer_percent.integer_stations(np.array(registered), np.array(b), np.array(w))
            total += pb * stats.binom.pmf(w, b, v) * bool(integer)
    assert integer_percent.station_probabilities(e, sds=12.0, compiled=False)[0] == pytest.approx(total, rel=1e-6)
    assert integer_percent.station_probabilities(e, sds=12.0, compiled=True)[0] == pytest.approx(total, rel=1e-6)


def test_compiled_station_probabilities_equal_the_numpy_reference():
    """Stations of all sizes (tiny ones where a ballot count hits several percents, large ones where the
    ±0.05 window holds several counts). Both drop the binomial tails beyond ±6 SD (less than 1e-8), at
    slightly different edges: agreement to 1e-8."""
    ds = honest_dataset(600, seed=21)
    ds["registered"].values[:200] = np.random.default_rng(3).integers(100, 200, 200)
    ds["ballots"].values[:200] = np.minimum(ds["ballots"].values[:200], ds["registered"].values[:200] - 1)
    ds["votes"].values[:200, 0] = np.minimum(ds["votes"].values[:200, 0], ds["ballots"].values[:200])
    ds["votes"].values[:200, 1] = ds["ballots"].values[:200] - ds["votes"].values[:200, 0]
    ds["registered"].values[200:400] *= 5
    ds["ballots"].values[200:400] *= 5
    ds["votes"].values[200:400] *= 5
    e = election(ds)
    compiled = integer_percent.station_probabilities(e, compiled=True)
    reference = integer_percent.station_probabilities(e, compiled=False)
    np.testing.assert_allclose(compiled, reference, rtol=0, atol=1e-8)


def test_poisson_binomial_tail_matches_the_exact_convolution():
    """The refined normal approximation against the exact pmf (convolution) for 3,000 Bernoullis at the
    integer test's rates: within 5% relative for tail probabilities down to 1e-4."""
    p = np.random.default_rng(8).uniform(0.02, 0.3, 3000)
    pmf = np.array([1.0])
    for q in p:
        pmf = np.convolve(pmf, [1 - q, q])
    upper = pmf[::-1].cumsum()[::-1]  # P(X >= k)
    mean, sd = p.sum(), np.sqrt((p * (1 - p)).sum())
    for k in np.round(mean + sd * np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 3.7])).astype(int):
        assert integer_percent.poisson_binomial_upper_tail(k, p) == pytest.approx(upper[k], rel=0.05), k


def test_exact_and_resampled_tests_agree_on_planted_data():
    ds, _ = _planted(3000, 0.02, seed=30)
    exact = integer_percent.run(election(ds), method="exact")
    resampled = integer_percent.run(election(ds), method="resample", draws=2000, rng=4)
    assert abs(exact.extra["null_mean"] - resampled.extra["null_mean"]) <= 4 * exact.extra["null_sd"] / np.sqrt(2000)
    assert abs(exact.p_value - resampled.p_value) <= 3 * np.sqrt(max(exact.p_value, 1 / 2000) / 2000) + 1 / 2000


@pytest.mark.parametrize("preset, relative, published", [
    ("russia-2011", "russia/2011.csv.zip", 1003),
    ("russia-2018", "russia/2018.csv.zip", 1709),
])
def test_russia_excess_matches_the_published_rerun(preset, relative, published):
    if data_file(relative) is None:
        pytest.skip(f"shared data {relative} absent")
    from simkit.electorate.returns import load_returns

    result = integer_percent.run(election(load_returns(preset=preset)), draws=1000, rng=2016)
    print(f"{preset}: excess {result.extra['excess']:.0f}, null sd {result.extra['null_sd']:.1f}")
    assert abs(result.extra["excess"] - published) <= 0.1 * published
    assert 90 <= result.extra["null_sd"] <= 140
    assert result.p_value < 0.01


def test_share_lattice_holds_exactly_the_integer_shares_of_each_ballot_count():
    """Every count w of b ballots (b up to 2,500, where the ±0.05 window holds up to 3 counts) whose share is
    a whole percent by :func:`integer_percent.is_integer_percent`, and no other."""
    from simkit.forensics.integer.exact import share_lattice

    offsets, counts = share_lattice(2500, integer_percent.WINDOW)
    assert offsets[1] == 0  # none for 0 ballots
    for b in range(1, 2501):
        w = np.arange(b + 1)
        expected = w[integer_percent.is_integer_percent(w, np.full(b + 1, b))]
        np.testing.assert_array_equal(counts[offsets[b]:offsets[b + 1]], expected)


def test_station_probabilities_beyond_the_lattice_equal_those_within(monkeypatch):
    """Ballot counts above ``LATTICE_MAX_BALLOTS`` find their whole-percent shares as they go: the same
    probabilities, bit for bit, as with every count tabulated."""
    from simkit.forensics.integer import exact

    registered = np.array([150, 900, 2400, 5000])
    turnout, share = np.array([0.6, 0.55, 0.7, 0.8]), np.array([0.5, 0.62, 0.71, 0.9])
    tabulated = exact.station_probabilities(registered, turnout, share, integer_percent.WINDOW, 6.0)
    monkeypatch.setattr(exact, "LATTICE_MAX_BALLOTS", 1000)
    exact._cached_share_lattice.cache_clear()
    np.testing.assert_array_equal(exact.station_probabilities(registered, turnout, share, integer_percent.WINDOW,
                                                              6.0), tabulated)
