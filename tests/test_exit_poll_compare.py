"""Comparing published polls with simulated ones: rows, bias needed, joint tail, config errors, CLI."""
import functools
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from pydantic import BaseModel, ValidationError

import simkit
from simkit.polls.compare import compare_config, compare_polls
from simkit.polls.designs import resolve_design
from simkit.polls.elections import election_at
from simkit.polls.figures import consistent
from simkit.polls.ledger import ledger_verdicts
from simkit.polls.statistics import has_sampling_error, prediction_t2, tail_p_standard_error
from simkit.config.polls import ExitPollConfig, QuickCountConfig, check_poll_design
from simkit.errors import InputError
from simkit.model.exit_poll import draw_exit_poll

from exit_poll_helpers import synthetic_election

OPTIONS = ["inc", "other", "against_all", "invalid"]
SHARES = [0.7, 0.15, 0.1, 0.05]
ROW_KEYS = {"pollster", "option", "published", "official", "gap", "gap_mean", "gap_sd", "simulated_mean",
            "simulated_sd", "simulated_low", "simulated_high", "z", "p_value", "p_method", "p_floor", "z_unconditional",
            "option_class", "nonsampling_sd", "z_total", "p_total", "design_effect", "bias_needed", "misreport_needed",
            "misreport_needed_low", "misreport_needed_high", "z_min", "z_max", "share_consistent",
            "share_consistent_total", "verdict", "points_compared", "ledger_points"}


@pytest.fixture(scope="module")
def elections():
    """400 simulated elections of 300 stations; replicates 0–299 are 'simulation', 300–399 'reality'."""
    return synthetic_election(replicates=400, stations=300, options=OPTIONS, shares=SHARES, concentration=40.0,
                              size_sd=0.5, seed=21)


def test_rows_have_the_issue_keys_and_consistent_figures(elections):
    ds = elections.isel(replicate=slice(0, 200))
    poll = ExitPollConfig(name="p", stations=40, per_station=30, published={"inc": 0.72, "against_all": 0.09})
    comparison = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=3, misreport=False, ledger_points=0)
    assert [row["option"] for row in comparison.rows] == ["inc", "against_all"]
    for row in comparison.rows:
        assert set(row) == ROW_KEYS
        assert row["z"] == pytest.approx((row["gap"] - row["gap_mean"]) / row["gap_sd"])
        assert row["z_unconditional"] == pytest.approx((row["published"] - row["simulated_mean"]) / row["simulated_sd"])
        assert row["bias_needed"] == pytest.approx(row["published"] - row["simulated_mean"])
        assert row["simulated_low"] < row["simulated_mean"] < row["simulated_high"]
        assert row["p_method"] in {"monte_carlo", "normal_tail"}
        assert row["p_method"] == "normal_tail" or row["p_value"] >= row["p_floor"]
    assert comparison.estimates["estimate"].shape == (1, 200, 3)


def test_unbiased_poll_centres_on_the_simulated_count(elections):
    ds = elections.isel(replicate=slice(0, 200))
    poll = ExitPollConfig(name="p", stations=60, per_station=40, estimator="weighted", published={"inc": 0.7})
    row = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=4, misreport=False, ledger_points=0).rows[0]
    votes = ds["votes"].sum("station")
    true_share = 100 * (votes.sel(option="inc") / votes.sel(option=OPTIONS[:3]).sum("option")).values
    # the weighted (Horvitz-Thompson ratio) estimator is nearly unbiased: its mean error is within 4 SE
    error = row["simulated_mean"] - true_share.mean()
    assert abs(error) < 4 * row["simulated_sd"] / np.sqrt(200)


def test_planted_misreporting_rate_is_recovered_within_its_interval(elections):
    """Ten 'real' polls in which 30% of against-all voters told the interviewer the incumbent's name. The
    interval is a 90% test-inversion interval, so it covers 0.3 in ≥ 7 of 10 (P(fewer) < 0.02 at 90%)."""
    planted = 0.30
    simulation = elections.isel(replicate=slice(0, 300))
    reality = election_at(elections.isel(replicate=slice(300, 310)), {})
    biased = ExitPollConfig(name="x", stations=50, per_station=40, misreport={"against_all": {"inc": planted}})
    design = resolve_design(biased, OPTIONS, "invalid", reality, unbiased=False).design
    polls = []
    for index in range(10):
        rng = np.random.default_rng(1000 + index)
        shares = draw_exit_poll(reality.votes[index].values, reality.registered, design, rng).shares
        polls.append(biased.model_copy(update={"name": f"poll{index}",
                                               "published": {"against_all": float(shares[2])}}))
    comparison = compare_polls(simulation, polls, incumbent="inc", invalid="invalid", seed=5, ledger_points=0)
    covered = [row["misreport_needed_low"] <= 100 * planted <= row["misreport_needed_high"]
               for row in comparison.rows]
    assert sum(covered) >= 7
    estimates = [row["misreport_needed"] for row in comparison.rows]
    # the point estimates scatter around the planted rate: their mean is within 4 SE of it
    assert abs(np.mean(estimates) - 100 * planted) < 4 * np.std(estimates, ddof=1) / np.sqrt(len(estimates))


def test_scenarios_reuse_the_baseline_draw_of_a_design_drawn_alike(elections, monkeypatch):
    """The honest scenario states the baseline's design (no non-response or misreporting): its poll is not drawn
    again, and the joint test is the one a second draw gives, to the bit."""
    from simkit.polls import compare

    ds = elections.isel(replicate=slice(0, 100))
    polls = [ExitPollConfig(name="p", stations=30, per_station=20, published={"inc": 0.72, "other": 0.14}),
             ExitPollConfig(name="q", stations=30, per_station=20, estimator="weighted",
                            response_propensity={"inc": 0.9}, published={"inc": 0.7})]
    drawn = []
    for name in ("draw_polls", "draw_pooled"):  # the baseline's draws, the scenarios' (pooled)
        monkeypatch.setattr(compare, name, functools.partial(
            lambda draw, *args: drawn.append(args[1]) or draw(*args), getattr(compare, name)))
    kept = compare_polls(ds, polls, incumbent="inc", invalid="invalid", seed=5, misreport=False, ledger_points=0)
    assert len(drawn) == 3  # p and q at the baseline, q (with its non-response) again for the scenario
    monkeypatch.setattr(compare, "drawn_alike", lambda *args: object())  # no key matches: every poll drawn again
    again = compare_polls(ds, polls, incumbent="inc", invalid="invalid", seed=5, misreport=False, ledger_points=0)
    assert len(drawn) == 3 + 4
    assert kept.scenarios == again.scenarios


def test_quick_count_of_the_official_count_is_typical(elections):
    ds = elections.isel(replicate=slice(0, 200))
    votes = ds["votes"].sum("station").mean("replicate")
    official = float(votes.sel(option="inc") / votes.sel(option=OPTIONS[:3]).sum())
    pvt = QuickCountConfig(name="pvt", stations=100, published={"inc": official})
    row = compare_polls(ds, [pvt], incumbent="inc", invalid="invalid", seed=6, ledger_points=0).rows[0]
    assert abs(row["z"]) < 1.0 and row["misreport_needed"] is None


