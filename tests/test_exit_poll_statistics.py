"""Statistics of the poll comparison: Hotelling T², PPS variance, delivered sample size, misreporting
identity, one-mechanism fits, the total-error baseline and its history table."""
import math

import numpy as np
import pytest
from scipy import stats

from simkit.polls.compare import compare_polls
from simkit.polls.designs import resolve_design
from simkit.polls.draws import draw_polls
from simkit.polls.elections import election_at
from simkit.polls.statistics import held_out_distances, hotelling_f, prediction_t2
from simkit.config.polls import ExitPollConfig
from simkit.errors import InputError
from simkit.model.exit_poll import PollDesign, draw_exit_poll
from simkit.polls.error import DEFAULT_HISTORY, ErrorBaseline, load_history
from simkit.polls.mechanisms import Ballot, Observed, fit, mechanisms_for

from exit_poll_helpers import synthetic_election

OPTIONS = ["inc", "other", "against_all", "invalid"]
SHARES = [0.7, 0.15, 0.1, 0.05]
VALID = np.array([True, True, True, False])


@pytest.fixture(scope="module")
def elections():
    """300 simulated elections of 300 stations; replicates 200–299 serve as 'realities'."""
    return synthetic_election(replicates=300, stations=300, options=OPTIONS, shares=SHARES, concentration=40.0,
                              size_sd=0.5, seed=31)


# -- Hotelling ---------------------------------------------------------------------------------------

def test_hotelling_reproduces_johnson_wichern_example_5_2():
    """Johnson & Wichern, Applied Multivariate Statistical Analysis (6th ed.), Example 5.2 (sweat data):
    n = 20, p = 3, T² = 9.74 against the critical value 8.18 at α = 0.10: H0 rejected at 10%."""
    mean = np.array([4.640, 45.400, 9.965])
    null = np.array([4.0, 50.0, 10.0])
    covariance = np.array([[2.879, 10.010, -1.810], [10.010, 199.788, -5.640], [-1.810, -5.640, 3.628]])
    difference = mean - null
    t2 = 20 * difference @ np.linalg.solve(covariance, difference)
    result = hotelling_f(t2, 20, 3)
    assert t2 == pytest.approx(9.74, abs=0.005)
    assert (result["df1"], result["df2"]) == (3, 17)
    critical = 19 * 3 / 17 * stats.f.ppf(0.90, 3, 17)
    assert critical == pytest.approx(8.18, abs=0.01)
    assert result["p_value"] < 0.10 < stats.f.sf(hotelling_f(critical, 20, 3)["f"], 3, 17) + 1e-12


# -- PPS against the analytic ratio-estimator variance ----------------------------------------------

