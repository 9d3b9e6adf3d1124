"""The floor of a Monte Carlo p-value: with n null draws it is at least 1 / (n + 1), so with 18 draws no such
p-value is at or below 0.05 (the rule of every verdict, :func:`simkit.schema.rejects`). Every entry point that
takes a number of draws says so, records it and does not read
a test that could not reject as one that found nothing."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import tomli_w

from conftest import small_config_dict
from forensics_helpers import honest_dataset
from simkit.cli.main import main
from simkit.errors import counted
from simkit.forensics import TESTS, election, run_tests
from simkit.forensics.core import ALPHA, TestResult
from simkit.forensics.floor import cannot_reject, minimum_draws, monte_carlo_floor, smallest_p
from simkit.forensics.registry import TEXTBOOK_DRAWN
from simkit.schema import rejects

MAP = '[columns]\nregistered = "registered"\nballots = "ballots"\n[options]\na = "a"\nb = "b"\n'
#: the floor of 18 draws: 1 / 19, above ALPHA
FLOOR_18 = 1 / 19


@pytest.fixture(scope="module")
def small_election():
    return election(honest_dataset(300, seed=3))


@pytest.fixture
def returns(tmp_path):
    ds = honest_dataset(600, seed=50)
    lines = ["registered,ballots,a,b"] + [f"{r},{b},{v[0]},{v[1]}" for r, b, v in zip(
        ds["registered"].values, ds["ballots"].values, ds["votes"].values)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "m.toml").write_text(MAP)
    return [str(tmp_path / "r.csv"), "--map", str(tmp_path / "m.toml")]


def test_the_fewest_draws_whose_floor_can_reject_at_the_level():
    """1 / (n + 1) <= alpha first at n = 19 for 0.05 (1/20 = 0.05 rejects: p at or below the level), n = 99 for
    0.01, n = 33 for 0.03 (1/33 is above it)."""
    assert minimum_draws(0.05) == 19 and minimum_draws(0.01) == 99 and minimum_draws(0.03) == 33
    assert 1 / (minimum_draws() + 1) <= ALPHA < 1 / minimum_draws()


def test_which_nulls_have_a_floor():
    """Under simulated and flat every test's p-value is drawn (the Klimek fits on their first 39 draws), except a
    test read empirically under simulated; under textbook only the drawn textbook nulls."""
    from simkit.forensics.calibration import empirical_tests

    tests = [t for t in TESTS if t != "fingerprint"]
    assert list(cannot_reject(tests, "textbook", 18)) == [t for t in tests if t in TEXTBOOK_DRAWN]
    assert cannot_reject(tests, "flat", 18) == {t: monte_carlo_floor(t, "flat", 18) for t in tests}
    assert set(cannot_reject(tests, "simulated", 18)) == set(tests) - empirical_tests("simulated")
    assert all(cannot_reject(tests, null, minimum_draws()) == {} for null in ("textbook", "simulated", "flat"))
    assert smallest_p("klimek_ml", "simulated", 1000) == 1 / 40  # its 39 refitted draws
    assert smallest_p("fingerprint", "simulated", 18) is None


def test_the_textbook_nulls_said_to_be_drawn_are_the_ones_that_are(small_election):
    """The registry's claim checked against the tests themselves: a drawn textbook p-value moves with the draws
    and is a multiple of 1 / (draws + 1); a law's does not move."""
    def p_values(draws):
        return {r.test: r.p_value for r in run_tests(small_election, null="textbook", draws=draws, seed=1)
                if r.p_value is not None}

    at_18, at_22 = p_values(18), p_values(22)
    assert {t for t in at_18 if at_18[t] != at_22[t]} == TEXTBOOK_DRAWN
    for test in TEXTBOOK_DRAWN:
        assert at_18[test] * 19 == pytest.approx(round(at_18[test] * 19), abs=1e-9)
        assert at_22[test] * 23 == pytest.approx(round(at_22[test] * 23), abs=1e-9)