def test_a_quick_count_is_judged_by_its_station_sample_alone_not_exit_polls_total_error(elections):
    """A quick count copies the official protocols of its sampled stations: no voter is interviewed, so the exit
    polls' historical interview error (0.97 points for a large candidate) is no allowance for it. It once had one:
    a quick count far beyond its own sampling error read "within exit polls' usual total error". Its rows carry no
    total-error figures (its ledger entries neither), a note says why, and the report has no total-error sentence
    for it; an exit poll beside it keeps its own."""
    from simkit.polls.error import DEFAULT_HISTORY, ErrorBaseline
    from simkit.report.verdicts import poll_verdicts

    ds = elections.isel(replicate=slice(0, 100))
    votes = ds["votes"].sum("station").mean("replicate")
    official = float(votes.sel(option="inc") / votes.sel(option=OPTIONS[:3]).sum())
    pvt = QuickCountConfig(name="pvt", stations=100, published={"inc": round(official + 0.012, 3)})
    poll = ExitPollConfig(name="p", stations=40, per_station=30, published={"inc": round(official + 0.012, 3)})
    comparison = compare_polls(ds, [poll, pvt], incumbent="inc", invalid="invalid", seed=6, misreport=False,
                               ledger_points=2, baseline=ErrorBaseline.from_file(DEFAULT_HISTORY))
    rows = {row["pollster"]: row for row in comparison.rows}
    assert rows["pvt"]["p_value"] < 0.05, "the quick count is beyond its own sampling error"
    assert (rows["pvt"]["nonsampling_sd"], rows["pvt"]["z_total"], rows["pvt"]["p_total"]) == (None, None, None)
    assert rows["p"]["nonsampling_sd"] > 0.5 and rows["p"]["p_total"] is not None
    assert all(entry["p_total"] is None for entry in comparison.ledger if entry["pollster"] == "pvt")
    assert rows["pvt"]["share_consistent_total"] is None
    assert [flag for flag in comparison.flags if flag.startswith("pvt: ")] == [
        "pvt: a quick count (official protocols of sampled stations) is judged by the sampling error of its station "
        "sample alone: exit polls' historical interview error does not apply to it (no z total or p total)"]
    text = [verdict.text for verdict in poll_verdicts(comparison.rows, "inc", {})]
    assert any(line.startswith("pvt: 1 of 1 published figures is anomalous") for line in text), text
    assert not any(line.startswith("pvt, against total survey error") for line in text), text


def test_figures_without_sampling_error_are_left_out_of_the_joint_test_and_the_fits(elections):
    """A quick count of every station and an exit poll of every voter read each replicate's count exactly: their
    gaps are the same in every replicate, so no covariance can weigh them. Through a pseudo-inverse they once
    added nothing to T² (a quick count 5 points off gave T² = 0, p = 1), and the mechanism fits stopped on a
    singular matrix. They are left out of both, flagged, and judged row by row (any gap is beyond sampling)."""
    ds = elections.isel(replicate=slice(0, 100))
    totals = ds["votes"].sum("station").mean("replicate")
    official = {name: int(totals.sel(option=name)) for name in OPTIONS}
    census = ExitPollConfig(name="census", stations=300, selection="pps", respondents="whole_flow",
                            published={"inc": 0.80})
    pvt = QuickCountConfig(name="pvt", stations=300, estimator="raw", published={"inc": 0.80, "other": 0.1})
    sample = ExitPollConfig(name="p", stations=40, per_station=30, published={"inc": 0.72, "against_all": 0.09})
    comparison = compare_polls(ds, [sample, census, pvt], incumbent="inc", invalid="invalid",
                               official=official, seed=3, ledger_points=0)
    alone = compare_polls(ds, [sample], incumbent="inc", invalid="invalid", official=official, seed=3,
                          misreport=False, ledger_points=0)
    assert [poll["pollster"] for poll in comparison.joint["per_poll"]] == ["p"]
    assert comparison.joint["left_out"] == [{"pollster": "census", "option": "inc"},
                                            {"pollster": "pvt", "option": "inc"}, {"pollster": "pvt", "option": "other"}]
    assert "left_out" not in alone.joint
    assert comparison.joint["df1"] == 2 and comparison.joint["d2"] == pytest.approx(alone.joint["d2"])
    assert [entry["df1"] for entry in comparison.scenarios] == [2]
    assert {entry["pollster"] for entry in comparison.mechanisms} == {"p"}
    assert any(flag.startswith("census: inc:") for flag in comparison.flags)
    assert any(flag.startswith("pvt: inc, other:") for flag in comparison.flags)
    census_rows = [row for row in comparison.rows if row["pollster"] in ("census", "pvt")]
    assert all(row["gap_sd"] == 0 and row["p_value"] is None and not row["rounding"]["consistent"]
               for row in census_rows if row["option"] == "inc")
    only = compare_polls(ds, [pvt], incumbent="inc", invalid="invalid", official=official, seed=3, ledger_points=0)
    assert only.joint is None and only.scenarios == []


def test_sampling_error_is_judged_on_the_replicates_with_answers():
    """A census's gaps can differ between replicates by floating-point rounding alone (a weighted estimate's
    share × ballots): no sampling error. A replicate without answers (NaN) has no figure: the spread is judged on
    the others, so a census with an empty replicate stays a census."""
    assert not has_sampling_error(np.array([0.01, 0.01 + 1e-16, 0.01 - 2e-16]))
    assert has_sampling_error(np.array([0.01, 0.0101, 0.0099]))
    assert not has_sampling_error(np.array([0.01, np.nan, 0.01]))
    assert has_sampling_error(np.array([0.01, np.nan, 0.0101]))
    assert not has_sampling_error(np.array([np.nan, np.nan]))


def test_the_mechanisms_judge_direction_on_a_sampled_figure_not_a_census():
    """Without the incumbent's figure, the direction is judged on the figure farthest from the count among those
    the mechanisms fit: a census row (z = ±inf, left out of the fits) is not one."""
    from simkit.polls.compare import poll_mechanisms

    poll = QuickCountConfig(name="q", stations=300, estimator="raw", published={"other": 0.3, "against_all": 0.1})
    rng = np.random.default_rng(0)
    gaps = np.column_stack([rng.normal(0, 0.01, 50), rng.normal(0, 0.01, 50), np.full(50, 0.002)])
    rows = [{"option": "other", "z": 1.5, "gap": 2.0},
            {"option": "against_all", "z": -math.inf, "gap": -0.5,
             "rounding": {"half_unit": 0.05, "consistent": False}}]
    entries = poll_mechanisms(poll, 0, [(0, 1), (0, 2)], gaps, rows, {"inc": 500, "other": 300, "against_all": 100,
                                                                     "invalid": 20},
                              OPTIONS, OPTIONS[:3], "inc", "invalid", ("against_all",))
    assert entries and {entry["judged_on"] for entry in entries} == {"other"}


def test_prediction_t2_matches_its_reference_for_gaussian_draws():
    rng = np.random.default_rng(9)
    simulated = rng.standard_normal((4000, 3))
    published = np.array([1.0, -1.0, 1.0])  # d² = 3 under the identity covariance
    result = prediction_t2(simulated, published)
    assert (result["df1"], result["df2"]) == (3, 3997) and result["p_method"] == "hotelling_f"
    assert result["d2"] == pytest.approx(3.0, rel=0.05)
    # the F reference and the Monte Carlo share agree within 4 binomial SE
    expected = result["p_value"]
    assert abs(result["p_monte_carlo"] - expected) < 4 * math.sqrt(expected * (1 - expected) / 4000)


def test_joint_ledger_covers_every_stated_assumption(elections):
    """A Latin hypercube of 8 points puts one point in each eighth of every stated range (log scale), varies
    all assumptions together, and each row gets its range over them with one of three words."""
    ds = elections.isel(replicate=slice(0, 100))
    poll = ExitPollConfig(name="p", stations=[20, 80], sample_size=[1000, 3000], published={"inc": 0.7})
    comparison = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=7, misreport=False,
                               ledger_points=8)
    assert len(comparison.ledger) == 8
    for name, (low, high) in (("exit_poll.p.stations", (20, 80)), ("exit_poll.p.sample_size", (1000, 3000))):
        strata = sorted(int(8 * math.log(e["assumed"][name] / low) / math.log(high / low)) for e in comparison.ledger)
        assert strata == list(range(8)), name
    assert {e["assumed"]["exit_poll.p.estimator"] for e in comparison.ledger} == {"raw", "weighted"}
    few = min(comparison.ledger, key=lambda e: e["assumed"]["exit_poll.p.stations"])
    many = max(comparison.ledger, key=lambda e: e["assumed"]["exit_poll.p.stations"])
    assert few["gap_sd"] > many["gap_sd"]
    row = comparison.rows[0]
    assert row["z_min"] <= row["z"] <= row["z_max"] or row["z_min"] <= row["z_max"]
    share = np.mean([e["p_value"] >= 0.05 for e in comparison.ledger])
    assert row["share_consistent"] == pytest.approx(share)
    assert (row["points_compared"], row["ledger_points"]) == (8, 8)
    assert row["verdict"] == ("consistent everywhere" if share == 1 else "rejected everywhere" if share == 0
                              else "depends")