def test_the_held_out_distances_are_those_of_each_replicate_refitted_without_it():
    """The rank-one downdate gives each replicate's Mahalanobis distance² from the other R − 1, mean and covariance
    refitted without it, to rounding."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4)) @ rng.normal(size=(4, 4))
    centred = x - x.mean(axis=0)
    in_sample = np.einsum("ij,jk,ik->i", centred, np.linalg.inv(np.cov(x, rowvar=False)), centred)
    refitted = []
    for i in range(len(x)):
        others = np.delete(x, i, axis=0)
        gap = x[i] - others.mean(axis=0)
        refitted.append(gap @ np.linalg.inv(np.cov(others, rowvar=False)) @ gap)
    assert held_out_distances(in_sample, len(x)) == pytest.approx(refitted, rel=1e-9)


@pytest.mark.parametrize("replicates, dimension", [(4000, 18), (200, 18)])
def test_the_joint_tests_measured_size_is_alpha_when_its_f_reference_is_exact(replicates, dimension):
    """The joint test's measured size (each replicate held out, rejected at 0.05 or not) for multivariate normal
    gaps, where the prediction F reference is exact: alpha R within 4 binomial standard errors. The joint verdict
    gave no size: how often the test rejects when the sampling-only baseline holds was never measured."""
    rng = np.random.default_rng(7)
    simulated = rng.normal(size=(replicates, dimension)) @ rng.normal(size=(dimension, dimension))
    test = prediction_t2(simulated, np.zeros(dimension))
    assert test["size_replicates"] == replicates
    assert abs(test["size_rejected"] - 0.05 * replicates) <= 4 * math.sqrt(0.05 * 0.95 * replicates)
    assert prediction_t2(simulated[:dimension + 1], np.zeros(dimension))["size_rejected"] is None


def test_the_joint_monte_carlo_p_is_valid_when_the_published_figures_are_one_more_replicate():
    """Published figures drawn like the replicates (multivariate normal, 50 replicates in 10 dimensions): the Monte
    Carlo p is at most 0.05 in 2 of 51 trials (its exact law under exchangeability, 2 / (R + 1)), within 4 binomial
    standard errors over 2,000 trials. It ranked the published distance among the replicates' distances from a
    mean and covariance that included each of them, which run short: 20% of the trials at 0.05."""
    rng = np.random.default_rng(0)
    replicates, dimension, trials = 50, 10, 2000
    rejected = sum(prediction_t2(rng.standard_normal((replicates, dimension)),
                                 rng.standard_normal(dimension))["p_monte_carlo"] <= 0.05 for _ in range(trials))
    expected = 2 / (replicates + 1)
    assert abs(rejected / trials - expected) <= 4 * math.sqrt(expected * (1 - expected) / trials)


def test_pps_weighted_estimate_has_the_ratio_estimator_variance():
    """Stations of unequal size drawn proportional to the register, whole protocols, weighted estimator:
    the variance over 3,000 draws matches the Hansen–Hurwitz approximation of the ratio estimator,
    V ≈ Σ eᵢ² / pᵢ / (n X²), eᵢ = yᵢ − R xᵢ (yᵢ the option's votes, xᵢ the station's valid votes), within 4 SE of
    a variance estimate (√(2 / (M − 1))) plus the without-replacement correction n / N it ignores."""
    rng = np.random.default_rng(5)
    stations, n, draws = 2000, 40, 3000
    registered = np.round(1000 * np.exp(0.6 * rng.standard_normal(stations))).astype(np.int64) + 50
    ballots = rng.binomial(registered, 0.7)
    votes = rng.multinomial(ballots, rng.dirichlet(20 * np.array(SHARES), size=stations))
    design = PollDesign(n_stations=n, valid=VALID, selection="pps", respondents="whole_flow", estimator="weighted")
    estimates = np.array([draw_exit_poll(votes, registered, design, np.random.default_rng(100 + k)).shares[0]
                          for k in range(draws)])
    y = votes[:, 0].astype(float)
    x = votes[:, VALID].sum(axis=1).astype(float)
    ratio = y.sum() / x.sum()
    p = registered / registered.sum()
    analytic = np.sum((y - ratio * x) ** 2 / p) / (n * x.sum() ** 2)
    empirical = estimates.var(ddof=1)
    assert abs(empirical / analytic - 1) < 4 * math.sqrt(2 / (draws - 1)) + n / stations


# -- delivered sample size --------------------------------------------------------------------------

def test_fixed_design_delivers_min_of_quota_and_voters(elections):
    """A fixed quota of m voters at n stations drawn simply delivers n · mean(min(m, voters)) respondents;
    a claim above that is reported as a shortfall."""
    ds = elections.isel(replicate=slice(0, 100))
    ballots = ds["votes"].sum("option").values  # (R, S)
    quota, n, claimed = 900, 50, 33_500  # the claim is within what 50 average stations hold (~35,000)
    poll = ExitPollConfig(name="p", stations=n, per_station=quota, sample_size=claimed, selection="simple",
                          published={"inc": 0.7})
    comparison = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=2, misreport=False, ledger_points=0)
    entry = comparison.designs[0]
    per_replicate = n * np.minimum(quota, ballots).mean(axis=1)
    expected = per_replicate.mean()
    # n of 300 stations drawn without replacement: SD of the sample total ≤ √n · SD(min(m, v)) per replicate
    se = math.sqrt(n) * np.minimum(quota, ballots).std() / math.sqrt(len(ballots))
    assert abs(entry["delivered_respondents"] - expected) < 4 * se
    assert entry["claimed_respondents"] == claimed and entry["delivered_respondents"] < claimed
    assert any("shortfall" in flag for flag in comparison.flags)


# -- misreporting identity ---------------------------------------------------------------------------

def test_misreport_needed_for_against_all_is_one_minus_published_over_true(elections):
    """Against-all voters naming the incumbent at rate r thin the against-all answers by (1 − r): the rate
    that brings the simulated median to the published figure is 1 − published / median."""
    ds = elections.isel(replicate=slice(0, 100))
    poll = ExitPollConfig(name="p", stations=100, per_station=200, published={"against_all": 0.07})
    comparison = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=4, ledger_points=0)
    row = comparison.rows[0]
    median = float(np.median(comparison.estimates["estimate"].sel(pollster="p", option="against_all").values))
    identity = 100 * (1 - 7.0 / median)
    # the binomial thinning of A against-all answers adds per-replicate noise of SD √(r(1 − r) / A) to the rate
    # scale; the sample median of R replicates moves by at most ~4 × 1.2533 × that / √R
    rate = identity / 100
    answers = comparison.designs[0]["delivered_respondents"] * (1 - SHARES[3]) * median / 100
    noise = 100 * 4 * 1.2533 * math.sqrt(rate * (1 - rate) / answers) / math.sqrt(len(ds.replicate))
    assert row["misreport_needed"] == pytest.approx(identity, abs=noise + 100 * 2 / 2 ** 18)


# -- one-mechanism fits ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def invalid_heavy():
    """As ``elections`` with a fifth of the ballots invalid (invalid-ballot voters then weigh enough to fit)."""
    return synthetic_election(replicates=210, stations=300, options=OPTIONS, shares=[0.55, 0.15, 0.1, 0.2],
                              concentration=40.0, size_sd=0.5, seed=32)


def _fit_planted(elections, mechanism_name: str, planted_design: dict, realities: range, stuffing: float = 0.0):
    """Fit ``mechanism_name`` to polls drawn with ``planted_design`` from each reality: the number of 95%
    intervals covering the planted value, and the estimates."""
    simulation = elections.isel(replicate=slice(0, 200))
    election = election_at(simulation, {})
    poll = ExitPollConfig(name="p", stations=100, per_station=100, published={"inc": 0.7})
    unbiased = resolve_design(poll, OPTIONS, "invalid", election, unbiased=True).design
    draws = draw_polls(election, unbiased, seed=1, poll_index=0)
    gaps = draws.shares - election.count_shares(VALID)
    columns = [0, 1]  # every valid option is published: the last one carries no information
    observed_cov = np.cov(gaps[:, columns], rowvar=False)
    planted = ExitPollConfig(name="x", stations=100, per_station=100, **planted_design)
    covered, estimates = 0, []
    for index in realities:
        voters = elections["votes"].isel(replicate=index).values
        counted = voters.copy()
        if stuffing:
            counted[:, 0] += np.round(stuffing * voters[:, VALID].sum(axis=1)).astype(np.int64)
        design = resolve_design(planted, OPTIONS, "invalid", election, unbiased=False).design
        shares = draw_exit_poll(voters, election.registered, design, np.random.default_rng(700 + index)).shares
        total = counted.sum(axis=0)
        ballot = Ballot(total / total.sum(), 0, VALID, 3)
        mechanism = next(m for m in mechanisms_for(ballot, OPTIONS, ["against_all"]) if m.name == mechanism_name)
        result = fit(mechanism, ballot, Observed(np.array(columns), shares[columns], observed_cov))
        estimates.append(result["estimate"])
        covered += result["low"] <= _truth(mechanism_name, planted_design, stuffing) <= result["high"]
    return covered, estimates


def _truth(name, planted_design, stuffing):
    if name == "misreport_incumbent":
        return planted_design["misreport"]["other"]["inc"]
    if name == "refusal_against_all":
        return planted_design["response_propensity"]["against_all"] / planted_design["response_propensity"]["inc"]
    if name == "invalid_name_incumbent":
        return planted_design["misreport"]["invalid"]["inc"]
    return stuffing / (1 + stuffing)


@pytest.mark.parametrize("name, planted_design, stuffing", [
    ("misreport_incumbent", {"misreport": {"other": {"inc": 0.1}, "against_all": {"inc": 0.1}}}, 0.0),
    ("refusal_against_all", {"response_propensity": {"inc": 1.0, "other": 1.0, "against_all": 0.6}}, 0.0),
    ("invalid_name_incumbent", {"misreport": {"invalid": {"inc": 0.6}}}, 0.0),
    ("stuffing", {}, 0.04),
])
def test_each_mechanism_recovers_a_planted_parameter(elections, invalid_heavy, name, planted_design, stuffing):
    """Ten polls with the mechanism planted; the 95% profile interval covers the planted value in at least
    8 of 10 (P(fewer) = 0.012 at 95% coverage), and the estimates centre on it (mean within 4 SE)."""
    world = invalid_heavy if name == "invalid_name_incumbent" else elections
    covered, estimates = _fit_planted(world, name, planted_design, range(200, 210), stuffing)
    assert covered >= 8, (covered, estimates)
    truth = _truth(name, planted_design, stuffing)
    assert abs(np.mean(estimates) - truth) < 4 * np.std(estimates, ddof=1) / np.sqrt(len(estimates)), estimates


def test_count_manipulations_cannot_raise_the_incumbent_in_the_poll():
    from simkit.polls.mechanisms import moves_toward

    ballot = Ballot(np.array(SHARES), 0, VALID, 3)
    by_name = {m.name: m for m in mechanisms_for(ballot, OPTIONS, ["against_all"])}
    for name in ("stuffing", "missed_home_voters", "vote_stealing", "coercion"):
        assert not moves_toward(by_name[name], ballot, 0, +0.02), name
    for name in ("misreport_incumbent", "refusal_against_all", "invalid_name_incumbent"):
        assert moves_toward(by_name[name], ballot, 0, +0.02), name
    assert moves_toward(by_name["stuffing"], ballot, 0, -0.02)


# -- the total-error baseline ------------------------------------------------------------------------

def test_shipped_history_is_sourced_and_large_enough():
    rows = load_history(DEFAULT_HISTORY)
    counts = ErrorBaseline(tuple(rows)).counts()
    assert counts["polls"] >= 20 and counts["countries"] >= 6
    assert all(row.poll_source and row.official_source for row in rows)


def test_nonsampling_sd_is_the_rms_of_the_class_errors(tmp_path):
    table = tmp_path / "h.csv"
    header = "country,election,date,pollster,kind,option,published,official,base,in_baseline,poll_source,official_source,note\n"
    table.write_text(header + "A,e,d,P,candidate,x,52,50,valid,true,s,t,\n"
                              "A,e,d,P,candidate,y,9,10,valid,true,s,t,\n"
                              "A,e,d,Q,candidate,y,13,10,valid,true,s,t,\n"
                              "B,e,d,R,candidate,x,60,50,valid,false,s,t,\n")
    baseline = ErrorBaseline.from_file(table)
    assert baseline.sd("large") == pytest.approx(2.0)
    assert baseline.sd("small") == pytest.approx(math.sqrt((1 + 9) / 2))
    assert baseline.sd("against_all") == baseline.sd("small")
    summary = {entry["option_class"]: entry for entry in baseline.summary()}
    assert summary["against_all"]["from_class"] == "small" and summary["small"]["polls"] == 2


@pytest.mark.parametrize("row, message", [
    ("A,e,d,P,candidate,x,52,50,valid,true,,t,", "row 2.poll_source: empty"),
    ("A,e,d,P,candidate,x,-1,50,valid,true,s,t,", "row 2.published: -1 is not a share in percent"),
    ("A,e,d,P,candidate,x,52,101,valid,true,s,t,", "row 2.official: 101 is not a share in percent"),
    ("A,e,d,P,candidate,x,52,50,valid,true,s, t,u,",
     r"row 2 has 14 cells, the header 13 columns \(a delimiter inside an unquoted field"),
    ("A,e,d,P,candidate,x,52", r"row 2 has 7 cells, the header 13 columns \(a field missing"),
    ("A,e,d,P,candidate,x,52,50,valid,true,s,t,\nA,e,d,P,candidate,x,53,50,valid,true,s,t,",
     r"row 3: repeats row 2's figure \(A, e, d, P, candidate, x\)"),
])
def test_bad_history_rows_are_one_line_errors(tmp_path, row, message):
    table = tmp_path / "h.csv"
    table.write_text("country,election,date,pollster,kind,option,published,official,base,in_baseline,"
                     "poll_source,official_source,note\n" + row + "\n")
    with pytest.raises(InputError, match=message):
        load_history(table)


def test_a_history_table_needs_no_base_column(tmp_path):
    """The table's ``base`` column (what each figure is percent of) was required and read by no code: the RMS
    errors are in points whatever the base, and the history holds no sample size for it to be. A table without it
    loads; one that still has it loads too (an extra column is ignored)."""
    header = "country,election,date,pollster,kind,option,published,official,in_baseline,poll_source,official_source,note\n"
    table = tmp_path / "h.csv"
    table.write_text(header + "A,e,d,P,candidate,x,52,50,true,s,t,\nA,e,d,P,candidate,y,9,10,true,s,t,\n")
    assert ErrorBaseline.from_file(table).sd("large") == pytest.approx(2.0)
    old = tmp_path / "old.csv"
    old.write_text(header.replace("official,", "official,base,") + "A,e,d,P,candidate,x,52,50,valid votes,true,s,t,\n")
    assert [row.error for row in load_history(old)] == [2.0]


def test_two_contests_on_one_date_by_one_pollster_are_separate_figures(tmp_path):
    """Two referendums on one day, each polled by the same pollster on yes and no: four figures, not two repeated
    (a figure is also its election and its kind)."""
    table = tmp_path / "h.csv"
    table.write_text("country,election,date,pollster,kind,option,published,official,base,in_baseline,"
                     "poll_source,official_source,note\n"
                     + "".join(f"A,{election},d,P,candidate,{option},50,50,valid,true,s,t,\n"
                               for election in ("first", "second") for option in ("yes", "no")))
    rows = load_history(table)
    assert [(row.election, row.option) for row in rows] == [("first", "yes"), ("first", "no"), ("second", "yes"),
                                                            ("second", "no")]


def test_bad_history_exits_2_and_writes_nothing(tmp_path, capsys):
    import tomli_w

    from conftest import small_config_dict
    from simkit.cli.main import main

    raw = small_config_dict(stations=40, registered=40_000, options=("a", "b"), shares=(0.6, 0.4))
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20, "published": {"a": 0.62}}]
    config = tmp_path / "x.toml"
    config.write_text(tomli_w.dumps(raw))
    table = tmp_path / "h.csv"
    table.write_text("country,election,date,pollster,kind,option,published,official,base,in_baseline,"
                     "poll_source,official_source,note\nA,e,d,P,candidate,x,52,50,valid,true,s,,\n")
    output = tmp_path / "out.json"
    assert main(["compare", str(config), "--error-table", str(table), "-o", str(output), "--replicates", "5"]) == 2
    assert not output.exists()
    assert "row 2.official_source: empty" in capsys.readouterr().err


def test_z_total_combines_sampling_and_history(elections):
    ds = elections.isel(replicate=slice(0, 100))
    poll = ExitPollConfig(name="p", stations=40, per_station=30, published={"inc": 0.74})
    baseline = ErrorBaseline.from_file(DEFAULT_HISTORY)
    row = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=3, misreport=False,
                        baseline=baseline, ledger_points=0).rows[0]
    assert row["option_class"] == "large" and row["nonsampling_sd"] == pytest.approx(baseline.sd("large"))
    assert row["z_total"] == pytest.approx((row["gap"] - row["gap_mean"]) / math.hypot(row["gap_sd"], row["nonsampling_sd"]))
    assert abs(row["z_total"]) < abs(row["z"])


def test_sampling_only_z_of_an_unchanged_design_is_unchanged(elections):
    """The former z (published − simulated mean) / simulated SD, kept as ``z_unconditional``, is what the
    same design's draws give, independently recomputed."""
    ds = elections.isel(replicate=slice(0, 100))
    poll = ExitPollConfig(name="p", stations=40, per_station=30, published={"inc": 0.72})
    row = compare_polls(ds, [poll], incumbent="inc", invalid="invalid", seed=3, misreport=False, ledger_points=0).rows[0]
    election = election_at(ds, {})
    design = resolve_design(poll, OPTIONS, "invalid", election, unbiased=True).design
    simulated = 100 * draw_polls(election, design, 3, 0).shares[:, 0]
    assert row["z_unconditional"] == pytest.approx((72.0 - simulated.mean()) / simulated.std(ddof=1))


