"""One election from real or simulated Datasets; the shared result type; the simulated null's calibration."""
from __future__ import annotations

import json

import numpy as np
import pytest

from forensics_helpers import honest_dataset
from simkit.forensics import TESTS, parse_tests, rejection_rates, run_tests
from simkit.forensics.core import TestResult, election, simulated_p_value, with_ballots_only
from simkit.forensics.nulls.flat import fit_honest, simulate_honest
from simkit.schema import rejects


def test_election_takes_the_first_replicate_and_the_largest_option_as_leader():
    ds = honest_dataset(200, seed=1, replicates=3, share_mean=0.6)
    e = election(ds)
    assert e.n == 200 and e.options[e.leader] == "a"
    np.testing.assert_array_equal(e.ballots, ds["ballots"].isel(replicate=0).values)
    np.testing.assert_array_equal(election(ds, select={"replicate": 2}).ballots,
                                  ds["ballots"].isel(replicate=2).values)


def test_election_excludes_and_counts_impossible_stations():
    ds = honest_dataset(50, seed=2)
    ds["ballots"].values[0] = ds["registered"].values[0] + 1
    ds["ballots"].values[1] = 0
    e = election(ds)
    assert e.excluded == {"no ballots": 1, "ballots > registered": 1} and e.n == 48


def test_other_counts_on_the_same_stations_keep_the_count_of_those_left_out():
    """A simulated or resampled election on an election's stations still says which stations it left out."""
    ds = honest_dataset(50, seed=2)
    ds["ballots"].values[1] = 0
    e = election(ds)
    assert e.with_counts(e.ballots + 1, e.votes).excluded == {"no ballots": 1}


def test_returns_and_simulations_leave_out_the_same_stations_without_ballots():
    """One rule for a station without ballots: the returns loader leaves out exactly the stations
    :func:`with_ballots_only` leaves out of the same counts, and counts them alike."""
    ds = honest_dataset(50, seed=2)
    ds["ballots"].values[[1, 4]] = [0, -1]
    ds["votes"].values[[1, 4]] = 0
    loaded = election(ds)
    every = election(honest_dataset(50, seed=2))
    kept = with_ballots_only(every.with_counts(ds["ballots"].values, ds["votes"].transpose("station", "option").values))
    assert loaded.excluded == {"no ballots": 2} and kept.excluded == {"no ballots": 2}
    np.testing.assert_array_equal(loaded.ballots, kept.ballots)
    np.testing.assert_array_equal(loaded.station_id, kept.station_id)


def test_result_serialises_to_the_documented_json_fields():
    record = TestResult("x", np.float64(1.5), 1.0, None, "textbook", "descriptive", {"k": np.int64(3)}).to_dict()
    assert list(record)[:6] == ["test", "statistic", "reference", "p_value", "null", "verdict"]
    assert json.loads(json.dumps(record))["k"] == 3


def test_monte_carlo_p_value_counts_the_observation():
    p, centre = simulated_p_value(98.5, np.arange(99.0), "greater")
    assert p == pytest.approx(1 / 100) and centre == pytest.approx(49.0)


def test_parse_tests_rejects_unknown_ids():
    assert parse_tests(None) == list(TESTS)
    with pytest.raises(ValueError, match="unknown test id 'nope'"):
        parse_tests("dip,nope")


def test_honest_model_recovers_turnout_and_share_centres():
    e = election(honest_dataset(4000, seed=3, turnout_mean=0.6, share_mean=0.55))
    model = fit_honest(e)
    described = model.describe()
    assert described["turnout_median"] == pytest.approx(0.6, abs=0.01)
    assert described["share_median"] == pytest.approx(0.55, abs=0.01)
    sim = simulate_honest(e, model, np.random.SeedSequence(0))
    assert sim.votes.sum(axis=1).tolist() == sim.ballots.tolist()


def test_all_tests_run_on_a_simulated_dataset_under_both_nulls():
    e = election(honest_dataset(1500, seed=4, replicates=2))
    for null in ("textbook", "simulated"):
        results = run_tests(e, [t for t in TESTS if t not in ("klimek", "klimek_ml")], null=null, draws=20, seed=1)
        for r in results:
            assert (r.p_value is None) == (r.test == "fingerprint")
            assert r.null == null


def test_simulated_null_has_nominal_size_on_honest_elections():
    """Under an honest election drawn from the fitted model itself, Monte Carlo p-values are uniform, so the
    rejection rate at 0.05 is 0.05 within 3 binomial standard errors."""
    base = election(honest_dataset(1000, seed=5))
    model = fit_honest(base)
    replicates, rejected = 150, 0
    for r in range(replicates):
        honest = simulate_honest(base, model, np.random.SeedSequence([99, r]))
        # the null is fitted to the honest draw itself, as on real data
        result = run_tests(honest, ["correlation"], null="simulated", draws=59, seed=r)[0]
        rejected += rejects(result.p_value)  # p <= 0.05: (1 + 2) / 60 draws, size exactly 0.05
    se = np.sqrt(0.05 * 0.95 / replicates)
    assert abs(rejected / replicates - 0.05) <= 3 * se


