"""``simkit report``: sections per input combination, verdict numbers traced to the analyses, provenance hashes,
and bad input (one-line errors, exit 2, nothing half-written). Golden structure, not golden text."""
from __future__ import annotations

import hashlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from conftest import small_config_dict
from forensics_helpers import engine_positions, honest_dataset, overlapping, record_seed_positions, shared_positions
from simkit import progress
from simkit.cli.main import main
from simkit.errors import InputError
from simkit.forensics import holm_alarms
from simkit.forensics.core import ALPHA, holm
from simkit.forensics.power import PLANTS, largest_standard_error, largest_unseen_power
from simkit.polls.statistics import MIN_TAIL_COUNT, smallest_monte_carlo_p
from simkit.report import build, write
from simkit.report.catalogue import DETECTS
from simkit.report.document import Bullets, Image, Paragraph, Table
from simkit.schema import rejects

REPLICATES = 40
#: a poll far from the count (anomalous) and one drawn at the count's shares (consistent)
POLLS = [{"name": "far", "label": "Far Institute", "stations": 10, "per_station": 30,
          "published": {"a": 0.75, "b": 0.17, "c": 0.08}},
         {"name": "near", "stations": 10, "per_station": 30, "published": {"a": 0.60, "b": 0.30, "c": 0.10}}]
OBSERVED = {"registered": 60000, "ballots": 36000, "votes": {"a": 21600, "b": 10800, "c": 3600}}
FORENSIC_TESTS = "integer_percent,spikes,shpilkin,fingerprint"
MAP = ('label = "Testland general election"\n[columns]\nregistered = "registered"\nballots = "ballots"\n'
       'region = "region"\n[options]\na = "a"\nb = "b"\n')


def write_config(path, *, polls=True, observed=True, scenarios=False, matched=False):
    raw = small_config_dict(stations=60, registered=60_000, shares=(0.6, 0.3, 0.1), replicates=REPLICATES)
    raw["title"] = "Testland presidential election"
    if polls:
        raw["exit_poll"] = POLLS
    if polls and observed:
        raw["observed"] = OBSERVED
    if scenarios:
        raw["manipulation"] = [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.3,
                                "f_extreme": 0.05, "theta": 0.1, "alpha": 2.0}]
        raw["scenario"] = [{"name": "honest"}, {"name": "stuffed", "manipulations": ["stuff"]}]
        if matched:
            raw["scenario"] = [{**scenario, "match_observed": True} for scenario in raw["scenario"]]
    path.write_text(tomli_w.dumps(raw))
    return path


def returns_lines(n_stations: int, seed: int) -> list[str]:
    """Honest two-option returns (:func:`forensics_helpers.honest_dataset`) as CSV lines, the header first:
    registered, ballots, region, a, b (the columns of :data:`MAP`)."""
    ds = honest_dataset(n_stations, seed=seed)
    return ["registered,ballots,region,a,b"] + [
        f"{r},{b},{g},{v[0]},{v[1]}" for r, b, g, v in zip(ds["registered"].values, ds["ballots"].values,
                                                           ds["region"].values, ds["votes"].values)]


@pytest.fixture
def returns(tmp_path):
    """Honest two-option returns (CSV) with one row whose votes exceed its ballots, and their map."""
    lines = returns_lines(400, seed=7)
    lines[5] = "1000,500,north,400,300"
    (tmp_path / "returns.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "map.toml").write_text(MAP)
    return tmp_path / "returns.csv", tmp_path / "map.toml"


@pytest.fixture(scope="module")
def polls_report(tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("polls") / "polls.toml", scenarios=True)
    return config, build(config, replicates=REPLICATES, seed=3)


def keys(doc):
    return [section.key for section in doc.sections]


def test_config_with_polls_and_scenarios_has_their_sections(polls_report):
    _, doc = polls_report
    assert keys(doc) == ["answer", "simulation", "polls", "scenarios", "limits", "provenance", "appendix"]
    assert list(doc.omitted) == ["forensics"]
    assert "Testland presidential election" in doc.title
    assert len(doc.images) == 1


#: a number as the verdicts show it (the tables' hyphen-minus; p-values may be in exponent notation)
NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[+-]?\d+)?")


def expected_value(source: dict, comparison):
    """The analysis result a verdict number says it shows (``source`` as recorded by the verdict writer)."""
    rows = comparison.rows
    if source["analysis"] == "polls":
        if "option" in source:
            value = next(row for row in rows if (row["pollster"], row["option"]) ==
                         (source["pollster"], source["option"]))[source["field"]]
            return smallest_monte_carlo_p(value) if source.get("transform") == "smallest_monte_carlo_p" else value
        own = [row for row in rows if row["pollster"] == source.get("pollster", row["pollster"])]
        return {"count": len(own), "count_total": sum(row["p_total"] is not None for row in own),
                "anomalous": sum(rejects(row["p_value"]) for row in own),
                "anomalous_total": sum(rejects(row["p_total"]) for row in own),
                "rows": len(rows),
                "holm": sum(rejects(p) for p in holm([row["p_value"] for row in rows]))}[source["field"]]
    if source["analysis"] == "mechanisms":
        return next(entry for entry in comparison.mechanisms if (entry["pollster"], entry["mechanism"]) ==
                    (source["pollster"], source["mechanism"]))[source["field"]]
    if source["analysis"] == "joint":
        test = comparison.joint if "pollster" not in source else next(
            poll for poll in comparison.joint["per_poll"] if poll["pollster"] == source["pollster"])
        return test[source["field"]]
    if source["analysis"] == "designs":
        value = next(d for d in comparison.designs if d["pollster"] == source["pollster"])[source["field"]]
        return 1 / value if source.get("transform") == "reciprocal" else value
    raise AssertionError(f"unknown source {source}")


def assert_traced(doc):
    """Every number in every verdict sentence is one the writer recorded, and each recorded number equals the
    analysis result it names; returns how many numbers were checked per analysis."""
    comparison = doc.analyses["comparison"]
    checked = {}
    for verdict in doc.verdicts:
        shown = {number.text for number in verdict.figures}
        for token in NUMBER.findall(verdict.text):
            assert token in shown or token.lstrip("+-") in shown or token == f"{ALPHA:g}", (token, verdict.text)
        for number in verdict.figures:
            assert number.text in verdict.text
            if number.source["analysis"] == "forensics":
                continue
            assert number.value == pytest.approx(expected_value(number.source, comparison), rel=1e-12), number
            checked[number.source["analysis"]] = checked.get(number.source["analysis"], 0) + 1
    return checked


def test_every_number_in_the_verdicts_is_the_analysis_result(polls_report):
    _, doc = polls_report
    checked = assert_traced(doc)
    assert checked["polls"] > 10 and checked["joint"] >= 5 and checked["mechanisms"] >= 5
    far = [v.text for v in doc.verdicts if v.text.startswith("Far Institute")]
    assert "anomalous (p ≤ 0.05)" in far[0] and "toward the incumbent" in far[0]
    assert any("against total survey error" in text and "p total" in text for text in far)
    assert not any("fraud" in v.text.lower() for v in doc.verdicts)