def test_dot_plot_has_one_row_per_poll_and_reference(elections):
    from simkit.plots.polls import plot_poll_comparison

    ds = elections.isel(replicate=slice(0, 50))
    polls = [ExitPollConfig(name=f"p{k}", label=f"Pollster {k}", stations=30, per_station=20,
                            published={"inc": 0.7 + 0.01 * k, "against_all": 0.1}) for k in range(2)]
    baseline = ErrorBaseline.from_file(DEFAULT_HISTORY)
    comparison = compare_polls(ds, polls, incumbent="inc", invalid="invalid", seed=3, misreport=False,
                               against_all=("against_all",), baseline=baseline, ledger_points=0)
    figure = plot_poll_comparison(comparison)
    incumbent_axis, against_axis = figure.axes
    reference = [row for row in baseline.rows if not row.in_baseline and row.option_class == "large"]
    labels = [tick.get_text() for tick in incumbent_axis.get_yticklabels()]
    assert labels[:2] == ["Pollster 0", "Pollster 1"] and len(labels) == 2 + len(reference)
    gaps = sorted(line.get_xdata()[0] for line in against_axis.lines if line.get_marker() == "o")
    assert gaps == pytest.approx(sorted(row["gap"] for row in comparison.rows if row["option"] == "against_all"))


