"""``simkit forensics``: table, JSON, result Dataset, plot, and one-line input errors."""
from __future__ import annotations

import json

import pytest
import xarray as xr

from forensics_helpers import engine_positions, honest_dataset, overlapping, record_seed_positions, shared_positions
from simkit.cli.forensics import format_table
from simkit.cli.main import main

MAP = '[columns]\nregistered = "registered"\nballots = "ballots"\n[options]\na = "a"\nb = "b"\n'


@pytest.fixture
def returns_csv(tmp_path):
    ds = honest_dataset(600, seed=50)
    votes = ds["votes"].values
    lines = ["registered,ballots,a,b"] + [f"{r},{b},{v[0]},{v[1]}" for r, b, v in
                                           zip(ds["registered"].values, ds["ballots"].values, votes)]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "m.toml").write_text(MAP)
    return tmp_path


def test_json_lists_every_requested_test_with_the_common_fields(returns_csv, capsys):
    code = main(["forensics", str(returns_csv / "r.csv"), "--map", str(returns_csv / "m.toml"),
                 "--tests", "integer_percent,fingerprint,last_digit", "--draws", "50", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [t["test"] for t in out["tests"]] == ["integer_percent", "fingerprint", "last_digit"]
    for entry in out["tests"]:
        assert {"test", "statistic", "reference", "p_value", "null", "verdict"} <= set(entry)
    assert {"excess", "null_mean", "null_sd"} <= set(out["tests"][0])
    assert out["tests"][1]["p_value"] is None
    assert out["data"]["stations_used"] == 600 and out["data"]["stations_excluded"] == {}


def test_output_dataset_and_plot_are_written(returns_csv, capsys):
    target, plots = returns_csv / "res.nc", returns_csv / "plots"
    code = main(["forensics", str(returns_csv / "r.csv"), "--map", str(returns_csv / "m.toml"),
                 "--tests", "correlation,fingerprint", "--null", "simulated", "--draws", "20",
                 "-o", str(target), "--plot", str(plots)])
    assert code == 0
    assert "correlation" in capsys.readouterr().out
    saved = xr.open_dataset(target)
    assert list(saved["test"].values) == ["correlation", "fingerprint"]
    assert int(saved["fingerprint"].sum()) == 600
    assert (plots / "fingerprint.png").stat().st_size > 0
    assert not list(returns_csv.glob(".res.nc*"))  # no staging file left


def test_simulated_result_runs_on_its_replicate(tmp_path, capsys):
    path = tmp_path / "sim.nc"
    honest_dataset(300, seed=51, replicates=2).to_netcdf(path)
    assert main(["forensics", str(path), "--tests", "dip", "--replicate", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["stations_used"] == 300


@pytest.mark.parametrize("extra, fragment", [
    (["--tests", "nope"], "--tests: unknown test id 'nope'"),
    (["--draws", "0"], "--draws: 0: must be a positive integer"),
])
def test_bad_options_exit_2_with_one_line(returns_csv, capsys, extra, fragment):
    code = main(["forensics", str(returns_csv / "r.csv"), "--map", str(returns_csv / "m.toml"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_bad_column_in_map_exits_2(returns_csv, capsys):
    (returns_csv / "bad.toml").write_text(MAP.replace('ballots = "ballots"', 'ballots = "cast"'))
    code = main(["forensics", str(returns_csv / "r.csv"), "--map", str(returns_csv / "bad.toml")])
    err = capsys.readouterr().err
    assert code == 2 and "columns.ballots: no column named 'cast'" in err


def test_missing_data_file_exits_2(returns_csv, capsys):
    assert main(["forensics", str(returns_csv / "absent.csv"), "--map", str(returns_csv / "m.toml")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_no_rejection_comes_with_size_and_power_on_data_shaped_like_it(returns_csv, capsys):
    """Honest returns: nothing rejects, so the report states the size (nothing planted) and the power
    against each planted manipulation, from simulated elections shaped like the data."""
    code = main(["forensics", str(returns_csv / "r.csv"), "--map", str(returns_csv / "m.toml"),
                 "--tests", "integer_percent,correlation", "--json", "--power", "4"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert all(t["p_value"] >= 0.05 for t in out["tests"])
    rates = out["power"]["rejection_rates"]
    assert out["power"]["replicates"] == 4
    assert set(rates) == {"none", "stuffing", "rounding"}
    assert set(rates["none"]) == {"integer_percent", "correlation"}
    assert all(0.0 <= value <= 1.0 for row in rates.values() for value in row.values())
    left_out = out["power"]["stations_left_out"]  # per plant and replicate: what the power was measured on
    assert set(left_out) == set(rates) and all(len(counts) == 4 and min(counts) >= 0 for counts in left_out.values())


def test_the_power_table_notes_the_stations_its_elections_left_out():
    """Stations a simulation or a plant left without ballots are named under the power table, per plant and
    replicate, when there are any."""
    from simkit.cli.forensics import power_note
    from simkit.forensics.core import TestResult

    results = [TestResult(test="correlation", statistic=0.1, reference=0.0, p_value=0.4, null="textbook",
                          verdict="consistent")]
    rates = {"none": {"correlation": 0.0}, "rounding": {"correlation": 0.5}}
    counts = {"none": {"correlation": (0, 2)}, "rounding": {"correlation": (1, 2)}}
    note = power_note(results, {"rejection_rates": rates, "rejections": counts,
                                "stations_left_out": {"none": [0, 3], "rounding": [2, 0]}})
    assert "stations left out without ballots, per replicate: none 0, 3; rounding 2, 0" in note
    clean = power_note(results, {"rejection_rates": rates, "rejections": counts,
                                 "stations_left_out": {"none": [0, 0], "rounding": [0, 0]}})
    assert "left out" not in clean


@pytest.mark.parametrize("hits, marked", [(1, True), (4, False)])
def test_the_power_table_marks_a_power_within_the_monte_carlo_error_of_its_size_and_states_that_error(hits, marked):
    """As the report's sentence does (:func:`simkit.forensics.power.above_size`): 1 of 5 against a size of 0 of 5
    is marked ~ (within Monte Carlo error), 4 of 5 is not; the rates' standard error and the largest power a 0 of 5
    allows are stated (the table printed 0.20 beside 0.00 with no word of either)."""
    from simkit.cli.forensics import power_lines

    counts = {"none": {"spikes": (0, 5)}, "stuffing": {"spikes": (hits, 5)}}
    rates = {plant: {test: k / n for test, (k, n) in row.items()} for plant, row in counts.items()}
    lines = power_lines({"rejection_rates": rates, "rejections": counts, "stations_left_out": {}}, [])
    row = next(line for line in lines if line.strip().startswith("spikes"))
    assert row.split()[-1] == (f"{hits / 5:.2f}~" if marked else f"{hits / 5:.2f}")
    assert any(line.strip().startswith("~ above its size by less") for line in lines) is marked
    assert "  each rate is of 5 elections: standard error up to 0.22; a rate of 0 allows a power of up to 0.45 " \
           "(one-sided 95%)" in lines


def test_the_power_note_promises_no_detection_from_a_test_that_could_not_reject():
    """integer_percent with a floor at 0.05 (19 draws of a simulated null) cannot reject whatever the data: the
    note names it among those that cannot, and does not say an excess would be detected with 80% power."""
    from simkit.cli.forensics import power_note
    from simkit.forensics.core import TestResult

    extra = {"null_sd": 10.0, "excess": 3.0, "null_mean": 50.0}
    can = TestResult("integer_percent", 3.0, 0.0, 0.4, "simulated", "no anomaly detected", extra)
    cannot = TestResult("integer_percent", 3.0, 0.0, 0.4, "simulated",
                        "cannot reject with 18 draws (smallest p 0.0526)",
                        {**extra, "smallest_p": 1 / 19, "null_draws": 18})
    assert "an excess of 25 integer stations would be detected" in power_note([can], None)
    note = power_note([cannot], None)
    assert note.startswith("No test rejects at 0.05 (integer_percent cannot with these draws") and "detected" not in note


def test_the_power_note_of_tests_that_could_not_run_builds_no_power_table(monkeypatch):
    """With no test run the note says so alone: the power table was built first, then discarded."""
    from simkit.cli import forensics
    from simkit.forensics.applicable import not_applicable

    monkeypatch.setattr(forensics, "power_lines", lambda *args: pytest.fail("a power table was built"))
    power = {"rejection_rates": {"none": {"dip": None}}, "stations_left_out": {}}
    assert forensics.power_note([not_applicable("dip", "simulated", "too few stations")], power) == (
        "No test could run on these data (reasons above).")


def test_a_rejection_by_holm_alone_is_not_followed_by_no_test_rejects():
    """spikes' Monte Carlo p-value sits at its floor (1/19 with 18 draws, above 0.05) while its tail p-value, which
    Holm's family reads, is tiny: the Holm line names it, and the note below said no test rejects and the count is
    not shown clean."""
    from simkit.forensics.core import TestResult

    spikes = TestResult("spikes", 3.0, 0.0, 1 / 19, "simulated", "no anomaly detected",
                        {"calibration": "calibrated", "null_tail_p": 1e-6})
    summary = {"source": "r.csv", "stations_used": 197, "leader": "b", "null": "simulated", "draws": 18,
               "stations_excluded": {}, "row_anomalies": {}}
    table = format_table([spikes], summary)
    assert "Holm at 0.05 over the calibrated tests: spikes" in table
    assert table.splitlines()[-1] == "No shown p-value is at or below 0.05; Holm rejects spikes on its tail p-value."
    assert "No test rejects" not in table and "clean count" not in table


def test_the_table_reads_the_tests_that_could_not_reject_from_the_results():
    """The power note under the table took those tests from ``summary["cannot_reject"]``: a summary without the
    key had it promise an excess integer_percent could not detect."""
    from simkit.forensics.core import TestResult

    extra = {"null_sd": 10.0, "excess": 3.0, "null_mean": 50.0, "smallest_p": 0.05, "null_draws": 19}
    cannot = TestResult("integer_percent", 3.0, 0.0, 0.4, "simulated", "cannot reject with 19 draws (smallest p 0.05)",
                        extra)
    summary = {"source": "r.csv", "stations_used": 197, "leader": "b", "null": "simulated", "draws": 20,
               "stations_excluded": {}, "row_anomalies": {}}
    table = format_table([cannot], summary)
    assert "No test rejects at 0.05 (integer_percent cannot with these draws" in table and "detected" not in table


def test_planted_manipulations_change_the_counts_as_described():
    import numpy as np

    from simkit.forensics import power
    from simkit.forensics.core import election
    from simkit.forensics.integer.percent import integer_count

    e = election(honest_dataset(2000, seed=52))
    assert power.planted(e, "none", np.random.default_rng(0)) is e
    stuffed = power.planted(e, "stuffing", np.random.default_rng(0))
    assert (stuffed.ballots >= e.ballots).all() and (stuffed.ballots <= stuffed.registered).all()
    assert stuffed.leader_votes.sum() > e.leader_votes.sum()
    rounded = power.planted(e, "rounding", np.random.default_rng(0))
    assert integer_count(rounded) - integer_count(e) >= 20  # about 40 stations rounded, most not integer before


def test_the_table_names_each_row_anomaly_and_its_rows(returns_csv, capsys):
    """The text report, not only the JSON, says which rule each reported row broke and where: a repeated station
    id and ballots above the register."""
    lines = (returns_csv / "r.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    rows[4][1] = str(int(rows[4][0]) + 5)  # data row 5: ballots above the register
    text = "\n".join(["id," + lines[0]] + [f"s{min(i, 7)}," + ",".join(row) for i, row in enumerate(rows, 1)])
    (returns_csv / "r.csv").write_text(text + "\n")
    (returns_csv / "m.toml").write_text(MAP.replace("[columns]\n", "[columns]\nid = \"id\"\n"))
    code = main(["forensics", str(returns_csv / "r.csv"), "--map", str(returns_csv / "m.toml"), "--tests", "dip",
                 "--power", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert "ballots_gt_registered 1 (data row 5)" in out
    assert "duplicate_id 594 (data rows 7, 8, 9, 10, 11, …)" in out


def test_the_table_names_each_row_rule_once():
    """A rule whose rows the loader left out is named once, on the ``excluded:`` line with its data rows; the
    ``rows:`` line names the rules of rows kept (it repeated the excluded ones)."""
    summary = {"source": "r.csv", "stations_used": 197, "leader": "b", "null": "textbook", "draws": 50,
               "stations_excluded": {"loader: blank": 1, "loader: not_a_number": 2, "flagged by loader": 1},
               "row_anomalies": {"blank": {"count": 1, "rule": "excluded", "rows": [4]},
                                 "not_a_number": {"count": 2, "rule": "excluded", "rows": [6, 9]},
                                 "votes_gt_ballots": {"count": 1, "rule": "kept, flagged", "rows": [8]}}}
    lines = format_table([], summary).splitlines()
    assert lines[1:3] == ["excluded: loader: blank 1 (data row 4), loader: not_a_number 2 (data rows 6, 9), "
                          "flagged by loader 1", "rows: votes_gt_ballots 1 (data row 8)"]
    only_excluded = {**summary, "row_anomalies": {"blank": summary["row_anomalies"]["blank"]}}
    assert not any(line.startswith("rows:") for line in format_table([], only_excluded).splitlines())


@pytest.mark.parametrize("variables", [("ballots", "votes"), ("registered", "ballots", "votes")])
def test_a_result_without_station_counts_is_one_line(tmp_path, variables, capsys):
    """A ``--keep summary`` simulation (totals only) or another kind of result (a forensics one) has no station
    counts to test: one line naming the file, exit 2."""
    path = tmp_path / "sim.nc"
    honest_dataset(30, seed=52).drop_vars(list(variables)).to_netcdf(path)
    assert main(["forensics", str(path), "--tests", "dip"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err and "DATA" in err and "station-level" in err and "--keep full" in err


def test_the_power_study_draws_from_no_seed_of_the_tests_on_the_data(returns_csv, monkeypatch, capsys):
    """Under one --seed the power study's streams sit on their own branch: no seed of its honest elections,
    plants or tests is one of the real tests' seeds or below one (they were: the unplanted replicate r drew
    from below the r-th test's seed)."""
    positions = record_seed_positions(monkeypatch, "simkit.cli.forensics.power_table")
    assert main(["forensics", str(returns_csv / "r.csv"), "--map", str(returns_csv / "m.toml"), "--tests",
                 "last_digit,correlation", "--null", "textbook", "--json", "--power", "2"]) == 0
    assert "power" in json.loads(capsys.readouterr().out)
    assert len(positions["real"]) == 2 and len(positions["power"]) == 3 * 2 * 4  # plants x replicates x seeds
    assert shared_positions(positions) == []


def test_the_tests_of_the_data_draw_from_no_engine_stream_of_the_seed(returns_csv, monkeypatch, capsys):
    """Under one --seed the tests of the returns draw from no position of the engine's streams of that seed nor
    from below one (:func:`simkit.forensics.observed_seed`): at the seed itself, test i drew from above engine
    replicate 0's station group i (``simkit run`` with the same seed)."""
    positions = record_seed_positions(monkeypatch, "simkit.cli.forensics.power_table")
    assert main(["forensics", str(returns_csv / "r.csv"), "--map", str(returns_csv / "m.toml"), "--tests",
                 "last_digit,correlation", "--null", "textbook", "--json", "--power", "0", "--seed", "3"]) == 0
    capsys.readouterr()
    assert len(positions["real"]) == 2
    assert overlapping(positions["real"], engine_positions(3, replicates=2, groups=16)) == []