def test_verdicts_follow_the_stated_rules(polls_report):
    """The sentences say what the rules decide: figures beyond sampling error (p ≤ alpha) and beyond total
    survey error (p_total ≤ alpha) are named, and only those; the ledger verdict is the comparison's own;
    mechanisms are sorted into fits (fit p > FITS, observed direction), misfits, and cannot."""
    from simkit.report.verdicts import FITS, THRESHOLDS, fits_all

    _, doc = polls_report
    comparison = doc.analyses["comparison"]
    assert FITS == THRESHOLDS["fits"][0]
    far = [v.text for v in doc.verdicts if v.text.startswith("Far Institute")]
    sampling, total, mechanisms = far
    for row in (r for r in comparison.rows if r["pollster"] == "far"):
        named = f"{row['option']} {row['published']:.2f}% published"
        assert (named in sampling) == rejects(row["p_value"])
        assert (named in total) == rejects(row["p_total"])
        if rejects(row["p_value"]):
            assert f"ledger over the assumption space: {row['verdict']}" in sampling
    entries = [e for e in comparison.mechanisms if e["pollster"] == "far"]
    fitting, _, rest = mechanisms.partition("move the gap in its direction but do not fit")
    fitting, _, cannot = fitting.partition("cannot produce a gap in this direction")
    cannot = cannot or rest.partition("cannot produce a gap in this direction")[2]
    for entry in entries:
        if not entry["moves_gap_observed_way"]:
            assert entry["mechanism"] in cannot
        elif fits_all(entry):
            assert f"{entry['mechanism']} (" in fitting
        else:
            assert f"{entry['mechanism']} (" in rest and f"{entry['mechanism']} (" not in fitting
    joint = next(v.text for v in doc.verdicts if v.text.startswith("All published figures jointly"))
    assert "Hotelling's T²" in joint
    assert ("confirm p-values only down to" in joint) == (comparison.joint["p_method"] != "hotelling_f")
    # the near poll agrees with the count: no mechanism sentence for it
    assert not any(v.text.startswith("near, one mechanism") for v in doc.verdicts)


def test_the_holm_count_of_the_polls_names_the_error_it_is_against(polls_report):
    """"7 of 24 published figures stay anomalous after Holm's correction" read as a verdict on the figures while it
    counts their p against sampling error alone; against total survey error 2 were anomalous (Kazakhstan 2022)."""
    _, doc = polls_report
    holm_sentence = next(v.text for v in doc.verdicts if v.text.startswith("Across all"))
    assert "anomalous against sampling error alone (p, not p total) after Holm's correction" in holm_sentence


def test_the_poll_section_keys_the_tables_pollsters_to_the_labels_the_sentences_use(polls_report):
    """The sentences name a poll by its label ("Far Institute"), the tables by its name ("far"): a reader checking
    a quoted sentence against the table had no key from one to the other."""
    _, doc = polls_report
    intro = doc.section("polls").blocks[0].text
    assert intro.endswith("Pollsters in the tables, as the short answer names them: far = Far Institute.")


def test_the_poll_section_names_the_history_file_as_the_provenance_names_a_file(polls_report, tmp_path, monkeypatch):
    """The history table behind the total-error baseline is the poll section's last table, its file named relative
    to the current folder when inside it, else as given (:func:`simkit.errors.shown_path`); the comparison's JSON
    keeps the path as given. The generic loop over the comparison's products rewrote it in a special case."""
    from simkit.errors import shown_path
    from simkit.polls.error import DEFAULT_HISTORY
    from simkit.report.sections import _history_table

    _, doc = polls_report
    comparison = doc.analyses["comparison"]
    last = doc.section("polls").blocks[-1]
    assert isinstance(last, Table) and last.caption == "baseline_table"
    assert dict(last.rows)["source"] == shown_path(DEFAULT_HISTORY)
    assert comparison.to_json()["baseline_table"]["source"] == str(DEFAULT_HISTORY)
    monkeypatch.chdir(DEFAULT_HISTORY.parent.parent)
    assert dict(_history_table(comparison)[0].rows)["source"] == "configs/exit_poll_history.csv"
    monkeypatch.chdir(tmp_path)
    assert dict(_history_table(comparison)[0].rows)["source"] == str(DEFAULT_HISTORY)


def test_the_joint_verdict_and_table_carry_the_tests_measured_size(polls_report):
    """The joint test's verdict states how often it rejects replicates drawn under the baseline, each held out
    (its measured size), and the joint table shows it per test; compare's text too."""
    from simkit.cli.compare import format_report

    _, doc = polls_report
    joint = doc.analyses["comparison"].joint
    rejected, replicates = joint["size_rejected"], joint["size_replicates"]
    assert replicates == REPLICATES and 0 <= rejected <= replicates
    verdict = next(v.text for v in doc.verdicts if v.text.startswith("All published figures jointly"))
    shown = f"{rejected:,}" if rejected else "none"
    assert (f"; its measured size: it rejects {shown} of {replicates:,} replicates drawn under that baseline, each "
            f"held out and tested against the others, at {ALPHA:g}") in verdict
    table = next(b for b in doc.section("polls").blocks if isinstance(b, Table) and b.columns[0] == "published figures")
    assert table.columns[-1] == "measured size" and table.rows[0][-1] == f"{rejected:,} of {replicates:,}"
    assert (f"measured size: rejects {rejected:,} of {replicates:,} replicates held out"
            in format_report(doc.analyses["comparison"]))


def test_sampling_error_not_explaining_a_gap_is_said_at_the_midpoint_assumptions(polls_report):
    """"Sampling error alone does not explain them" was said of figures the joint ledger finds consistent in 62%
    of the assumption space ("depends", Kazakhstan 2022): the claim holds at the design figures' midpoints, and the
    sentence names the figures the ledger does not reject everywhere."""
    from simkit.report.verdicts import poll_verdicts

    _, doc = polls_report
    rows = [dict(row) for row in doc.analyses["comparison"].rows if row["pollster"] == "far"]
    anomalous = [row for row in rows if rejects(row["p_value"])]
    assert all(row["verdict"] == "rejected everywhere" for row in anomalous)
    settled = poll_verdicts(rows, "a", {})[0].text
    assert ("not explain them with each unpublished design figure at the midpoint of its range; every share gap"
            in settled)
    anomalous[0]["verdict"] = "depends"
    unsettled = poll_verdicts(rows, "a", {})[0].text
    assert (f"at the midpoint of its range, though over the joint ledger's assumptions (those ranges and the others "
            f"the poll section lists) {anomalous[0]['option']} is not rejected everywhere; every share gap") in unsettled


def test_the_ledger_names_what_it_varies_and_does_not_call_it_sampling_alone(polls_report):
    """The joint ledger varies each exit poll's estimator and the share of its invalid-ballot voters who name the
    incumbent (0 to 1), a poll-side bias the mechanism fits test as invalid_name_incumbent; the report and compare
    said it varied "every stated assumption" and gave "the share of the space where sampling alone explains the
    gap". In the flagship that bias took SOCIS-A's tokayev figure from z +2.0 (6% of invalid-ballot voters naming
    the incumbent) to -0.2 (97%), and its ledger verdict to "consistent everywhere"."""
    from simkit.cli.compare import format_report
    from simkit.polls.ledger import ledger_varied

    _, doc = polls_report
    comparison = doc.analyses["comparison"]
    varied = ledger_varied(comparison.ledger)
    assert varied.startswith("each poll's ") and "estimator (raw or weighted)" in varied
    assert {name.split(".")[-1] for entry in comparison.ledger for name in entry["assumed"]} <= {
        "stations", "sample_size", "sample_size_reading", "response_rate", "estimator", "invalid_name_incumbent"}
    paragraph = next(b.text for b in doc.section("polls").blocks
                     if isinstance(b, Paragraph) and b.text.startswith("The joint assumption ledger"))
    text = format_report(comparison)
    for words in (paragraph, text):
        assert varied in words
        assert "sampling alone explains" not in words and "every stated assumption" not in words
    entries = [{"assumed": {"exit_poll.far.estimator": "raw", "exit_poll.far.invalid_name_incumbent": 0.5,
                            "turnout.dispersion": 1}}]
    assert ledger_varied(entries) == ("each poll's estimator (raw or weighted), share of invalid-ballot voters who "
                                      "name the incumbent (0 to 1: how they answer is a poll-side bias, the mechanism "
                                      "invalid_name_incumbent); the swept turnout.dispersion")
    assert ledger_varied([]) == ""