def test_history_side_by_side_and_turnout_rows(tmp_path, capsys):
    import json

    import tomli_w

    from conftest import small_config_dict
    from simkit.cli.main import main

    paths = []
    for year, published in ((2019, 0.61), (2022, 0.64)):
        raw = small_config_dict(stations=40, registered=40_000, options=("a", "b"), shares=(0.6, 0.4))
        raw["title"] = f"election {year}"
        raw["exit_poll"] = [{"name": f"p{year}", "stations": 10, "per_station": 20, "published": {"a": published},
                             "published_turnout": 0.62}]
        raw["observed"] = {"registered": 40_000, "ballots": 24_000, "votes": {"a": 14_400, "b": 9_600}}
        paths.append(tmp_path / f"{year}.toml")
        paths[-1].write_text(tomli_w.dumps(raw))
    assert main(["compare", str(paths[1]), "--history", str(paths[0]), "--json", "--replicates", "20",
                 "--ledger-points", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [entry["title"] for entry in report["history"]] == ["election 2019", "election 2022"]
    turnout = next(row for row in report["rows"] if row["option"] == "turnout")
    assert turnout["official"] == pytest.approx(60.0) and turnout["gap"] == pytest.approx(2.0)
    assert turnout["option_class"] == "turnout" and turnout["nonsampling_sd"] is not None
    assert report["history"][0]["rows"][0]["gap"] == pytest.approx(1.0)


@pytest.mark.parametrize("change, problem", [
    ({"exit_poll": []}, "exit_poll: the config has no [[exit_poll]] or [[quick_count]] blocks"),
    ({"run": {"replicates": 1, "seed": 1}}, "1 are too few to estimate the covariance"),
    ({"exit_poll": [{"name": "p", "stations": 10, "per_station": 20}]},
     "exit_poll.p.published, exit_poll.p.published_turnout: no published figure: the comparison would have no row"),
    ({"exit_poll": [], "quick_count": [{"name": "q", "stations": 10}]},
     ": quick_count.q.published: no published figure: the comparison would have no row"),
])
def test_history_configs_are_checked_before_any_simulation(tmp_path, capsys, monkeypatch, change, problem):
    """A history config that cannot be compared, or whose polls publish no figure (it would add no row: once
    silently), is one line, exit 2, before the main comparison simulates; it names the fields that hold the
    figures as each poll's kind has them (a quick count has no published_turnout)."""
    import tomli_w

    import simkit.polls.compare
    from conftest import small_config_dict
    from simkit.cli.main import main

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated before checking the history configs")

    monkeypatch.setattr(simkit.polls.compare, "simulated_worlds", no_simulation)
    raw = small_config_dict(stations=40, registered=40_000, options=("a", "b"), shares=(0.6, 0.4))
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20, "published": {"a": 0.61}}]
    raw["observed"] = {"votes": {"a": 24_000, "b": 16_000}}
    main_config, earlier = tmp_path / "now.toml", tmp_path / "then.toml"
    main_config.write_text(tomli_w.dumps(raw))
    earlier.write_text(tomli_w.dumps({**raw, **change}))
    replicates = [] if "run" in change else ["--replicates", "20"]
    assert main(["compare", str(main_config), "--history", str(earlier), *replicates, "--ledger-points", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{earlier}: ") and problem in err, err


def test_polls_without_a_published_figure_are_refused_naming_their_first_fields_then_how_many_more():
    """Six exit polls that publish nothing hold 12 figure fields: the refusal names the first
    :data:`~simkit.errors.MAX_LISTED` (10) and how many it leaves out, as every list an error repeats (it named
    all 12)."""
    from simkit.errors import MAX_LISTED
    from simkit.polls.checks import publishes_problem

    polls = [ExitPollConfig(name=f"p{i}", stations=10, per_station=20) for i in range(6)]
    message = str(publishes_problem(polls))
    fields = [f"exit_poll.p{i}.{name}" for i in range(6) for name in ("published", "published_turnout")]
    listed = f"{', '.join(fields[:MAX_LISTED])}, and {len(fields) - MAX_LISTED} more"
    assert message.startswith(f"{listed}: no published figure: "), message
    assert fields[MAX_LISTED] not in message


def test_batched_distances_are_each_distance_to_the_bit():
    """The grid search's batched d² equals d² computed one θ at a time, bit for bit (one solve per row)."""
    rng = np.random.default_rng(4)
    covariance = np.cov(rng.normal(size=(500, 5)), rowvar=False) * 1e-4
    observed = Observed(np.array([0, 1, 2, 4, 5]), np.array([0.8, 0.06, 0.05, 0.03, 0.02]), covariance)
    expected = rng.dirichlet(np.ones(7), size=301)
    one_at_a_time = np.array([observed.distance2(row) for row in expected])
    assert np.array_equal(observed.distances2(expected), one_at_a_time)


def test_history_columns_stay_aligned_under_short_pollster_names():
    """A pollster named in fewer letters than "pollster" ran the header's columns together ("pollsteroption")."""
    from simkit.cli.compare import format_history

    row = {"pollster": "qc", "option": "a", "gap": 1.0, "gap_sd": 0.5, "z": 2.0, "z_total": 1.0}
    header, line = format_history([{"title": "t", "rows": [row]}])[2:4]
    assert header.index("option") == line.index(" a ") + 1
    assert header.index("pollster") < header.index("option") - len("pollster")