def test_swept_fields_enter_the_ledger(elections):
    import xarray as xr

    honest = elections.isel(replicate=slice(0, 100))
    dim = "exit_poll.p.per_station"
    swept = honest.assign(votes=xr.concat([honest["votes"]] * 2, dim=dim)).assign_coords({dim: [5, 80]})
    poll = ExitPollConfig(name="p", stations=30, per_station=20, published={"inc": 0.7})
    comparison = compare_polls(swept, [poll], incumbent="inc", invalid="invalid", seed=9, misreport=False,
                               ledger_points=6)
    by_index = {}
    for entry in comparison.ledger:
        if entry["assumed"]["exit_poll.p.estimator"] == "raw" and entry["assumed"]["exit_poll.p.invalid_name_incumbent"] < 0.2:
            by_index.setdefault(entry["assumed"][dim], []).append(entry["gap_sd"])
    assert {e["assumed"][dim] for e in comparison.ledger} == {0.0, 1.0}
    # 5 voters a station (index 0) gives a wider spread than 80 (index 1) wherever both were drawn
    if len(by_index) == 2:
        assert min(by_index[0.0]) > max(by_index[1.0])
    # the rows use the middle of the sweep (index 1 of 2: 80 voters a station)
    assert comparison.rows[0]["simulated_sd"] < 2.0


def test_impossible_claimed_size_is_flagged(elections):
    ds = elections.isel(replicate=slice(0, 50))
    voters_available = float(ds["votes"].sum(("station", "option")).mean()) / 300 * 30
    poll = ExitPollConfig(name="big", stations=30, respondents="whole_flow", sample_size=int(3 * voters_available),
                          published={"inc": 0.7})
    comparison = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=8, misreport=False, ledger_points=0)
    assert comparison.flags and all(flag.startswith("big: ") for flag in comparison.flags)
    assert comparison.designs[0]["design_probability"] == 0.0


def test_stated_error_is_set_beside_the_simulated_one(elections):
    ds = elections.isel(replicate=slice(0, 50))
    poll = ExitPollConfig(name="p", stations=20, per_station=10, stated_error=0.02, published={"inc": 0.7})
    comparison = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=10, misreport=False, ledger_points=0)
    half_width = 1.959964 * comparison.rows[0]["gap_sd"]
    assert comparison.flags == [f"p: stated error ±2.0 points; sampling alone gives a 95% half-width of up to "
                                f"±{half_width:.1f} points for its published figures"]


# -- config ------------------------------------------------------------------------------------------

class Holder(BaseModel):
    exit_poll: list[ExitPollConfig] = []


def problems(**fields) -> list[str]:
    from simkit.config.messages import pydantic_problems

    raw = {"exit_poll": [{"name": "p", "stations": 10, "per_station": 20, **fields}]}
    try:
        Holder.model_validate(raw)
    except ValidationError as error:
        return pydantic_problems(error, raw)
    return []


@pytest.mark.parametrize("fields, expected", [
    ({"response_rate": 0.0}, "exit_poll.p.response_rate: must be in (0, 1]"),
    ({"response_rate": 1.2}, "exit_poll.p.response_rate: must be in (0, 1]"),
    ({"response_rate": [0.9, 0.5]}, "exit_poll.p.response_rate: a range must be [low, high] with low <= high"),
    ({"misreport": {"against_all": {"inc": 0.7, "other": 0.6}}}, "exit_poll.p.misreport.against_all: shares sum to"),
    ({"published": {"inc": 0.8, "other": 0.3}}, "exit_poll.p.published: shares sum to"),
    ({"stations": 0}, "exit_poll.p.stations: must be at least 1"),
])
def test_bad_poll_fields_name_the_field(fields, expected):
    assert any(problem.startswith(expected) for problem in problems(**fields)), problems(**fields)


def test_full_misreport_row_must_sum_to_one():
    found = problems(misreport={"against_all": {"against_all": 0.5, "inc": 0.3}})
    assert any("misreport.against_all: a row that includes against_all itself must sum to 1" in p for p in found)


@pytest.mark.parametrize("reading", ["sample_size", "sample_size_readings"])
def test_a_claim_of_fewer_respondents_than_stations_approached_is_refused(reading):
    """Fixed quotas approach a whole number of voters a station: 10 respondents at up to 40 stations answering
    at up to 100% would be one approached a station, 40 and not 10 (the claim silently quadrupled)."""
    claim = {"sample_size": 10} if reading == "sample_size" else {"sample_size": 4000, "sample_size_readings": [10]}
    poll = ExitPollConfig(name="p", stations=[20, 40], response_rate=[0.5, 1.0], published={"inc": 0.5}, **claim)
    found = check_poll_design(poll, 100, np.full(100, 500), OPTIONS, "invalid")
    assert found == [f"exit_poll.p.{reading}: 10 respondents at up to 40 stations answering at up to 1 is 0.25 "
                     "voters approached a station: a design approaches at least one; narrow stations or give "
                     "per_station"], found
    fine = poll.model_copy(update={"sample_size": 40, "sample_size_readings": []})
    assert check_poll_design(fine, 100, np.full(100, 500), OPTIONS, "invalid") == []


def test_design_checks_against_the_electorate():
    registered = np.full(100, 500)
    poll = ExitPollConfig(name="p", stations=150, sample_size=60_000, published={"inc": 0.5, "other": 0.3,
                                                                                   "against_all": 0.1})
    found = check_poll_design(poll, 100, registered, OPTIONS, "invalid")
    assert "exit_poll.p.stations: more than the 100 stations of the electorate, got 150" in found
    assert any(p.startswith("exit_poll.p.sample_size: 60,000 respondents is more than") for p in found)
    assert any(p.startswith("exit_poll.p.published: every valid option is published, so shares must sum to 1")
               for p in found)
    partial = QuickCountConfig(name="q", stations=10, published={"inc": 0.5, "nobody": 0.1})
    assert check_poll_design(partial, 100, registered, OPTIONS, "invalid") == ["quick_count.q.published.nobody: "
                                                                              "not an option"]


# -- CLI ---------------------------------------------------------------------------------------------

def test_compare_cli_prints_rows_and_scenarios_as_json(tmp_path, capsys):
    from simkit.config.core import Config

    if "exit_poll" not in Config.model_fields:
        pytest.skip("the main Config has no exit_poll field yet")
    from conftest import small_config_dict
    from simkit.cli.main import main

    raw = small_config_dict(stations=60, registered=60_000, options=("a", "b", "c"), shares=(0.6, 0.3, 0.1))
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20, "published": {"a": 0.62, "b": 0.28,
                                                                                      "c": 0.10}}]
    config = tmp_path / "x.toml"
    config.write_text(tomli_w.dumps(raw))
    plot = tmp_path / "plots"
    assert main(["compare", str(config), "--json", "--replicates", "60", "--seed", "2", "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["option"] for row in report["rows"]] == ["a", "b", "c"]
    assert set(report["rows"][0]) == ROW_KEYS
    assert [scenario["scenario"] for scenario in report["scenarios"]] == ["honest"]
    assert {"t2", "f", "df1", "df2", "p_value", "per_poll"} <= set(report["joint"])
    assert (plot / "poll_gaps.png").stat().st_size > 0


@pytest.mark.parametrize("replicates, code", [(2, 2), (3, 0)])
def test_compare_refuses_fewer_replicates_than_the_covariance_of_the_published_figures_needs(
        tmp_path, capsys, replicates, code):
    """Two published figures (the third valid share is implied) need 3 replicates: with 2 the sample covariance
    is singular, and the mechanism fits once reported distances of -1e20 with a fit p-value of 1. One line, exit
    2, no output."""
    from conftest import small_config_dict
    from simkit.cli.main import main

    raw = small_config_dict(stations=60, registered=60_000, options=("a", "b", "c"), shares=(0.6, 0.3, 0.1))
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20, "published": {"a": 0.62, "b": 0.28,
                                                                                      "c": 0.10}}]
    raw["observed"] = {"votes": {"a": 36_000, "b": 18_000, "c": 6_000}}
    config, output = tmp_path / "x.toml", tmp_path / "out.json"
    config.write_text(tomli_w.dumps(raw))
    assert main(["compare", str(config), "--replicates", str(replicates), "--ledger-points", "0", "--quiet",
                 "-o", str(output)]) == code
    err = capsys.readouterr().err
    if code:
        assert err.strip() == (f"{config}: --replicates: 2 are too few to estimate the covariance of the 2 published "
                               "figures (the joint test and the mechanism fits need at least 3)")
        assert not output.exists()
        saved = tmp_path / "two.nc"  # a saved result's replicates are not a flag of compare: it says so
        assert main(["run", str(config), "--replicates", "2", "-o", str(saved), "--quiet"]) == 0
        capsys.readouterr()
        assert main(["compare", str(saved), "--quiet", "-o", str(output)]) == 2
        assert capsys.readouterr().err.strip() == (
            f"{saved}: replicate: the result holds 2 replicates, too few to estimate the covariance of the 2 published "
            "figures (the joint test and the mechanism fits need at least 3); simulate it again with more")
        assert not output.exists()
    else:
        report = json.loads(output.read_text())
        assert report["joint"]["df2"] == 1 and report["mechanisms"]
        assert all(entry["d2"] >= 0 for entry in report["mechanisms"])

