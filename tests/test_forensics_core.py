"""One election from real or simulated Datasets; the shared result type; the simulated null's calibration."""
from __future__ import annotations

import json

import numpy as np
import pytest

from forensics_helpers import honest_dataset
from simkit.forensics import TESTS, parse_tests, rejection_rates, run_tests
from simkit.forensics.core import TestResult, election, simulated_p_value
from simkit.forensics.nulls.flat import fit_honest, simulate_honest


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


def test_result_serialises_to_the_documented_json_fields():
    record = TestResult("x", np.float64(1.5), 1.0, None, "textbook", "descriptive", {"k": np.int64(3)}).to_dict()
    assert list(record)[:6] == ["test", "statistic", "reference", "p_value", "null", "verdict"]
    assert json.loads(json.dumps(record))["k"] == 3


def test_monte_carlo_p_value_counts_the_observation():
    p, centre = simulated_p_value(98.5, np.arange(99.0), "greater")
    assert p == pytest.approx(1 / 100) and centre == pytest.approx(49.0)


def test_parse_tests_rejects_unknown_ids():
    assert parse_tests(None) == list(TESTS)
    with pytest.raises(ValueError, match="unknown test id nope"):
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
        rejected += result.p_value < 0.05
    se = np.sqrt(0.05 * 0.95 / replicates)
    assert abs(rejected / replicates - 0.05) <= 3 * se + 1 / 60


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