def test_rejection_rates_run_over_replicates():
    ds = honest_dataset(800, seed=6, replicates=4)
    rates = rejection_rates(ds, ["last_digit", "integer_percent"], draws=30, seed=1)
    assert set(rates) == {"last_digit", "integer_percent"}
    assert all(v["n"] == 4 and 0 <= v["rejection_rate"] <= 1 for v in rates.values())


def test_holm_adjustment_is_step_down_and_monotone():
    from simkit.forensics.core import holm

    # sorted p: 0.01 x 3, 0.03 x 2, 0.04 x 1 -> running maximum 0.03, 0.06, 0.06
    assert holm([0.01, None, 0.04, 0.03]) == pytest.approx([0.03, None, 0.06, 0.06])


def test_forensics_run_on_the_engine_output():
    """A Dataset from ``simkit.simulate`` (replicate dim, engine names) goes through every cheap test."""
    import tomli_w
    from conftest import small_config_dict
    from simkit import parse_config, simulate

    cfg = parse_config(tomli_w.dumps(small_config_dict(stations=400, registered=400_000, replicates=3)),
                       source="test")
    ds = simulate(cfg)
    e = election(ds, select={"replicate": 1})
    assert e.n == 400 and e.options[e.leader] == "a"
    rates = rejection_rates(ds, ["last_digit", "integer_percent", "dip"], draws=20, seed=3)
    assert all(v["n"] == 3 for v in rates.values())


def test_some_stations_derive_what_a_fresh_election_of_them_derives():
    """Election.stations(keep) after the whole election computed its values (turnout, unit codes, honest groups)
    gives the values of an Election built afresh from the kept stations: a region and a district left without
    stations drop out of the unit codes, and a district that falls below the honest-group minimum is pooled."""
    from simkit.forensics.core import Election
    from simkit.forensics.klimek.first_stage import MIN_GROUP_STATIONS, honest_groups

    rng = np.random.default_rng(4)
    n = 6 * MIN_GROUP_STATIONS
    registered = rng.integers(100, 2000, n)
    ballots = rng.binomial(registered, 0.6)
    leader = rng.binomial(ballots, 0.5)
    arrays = dict(registered=registered, ballots=ballots, votes=np.column_stack([leader, ballots - leader]),
                  region=np.repeat(["east", "north", "west"], 2 * MIN_GROUP_STATIONS),
                  district=np.repeat(["e1", "e2", "n1", "n2", "w1", "w2"], MIN_GROUP_STATIONS),
                  station_id=np.arange(n).astype(str))
    whole = Election(options=("a", "b"), leader=0, **arrays)
    keep = np.ones(n, bool)
    keep[:2 * MIN_GROUP_STATIONS] = False  # region east goes
    keep[4 * MIN_GROUP_STATIONS:4 * MIN_GROUP_STATIONS + 5] = False  # district w1 falls below the minimum
    values = (lambda e: e.turnout, lambda e: e.leader_share, Election.unit_codes, honest_groups)
    for value in values:
        value(whole)
    cut = whole.stations(keep)
    fresh = Election(options=("a", "b"), leader=0, **{name: array[keep] for name, array in arrays.items()})
    for value in values:
        got, expected = value(cut), value(fresh)
        for got_part, expected_part in zip(*((v,) if isinstance(v, np.ndarray) else v for v in (got, expected))):
            np.testing.assert_array_equal(got_part, expected_part)
    assert whole.unit_codes()[0].tolist() == ["east", "north", "west"]
    region_names, _, district_names, _ = cut.unit_codes()
    assert region_names.tolist() == ["north", "west"] and district_names.tolist() == ["n1", "n2", "w1", "w2"]


def test_the_fewest_stations_is_one_constant():
    """The forensic tests of the station distribution and the timeline's station tests read one fewest-stations
    constant, :data:`simkit.schema.MIN_STATIONS` (they kept two of the same value for the same reason): it is
    assigned in that module alone and read by both."""
    import re
    from pathlib import Path

    import simkit
    from simkit import schema
    from simkit.forensics import applicable
    from simkit.timeline import stations

    package = Path(simkit.__file__).parent
    assigned = [path.relative_to(package).as_posix() for path in sorted(package.rglob("*.py"))
                if re.search(r"^MIN_STATIONS\s*=", path.read_text(encoding="utf-8"), re.MULTILINE)]
    assert assigned == ["schema.py"]
    assert applicable.MIN_STATIONS == stations.MIN_STATIONS == schema.MIN_STATIONS