#: per field of PollDesign: (the base's own settings, the one change), chosen where the field is read
DESIGN_CHANGES = {
    "n_stations": ({}, {"n_stations": 21}),
    "valid": ({}, {"valid": np.array([True, True, False, False])}),
    "selection": ({}, {"selection": "pps"}),
    "by_region": ({}, {"by_region": True}),
    "respondents": ({}, {"respondents": "whole_flow"}),
    "per_station": ({}, {"per_station": 25}),
    "every_kth": ({"respondents": "every_kth", "every_kth": 3}, {"every_kth": 4}),
    "response_rate": ({}, {"response_rate": 0.8}),
    "response_propensity": ({}, {"response_propensity": np.array([1.0, 0.9, 1.0, 1.0])}),
    "misreport": ({}, {"misreport": np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0.3, 0, 0.7, 0], [0, 0, 0, 1.0]])}),
    "estimator": ({}, {"estimator": "weighted"}),
}


def _design(**changes):
    from simkit.model.exit_poll import PollDesign

    base = dict(n_stations=20, valid=np.array([True, True, True, False]), per_station=20, response_rate=0.9)
    return PollDesign(**{**base, **changes})


def test_designs_differing_in_any_field_do_not_share_a_draw(elections):
    """Every field of the design is in the key that lets a scenario reuse the baseline's draw (a new field
    without an entry in DESIGN_CHANGES fails here), and each change draws other numbers: reusing would be wrong."""
    from dataclasses import fields

    from simkit.model.exit_poll import PollDesign
    from simkit.polls.draws import draw_polls, drawn_alike

    assert set(DESIGN_CHANGES) == {f.name for f in fields(PollDesign)}
    election = election_at(elections.isel(replicate=slice(0, 20)), {})
    poll = ExitPollConfig(name="p", stations=20, per_station=20)
    for name, (base, change) in DESIGN_CHANGES.items():
        before, after = _design(**base), _design(**{**base, **change})
        assert drawn_alike(poll, before, 4) != drawn_alike(poll, after, 4), name
        shares = [draw_polls(election, design, 7, 0).shares for design in (before, after)]
        assert not np.array_equal(*shares), name
    quick = QuickCountConfig(name="q", stations=20)
    assert drawn_alike(poll, _design(), 4) != drawn_alike(quick, _design(), 4)


def test_designs_alike_in_what_the_draw_reads_share_a_draw(elections):
    """The key's equivalences are the draw's: a response rate and propensities with the same product, and no
    misreporting stated as None or as the identity matrix, draw the same numbers to the bit."""
    from simkit.polls.draws import draw_polls, drawn_alike

    election = election_at(elections.isel(replicate=slice(0, 20)), {})
    poll = ExitPollConfig(name="p", stations=20, per_station=20)
    pairs = [(_design(), _design(response_rate=1.0, response_propensity=np.full(4, 0.9))),
             (_design(), _design(misreport=np.eye(4)))]
    for one, other in pairs:
        assert drawn_alike(poll, one, 4) == drawn_alike(poll, other, 4)
        draws = [draw_polls(election, design, 7, 0) for design in (one, other)]
        assert np.array_equal(draws[0].shares, draws[1].shares)
        assert np.array_equal(draws[0].reported, draws[1].reported)


@pytest.mark.parametrize("estimator", ["raw", "weighted"])
def test_pooled_draws_are_the_whole_draw_pooled_holding_one_task_by_station(elections, estimator, monkeypatch):
    """What the ledger and the scenarios draw (:func:`simkit.polls.draws.draw_pooled`: each replicate's stations
    pooled, reduced inside each task of the compiled draw) is the whole draw's pooled form to the bit; the draws by
    station are held for one task's replicates, never for all of them."""
    from simkit.polls import compiled_draws
    from simkit.polls.draws import draw_polls, draw_pooled, pooled

    election = election_at(elections.isel(replicate=slice(0, 150)), {})
    design = _design(estimator=estimator, response_rate=0.8)
    whole = pooled(draw_polls(election, design, 7, 0))
    held, draw = [], compiled_draws._draw_replicates_jit

    def recording(*args):
        reported = args[-1]
        held.append((reported if reported.base is None else reported.base).shape[0])
        return draw(*args)

    monkeypatch.setattr(compiled_draws, "_draw_replicates_jit", recording)
    drawn = draw_pooled(election, design, 7, 0)
    for name in ("shares", "responders", "reported", "voters", "inclusion"):
        assert np.array_equal(getattr(drawn, name), getattr(whole, name), equal_nan=True), name
    assert drawn.reported.shape == (150, 1, 4)
    assert held and max(held) <= compiled_draws.CHUNK_REPLICATES < 150


def test_summed_draws_hold_the_respondents_totals_as_one_station():
    """The one constructor of pooled draws (:func:`simkit.polls.draws.pooled`, ``draw_pooled``): the totals (R, K)
    held as one station (R, 1, K) with its voters (R, 1) and inclusion 1, read back unchanged."""
    from simkit.polls.draws import Draws

    responders, reported = np.array([[5, 3], [2, 6]]), np.array([[4, 4], [2, 6]])
    draws = Draws.summed(np.full((2, 2), 0.5), responders, reported, np.array([9, 10]), np.array([True, True]))
    assert draws.responders.shape == draws.reported.shape == (2, 1, 2)
    assert np.array_equal(draws.responders_totals, responders) and np.array_equal(draws.reported_totals, reported)
    assert np.array_equal(draws.voters, [[9], [10]]) and np.array_equal(draws.inclusion, np.ones((2, 1)))


def test_replicates_without_answers_are_left_out_of_the_poll_s_distribution(elections):
    """Rare empty polls (1 voter approached at each of 3 stations, half answering: about 1 replicate in 8 without
    a valid answer) could not have published: the comparison conditions on the replicates with answers, as if
    drawn from them alone, and says how many it dropped, instead of refusing a design that passes at few
    replicates and fails at many."""
    ds = elections.isel(replicate=slice(0, 100))
    poll = ExitPollConfig(name="p", stations=3, per_station=1, response_rate=0.5,
                          published={"inc": 0.7, "against_all": 0.1})
    comparison = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=3, misreport=False,
                               ledger_points=0)
    estimates = comparison.estimates["estimate"].values[0]
    answered = np.isfinite(estimates).all(axis=-1)
    dropped = int(np.sum(~answered))
    assert 0 < dropped < 50
    assert comparison.estimates.attrs["replicates_without_answers"] == [dropped]
    assert any(flag.startswith(f"p: no valid answer in {dropped} of 100 simulated replicates") for flag in comparison.flags)
    kept = ds.isel(replicate=np.flatnonzero(answered))
    votes = kept["votes"].sum("station")
    count = 100 * (votes / votes.sel(option=OPTIONS[:3]).sum("option")).values
    for row, column in zip(comparison.rows, (0, 2)):
        gap = estimates[answered, column] - count[:, column]
        assert row["p_floor"] == 1 / (100 - dropped + 1)
        assert row["p_method"] == "monte_carlo" and tail_p_standard_error(row) == pytest.approx(
            math.sqrt(row["p_value"] * (2 - row["p_value"]) / (100 - dropped)))
        assert row["gap_mean"] == pytest.approx(gap.mean()) and row["gap_sd"] == pytest.approx(gap.std(ddof=1))
    assert comparison.joint["df2"] == 100 - dropped - 2 and np.isfinite(comparison.joint["t2"])
    assert [entry["df2"] for entry in comparison.scenarios] == [100 - dropped - 2]


