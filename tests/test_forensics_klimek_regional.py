"""Klimek's fits on returns whose honest vote differs by region: regional structure is not read as stuffing,
planted stuffing is still found, alpha has a real interval, and the fits' disagreements and warnings are
recorded in the result."""
from __future__ import annotations


import numpy as np
import pytest
import xarray as xr

from simkit.forensics.klimek import histogram as klimek, ml as klimek_ml
from simkit.forensics import run_each
from simkit.forensics.core import Election, election
from test_forensics_klimek import stuff_klimek

#: honest centres (turnout, leader share) of six regions: a national cloud would span 0.45..0.85 x 0.30..0.75
CENTRES = np.array([[0.45, 0.30], [0.55, 0.70], [0.65, 0.45], [0.75, 0.60], [0.85, 0.75], [0.50, 0.55]])
STATIONS_PER_REGION = 800
SD = 0.06


def regional_returns(seed: int) -> xr.Dataset:
    """Honest two-option returns: turnout and leader share normal (SD 0.06) around each region's own centres
    (``CENTRES``), binomial counts at registers of 500..2500."""
    gen = np.random.default_rng(seed)
    region = np.repeat(np.arange(len(CENTRES)), STATIONS_PER_REGION)
    registered = gen.integers(500, 2500, region.size)
    turnout = np.clip(gen.normal(CENTRES[region, 0], SD), 0.05, 0.95)
    share = np.clip(gen.normal(CENTRES[region, 1], SD), 0.05, 0.95)
    ballots = gen.binomial(registered, turnout)
    leader = gen.binomial(ballots, share)
    return xr.Dataset({"registered": ("station", registered), "ballots": ("station", ballots),
                       "votes": (("station", "option"), np.stack([leader, ballots - leader], axis=-1))},
                      coords={"option": ["a", "b"], "region": ("station", np.char.add("r", region.astype(str)))})


@pytest.fixture(scope="module")
def regional():
    return election(regional_returns(seed=7))


def test_likelihood_fit_reads_no_stuffing_into_regional_honest_returns(regional):
    """Both fractions' 95% intervals (1.96 standard errors, with the honest part's and alpha's uncertainty)
    contain 0. The fit with one national honest cloud read these returns as f_i 0.69 [0.64, 0.75]."""
    x = klimek_ml.fit(regional.turnout, regional.leader_share, klimek.honest_groups(regional))
    print({k: x[k] for k in ("f_incremental", "f_incremental_low", "f_incremental_high", "f_extreme",
                             "f_extreme_low", "f_extreme_high")})
    assert x["f_incremental_low"] == 0 and x["f_extreme_low"] == 0


def test_distance_fit_reads_no_stuffing_into_regional_honest_returns(regional, monkeypatch):
    """f_i within 3 standard errors of 0 (the SE from the bootstrap interval's width / 3.92), f_e's interval
    reaches 0 and the fits do not disagree (5 bootstrap replicates instead of 20 to save time). The fit with
    one national honest cloud read these returns as f_i 0.21 [0.11, 0.32], 3.9 SE from 0 (and failed)."""
    monkeypatch.setattr(klimek, "REPLICATES", 5)
    result = klimek.run(regional, draws=1, rng=5)
    x = result.extra
    print({k: x[k] for k in ("f_incremental", "f_incremental_low", "f_incremental_high", "f_extreme_low")})
    standard_error = (x["f_incremental_high"] - x["f_incremental_low"]) / (2 * 1.96)
    assert x["f_incremental"] <= 3 * standard_error and x["f_extreme_low"] == 0
    assert x["fits_disagree"] == {}


def test_planted_stuffing_in_regional_returns_is_found_with_an_alpha_interval(regional):
    """The engine's stuffing (f_i 0.2, f_e 0.02, theta 0.3, alpha 2) on the regional returns: both fractions
    are detected (intervals above 0), the 95% intervals cover the planted f_i and alpha, and alpha's interval
    has positive width."""
    stuffed = stuff_klimek(regional, seed=3, theta=0.3)
    result = run_each(stuffed, ["klimek_ml"], "simulated", 19, 3, tolerate=False)["klimek_ml"]
    x = result.extra
    print({k: x[k] for k in x if k != "assumptions"})
    assert result.p_value <= 1 / 20
    assert x["f_incremental_low"] > 0 and x["f_extreme_low"] > 0
    assert x["f_incremental_low"] <= 0.2 <= x["f_incremental_high"]
    assert x["alpha_low"] < x["alpha_high"] and x["alpha_low"] <= 2 <= x["alpha_high"]