def test_a_p_value_from_the_normal_tail_says_so_in_the_sentence(polls_report):
    """The table marks a p-value beyond what the replicates confirm (normal tail, *), but the sentence stated it
    bare ("p = 1.3e-31" from 50 replicates), a precision no Monte Carlo result of that size has."""
    _, doc = polls_report
    rows = [row for row in doc.analyses["comparison"].rows if row["pollster"] == "far" and rejects(row["p_value"])]
    tail = [row for row in rows if row["p_method"] == "normal_tail"]
    assert tail, "the far poll's figures lie beyond its replicates"
    sampling = next(v for v in doc.verdicts if v.text.startswith("Far Institute:"))
    for row in rows:
        shown = next(n.text for n in sampling.figures if n.source.get("option") == row["option"]
                     and n.source["field"] == "p_value")
        assert (f"p = {shown} from the normal tail" in sampling.text) == (row in tail)
    assert "not a Monte Carlo result: too few simulated replicates are as extreme, so they place it only below " \
           f"{smallest_monte_carlo_p(tail[0]['p_floor']):.2g}, their smallest Monte Carlo p" in sampling.text


def test_a_p_from_the_normal_tail_is_placed_below_the_smallest_monte_carlo_p(polls_report):
    """The replicates place a p from the normal tail only below the smallest two-sided Monte Carlo p they give,
    2 (MIN_TAIL_COUNT + 1) / (R + 1): the sentence, the table's caption and compare's footnote said they reach
    1 / (R + 1), twelve times lower. Below 239 replicates that bound is above 0.05, and the verdict on such a p is
    the normal tail's alone: the sentence says so."""
    from simkit.cli.compare import _rows_table
    from simkit.polls.statistics import tail_p_value

    _, doc = polls_report
    comparison = doc.analyses["comparison"]
    replicates = round(1 / comparison.rows[0]["p_floor"]) - 1
    reach = smallest_monte_carlo_p(comparison.rows[0]["p_floor"])
    assert reach == pytest.approx(2 * (MIN_TAIL_COUNT + 1) / (replicates + 1))
    simulated = np.arange(replicates, dtype=float)
    edge = simulated[MIN_TAIL_COUNT - 1] + 0.5  # MIN_TAIL_COUNT replicates below it: the smallest Monte Carlo p
    assert tail_p_value(simulated, edge, 0.0) == (pytest.approx(reach), "monte_carlo")
    assert tail_p_value(simulated, edge - 1.0, 0.0)[1] == "normal_tail"
    caption = next(b for b in doc.section("polls").blocks if isinstance(b, Table)).caption
    assert f"* from the normal tail: too few replicates as extreme, they place it only below {reach:.2g}, their " \
           "smallest Monte Carlo p" in caption
    assert f"p: two-sided Monte Carlo; * normal tail: too few replicates as extreme, they place it only below " \
           f"{reach:.2g}, their smallest Monte Carlo p." in "\n".join(_rows_table(comparison, 14))
    sampling = next(v for v in doc.verdicts if v.text.startswith("Far Institute:"))
    assert reach > ALPHA and f"as that is above {ALPHA:g}, a verdict on such a p rests on the normal tail alone" \
        in sampling.text


def test_design_verdicts_state_delivered_against_claimed_and_the_probability():
    from simkit.report.verdicts import IMPROBABLE, design_verdicts

    base = {"pollster": "p", "claimed_respondents": 304000, "claim_assumed": False, "claim_counts": "respondents",
            "delivered_respondents": 245700.4, "delivered_voters_in_flow": 400000.0, "replicates": 1000}
    verdicts = design_verdicts([
        {**base, "design_probability": 0.0}, {**base, "pollster": "q", "design_probability": IMPROBABLE / 5},
        {**base, "pollster": "r", "design_probability": 0.6},
        {**base, "pollster": "s", "claim_assumed": True, "design_probability": 0.0}], {"p": "P Institute"})
    assert len(verdicts) == 3  # a size assumed from a stated range (pollster s) is not a claim
    none, rare, likely = verdicts
    assert none.text.startswith("P Institute's design: claims 304,000 respondents")
    assert "delivers 245,700 on average" in none.text and "improbable, P < 0.001" in none.text
    assert "improbable, P = 0.01" in rare.text and "improbable" not in likely.text and "P = 0.6" in likely.text
    flow = design_verdicts([{**base, "claim_counts": "voters in the flow", "design_probability": 0.01}], {})[0]
    assert "claims 304,000 voters in the flow" in flow.text and "delivers 400,000" in flow.text


def test_scenario_rows_compare_each_manipulation_with_the_honest_count(polls_report):
    _, doc = polls_report
    table = next(block for block in doc.section("scenarios").blocks if isinstance(block, Table))
    stuffed = {row[2]: row for row in table.rows if row[0] == "stuffed"}
    assert set(stuffed) == {"turnout", "a"}
    assert float(stuffed["turnout"][5]) > 0  # stuffing raises turnout over the same honest draw
    assert "Count-matched" not in doc.section("scenarios").blocks[0].text


def scenario_t2_table(doc):
    return [block for block in doc.section("scenarios").blocks if isinstance(block, Table)][1]


def test_scenarios_show_count_turnout_and_the_polls_t2(polls_report):
    _, doc = polls_report
    scenarios = doc.analyses["comparison"].scenarios
    table = scenario_t2_table(doc)
    assert [row[0] for row in table.rows] == [s["scenario"] for s in scenarios] == ["honest", "stuffed"]
    for row, scenario in zip(table.rows, scenarios):
        assert row[1] == "no"
        assert row[2] == f"{scenario['count_turnout']:.2f}" and row[3] == f"{scenario['t2']:.1f}"
        assert row[5] == f"({scenario['df1']}, {scenario['df2']})" and row[7] == scenario["p_method"]
        assert table.columns[8] == "measured size"  # each verdict beside its size (the table had none)
        assert row[8] == f"{scenario['size_rejected']:,} of {scenario['size_replicates']:,}"
    assert float(table.rows[1][2]) > float(table.rows[0][2])  # stuffing raises the count's turnout