def test_a_result_that_cannot_reject_says_so_and_records_its_floor(small_election):
    """With 18 draws the drawn nulls' results carry ``smallest_p`` and a verdict that they could not reject,
    not "no anomaly detected"; a law's result does not; with 19 draws none does. The p-values are unchanged."""
    tests = ["spikes", "shpilkin", "dip"]
    few = {r.test: r for r in run_tests(small_election, tests, null="textbook", draws=18, seed=1)}
    for test in ("spikes", "shpilkin"):
        assert few[test].extra["smallest_p"] == FLOOR_18 and few[test].p_value >= FLOOR_18
        assert few[test].verdict == "cannot reject with 18 draws (smallest p 0.0526)"
        assert few[test].to_dict()["smallest_p"] == FLOOR_18
    assert "smallest_p" not in few["dip"].extra and few["dip"].verdict == "no anomaly detected"
    enough = run_tests(small_election, tests, null="textbook", draws=19, seed=1)
    assert not any("smallest_p" in r.extra for r in enough)


def test_forensics_warns_in_one_line_and_marks_the_tests_and_their_power(returns, capsys):
    args = ["forensics", *returns, "--tests", "spikes,shpilkin,dip", "--draws", "18", "--quiet"]
    assert main(args + ["--power", "0", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["data"]["cannot_reject"] == ["spikes", "shpilkin"]
    assert [t.get("smallest_p") for t in out["tests"]] == [FLOOR_18, FLOOR_18, None]
    assert captured.err == ("warning: with 18 null draws the smallest p-value of spikes, shpilkin (textbook null) "
                            "is 0.0526: they cannot reject at p ≤ 0.05; use at least 19 draws\n")
    assert main(args + ["--power", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("No test rejects at 0.05 (spikes, shpilkin cannot with these draws") for line in lines)
    power = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  ") and len(line.split()) == 4}
    assert power["spikes"] == ["0.00*"] * 3 and not any(cell.endswith("*") for cell in power["dip"])
    assert "  * cannot reject with these draws: its rates are 0 whatever the data" in lines


def test_forensics_with_enough_draws_says_nothing_of_a_floor(returns, capsys):
    assert main(["forensics", *returns, "--tests", "spikes", "--draws", "19", "--power", "0", "--json"]) == 0
    captured = capsys.readouterr()
    assert "cannot_reject" not in json.loads(captured.out)["data"] and "warning" not in captured.err


def test_the_empirical_reading_has_no_floor():
    """A test read empirically under simulated reports a Student-t p-value: no floor, whatever its draws."""
    from simkit.forensics.calibration import empirical_tests

    test = sorted(empirical_tests("simulated"))[0]
    assert smallest_p(test, "simulated", 18) is None and monte_carlo_floor(test, "simulated", 18) == FLOOR_18


def _config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(small_config_dict(stations=60, registered=60_000, replicates=2)))
    return str(path)


def test_calibrate_refuses_a_table_of_rates_that_are_all_zero_by_construction(tmp_path, capsys):
    """Every test asked cannot reject under every null asked: each rate would be 0 whatever the elections."""
    assert main(["calibrate", _config(tmp_path), "--tests", "zero_five,spikes", "--null", "simulated",
                 "--draws", "18"]) == 2
    err = capsys.readouterr().err
    assert err == ("--draws: 18: no test asked can reject, so every rate would be 0: with 18 null draws the "
                   "smallest p-value of zero_five, spikes (simulated null) is 0.0526: they cannot reject at "
                   "p ≤ 0.05; use at least 19 draws\n")


def test_calibrate_refusal_states_the_draws_a_capped_fit_rests_on(tmp_path, capsys, monkeypatch):
    """The refusal's floors are those of the draws each null rests on: a Klimek fit uses at most its
    ``MAX_NULL_DRAWS`` of the draws asked (39 as shipped, above 18 so it never decides a refusal; 9 here), so
    with 30 draws its smallest p-value is 1/10, not 1/31."""
    monkeypatch.setattr(TESTS["klimek"], "MAX_NULL_DRAWS", 9)
    assert main(["calibrate", _config(tmp_path), "--tests", "klimek", "--null", "textbook", "--draws", "30"]) == 2
    err = capsys.readouterr().err
    assert "smallest p-value of klimek (textbook null) is 0.1:" in err and "0.0323" not in err, err


def test_calibrate_marks_the_rows_that_cannot_reject_and_warns(tmp_path, capsys):
    """Under the textbook null zero_five reads a law and can reject; spikes' drawn null cannot with 18 draws."""
    assert main(["calibrate", _config(tmp_path), "--tests", "zero_five,spikes", "--null", "textbook",
                 "--draws", "18", "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert {row["test"]: row.get("smallest_p") for row in payload["rows"]} == {"zero_five": None,
                                                                                 "spikes": FLOOR_18}
    assert all(row["rejection_rate"] == 0 for row in payload["rows"] if row["test"] == "spikes")
    line = ("with 18 null draws the smallest p-value of spikes (textbook null) is 0.0526: it cannot reject at "
            "p ≤ 0.05; use at least 19 draws (their rates are 0 whatever the elections)")
    assert payload["warnings"] == [line] and f"warning: {line}" in captured.err
    assert main(["calibrate", _config(tmp_path), "--tests", "zero_five,spikes", "--null", "textbook",
                 "--draws", "18", "--quiet"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert all(line.endswith("(cannot reject: smallest p 0.0526)") == line.startswith("spikes") for line in table[1:])


def test_the_verdicts_do_not_read_a_test_that_could_not_reject_as_quiet():
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    floored = TestResult("spikes", 0.0, 0.0, 0.4, "simulated", "cannot reject with 18 draws (smallest p 0.0526)",
                         {"smallest_p": FLOOR_18, "null_draws": 18})
    quiet = TestResult("dip", 0.0, 0.0, 0.4, "simulated", "no anomaly detected")
    texts = [v.text for v in forensic_verdicts([floored, quiet], DETECTS, power_shown=True)]
    assert texts[0].startswith("Against the simulated null (honest elections redrawn to match these data), none "
                               "of the 2 station-level tests is anomalous (p ≤ 0.05), and some could not "
                               "have been.")
    assert texts[1] == ("spikes could not reject: with 18 null draws its smallest p-value is 0.0526, above 0.05, "
                        "so its verdict says nothing about these data (at least 19 draws are needed).")
    alone = [v.text for v in forensic_verdicts([floored], DETECTS, power_shown=True)]
    assert "and none could have been" in alone[0]
    anomalous = TestResult("dip", 0.0, 0.0, 0.001, "simulated", "anomalous (p ≤ 0.05)")
    assert any(text.startswith("spikes could not reject") for text in
               (v.text for v in forensic_verdicts([anomalous, floored], DETECTS, power_shown=True)))


def test_the_verdicts_read_a_saved_result_without_its_null_draws():
    """A result saved before results carried ``null_draws`` (``smallest_p`` only): the sentence states the floor."""
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    older = TestResult("spikes", 0.0, 0.0, 0.4, "simulated", "cannot reject", {"smallest_p": FLOOR_18})
    assert forensic_verdicts([older], DETECTS, power_shown=True)[1].text == (
        "spikes could not reject: its smallest p-value is 0.0526, above 0.05, so its verdict says nothing about "
        "these data (at least 19 draws are needed).")


def test_report_says_it_beside_the_table_verdicts_and_limits(returns, tmp_path, capsys):
    output = tmp_path / "r.md"
    assert main(["report", "--returns", *returns, "--tests", "spikes,dip", "--null", "textbook", "--draws", "18",
                 "--power", "2", "-o", str(output), "--quiet"]) == 0
    line = ("with 18 null draws the smallest p-value of spikes (textbook null) is 0.0526: it cannot reject at "
            "p ≤ 0.05; use at least 19 draws")
    assert capsys.readouterr().err == f"warning: {line}\n"
    text = output.read_text()
    assert f"{line[0].upper()}{line[1:]}. Its verdict, size and powers (0 whatever the data) say nothing" in text
    spikes_row = next(row for row in text.splitlines() if row.startswith("| spikes |"))
    assert "cannot reject with 18 draws (smallest p 0.0526)" in spikes_row
    assert spikes_row.count("(cannot reject)") == 5  # its size and the four planted powers
    assert "spikes could not reject: with 18 null draws" in text
    assert "Tests that could not reject with 18 null draws (spikes) say nothing either way" in text
    assert "Tests without an anomaly (dip)" in text


def test_the_report_points_to_power_only_when_it_shows_it(returns, tmp_path, capsys):
    """No test rejects: the short answer pointed to "each test's power below" even with --power 0, where the
    section says power was not computed."""
    output = tmp_path / "r.md"
    assert main(["report", "--returns", *returns, "--tests", "dip", "--null", "textbook", "--power", "0",
                 "-o", str(output), "--quiet"]) == 0
    text = output.read_text()
    assert "Power was not computed: none was asked (power 0)." in text and "power below" not in text
    assert ("This is not evidence of a clean count: what these tests could have detected on these data was not "
            "computed (see below).") in text


@pytest.mark.parametrize("nulls, named", [("simulated", ["(simulated null) is 0.05"]),
                                          ("simulated,flat", ["(simulated null)", "(flat null)"])])
def test_the_false_positive_panel_refuses_to_record_sizes_it_cannot_measure(capsys, monkeypatch, nulls, named):
    """Each null whose sizes it cannot measure is named in the refusal."""
    from test_benchmarks_smoke import _import

    false_positives = _import("benchmarks.false_positives")
    monkeypatch.setattr(false_positives, "measure", _not_measured)
    monkeypatch.setattr(false_positives, "write_calibration", _not_measured)
    assert false_positives.main(["--draws", "18", "--null", nulls, "--tests", "zero_five",
                                 "--write-calibration"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("--draws: 18: with 18 null draws the smallest p-value of zero_five ("), err
    assert all(null in err for null in named), err


def _not_measured(*args, **kwargs):
    raise AssertionError("measured or recorded although refused")


def test_the_false_positive_panel_lists_the_tests_that_cannot_reject(capsys, monkeypatch):
    from test_benchmarks_smoke import _import

    false_positives = _import("benchmarks.false_positives")
    monkeypatch.setattr(false_positives, "measure", lambda *args: {"textbook": {}})
    assert false_positives.main(["--draws", "18", "--null", "textbook", "--tests", "spikes,dip", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["cannot_reject"] == {"textbook": ["spikes"]}
    assert captured.err.startswith("warning: with 18 null draws the smallest p-value of spikes (textbook null)")


def test_a_draw_without_a_statistic_raises_the_floor():
    """19 draws asked, one without a statistic: the p-value rests on 18 finite draws, its floor is 1/19 = 0.0526,
    so the result cannot reject and says so (the draws asked for alone would say it could)."""
    import numpy as np

    from simkit.forensics import _with_floor
    from simkit.forensics.core import DrawnNull, drawn_count

    drawn = DrawnNull("simulated", np.r_[np.arange(18.0), np.nan])
    assert drawn.finite_draws == 18 and drawn_count(drawn) == {"null_draws": 18}
    p, _ = drawn.p_value(100.0, "greater")
    assert p == FLOOR_18
    result = TestResult(test="dip", statistic=100.0, reference=9.0, p_value=p, null="simulated",
                        verdict="no anomaly detected", extra=drawn_count(drawn))
    assert rejects(monte_carlo_floor("dip", "simulated", 19))  # the draws asked for alone
    marked = _with_floor({"dip": result}, "simulated", 19)["dip"]
    assert marked.extra["smallest_p"] == FLOOR_18 and marked.extra["null_draws"] == 18
    assert marked.verdict == "cannot reject with 18 draws (smallest p 0.0526)" and marked.p_value == p
    full = replace(result, extra={"null_draws": 19})
    assert _with_floor({"dip": full}, "simulated", 19)["dip"] is full


def test_the_floor_line_states_the_draws_a_floor_rests_on():
    """19 draws asked, 18 used (one draw without a statistic): the floor 0.0526 is that of 18, not of 19 (1/20);
    the warning, the report's note and its limits say so, as the result's verdict does; the warning asks for 19
    draws with a statistic (it said 'use at least 19 draws' of 19 asked)."""
    from types import SimpleNamespace

    from simkit.forensics.floor import floor_line
    from simkit.report.sections import limits

    assert floor_line({"dip": FLOOR_18}, "simulated", 19) == (
        "with 19 null draws asked (18 used) the smallest p-value of dip (simulated null) is 0.0526: it cannot reject "
        "at p ≤ 0.05; use at least 19 draws on which the statistic can be computed")
    several = floor_line({"dip": FLOOR_18, "spikes": 1 / 10}, "simulated", 19)
    assert several.startswith(
        "with 19 null draws asked (9 to 18 used) the smallest p-value of dip, spikes (simulated null) is "
        "0.0526 to 0.1")
    assert several.endswith("use at least 19 draws on which each statistic can be computed")
    assert floor_line({"dip": FLOOR_18}, "simulated", 18) == (
        "with 18 null draws the smallest p-value of dip (simulated null) is 0.0526: it cannot reject at p ≤ 0.05; "
        "use at least 19 draws")
    failed = TestResult("dip", 0.0, 0.0, 0.4, "simulated", "cannot reject with 18 draws (smallest p 0.0526)",
                        {"smallest_p": FLOOR_18, "null_draws": 18})
    forensics = SimpleNamespace(results=[failed], could_not_reject={"dip": FLOOR_18}, draws=19)
    text = " ".join(block.text for block in limits(None, False, forensics).blocks if hasattr(block, "text"))
    assert "Tests that could not reject with 19 null draws asked (18 used) (dip)" in text, text


def test_a_drawn_textbook_null_records_its_finite_draws(small_election):
    """The drawn textbook nulls record the draws their p-values rest on, as a simulated null does."""
    results = {r.test: r for r in run_tests(small_election, ["spikes", "dip"], null="textbook", draws=25, seed=1)}
    assert results["spikes"].extra["null_draws"] == 25 and "null_draws" not in results["dip"].extra



def test_a_test_read_empirically_has_a_floor_with_one_draw():
    """With one draw its null has no spread: the empirical reading gives up and its Monte Carlo p-value (floor
    1/2) stands, so the rule says it cannot reject; with two it can be read empirically."""
    from simkit.forensics.calibration import empirical_tests

    test = sorted(empirical_tests("simulated"))[0]
    assert smallest_p(test, "simulated", 1) == 0.5 and smallest_p(test, "simulated", 2) is None


def test_calibrate_refuses_one_draw_for_a_test_read_empirically(tmp_path, capsys):
    """``--draws 1``: second_digit's empirical reading needs the null's spread, so its Monte Carlo p-value (floor
    1/2) stands and every rate would be 0: refused, not a table of zeros."""
    assert main(["calibrate", _config(tmp_path), "--tests", "second_digit", "--null", "simulated",
                 "--draws", "1"]) == 2
    err = capsys.readouterr().err
    assert "with 1 null draw the smallest p-value of second_digit (simulated null) is 0.5:" in err, err


def test_calibrate_marks_the_rows_from_the_results(tmp_path, capsys):
    """The marks come from each election's results: second_digit under simulated with one draw (not read
    empirically) is marked, zero_five under textbook (a law) is not."""
    assert main(["calibrate", _config(tmp_path), "--tests", "second_digit,zero_five", "--null", "both",
                 "--draws", "1", "--json", "--quiet"]) == 0
    payload = json.loads(capsys.readouterr().out)
    marks = {(row["test"], row["null"]): (row.get("smallest_p"), row.get("floored"), row["n"])
             for row in payload["rows"]}
    assert marks[("second_digit", "simulated")] == (0.5, 2, 2)
    assert marks[("zero_five", "textbook")][:2] == (None, None)
    assert any("second_digit" in w and "0.5" in w for w in payload["warnings"])


def test_a_row_that_could_not_reject_on_some_elections_says_so():
    """A row's marks count the elections whose results could not reject: all of them, its rate 0 by
    construction (smallest_p); some (floored only, and a warning)."""
    from simkit.forensics.calibrate import cannot_reject_warnings, floored

    assert floored([0.05, 0.5], 2) == {"floored": 2, "smallest_p": 0.05}
    assert floored([0.05], 3) == {"floored": 1} and floored([], 3) == {}
    rows = [{"test": "dip", "null": "simulated", "mechanism": "none", "n": 3, "floored": 1}]
    assert cannot_reject_warnings(rows, 19) == ["dip (simulated null): too few null draws to reject on 1 election in "
                                                "1 row"]


def test_rows_that_could_not_reject_on_some_elections_make_one_line_per_test_and_null():
    """Every sweep point × scenario row of a test and null that could not reject on some elections: one line for
    them all, within the page width, not one per row."""
    from simkit.forensics.calibrate import cannot_reject_warnings

    rows = [{"test": test, "null": null, "mechanism": mechanism, "n": 19, "floored": floored}
            for test in ("integer_percent", "dip") for null in ("textbook", "simulated")
            for mechanism, floored in (("none", 1), ("stuffing", 3), ("rounding", 2)) * 4]
    rows += [{"test": "spikes", "null": "simulated", "mechanism": "none", "n": 19, "floored": 19,
              "smallest_p": 0.05}]
    lines = cannot_reject_warnings(rows, 18)
    assert len(lines) == 5 and all(len(f"warning: {line}") <= 120 for line in lines[1:])  # [0]: floor_lines
    assert lines[1] == ("integer_percent (textbook null): too few null draws to reject on 1 to 3 elections in each "
                        "of 12 rows")


def test_the_false_positive_json_has_no_nan(capsys, monkeypatch):
    """A null z that could not be computed is written as null: the output is JSON."""
    from test_benchmarks_smoke import _import

    false_positives = _import("benchmarks.false_positives")
    monkeypatch.setattr(false_positives, "measure", lambda *args: {"textbook": {"x": {"null_z": float("nan")}}})
    assert false_positives.main(["--draws", "19", "--null", "textbook", "--tests", "dip", "--json"]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and json.loads(out)["tables"]["textbook"]["x"]["null_z"] is None


def _power_json(tmp_path, **fields):
    path = tmp_path / "power.json"
    path.write_text(json.dumps({"command": "c", "null": "simulated", "tests": ["zero_five"],
                                "table": {"e": {"none": {"zero_five": [0, 4]}}}, **fields}))
    return str(path)


def test_the_power_panel_checks_a_saved_measurement_before_recording_it(tmp_path, capsys, monkeypatch):
    """--from-json --write-calibration: a measurement without its draws, or with draws that cannot reject, is
    refused; --json saves the draws."""
    import importlib

    from test_benchmarks_smoke import REPO

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # run as a script, it imports its sibling
    power_panel = importlib.import_module("power_panel")
    monkeypatch.setattr(power_panel.calibration, "record", _not_measured)
    assert power_panel.main(["--from-json", _power_json(tmp_path), "--write-calibration"]) == 2
    assert "does not say its draws" in capsys.readouterr().err
    assert power_panel.main(["--from-json", _power_json(tmp_path, draws=18), "--write-calibration"]) == 2
    assert "smallest p-value of zero_five (simulated null) is 0.05" in capsys.readouterr().err
    assert power_panel.main(["--from-json", _power_json(tmp_path, draws=18), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["draws"] == 18


def test_both_panels_refuse_by_one_rule(capsys, monkeypatch):
    """The power panel's floor rule is the false-positive panel's function: a test read empirically (second_digit
    under simulated) with one draw cannot reject, so it is warned of, but its recorded count is kept, so
    --write-calibration is not refused for it; zero_five's would be a false size and is."""
    import importlib

    from test_benchmarks_smoke import REPO

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # run as a script, it imports its sibling
    power_panel = importlib.import_module("power_panel")
    assert power_panel.floor_check is importlib.import_module("false_positives").floor_check
    assert power_panel.floor_check(*power_panel.panel_floors(["second_digit"], "simulated", 1), 1, True) == 0
    assert capsys.readouterr().err.startswith("warning: with 1 null draw the smallest p-value of second_digit")
    assert power_panel.floor_check(*power_panel.panel_floors(["second_digit", "zero_five"], "simulated", 1), 1,
                                   True) == 2
    err = capsys.readouterr().err
    assert err.startswith("--draws: 1: with 1 null draw the smallest p-value of zero_five (simulated null)"), err


def test_minimum_draws_checks_its_level():
    for alpha in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            minimum_draws(alpha)
    assert minimum_draws(1) == 0  # 1 / 1 <= 1


def test_the_verdict_names_the_draws_each_result_rests_on():
    """The sentence reads the draws from the results (a failed draw leaves 18 of 19 asked), not from the floor,
    and states each end of their range: the highest floor alone was stated as every test's."""
    from simkit.report.catalogue import DETECTS
    from simkit.report.verdicts import forensic_verdicts

    floored = TestResult("dip", 0.0, 0.0, 0.4, "simulated", "cannot reject with 18 draws (smallest p 0.0526)",
                         {"smallest_p": FLOOR_18, "null_draws": 18})
    klimek = TestResult("klimek_ml", 0.0, 0.0, 0.4, "simulated", "cannot reject with 12 draws (smallest p 0.0769)",
                        {"smallest_p": 1 / 13, "null_draws": 12})
    text = [v.text for v in forensic_verdicts([floored, klimek], DETECTS, power_shown=True)][1]
    assert text.startswith("dip, klimek_ml could not reject: with 12 to 18 null draws their smallest p-values are "
                           "0.0526 to 0.0769, above 0.05")  # not dip's 18 draws stated as 12, its floor as 0.0769


def test_one_draw_is_singular_and_thousands_are_separated():
    from simkit.forensics.floor import floor_line, floor_verdict

    assert counted(1, "null draw") == "1 null draw" and counted(1000, "null draw") == "1,000 null draws"
    assert floor_line({"dip": 0.5}, "flat", 1).startswith("with 1 null draw the smallest p-value of dip")
    assert floor_line({"dip": 1 / 1001}, "flat", 1000).startswith("with 1,000 null draws the smallest p-value")
    assert floor_verdict(1, 0.5) == "cannot reject with 1 draw (smallest p 0.5)"


def test_the_false_positive_title_names_only_the_tests_shown_by_monte_carlo_p_values(monkeypatch):
    """A test shown with its empirically calibrated p-value (emp.) has no floor in that table: the title's
    cannot-reject line leaves it out."""
    from test_benchmarks_smoke import _import

    false_positives = _import("benchmarks.false_positives")
    read = {"flagged": frozenset(), "empirical": frozenset({"second_digit"}), "rows": {},
            "panel": {"dip": (0, 0), "second_digit": (0, 0)}, "controls": {}, "tau": {"second_digit": 1.0}}
    monkeypatch.setattr(false_positives, "calibrate", lambda rows, tests, null: read)
    text = false_positives.render({"simulated": {}}, ["dip", "second_digit"], 18, 1, markdown=False)
    assert "smallest p-value of dip (simulated null)" in text and "second_digit (simulated null)" not in text


def test_the_null_spread_and_the_empirical_reading_need_the_same_draws():
    """A null's SD (``simulated_sd``) is recorded from floor.EMPIRICAL_MIN_DRAWS finite draws, the number an
    empirical reading needs: with one fewer there is none, and the Monte Carlo p-value stands."""
    import numpy as np

    from simkit.forensics import _with_null_z
    from simkit.forensics.calibration import empirical_tests
    from simkit.forensics.floor import EMPIRICAL_MIN_DRAWS

    result = TestResult("dip", 0.5, 0.0, 0.4, "simulated", "no anomaly detected")
    enough = np.arange(EMPIRICAL_MIN_DRAWS, dtype=float)
    assert _with_null_z(result, enough, "flat").extra["simulated_sd"] is not None
    assert _with_null_z(result, np.append(enough[1:], np.nan), "flat").extra["simulated_sd"] is None
    test = sorted(empirical_tests("simulated"))[0]
    assert smallest_p(test, "simulated", EMPIRICAL_MIN_DRAWS) is None
    assert smallest_p(test, "simulated", EMPIRICAL_MIN_DRAWS - 1) is not None