def _stations(region: np.ndarray, district: np.ndarray | None = None) -> Election:
    """An election of one voter per station in these regions (and districts)."""
    one = np.ones(region.size, dtype=np.int64)
    return Election(registered=one, ballots=one, votes=one[:, None], options=("x",), leader=0, region=region,
                    station_id=np.arange(region.size).astype(str), district=district)


def test_honest_groups_pool_small_units():
    """Districts of 30 or more stations are groups; the rest of a region is one when it has 30 or more; what
    is left is pooled: no unit is too small to fit, whatever the geography."""
    region = np.array(["a"] * 100 + ["b"] * 40 + ["c"] * 10 + ["d"] * 5)
    district = np.array(["a1"] * 60 + ["a2"] * 25 + ["a3"] * 15 + ["b1"] * 40 + ["c1"] * 10 + ["d1"] * 5)
    plain = klimek.honest_groups(_stations(region))
    assert [np.unique(plain[region == r]).size for r in "abcd"] == [1, 1, 1, 1]
    assert np.unique(plain).size == 3 and plain[100 + 40] == plain[-1]  # c and d pooled
    nested = klimek.honest_groups(_stations(region, district))
    sizes = np.bincount(nested)
    assert sorted(sizes) == sorted([60, 40, 40, 15])  # a1, the rest of a (a2 + a3), b1, pooled c + d


def test_every_station_its_own_region_runs():
    """A lower-level geography with one station per unit (all pooled) fits like one national cloud."""
    ds = regional_returns(seed=8).isel(station=slice(0, 600))
    ds = ds.assign_coords(region=("station", np.arange(600).astype(str)))
    e = election(ds)
    assert np.all(klimek.honest_groups(e) == 0)
    assert np.isfinite(klimek_ml.statistic(e))


def test_fits_disagree_names_both_estimates_when_intervals_do_not_overlap():
    distance = {"f_incremental": 0.18, "f_incremental_low": 0.15, "f_incremental_high": 0.21,
                "f_extreme": 0.01, "f_extreme_low": 0.0, "f_extreme_high": 0.02}
    likelihood = {"f_incremental": 0.31, "f_incremental_low": 0.29, "f_incremental_high": 0.33,
                  "f_extreme": 0.015, "f_extreme_low": 0.01, "f_extreme_high": 0.02}
    assert klimek.fits_disagree(distance, likelihood) == {
        "f_incremental": {"distance": [0.18, 0.15, 0.21], "likelihood": [0.31, 0.29, 0.33]}}
    assert klimek.fits_disagree(distance, distance) == {}


def test_cli_table_shows_the_fits_disagreement():
    from simkit.cli.forensics import format_table
    from simkit.forensics.core import TestResult

    figures = {f"{name}{end}": 0.1 for name in ("f_incremental", "f_extreme", "alpha") for end in ("", "_low", "_high")}
    disagree = {"f_incremental": {"distance": [0.18, 0.15, 0.21], "likelihood": [0.31, 0.29, 0.33]}}
    result = TestResult(test="klimek", statistic=1.0, reference=0.0, p_value=0.01, null="textbook",
                        verdict="anomaly", extra={**figures, "fits_disagree": disagree})
    summary = {"source": "x.csv", "stations_used": 10, "leader": "a", "null": "textbook", "draws": 1,
               "stations_excluded": {}}
    table = format_table([result], summary)
    assert "fits disagree on f_incremental: distance 0.18 [0.15, 0.21], likelihood 0.31 [0.29, 0.33]" in table


def test_cli_table_says_what_klimek_ml_statistic_is():
    """Under a simulated null klimek_ml's statistic (the extreme-only f_e) differs from the joint fit's f_e
    printed below it: the table names it."""
    from simkit.cli.forensics import format_table
    from simkit.forensics.core import TestResult

    figures = {f"{name}{end}": 0.1 for name in ("f_incremental", "f_extreme", "alpha") for end in ("", "_low", "_high")}
    result = TestResult(test="klimek_ml", statistic=0.02, reference=0.01, p_value=0.025, null="simulated",
                        verdict="anomaly", extra={**figures, "statistic_is": "f_e of the extreme-fraud-only fit"})
    summary = {"source": "x.csv", "stations_used": 10, "leader": "a", "null": "simulated", "draws": 39,
               "stations_excluded": {}}
    lines = format_table([result], summary).splitlines()
    named = [i for i, line in enumerate(lines) if "statistic: f_e of the extreme-fraud-only fit" in line]
    assert named and lines[named[0] + 1].strip().startswith("f_i 0.100")