def test_count_matched_scenarios_say_so(tmp_path, monkeypatch):
    """The scenarios' pilots are drawn once, for the simulation: the poll comparison takes their solutions."""
    from simkit.engine import count_match

    config = write_config(tmp_path / "matched.toml", scenarios=True, matched=True)
    solved, solve = [], count_match.solve
    monkeypatch.setattr(count_match, "solve", lambda cfg, name, *args, **kwargs: solved.append(name) or solve(
        cfg, name, *args, **kwargs))
    doc = build(config, replicates=REPLICATES // 2, seed=5)
    assert sorted(solved) == ["honest", "stuffed"]
    assert "Count-matched scenarios (honest, stuffed)" in doc.section("scenarios").blocks[0].text
    assert [row[1] for row in scenario_t2_table(doc).rows] == ["yes", "yes"]


def test_provenance_hashes_match_the_files(polls_report):
    config, doc = polls_report
    record = doc.analyses["provenance"]
    assert record["config_sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert record["config_text"] == config.read_text()
    assert record["seed"] == 3 and record["replicates"] == REPLICATES
    assert "--seed 3" in record["reproduce"] and f"--replicates {REPLICATES}" in record["reproduce"]


def test_provenance_hashes_the_mapping_the_returns_were_read_through(returns):
    """The provenance hashed the returns but not the map that says which of their columns are counted: a map
    edited since would reproduce another report under the same recorded inputs."""
    data, mapping = returns
    files = build(returns=data, map=mapping, tests=["dip"], null="textbook", draws=20,
                  power=0).analyses["provenance"]["files"]
    assert {"role": "returns mapping", "path": str(mapping),
            "sha256": hashlib.sha256(mapping.read_bytes()).hexdigest()} in files


def test_provenance_shows_a_file_inside_the_working_directory_relative_to_it(returns, monkeypatch):
    """A report made in the folder holding its inputs names them relative to it, as the reproduce command reads
    them there; one made elsewhere names them as given. The README's examples quoted the machine's absolute paths
    (of the checkout and the shared data folder) for every file they read."""
    from simkit.errors import shown_path

    data, mapping = returns
    monkeypatch.chdir(data.parent)
    files = build(returns=data, map=mapping, tests=["dip"], null="textbook", draws=20,
                  power=0).analyses["provenance"]["files"]
    assert {(f["role"], f["path"]) for f in files} == {("station returns", data.name), ("returns mapping", mapping.name)}
    monkeypatch.chdir(data.parent.parent)
    assert shown_path(data) == str(data.relative_to(data.parent.parent))
    elsewhere = data.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert shown_path(data) == str(data)
    assert shown_path("../returns.csv") == "../returns.csv"


def test_provenance_records_the_commit_of_the_simkit_source(repo):
    """The provenance gave simkit's version, 0.1.0, the same for every commit of it, whose numbers differ: the
    commit of the checkout imported is recorded, marked when its tracked files differ from it."""
    import subprocess

    import simkit
    from simkit.report.provenance import versions

    if Path(simkit.__file__).resolve().parent.parent != repo or not (repo / ".git").exists():
        pytest.skip("simkit is not imported from this git checkout")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    changed = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--",
                              "simkit"], capture_output=True, text=True, check=True).stdout.strip()
    assert versions()["simkit commit"] == head + ("+modified" if changed else "")