#: the start of the shortfall of a design answered in 0, 1 or 2 of 20 replicates (its verb follows)
FEW_ANSWERS = r"(?:none of the 20|only [12] of 20) simulated replicates"


@pytest.mark.parametrize("answered, opening", [
    (0, "none of the 4 simulated replicates gets"), (1, "only 1 of 4 simulated replicates gets"),
    (2, "only 2 of 4 simulated replicates get")])
def test_the_shortfall_of_answers_agrees_with_its_count(answered, opening):
    """It read "only 1 of 20 ... get" and "only 0 of 20 ... get"."""
    from types import SimpleNamespace

    from simkit.polls.checks import too_few_answers

    draws = SimpleNamespace(valid_respondents=np.array([5] * answered + [0] * (4 - answered)))
    empty, shortfall = too_few_answers(draws, 3)
    assert empty == 4 - answered and shortfall.startswith(f"{opening} a valid answer ("), shortfall


def test_a_design_without_answers_in_too_many_replicates_is_one_line(tmp_path, capsys):
    """A design so small that nearly every replicate's poll gets no valid answer (3 voters approached, 1 in 1,000
    answering) leaves fewer replicates with answers than the covariance of its published figures needs; its NaN
    shares once stopped compare on a traceback."""
    from conftest import small_config_dict
    from simkit.cli.main import main

    raw = small_config_dict(replicates=20)
    raw["exit_poll"] = [{"name": "p", "stations": 3, "per_station": 1, "response_rate": 0.001,
                         "published": {"a": 0.5, "b": 0.3, "c": 0.2}}]
    raw["observed"] = {"votes": {"a": 1800, "b": 1080, "c": 720}}
    config, output = tmp_path / "x.toml", tmp_path / "out.json"
    config.write_text(tomli_w.dumps(raw))
    assert main(["compare", str(config), "--ledger-points", "0", "--quiet", "-o", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.fullmatch(
        rf"{re.escape(str(config))}: exit_poll.p: {FEW_ANSWERS} gets? a valid answer "
        r"\(\d\.\d valid answers on average\), fewer than the 3 a comparison needs; state the design the pollster "
        r"used", err[0]), err
    assert not output.exists()


def test_a_scenario_whose_design_gets_no_answers_is_one_line_naming_it(tmp_path, capsys):
    """A scenario may state a smaller response rate than the baseline: its draws are checked like the
    baseline's, or their NaN shares would enter its T². One voter approached at each of 3 stations, every one
    answering at the baseline and 1 in 1,000 in the scenario."""
    from conftest import small_config_dict
    from simkit.cli.main import main

    raw = small_config_dict(replicates=20)
    raw["exit_poll"] = [{"name": "p", "stations": 3, "per_station": 1, "published": {"a": 0.5, "b": 0.3, "c": 0.2}}]
    raw["observed"] = {"votes": {"a": 1800, "b": 1080, "c": 720}}
    raw["scenario"] = [{"name": "honest"}, {"name": "shy", "overrides": {"exit_poll.p.response_rate": 0.001}}]
    config, output = tmp_path / "x.toml", tmp_path / "out.json"
    config.write_text(tomli_w.dumps(raw))
    assert main(["compare", str(config), "--ledger-points", "0", "--quiet", "-o", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.match(rf"{re.escape(str(config))}: exit_poll.p: {FEW_ANSWERS} ", err[0])
    assert "of scenario shy" in err[0] and not output.exists()


def test_a_config_whose_polls_publish_nothing_is_refused_in_one_line_before_simulating(tmp_path, capsys,
                                                                                     monkeypatch):
    """Polls that publish no figure leave compare nothing to compare (no row, joint test or mechanism fit): it once
    simulated every world and printed an empty table without a word. One line naming the fields that would hold
    the figures, exit 2, nothing simulated or written."""
    import simkit.polls.compare
    from conftest import small_config_dict
    from simkit.cli.main import main
    from simkit.config.load import load_config
    from simkit.electorate.build import electorate_of
    from simkit.report.analyses import polls_omission

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated a comparison that has no published figure")

    monkeypatch.setattr(simkit.polls.compare, "simulated_worlds", no_simulation)
    raw = small_config_dict(replicates=20)
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20}]
    raw["quick_count"] = [{"name": "q", "stations": 10}]
    raw["observed"] = {"votes": {"a": 1800, "b": 1080, "c": 720}}
    config, output = tmp_path / "x.toml", tmp_path / "out.json"
    config.write_text(tomli_w.dumps(raw))
    assert main(["compare", str(config), "--ledger-points", "0", "--quiet", "-o", str(output)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{config}: exit_poll.p.published, exit_poll.p.published_turnout, quick_count.q.published: no published "
        "figure: the comparison would have no row; give the figures the pollsters published"]
    assert not output.exists()
    cfg = load_config(config)  # the report leaves the comparison out, saying why
    assert str(polls_omission(cfg, electorate_of(cfg), 20)).startswith("exit_poll.p.published, ")


def test_a_poll_that_publishes_nothing_beside_others_is_flagged(elections):
    """Beside a poll that publishes, one that publishes nothing has no row: a note says so, instead of silence."""
    ds = elections.isel(replicate=slice(0, 40))
    polls = [ExitPollConfig(name="p", stations=20, per_station=20, published={"inc": 0.7}),
             QuickCountConfig(name="q", stations=20)]
    comparison = compare_polls(ds, polls, incumbent="inc", invalid="invalid", seed=3, misreport=False,
                               ledger_points=0)
    assert {row["pollster"] for row in comparison.rows} == {"p"}
    assert ("q: publishes no figure (none of quick_count.q.published): no row; only what its design delivers is "
            "shown") in comparison.flags
    assert not any(flag.startswith("p: publishes no figure") for flag in comparison.flags)


def test_a_count_without_valid_votes_is_one_line_and_no_warning(tmp_path, capsys):
    """An election simulated with (nearly) no voter: the count has no valid vote, so neither has a quick count of
    it; compare says so in one line, without a RuntimeWarning of the count's 0/0 shares before it."""
    from conftest import small_config_dict
    from simkit.cli.main import main

    raw = small_config_dict(replicates=20, turnout_mean=1e-9)
    raw["quick_count"] = [{"name": "q", "stations": 3, "published": {"a": 0.5, "b": 0.3, "c": 0.2}}]
    raw["observed"] = {"votes": {"a": 1800, "b": 1080, "c": 720}}
    config = tmp_path / "x.toml"
    config.write_text(tomli_w.dumps(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["compare", str(config), "--ledger-points", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.match(rf"{re.escape(str(config))}: quick_count.q: {FEW_ANSWERS} ", err[0]), err


def test_the_published_vector_is_made_once_per_comparison(elections, monkeypatch):
    """The published figures' vector is made once and handed to the replicate check, the joint test and the
    scenarios."""
    from simkit.polls import compare

    made = []
    vector = compare.published_vector
    monkeypatch.setattr(compare, "published_vector", lambda *args: made.append(args) or vector(*args))
    poll = ExitPollConfig(name="p", stations=30, per_station=20, published={"inc": 0.72, "other": 0.14})
    compare_polls(elections.isel(replicate=slice(0, 50)), [poll], incumbent="inc", invalid="invalid", seed=5,
                  misreport=False, ledger_points=0)
    assert len(made) == 1


def test_a_census_figure_is_judged_by_the_rounding_of_its_publication(elections):
    """A census (every station's count copied) is the count in every replicate: its simulated gap never moves, so
    a figure published rounded once read p = 0, "anomalous". It is consistent when the published value can be the
    census's own rounded to nearest or down at its last stated digit (read from the value as written, or the
    poll's ``precision``), inconsistent beyond it, and has no p-value."""
    ds = elections.isel(replicate=slice(0, 60))
    totals = ds["votes"].sum("station").mean("replicate")
    official = {name: int(totals.sel(option=name)) for name in OPTIONS}
    share = official["inc"] / sum(official[name] for name in OPTIONS[:3])
    rounded = round(share, 3)  # a percentage to one decimal: unit 0.1 points, half a unit 0.05
    polls = [QuickCountConfig(name="near", stations=300, estimator="raw", published={"inc": rounded}),
             QuickCountConfig(name="off", stations=300, estimator="raw", published={"inc": round(rounded + 0.002, 3)}),
             QuickCountConfig(name="coarse", stations=300, estimator="raw", precision=0.01,
                              published={"inc": round(share + 0.004, 3)}),
             ExitPollConfig(name="census", stations=300, selection="pps", respondents="whole_flow",
                            published={"inc": round(rounded + 0.002, 3)})]
    comparison = compare_polls(ds, polls, incumbent="inc", invalid="invalid", official=official, seed=3,
                               misreport=False, ledger_points=3)
    rows = {row["pollster"]: row for row in comparison.rows}
    assert all(row["p_value"] is None and row["p_method"] == "census" for row in rows.values())
    assert rows["near"]["rounding"] == {"half_unit": pytest.approx(0.05), "consistent": True}
    assert rows["off"]["rounding"] == {"half_unit": pytest.approx(0.05), "consistent": False}
    assert rows["coarse"]["rounding"] == {"half_unit": pytest.approx(0.5), "consistent": True}
    assert rows["census"]["rounding"]["consistent"] is False
    assert rows["census"]["verdict"] in ("rejected everywhere", "depends", "consistent everywhere")
    from simkit.cli.compare import format_report

    text = format_report(comparison)
    assert "near: inc: census, consistent within rounding (to nearest, ±0.05 points, or down)" in text
    assert "(not sampling alone where they include how voters answer; p > 0.05; a census: within rounding):" in text
    assert "off: inc: census, inconsistent (beyond rounding to nearest, ±0.05 points, or down)" in text


def test_a_z_of_seven_characters_keeps_its_columns_apart():
    """A tiny sampling SD gives a z of 7 characters (``-1234.5``): each table still has a space before it, and
    its header lines up with the cell."""
    from types import SimpleNamespace

    from simkit.cli.compare import format_history, format_report

    row = {"pollster": "tiny", "option": "inc", "published": 40.0, "official": 52.35, "gap": -12.35, "gap_sd": 0.01,
           "z": -1234.5, "p_value": 0.0, "p_method": "normal_tail", "p_floor": 0.001, "option_class": "incumbent",
           "nonsampling_sd": 0.01, "z_total": -873.2, "p_total": 0.0, "misreport_needed": None}
    comparison = SimpleNamespace(rows=[row], flags=[], joint=None, scenarios=[], mechanisms=[], ledger=[])
    lines = format_report(comparison).splitlines()
    header, cells = lines[2], lines[3]
    assert "  0.01 -1234.5" in cells and "  0.01   -873.2" in cells, cells
    assert cells.index("-1234.5") + len("-1234.5") == header.index(" z ") + len(" z"), (header, cells)
    history = format_history([{"title": "Testland", "rows": [row]}])
    assert "0.01 -1234.5   -873.2" in history[-1], history[-1]


@pytest.mark.parametrize("offset, consistent", [(-0.0008, True), (-0.00045, True), (0.0004, True),
                                                (0.0006, False), (-0.0011, False)])
def test_a_census_figure_cut_to_its_last_digit_is_consistent(elections, offset, consistent):
    """A census published at unit u (here stated: 0.001, a tenth of a point) is its own figure rounded to nearest
    or cut (rounded down), as the timeline's final figures are read: −u < published − census ≤ u/2."""
    ds = elections.isel(replicate=slice(0, 60))
    totals = ds["votes"].sum("station").mean("replicate")
    official = {name: int(totals.sel(option=name)) for name in OPTIONS}
    share = official["inc"] / sum(official[name] for name in OPTIONS[:3])
    poll = QuickCountConfig(name="census", stations=300, estimator="raw", precision=0.001,
                            published={"inc": share + offset})
    row = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", official=official, seed=3, misreport=False,
                        ledger_points=3).rows[0]
    assert row["p_method"] == "census"
    assert row["rounding"] == {"half_unit": pytest.approx(0.05), "consistent": consistent}


def test_a_weighted_quick_count_of_every_station_is_the_count(elections):
    """A weighted quick count of every station reads each replicate's count to floating point (its valid shares
    weighed by valid votes, not ballots: the stations' invalid shares differ): a census, its published figure
    rounded from the count consistent. Weighed by ballots, its gaps moved by ~1e-4 between replicates: a "sample"
    of tiny spread, and its rounded figure rejected."""
    ds = elections.isel(replicate=slice(0, 60))
    totals = ds["votes"].sum("station").mean("replicate")
    official = {name: int(totals.sel(option=name)) for name in OPTIONS}
    share = official["inc"] / sum(official[name] for name in OPTIONS[:3])
    poll = QuickCountConfig(name="census", stations=300, estimator="weighted", published={"inc": round(share, 3)})
    comparison = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", official=official, seed=3,
                               misreport=False, ledger_points=0)
    votes = ds["votes"].sum("station")
    counted = 100 * (votes.sel(option=OPTIONS[:3]) / votes.sel(option=OPTIONS[:3]).sum("option")).values
    np.testing.assert_allclose(comparison.estimates["estimate"].values[0], counted, rtol=1e-13, atol=0)
    row = comparison.rows[0]
    assert row["p_method"] == "census" and row["rounding"]["consistent"] is True


@pytest.mark.parametrize("value, unit", [(80.18, 0.01), (69.0, 1.0), (1e-05, 1e-5), (0.1 + 0.2, 0.1),
                                         (0.45630000000000004, 1e-4), (100 * 0.8018, 0.01)])
def test_the_last_digit_is_read_from_twelve_significant_digits(value, unit):
    """A computed float's noise (0.1 + 0.2 = 0.30000000000000004) is not a published digit."""
    from simkit.config.precision import last_digit_unit

    assert last_digit_unit(value) == pytest.approx(unit, rel=1e-12)


@pytest.mark.parametrize("true, figure, unit, consistent", [
    (69.4363, 69.43, 0.01, True),  # cut
    (69.4363, 69.44, 0.01, True),  # rounded to nearest
    (69.4363, 69.42, 0.01, False),
    (69.4363, 69.45, 0.01, False),
    (69.4363, 69, 1, True),
    (69.4363, 70, 1, False),
    (69.6, 70, 1, True),
    (69.4363, 68, 1, False),
])
def test_a_figure_is_its_truth_rounded_to_nearest_or_down(true, figure, unit, consistent):
    from simkit.config.precision import rounds_to

    assert rounds_to(true, figure, unit) is consistent


@pytest.mark.parametrize("value, precision, unit", [(0.8202, None, 1e-4), (0.82, None, 1e-2), (0.5, None, 1e-2),
                                                     (1.0, None, 1e-2), (1e-05, None, 1e-5), (0.8202, 0.001, 0.001),
                                                     (0.5, 0.1, 0.1), (0.1 + 0.2, None, 1e-2),
                                                     (0.45630000000000004, None, 1e-4)])
def test_the_published_unit_is_read_from_the_value_as_written(value, precision, unit):
    from simkit.polls.figures import published_unit

    assert published_unit(value, precision) == pytest.approx(unit, rel=1e-12)


def test_polls_answering_in_too_few_replicates_together_are_refused():
    """Each poll keeps enough replicates with answers, but the joint test needs replicates in which every poll
    answered: fewer than D + 1 of those is refused in one line naming the polls."""
    from simkit.errors import InputError
    from simkit.polls.checks import check_together

    polls = [ExitPollConfig(name="p", stations=3, per_station=1, published={"inc": 0.7}),
             QuickCountConfig(name="q", stations=3, published={"inc": 0.7})]
    first, second = np.zeros((8, 3)), np.zeros((8, 3))
    first[:3], second[4:] = np.nan, np.nan  # 5 and 4 replicates with answers, 1 with both
    check_together(polls, [(0, 0), (1, 0)], [first, np.zeros((8, 3))], 3, "x.toml")
    with pytest.raises(InputError, match=r"^x\.toml: exit_poll\.p, quick_count\.q: every poll has a valid answer in "
                                         r"only 1 of 8 simulated replicates of scenario s: the joint test needs at "
                                         r"least 3"):
        check_together(polls, [(0, 0), (1, 0)], [first, second], 3, "x.toml", "s")


def test_polls_answering_too_rarely_together_are_named_in_a_cut_list():
    """The polls of the joint test were all named however many there were: the first
    :data:`~simkit.errors.MAX_LISTED`, then how many more, as every list an error repeats."""
    from simkit.errors import MAX_LISTED
    from simkit.polls.checks import check_together

    polls = [QuickCountConfig(name=f"q{k}", stations=3, published={"inc": 0.7}) for k in range(MAX_LISTED + 2)]
    gaps = [np.zeros((8, 3)) for _ in polls]
    gaps[0][:7] = np.nan  # 1 replicate in which every poll answered
    with pytest.raises(InputError, match=rf"^x\.toml: quick_count\.q0, .*, quick_count\.q{MAX_LISTED - 1}, and 2 more: "
                                         "every poll has a valid answer in only 1 of 8"):
        check_together(polls, [(p, 0) for p in range(len(polls))], gaps, 3, "x.toml")


@pytest.mark.parametrize("by_region", [False, True])
def test_a_pps_design_of_more_stations_than_hold_voters_is_one_line(by_region):
    """Stations of 0 voters (closed ones) have no chance under pps: a design asking for more stations than hold
    voters is refused, naming the poll, not drawn past the stations it can take."""
    ds = synthetic_election(replicates=40, stations=40, options=OPTIONS, shares=SHARES, concentration=40.0, seed=3)
    empty = (ds["region"].values == "r1") & (np.arange(40) > 1)  # region r1 keeps one station with voters
    ds["registered"].values[empty] = 0
    ds["ballots"].values[:, empty] = 0
    ds["votes"].values[:, empty] = 0
    poll = ExitPollConfig(name="p", stations=32, selection="pps", by_region=by_region,
                          per_station=20, published={"inc": 0.7, "other": 0.2, "against_all": 0.1})
    assert np.count_nonzero(ds["registered"].values) == 31
    with pytest.raises(InputError, match=r"^x\.toml: exit_poll\.p\.stations: 32 stations drawn proportional to "
                                         r"size from the electorate, which has 31 with voters$"):
        compare_polls(ds, [poll], incumbent="inc", invalid="invalid", ledger_points=0, source="x.toml")


def test_a_pps_design_substituted_for_an_infeasible_claimed_size_says_so_when_refused():
    """A simple design claiming more respondents than a simple draw can supply is drawn proportional to size
    (:func:`simkit.model.exit_poll.design_feasibility`); refused for want of stations with voters, it says why it
    is drawn so."""
    ds = synthetic_election(replicates=40, stations=40, options=OPTIONS, shares=SHARES, concentration=40.0, seed=3)
    empty = np.arange(40) >= 31
    ds["registered"].values[empty] = 0
    ds["ballots"].values[:, empty] = 0
    ds["votes"].values[:, empty] = 0
    claimed = int(0.9 * ds["registered"].values.sum())
    poll = ExitPollConfig(name="p", stations=32, sample_size=claimed, published={"inc": 0.7, "other": 0.2})
    with pytest.raises(InputError, match=r"^x\.toml: exit_poll\.p\.stations: 32 stations drawn proportional to size "
                                         r"from the electorate, which has 31 with voters \(proportional to size in "
                                         rf"place of the simple draw, for the claimed size: {claimed:,} respondents "
                                         r"at 32 stations .*\)$"):
        resolve_design(poll, OPTIONS, "invalid", election_at(ds, {}), unbiased=True, source="x.toml")


def test_the_pps_design_problem_is_the_text_that_resolve_design_raises_after_its_source():
    """:func:`pps_design_problem` states the problem (``field: problem``) that :func:`resolve_design` raises after
    its source (whatever that source holds), so that the inference's simulator reads it without cutting error
    messages; None for a feasible design."""
    from simkit.polls.designs import pps_design_problem, proposed_design

    ds = synthetic_election(replicates=40, stations=40, options=OPTIONS, shares=SHARES, concentration=40.0, seed=3)
    ds["registered"].values[np.arange(40) >= 31] = 0
    election = election_at(ds, {})
    poll = ExitPollConfig(name="p", stations=32, selection="pps", per_station=20, published={"inc": 0.7, "other": 0.2})
    resolved = proposed_design(poll, OPTIONS, "invalid", election, unbiased=True)
    problem = pps_design_problem(poll, resolved.design, election, resolved.note)
    assert problem == ("exit_poll.p.stations: 32 stations drawn proportional to size from the electorate, which has "
                       "31 with voters")
    with pytest.raises(InputError) as error:
        resolve_design(poll, OPTIONS, "invalid", election, unbiased=True, source="runs: x.toml")
    assert str(error.value) == f"runs: x.toml: {problem}"
    fewer = poll.model_copy(update={"stations": 31})
    assert pps_design_problem(fewer, proposed_design(fewer, OPTIONS, "invalid", election, unbiased=True).design,
                              election) is None


def test_a_pps_design_is_checked_against_the_stations_with_voters_at_the_top_of_its_range():
    """31 of 40 stations hold voters: a pps poll (exit poll or quick count) that may take 32 is refused from the
    register alone, before anything is simulated; one of at most 31, or a simple one, is not."""
    registered = np.where(np.arange(40) < 31, 500, 0)
    published = {"inc": 0.5, "other": 0.3}
    pps = ExitPollConfig(name="p", stations=[10, 32], selection="pps", by_region=True, per_station=20,
                         published=published)
    assert check_poll_design(pps, 40, registered, OPTIONS, "invalid") == [
        "exit_poll.p.stations: 32 stations drawn proportional to size, but only 31 hold voters"]
    assert check_poll_design(pps.model_copy(update={"stations": [10, 31]}), 40, registered, OPTIONS, "invalid") == []
    assert check_poll_design(pps.model_copy(update={"selection": "simple"}), 40, registered, OPTIONS, "invalid") == []
    count = QuickCountConfig(name="q", stations=32, selection="pps", published=published)
    assert check_poll_design(count, 40, registered, OPTIONS, "invalid") == [
        "quick_count.q.stations: 32 stations drawn proportional to size, but only 31 hold voters"]


def _closed_stations_config(tmp_path, **polls: list[dict]) -> Path:
    """A config on a register of 32 stations, 20 with voters (two regions with closed stations, and a region of
    closed stations only), with ``polls`` (``exit_poll``, ``quick_count``: their blocks); its path."""
    from conftest import small_config_dict

    raw = small_config_dict(replicates=30)
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region"}
    rows = [f"{region},{0 if i % 3 == 0 else 400 + 37 * i}" for region in ("north", "south") for i in range(15)]
    (tmp_path / "stations.csv").write_text("\n".join(["region,registered", *rows, "abroad,0", "abroad,0"]) + "\n")
    raw.update(polls)
    raw["observed"] = {"registered": 10_000, "ballots": 6000, "votes": {"a": 3000, "b": 1800, "c": 1200}}
    config = tmp_path / "x.toml"
    config.write_text(tomli_w.dumps(raw))
    return config


def test_a_pps_design_short_of_stations_with_voters_is_refused_before_simulating(tmp_path, monkeypatch):
    """``compare`` (and ``compare --history``'s check of the earlier configs) refuses it before simulating, and the
    report leaves the comparison out with the reason."""
    from simkit.electorate.build import electorate_of
    from simkit.report.analyses import polls_omission

    config = _closed_stations_config(tmp_path, exit_poll=[{"name": "p", "stations": [5, 21], "selection": "pps",
                                                           "per_station": 40, "published": {"a": 0.5, "b": 0.3,
                                                                                            "c": 0.2}}])
    cfg = simkit.load_config(config)
    monkeypatch.setattr("simkit.polls.compare.prepare", lambda *args, **kwargs: pytest.fail("simulated"))
    reason = "exit_poll.p.stations: 21 stations drawn proportional to size, but only 20 hold voters"
    with pytest.raises(InputError, match=rf"^x\.toml: {reason}$"):
        compare_config(cfg, source="x.toml")
    problem = polls_omission(cfg, electorate_of(cfg), 30)
    assert str(problem) == reason and problem.parameters == ()


def test_polls_of_an_electorate_with_stations_without_voters_compare_end_to_end(tmp_path, capsys):
    """A register with closed stations (0 voters) in every region and a region of them only: polls drawn
    proportional to size (by region) and simply compare, every figure finite."""
    from simkit.cli.main import main

    published = {"a": 0.5, "b": 0.3, "c": 0.2}
    config = _closed_stations_config(
        tmp_path, exit_poll=[{"name": "pps", "stations": 12, "selection": "pps", "by_region": True, "per_station": 40,
                              "published": published},
                             {"name": "simple", "stations": 12, "respondents": "whole_flow", "estimator": "weighted",
                              "published_turnout": 0.6, "published": published}],
        quick_count=[{"name": "count", "stations": 8, "selection": "pps", "published": published}])
    output = tmp_path / "out.json"
    assert main(["compare", str(config), "--ledger-points", "4", "--quiet", "--json", "-o", str(output)]) == 0
    rows = json.loads(output.read_text())["rows"]
    assert {row["pollster"] for row in rows} == {"pps", "simple", "count"}
    assert all(math.isfinite(row["gap_sd"]) and math.isfinite(row["z"]) for row in rows)


@pytest.fixture(scope="module")
def few_answers():
    """Every 100,000th voter of stations of ~600: 3 of 20 replicates get an answer at the midpoint design (the
    fewest the covariance takes), fewer at most other points of the 8-point ledger."""
    from conftest import small_config_dict

    raw = small_config_dict(stations=200, registered=200_000, options=("a", "b", "c", "inv"),
                            shares=(0.55, 0.3, 0.1, 0.05), invalid=True)
    raw["exit_poll"] = [{"name": "p1", "stations": [20, 40], "respondents": "every_kth", "every_kth": 100_000,
                         "response_rate": [0.5, 1.0], "published": {"a": 0.6, "b": 0.3, "c": 0.1}}]
    raw["observed"] = {"registered": 200_000, "ballots": 120_000,
                       "votes": {"a": 62_700, "b": 34_200, "c": 11_400, "inv": 11_700}}
    return compare_config(simkit.Config.model_validate(raw), replicates=20, ledger_points=8, history=None)


def test_a_ledger_point_whose_design_gets_too_few_answers_is_left_out_not_called_a_census(few_answers):
    """At a ledger point where the design gets too few answers one replicate's figure varies by nothing and was
    judged a census: z = ±∞, "rejected everywhere". Such a point (once refusing the whole comparison) is
    reported without z or p, with its reason, and left out of the rows' ledger verdicts; the other points are
    compared."""
    comparison = few_answers
    left = [entry for entry in comparison.ledger if "not_compared" in entry]
    compared = [entry for entry in comparison.ledger if "not_compared" not in entry]
    assert left and compared
    assert all(entry["z"] is None and entry["p_value"] is None and re.fullmatch(
        rf"{FEW_ANSWERS} gets? a valid answer \(\d\.\d valid answers on average\), fewer "
        r"than the 3 a comparison needs", entry["not_compared"]) for entry in left), left
    assert all(math.isfinite(entry["z"]) for entry in compared)
    points = len({entry["point"] for entry in left})
    assert f"p1: at {points} of 8 joint-ledger points (entries' not_compared) its design gets a valid answer in too " \
           "few replicates to publish a comparable figure: those points are left out of its ledger verdicts" \
        in comparison.flags
    for row in comparison.rows:
        mine = [entry for entry in compared if entry["option"] == row["option"]]
        assert (row["z_min"], row["z_max"]) == (min(e["z"] for e in mine), max(e["z"] for e in mine))
        assert row["share_consistent"] == pytest.approx(np.mean([consistent(e) for e in mine]), rel=1e-15)


def test_a_ledger_verdict_over_some_points_says_over_which(few_answers):
    """A verdict taken over the K of N ledger points where the design gets answers once read "of the assumption
    space" and "consistent everywhere" though N − K points were left out: the rows carry K and N (JSON too), and
    compare, the report's ledger sentences and its verdicts name the K of N points; "everywhere" only when
    K = N."""
    from simkit.cli.compare import format_report
    from simkit.report.sections import _ledger_words
    from simkit.report.verdicts import poll_verdicts

    comparison = few_answers
    compared = {entry["point"] for entry in comparison.ledger if "not_compared" not in entry}
    where = f"of the {len(compared)} of 8 points where its design gets answers"
    assert 0 < len(compared) < 8
    text, words = format_report(comparison), _ledger_words(comparison)
    assert len(words) == len(comparison.rows) == 3
    for row, sentence in zip(comparison.rows, words):
        assert (row["points_compared"], row["ledger_points"]) == (len(compared), 8)
        assert "everywhere" not in row["verdict"]
        assert f"consistent with the count in {row['share_consistent']:.0%} {where}: {row['verdict']}." in sentence
        assert f"consistent in {row['share_consistent']:.0%} {where}: {row['verdict']}" in text
        anomalous = {**row, "p_value": 0.001}
        verdict = " ".join(v.text for v in poll_verdicts([anomalous], "a", {"p1": "P1"}))
        assert f"ledger over the {len(compared)} of 8 points where its design gets answers: {row['verdict']})" \
            in verdict
    assert {"points_compared", "ledger_points"} <= set(comparison.to_json()["rows"][0])
    assert "everywhere" not in text.split("Joint assumption ledger")[1]


def test_a_figure_compared_at_no_ledger_point_has_no_ledger_verdict(few_answers):
    """A figure whose design gets too few answers at every ledger point has no z range, share or verdict, and
    neither compare nor the report writes a ledger sentence for it (the others keep theirs)."""
    import copy
    import dataclasses

    from simkit.cli.compare import format_report
    from simkit.report.sections import _ledger_words, _poll_table

    ledger = [{**entry, **dict.fromkeys(("gap_sd", "z", "p_value", "z_total", "p_total")), "not_compared": "none"}
              if entry["option"] == "c" else entry for entry in few_answers.ledger]
    rows = copy.deepcopy(few_answers.rows)
    ledger_verdicts(rows, ledger)
    comparison = dataclasses.replace(few_answers, rows=rows, ledger=ledger)
    nowhere = next(row for row in rows if row["option"] == "c")
    assert {key: nowhere[key] for key in ("z_min", "z_max", "share_consistent", "share_consistent_total",
                                          "verdict", "points_compared", "ledger_points")} == {
        "z_min": None, "z_max": None, "share_consistent": None, "share_consistent_total": None, "verdict": None,
        "points_compared": 0, "ledger_points": 8}
    ledger_lines = format_report(comparison).split("Joint assumption ledger")[1].splitlines()[1:]
    assert [line.split()[:2] for line in ledger_lines] == [["p1", "a"], ["p1", "b"]]
    assert [sentence.split(":")[0] for sentence in _ledger_words(comparison)] == ["p1, a", "p1, b"]
    cells = next(cells for cells in _poll_table(comparison).rows if cells[1] == "c")
    assert cells[-4:-1] == ["—", "—", "—"]