def test_a_config_with_a_byte_order_mark_is_reported(tmp_path):
    """A config saved with a UTF-8 byte-order mark loads, so its report is made too; the provenance shows its text
    as the config reader reads it and hashes its bytes as saved."""
    config = write_config(tmp_path / "bom.toml", polls=False, observed=False)
    text = config.read_text()
    config.write_bytes(b"\xef\xbb\xbf" + text.encode())
    record = build(config, replicates=4, seed=1).analyses["provenance"]
    assert record["config_text"] == text
    assert record["config_sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()


@pytest.mark.parametrize("polls, observed, reason", [(False, False, "exit_poll: the config has no [[exit_poll]]"),
                                                      (True, False, "observed: the config has no [observed] official "
                                                                    "count"),
                                                      (True, True, "replicates: 4 are too few to estimate the covariance "
                                                                   "of the 4 published figures")])
def test_config_without_polls_or_observed_states_the_omission(tmp_path, polls, observed, reason):
    """The two polls publish 4 figures (each its third share implied): 4 replicates cannot estimate their
    covariance, so the comparison is left out with the reason, the rest of the report still made."""
    doc = build(write_config(tmp_path / "plain.toml", polls=polls, observed=observed), replicates=4, seed=1)
    assert keys(doc) == ["answer", "simulation", "limits", "provenance", "appendix"]
    assert set(doc.omitted) == {"polls", "scenarios", "forensics"}
    assert reason in doc.omitted["polls"]
    answer = " ".join(getattr(block, "text", "") + " ".join(getattr(block, "items", []))
                      for block in doc.section("answer").blocks)
    assert doc.omitted["polls"] in answer and doc.verdicts == []


def test_omission_reasons_from_python_name_its_arguments(tmp_path):
    doc = build(write_config(tmp_path / "c.toml"), replicates=4, seed=1)
    assert doc.omitted["polls"].startswith("replicates: 4 are too few to estimate the covariance")
    assert doc.omitted["forensics"] == ("the station-level tests need returns=DATA with preset=NAME or map=MAP.toml; "
                                        "none given")


def test_omission_reasons_on_the_command_line_name_its_flags(tmp_path):
    config, report = write_config(tmp_path / "c.toml"), tmp_path / "r.md"
    assert main(["report", str(config), "-o", str(report), "--replicates", "4", "--seed", "1", "--quiet"]) == 0
    text = report.read_text()
    assert "- polls: --replicates: 4 are too few to estimate the covariance" in text
    assert ("- forensics: the station-level tests need --returns DATA with --preset NAME or --map MAP.toml; none "
            "given") in text


def test_the_report_builds_the_electorate_once(tmp_path, monkeypatch):
    """The omission check, the simulation and the poll comparison share the one electorate the report builds."""
    from simkit.electorate import build as electorate_build

    built = []
    original = electorate_build.build_electorate
    monkeypatch.setattr(electorate_build, "build_electorate", lambda spec: built.append(spec) or original(spec))
    doc = build(write_config(tmp_path / "polls.toml", scenarios=True), replicates=REPLICATES // 2, seed=5)
    assert "polls" not in doc.omitted and len(built) == 1


def test_returns_give_the_forensics_section_with_one_figure_per_test(returns, tmp_path):
    data, mapping = returns
    doc = build(write_config(tmp_path / "c.toml", polls=False), returns=data, map=mapping, replicates=4, seed=1,
                tests=FORENSIC_TESTS.split(","), null="textbook", draws=40, power=0)
    assert keys(doc) == ["answer", "simulation", "forensics", "limits", "provenance", "appendix"]
    forensics = doc.analyses["forensics"]
    assert [r.test for r in forensics.results] == FORENSIC_TESTS.split(",")
    names = [block.name for block in doc.section("forensics").blocks if isinstance(block, Image)]
    assert names == [f"forensics-{test}" for test in FORENSIC_TESTS.split(",")]
    # a caption quoted alone says what the test is built to detect, not that its pattern was found here
    captions = [block.caption for block in doc.section("forensics").blocks if isinstance(block, Image)]
    assert captions == [f"{r.test} ({r.verdict}); built to detect: {DETECTS[r.test]}" for r in forensics.results]
    table = next(b for b in doc.section("forensics").blocks if isinstance(b, Table))
    assert [row[0] for row in table.rows] == FORENSIC_TESTS.split(",")
    files = {item["role"]: item for item in doc.analyses["provenance"]["files"]}
    assert files["station returns"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert files["station returns"]["data_rows"] == 400
    assert files["station returns"]["anomalies"]["votes_gt_ballots"]["count"] == 1
    tested = [r for r in forensics.results if r.p_value is not None]
    for verdict in doc.verdicts:
        for number in verdict.figures:
            if number.source["field"] == "tests":
                assert number.value == len(tested)
            if number.source["field"] == "anomalous":
                assert number.value == sum(rejects(r.p_value) for r in tested)
            if number.source["field"] == "holm":
                assert number.value == len(holm_alarms(tested))


def test_returns_alone_take_the_title_from_the_map_label(returns, tmp_path):
    data, mapping = returns
    doc = build(returns=data, map=mapping, tests=["fingerprint", "shpilkin"], null="textbook", draws=20, power=0)
    assert doc.title.startswith("Testland general election")
    assert str(data) not in doc.title
    assert set(doc.omitted) == {"simulation", "polls", "scenarios"}


def test_cli_writes_html_and_markdown_with_figures_beside(tmp_path, capsys):
    config = write_config(tmp_path / "c.toml")
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    assert main(["report", str(config), "-o", str(html), "--replicates", "20", "--quiet"]) == 0
    text = html.read_text()
    assert text.count("data:image/png;base64,") == 1 and 'src="http' not in text
    assert main(["report", str(config), "-o", str(md), "--replicates", "20", "--format", "md", "--quiet"]) == 0
    figures = sorted(p.name for p in (tmp_path / "r_files").iterdir())
    assert figures == ["polls.png"] and "(r_files/polls.png)" in md.read_text()
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("arguments, fragment", [
    (["--returns", "{tmp}/missing.csv", "--map", "{tmp}/map.toml"], "missing.csv: --returns: file not found"),
    (["--returns", "{tmp}/returns.csv", "--map", "{tmp}/bad.toml"], "columns.registered"),
    (["--returns", "{tmp}/returns.csv"], "give --preset NAME or --map"),
    (["-o", "{tmp}/no/such/folder/r.html"], "does not exist"),
    (["-o", "{tmp}/r.md", "--format", "html"], "r.md: --format: html does not match the extension .md"),
    (["--returns", "{tmp}/returns.csv", "--map", "{tmp}/map.toml", "--tests", ""], "--tests: unknown test id (none)"),
    (["--returns", "{tmp}/returns.csv", "--map", "{tmp}/map.toml", "--power", "-1"], "--power: -1: must be 0 or more"),
    (["--returns", "{tmp}/returns.csv", "--map", "{tmp}/map.toml", "--draws", "0"],
     "--draws: 0: must be a positive integer"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(returns, tmp_path, capsys, arguments, fragment):
    (tmp_path / "bad.toml").write_text('[columns]\nregistered = "nope"\nballots = "ballots"\n[options]\na = "a"\n')
    config = write_config(tmp_path / "c.toml", polls=False)
    args = [a.format(tmp=tmp_path) for a in arguments]
    target = tmp_path / "out.html"
    code = main(["report", str(config), "--replicates", "4", "--quiet"] + (args if "-o" in args else
                                                                            args + ["-o", str(target)]))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and fragment in err
    assert not target.exists() and not (tmp_path / "no").exists()
    assert not list(tmp_path.glob(".*partial*"))


def test_a_failed_render_leaves_the_earlier_report_intact(polls_report, tmp_path, monkeypatch):
    _, doc = polls_report
    target = tmp_path / "r.html"
    write(doc, target)
    before = target.read_bytes()

    def broken(_doc):
        raise RuntimeError("render failed")

    monkeypatch.setattr("simkit.report.render_html.render", broken)
    with pytest.raises(RuntimeError):
        write(doc, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def clean(result) -> str:
    """A test's measured size as the forensic verdict names it (:func:`simkit.report.verdicts.clean_rejections`)."""
    from simkit.report.verdicts import clean_rejections

    return "rejected {} of {} clean elections".format(*clean_rejections(result))


def test_direction_rules_and_the_no_anomaly_wording():
    from simkit.forensics.core import TestResult
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts, leans

    assert leans({"gap": 4.0, "option": "inc"}, "inc") == "toward"
    assert leans({"gap": 4.0, "option": "other"}, "inc") == "away"
    assert leans({"gap": -2.0, "option": "other"}, "inc") == "toward"
    assert leans({"gap": -2.0, "option": "inc"}, "inc") == "away"
    assert leans({"gap": 1.2, "option": "turnout"}, "inc") == "above"
    quiet = [TestResult("spikes", 0.0, 0.0, 0.4, "textbook", "no anomaly detected")]
    assert "not evidence of a clean count" in forensic_verdicts(quiet, DETECTS, power_shown=True)[0].text
    flagged = [TestResult("spikes", 0.1, 0.0, 0.001, "simulated", "anomalous (p ≤ 0.05)",
                          {"calibration": "uncalibrated"})]
    text = " ".join(v.text for v in forensic_verdicts(flagged, DETECTS, power_shown=True))
    assert f"spikes (uncalibrated; {clean(flagged[0])})" in text and "not proof" in text and "fraud" not in text
    assert "none stays so after Holm" in text  # an uncalibrated test is left out of the family


@pytest.mark.parametrize("p_value", [0.001, 0.4])
@pytest.mark.parametrize("null, words", [("simulated", "the simulated null (honest elections redrawn to match "
                                                       "these data)"),
                                         ("textbook", "the textbook null (each test's classical reference)")])
def test_the_forensic_verdict_names_the_null_it_read_the_p_values_against(null, words, p_value):
    """The forensic sentence a reader quotes said "10 of 12 station-level tests are anomalous (p ≤ 0.05)" without
    the null the p-values were read against, which decides what "anomalous" means."""
    from simkit.forensics.core import TestResult
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    result = TestResult("dip", 0.1, 0.0, p_value, null, "", {"calibration": "calibrated"})
    text = forensic_verdicts([result], DETECTS, power_shown=False)[0].text
    assert text.startswith(f"Against {words}, {'1 of 1' if rejects(p_value) else 'none of the 1'} station-level")


def test_each_anomalous_test_names_the_clean_elections_it_rejected():
    """A calibrated test was named bare ("last_digit"), and a label said "calibrated" without the measurement
    behind it: the sentence names how many of the panel's clean elections each test rejected (its measured
    size, from the record), or that its size was not measured."""
    from simkit.forensics.calibration import measured
    from simkit.forensics.core import TestResult
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    dip = TestResult("dip", 0.1, 0.0, 0.001, "simulated", "", {"calibration": "calibrated"})
    klimek = TestResult("klimek", 0.1, 0.0, 0.001, "flat", "", {"calibration": "not measured"})
    assert "klimek" not in measured("flat")["panel"]
    text = forensic_verdicts([dip, klimek], DETECTS, power_shown=False)[0].text
    k, n = measured("simulated")["panel"]["dip"]
    assert f": dip (rejected {k} of {n} clean elections), klimek (size not measured);" in text


def test_anomalies_are_set_against_those_chance_alone_gives():
    """Bulgaria 2021, a clean control election, read "1 of 12 station-level tests is anomalous ... Each anomaly is
    consistent with the malpractice its test is built to detect", with nothing on the 0.6 anomalies that 12 tests
    at 0.05 give an honest count on average."""
    from simkit.forensics.core import TestResult
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    results = [TestResult(test, 0.1, 0.0, p, "simulated", "", {"calibration": "calibrated"})
               for test, p in (("dip", 0.01), ("spikes", 0.3), ("shpilkin", 0.6), ("zero_five", 0.9))]
    text = forensic_verdicts(results, DETECTS, power_shown=False)[0].text
    assert text.endswith(f"By chance alone, {4 * ALPHA:.1f} of 4 tests of nominal size would be anomalous on "
                         "average on an honest count.")


def test_the_holm_count_says_which_tests_it_adds_to_those_shown_anomalous():
    """Holm reads a simulated null's tail p-value (family_p_value): a test shown at p 0.06 can reject in the
    family. The sentence said '1 of 2 tests is anomalous: dip; 2 stay so after Holm's correction'."""
    from simkit.forensics.core import TestResult
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    shown = TestResult("dip", 0.1, 0.0, 0.001, "simulated", "anomalous (p ≤ 0.05)",
                       {"calibration": "calibrated", "null_tail_p": 0.0001})
    tail = TestResult("spikes", 0.1, 0.0, 0.06, "simulated", "no anomaly detected",
                      {"calibration": "calibrated", "null_tail_p": 0.02})
    text = forensic_verdicts([shown, tail], DETECTS, power_shown=False)[0].text
    assert "stay so" not in text
    assert (f"is anomalous (p ≤ 0.05): dip ({clean(shown)}); 2 reject after Holm's correction across the "
            "calibrated tests (dip and spikes), of which spikes on its null's tail p-value, below the one shown for "
            "it (tests whose") in text
    assert f"dip ({clean(shown)}); 1 stays so after Holm's correction across the calibrated tests: dip (tests" in \
        forensic_verdicts([shown], DETECTS, power_shown=False)[0].text


def test_the_holm_count_agrees_with_its_number_and_lists_the_tests_it_adds():
    """The clause read '1 reject after Holm's correction' and ran two names into it ('spikes, shpilkin on their
    null's tail p-value, below the one shown for them')."""
    from simkit.forensics.core import TestResult
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    def result(test, p, tail):
        return TestResult(test, 0.1, 0.0, p, "simulated", "", {"calibration": "calibrated", "null_tail_p": tail})

    one = forensic_verdicts([result("spikes", 0.06, 0.02)], DETECTS, power_shown=False)[0].text
    assert ("; 1 rejects after Holm's correction across the calibrated tests: spikes on its null's tail p-value, "
            "below the one shown for it (tests whose") in one
    dip = result("dip", 0.001, 0.0001)
    two = forensic_verdicts([dip, result("spikes", 0.06, 0.001), result("shpilkin", 0.07, 0.002)], DETECTS,
                            power_shown=False)[0].text
    assert (f"dip ({clean(dip)}); 3 reject after Holm's correction across the calibrated tests (dip, spikes and "
            "shpilkin), of which spikes and shpilkin on their nulls' tail p-values, below the ones shown for them "
            "(tests whose") in two


def test_the_no_anomaly_answer_names_a_test_only_holms_correction_rejects():
    """A calibrated test shown at p 0.06 whose null's tail p-value is 0.02 rejects in the Holm family alone: the
    short answer said "None of the 1 station-level tests is anomalous" and nothing of the rejection."""
    from simkit.forensics import holm_alarms
    from simkit.forensics.core import TestResult
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    tail = TestResult("spikes", 0.1, 0.0, 0.06, "simulated", "no anomaly detected",
                      {"calibration": "calibrated", "null_tail_p": 0.02})
    assert holm_alarms([tail]) == ["spikes"]
    text = forensic_verdicts([tail], DETECTS, power_shown=False)[0].text
    assert ("is anomalous (p ≤ 0.05); 1 rejects after Holm's correction across the calibrated tests: spikes on "
            "its null's tail p-value, below the one shown for it (tests whose") in text
    assert "clean count" not in text and "power below" not in text  # a rejection is not followed by a hedge on none


def test_what_the_tests_detect_covers_a_test_only_holms_correction_rejects():
    """The sentence on what each anomaly is consistent with listed the tests shown anomalous only, leaving out
    one only the Holm family rejects (and was missing when no test was shown anomalous)."""
    from simkit.forensics.core import TestResult
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    shown = TestResult("dip", 0.1, 0.0, 0.001, "simulated", "", {"calibration": "calibrated", "null_tail_p": 0.0001})
    tail = TestResult("spikes", 0.1, 0.0, 0.06, "simulated", "", {"calibration": "calibrated", "null_tail_p": 0.02})
    for results, opening in (([shown, tail], "Each anomaly (including spikes, rejected after Holm's correction "
                                             "only) is consistent"),
                             ([tail], "The rejection of spikes (after Holm's correction only) is consistent")):
        text = forensic_verdicts(results, DETECTS, power_shown=False)[-1].text
        assert text.startswith(opening) and DETECTS["spikes"] in text


def test_a_figure_without_sampling_error_states_it_instead_of_an_infinite_z():
    """A census figure (every voter or every station's count read) has no sampling error: its z is infinite.
    The short answer once read "z = +inf" and the ledger "+inf to +inf", as if a number."""
    from types import SimpleNamespace

    from simkit.report.sections import _ledger_words, _poll_table
    from simkit.report.verdicts import poll_verdicts

    row = {"pollster": "qc", "option": "inc", "published": 51.0, "official": 50.0, "gap": 1.0, "z": float("inf"),
           "p_value": None, "p_method": "census", "rounding": {"half_unit": 0.005, "consistent": False},
           "z_total": 1.0, "p_total": 0.3, "z_min": float("inf"), "z_max": float("inf"),
           "share_consistent": 0.0, "verdict": "rejected everywhere", "points_compared": 16, "ledger_points": 16}
    text = " ".join(verdict.text for verdict in poll_verdicts([row], "inc", {"qc": "QC"}))
    assert "inf" not in text and "p = " not in text
    assert "QC: 1 of 1 published figures is anomalous" in text
    assert "gap +1.00 points, no sampling error, inconsistent (beyond rounding to nearest, ±0.005 points, or down)" in text
    within = {**row, "gap": 0.004, "rounding": {"half_unit": 0.005, "consistent": True}}
    text = " ".join(verdict.text for verdict in poll_verdicts([within], "inc", {"qc": "QC"}))
    assert "all 1 published figures are consistent" in text
    assert _ledger_words(SimpleNamespace(rows=[row])) == [
        "qc, inc: z from +∞ to +∞ (no sampling error), consistent with the count in 0% of the assumption space: "
        "rejected everywhere."]
    table = _poll_table(SimpleNamespace(rows=[{**row, "gap_sd": 0.0, "option_class": "large",
                                               "nonsampling_sd": 0.97, "misreport_needed": None, "p_floor": 0.03}]))
    assert "inf" not in repr(table) and "+∞ to +∞ (no sampling error)" in repr(table)
    assert "inconsistent (beyond rounding to nearest, ±0.005 points, or down)" in repr(table) and "'rounding'" not in repr(table)


def test_the_joint_verdict_names_the_census_figures_it_leaves_out():
    """Figures without sampling error are left out of the joint test (flagged elsewhere); the joint sentence says
    which, so that "all published figures" does not claim them."""
    from simkit.report.verdicts import joint_verdict

    joint = {"t2": 5.0, "f": 2.4, "df1": 2, "df2": 97, "p_value": 0.1, "p_method": "hotelling_f",
             "p_monte_carlo": 0.1, "p_floor": 0.0099, "per_poll": [],
             "left_out": [{"pollster": "qc", "option": "inc"}, {"pollster": "qc", "option": "other"},
                          {"pollster": "census", "option": "inc"}]}
    text = joint_verdict(joint, {"qc": "Quick Count"}).text
    assert text.startswith("All published figures jointly") and "T² = 5.0" in text
    assert "leaving out Quick Count's inc and other and census's inc (no sampling error" in text
    plain = {key: value for key, value in joint.items() if key != "left_out"}
    assert "leaving out" not in joint_verdict(plain, {}).text


@pytest.mark.parametrize("observed", [False, True])
def test_the_simulation_section_claims_official_figures_only_when_the_table_has_them(tmp_path, observed):
    """Without [observed] the official column is empty: the text once said the simulation was calibrated to
    the official figures all the same."""
    doc = build(write_config(tmp_path / "plain.toml", polls=observed, observed=observed), replicates=4, seed=1)
    section = doc.section("simulation")
    text = " ".join(block.text for block in section.blocks if hasattr(block, "text"))
    official = [row[-1] for block in section.blocks if hasattr(block, "rows") for row in block.rows]
    assert any(value != "—" for value in official) == observed
    assert ("calibrated to the official figures" in text) == observed
    assert ("no official figures" in text) == (not observed)


def test_a_report_without_verdicts_describes_the_sections_it_has(returns, tmp_path):
    """Returns alone, with only the descriptive fingerprint: no verdict, and no simulation to describe (the
    answer once pointed to "the simulation" all the same)."""
    data, mapping = returns
    doc = build(returns=data, map=mapping, tests=["fingerprint"], null="textbook", draws=20, power=0)
    text = " ".join(getattr(block, "text", "") for block in doc.section("answer").blocks)
    assert doc.verdicts == [] and "simulation" in doc.omitted
    assert "describe the station returns" in text and "describe the simulation" not in text


def _forensics_text(doc) -> str:
    return " ".join(getattr(block, "text", "") for block in doc.section("forensics").blocks)


def test_the_report_says_why_power_was_not_computed(returns, tmp_path):
    """'Power was not computed: some test rejects' only when some test rejects: with --power 0, or when no
    test could run (three stations), the report says so instead."""
    data, mapping = returns
    asked_none = build(returns=data, map=mapping, tests=["dip"], null="textbook", draws=20, power=0)
    assert all(not rejects(r.p_value) for r in asked_none.analyses["forensics"].results)
    assert "Power was not computed: none was asked (power 0)." in _forensics_text(asked_none)
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("\n".join(data.read_text().splitlines()[:4]) + "\n")
    none_ran = build(returns=tiny, map=mapping, tests=["dip", "correlation"], null="textbook", draws=20, power=5)
    assert all(r.p_value is None for r in none_ran.analyses["forensics"].results)
    assert "Power was not computed: no test could run on these data." in _forensics_text(none_ran)
    for doc in (asked_none, none_ran):
        assert "some test rejects" not in _forensics_text(doc)


def test_power_with_only_the_fingerprint_asked_says_nothing_was_tested(returns):
    """The descriptive fingerprint alone, power asked: no test could be rejected, none was n/a, yet the report
    said "no test could run on these data" (the words of n/a results)."""
    data, mapping = returns
    doc = build(returns=data, map=mapping, tests=["fingerprint"], null="textbook", draws=20, power=5)
    text = _forensics_text(doc)
    assert "Power was not computed: only descriptive results were asked (nothing to reject)." in text
    assert "no test could run" not in text


def test_the_reports_power_study_draws_from_no_seed_of_the_tests_on_the_data(returns, monkeypatch):
    """The report's power table, under the report's one seed, draws from no seed of the real tests nor from
    below one (:func:`simkit.forensics.power.study_seed`)."""
    data, mapping = returns
    positions = record_seed_positions(monkeypatch, "simkit.report.analyses.power_table")
    doc = build(returns=data, map=mapping, tests=["zero_five", "dip"], null="textbook", draws=20,
                power=3, seed=0)
    assert doc.analyses["forensics"].power is not None
    assert len(positions["real"]) == 2 and len(positions["power"]) == len(PLANTS) * 3 * 4
    assert shared_positions(positions) == []


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stderr, flags, shown", [(Terminal, [], True), (Terminal, ["--quiet"], False),
                                                   (io.StringIO, [], False)])
def test_the_reports_power_study_shows_a_bar_over_its_elections_on_a_terminal_unless_quiet(
        returns, tmp_path, monkeypatch, stderr, flags, shown):
    """A power study tests replicates x plants elections, minutes on a large election: a bar on stderr counts
    them, as other long runs' bars do (shown on a terminal only, never with --quiet)."""
    data, mapping = returns
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0)
    err = stderr()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["report", "--returns", str(data), "--map", str(mapping), "--tests", "zero_five,dip", "--null",
                 "textbook", "--draws", "20", "--power", "2", "-o", str(tmp_path / "r.md"), *flags]) == 0
    assert (f"{2 * len(PLANTS)}/{2 * len(PLANTS)}" in err.getvalue()) is shown, err.getvalue()


def test_the_reports_tests_of_the_data_draw_from_no_engine_stream_of_its_seed(returns, monkeypatch):
    """The tests of the returns, under the report's one seed, draw from no position of the engine's streams of that
    seed nor from below one (:func:`simkit.forensics.observed_seed`): at the seed itself, test i drew from above
    engine replicate 0's station group i."""
    data, mapping = returns
    positions = record_seed_positions(monkeypatch, "simkit.report.analyses.power_table")
    build(returns=data, map=mapping, tests=["zero_five", "dip"], null="textbook", draws=20, power=0, seed=0)
    assert len(positions["real"]) == 2 and positions["power"] == []
    assert overlapping(positions["real"], engine_positions(0, replicates=2, groups=16)) == []


def test_the_report_names_the_stations_its_power_elections_left_out(returns, monkeypatch):
    """As ``simkit forensics`` does under its power table: stations a simulation or a plant left without ballots,
    per plant and replicate, stated beside the power when any were (and nothing said when none were)."""
    from simkit.report import analyses

    data, mapping = returns

    def table(left_out):
        return lambda e, tests, **_: {"rejection_rates": {p: {t: 0.0 for t in tests} for p in ("none", "rounding")},
                                      "rejections": {p: {t: (0, 2) for t in tests} for p in ("none", "rounding")},
                                      "stations_left_out": left_out}

    monkeypatch.setattr(analyses, "power_table", table({"none": [0, 3], "rounding": [2, 0]}))
    doc = build(returns=data, map=mapping, tests=["dip"], null="textbook", draws=20, power=2)
    assert doc.analyses["forensics"].power is not None
    assert "(per plant and replicate: none 0, 3; rounding 2, 0)" in _forensics_text(doc)
    monkeypatch.setattr(analyses, "power_table", table({"none": [0, 0], "rounding": [0, 0]}))
    clean = build(returns=data, map=mapping, tests=["dip"], null="textbook", draws=20, power=2)
    assert "per plant and replicate" not in _forensics_text(clean)


def test_the_short_answer_says_what_the_tests_could_have_seen(returns, monkeypatch):
    """With no test anomalous, the short answer said "This is not evidence of a clean count: see each test's power
    below", while below nearly every power was 0 (Poland 2025): it names, per planted manipulation, the tests whose
    power is above their size, with the rates the forensic table shows, says when no test's is, and when an excess
    is within the two counts' Monte Carlo error (1 of 2 against 0 of 2)."""
    from simkit.report import analyses

    data, mapping = returns
    counts = {"none": {"dip": (0, 2)}, "stuffing": {"dip": (1, 2)}, "rounding": {"dip": (0, 2)}}
    rates = {plant: {test: hits / n for test, (hits, n) in row.items()} for plant, row in counts.items()}
    monkeypatch.setattr(analyses, "power_table", lambda e, tests, **_: {"rejection_rates": rates, "rejections": counts,
                                                                        "stations_left_out": {}})
    doc = build(returns=data, map=mapping, tests=["dip"], null="textbook", draws=20, power=2)
    assert not rejects(doc.analyses["forensics"].results[0].p_value)
    sentence = next(v.text for v in doc.verdicts if v.text.startswith("What these tests could have seen"))
    table = next(b for b in doc.section("forensics").blocks if isinstance(b, Table))
    row = dict(zip(table.columns, table.rows[0]))
    assert (f"stuffing: dip {row['power: stuffing']} (size {row['size (nothing planted)']}: within Monte Carlo "
            "error); none clearly above it; rounding: no test above its size. A manipulation no test sees clearly above "
            "its size here could have gone unseen") in sentence
    assert "the share of 2 simulated elections" in sentence
    # a 0 of 2 is not "no power": the sentence and the section give the largest power it allows
    bound = f"{largest_unseen_power(2):.2f}"
    assert f"with 2 elections a power of 0 still allows one of up to {bound} (one-sided 95%)." in sentence
    assert (f"Each rate is a count out of 2 elections: its standard error is up to {largest_standard_error(2):.2f}, "
            f"and a rate of 0 still allows a power of up to {bound} (one-sided 95%).") in _forensics_text(doc)
    # the manipulations the power columns name are described where they are shown
    plants = next(b.items for b in doc.section("forensics").blocks if isinstance(b, Bullets))
    assert plants == [f"{plant}: {PLANTS[plant][0]}" for plant in ("stuffing", "rounding")]


def test_one_replicate_is_a_report_whose_reproduce_command_runs(tmp_path):
    """``--replicates 1`` was refused ("need at least 2") although a config or ``--set run.replicates=1`` of one
    replicate made a report, whose reproduce command (``--replicates 1``) was then refused."""
    config, report = write_config(tmp_path / "c.toml", polls=False), tmp_path / "r.md"
    assert main(["report", str(config), "-o", str(report), "--replicates", "1", "--seed", "1", "--quiet"]) == 0
    assert "--replicates 1 " in report.read_text()


@pytest.mark.parametrize("replicates", [0, -3])
def test_replicates_below_one_are_refused_not_replaced_by_the_config(tmp_path, replicates):
    """``build(config, replicates=0)`` once ran the config's replicates instead (``replicates or ...``)."""
    with pytest.raises(InputError, match=f"replicates={replicates}: Input should be greater than or equal to 1") \
            as error:
        build(write_config(tmp_path / "c.toml", polls=False), replicates=replicates, seed=1)
    assert error.value.parameters == ("replicates",)


def test_returns_of_another_election_are_refused(tmp_path, returns, capsys):
    """A config's report with another election's returns (no option in common) described both as one: the
    config's title over the other election's station tests."""
    data, mapping = returns
    mapping.write_text(MAP.replace('a = "a"\nb = "b"', 'united = "a"\nfair = "b"'))
    config, report = write_config(tmp_path / "c.toml", polls=False), tmp_path / "r.html"
    assert main(["report", str(config), "--returns", str(data), "--map", str(mapping), "-o", str(report),
                 "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{mapping}: options: none of its options ('united', 'fair') is an option of {config} ('a', 'b', 'c') by name "
        f"or label (accents, case, spaces, _ and - aside); a report describes one election")
    assert not list(tmp_path.glob("r.html*")) and not list(tmp_path.glob(".r.html*"))


def test_a_markdown_report_never_replaces_a_figures_folder_not_its_own(tmp_path, capsys):
    """``-o r.md`` deleted a folder ``r_files/`` of the user's (it is where the figures go), without --overwrite."""
    config, report, folder = write_config(tmp_path / "c.toml"), tmp_path / "r.md", tmp_path / "r_files"
    folder.mkdir()
    (folder / "mine.txt").write_text("precious")
    command = ["report", str(config), "-o", str(report), "--replicates", "8", "--seed", "1", "--quiet"]
    for overwrite in ([], ["--overwrite"]):
        assert main(command + overwrite) == 2
        assert str(folder) in capsys.readouterr().err
        assert (folder / "mine.txt").read_text() == "precious" and not report.exists()
    (folder / "mine.txt").unlink()
    folder.rmdir()
    assert main(command) == 0 and list(folder.iterdir())
    assert main(command + ["--overwrite"]) == 0  # its own figures, linked from its own report
    (folder / "extra.png").write_bytes(b"")
    assert main(command + ["--overwrite"]) == 2 and (folder / "extra.png").exists()


@pytest.mark.parametrize("replicates", ["0", "-3"])
def test_replicates_below_one_without_a_config_are_a_usage_error(tmp_path, returns, capsys, replicates):
    """Without a config nothing checked ``--replicates``: a report of returns alone recorded ``--replicates 0`` in
    its reproduce command."""
    data, mapping = returns
    with pytest.raises(SystemExit) as stop:
        main(["report", "--returns", str(data), "--map", str(mapping), "-o", str(tmp_path / "r.html"),
              "--replicates", replicates, "--quiet"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (f"simkit report: argument --replicates: must be at least 1, got "
                                               f"{int(replicates)}")
    assert not list(tmp_path.glob("*r.html*"))


def test_a_p_value_at_the_level_is_anomalous_in_every_poll_judgement():
    """p exactly at ALPHA rejects (:func:`simkit.schema.rejects`, p ≤ alpha) in a poll row's consistency, the
    ledger's, the report's wording and a mechanism fit; just above it does not (compare and the report judged
    p ≥ 0.05 consistent while the forensic verdicts took p < 0.05: one rule now)."""
    from simkit.polls.figures import consistent
    from simkit.report.verdicts import FITS, fits_all, p_text

    above = float(np.nextafter(ALPHA, 1))
    assert not consistent({"p_value": ALPHA}) and consistent({"p_value": above})
    assert p_text(ALPHA) == "anomalous (p ≤ 0.05)" and p_text(above) == "consistent with it (p > 0.05)"
    assert not fits_all({"fit_p": FITS}) and fits_all({"fit_p": float(np.nextafter(FITS, 1))})
    assert not fits_all({"fit_p": None})


def test_the_provenance_cuts_an_input_files_anomaly_rows_as_every_message_does():
    """The provenance table listed the first rows a file's anomaly kept (up to 10) its own way: they read as every
    list of data rows does (:func:`simkit.electorate.returns.data_rows`)."""
    from simkit.report.sections import provenance

    anomaly = {"count": 12, "rule": "votes > ballots", "first_rows": list(range(3, 13))}
    record = {"versions": {"simkit": "0"}, "date": "2026-11-30", "seed": 1, "replicates": 2, "command": None,
              "reproduce": "", "config_text": None,
              "files": [{"role": "station returns", "path": "r.csv", "sha256": None, "data_rows": 20, "stations": 20,
                         "anomalies": {"votes_gt_ballots": anomaly}}]}
    files = [block for block in provenance(record).blocks if isinstance(block, Table)][-1]
    assert files.rows[0][-1] == "votes_gt_ballots: 12 (votes > ballots; data rows 3, 4, 5, 6, 7, …)"


def test_the_provenance_keeps_the_anomaly_rows_its_table_shows(tmp_path):
    """A file's anomaly in the provenance record keeps the first rows its table shows
    (:data:`~simkit.electorate.returns.ROWS_SHOWN`), not a number of its own (it kept 10 and showed 5), and the
    table reads as it did."""
    import json

    import xarray as xr

    from simkit.electorate.returns import ROWS_SHOWN
    from simkit.report.provenance import returns_file
    from simkit.report.sections import provenance
    from simkit.schema import STATION

    rows = list(range(3, 15))
    anomalies = {"votes_gt_ballots": {"count": len(rows), "rows": rows, "rule": "votes > ballots"}}
    ds = xr.Dataset(coords={STATION: np.arange(20)},
                    attrs={"source": str(tmp_path / "r.csv"), "anomalies": json.dumps(anomalies)})
    item = returns_file(ds)
    assert item["anomalies"]["votes_gt_ballots"]["first_rows"] == rows[:ROWS_SHOWN]
    record = {"versions": {"simkit": "0"}, "date": "2026-11-30", "seed": 1, "replicates": 2, "command": None,
              "reproduce": "", "config_text": None, "files": [item]}
    files = [block for block in provenance(record).blocks if isinstance(block, Table)][-1]
    assert files.rows[0][-1] == "votes_gt_ballots: 12 (votes > ballots; data rows 3, 4, 5, 6, 7, …)"


def test_the_provenance_table_shows_the_seed_and_replicates_in_full():
    """The seed and replicates were shown to 3 significant digits (seed 20221120 as 2.02e+07): a reader could not
    rerun the report from its provenance table."""
    from simkit.report.sections import provenance

    record = {"versions": {"simkit": "0"}, "date": "2026-11-30", "seed": 20221120, "replicates": 12345,
              "command": None, "reproduce": "", "config_text": None, "files": []}
    fields = dict(next(block for block in provenance(record).blocks if isinstance(block, Table)).rows)
    assert fields["seed"] == "20221120" and fields["replicates"] == "12345"


def test_the_simulation_section_of_one_replicate_claims_no_interval(tmp_path):
    """One replicate's 5% and 95% columns repeat its value: the caption counts it as one (it read "1 replicates")
    and the text says the table has no interval, which its columns otherwise look like."""
    config = write_config(tmp_path / "plain.toml", polls=False, observed=False)
    sections = {count: build(config, replicates=count, seed=1).section("simulation") for count in (1, 4)}
    for count, section in sections.items():
        text = " ".join(block.text for block in section.blocks if hasattr(block, "text"))
        caption = next(block.caption for block in section.blocks if hasattr(block, "rows"))
        assert caption.startswith(f"{count} replicate{'s' if count > 1 else ''} of ")
        assert ("its 5% and 95% columns repeat its value" in text) == (count == 1)
