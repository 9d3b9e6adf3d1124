"""The flags every command shares: sweeps from the command line, choosing a scenario and sweep point of a saved
result, ``-o``/``--json``/``--plot DIR`` where they were missing, one default of ``--draws`` per meaning, help on
every flag, ``--version``, and errors blamed on the flag that caused them."""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import xarray as xr

import simkit
from simkit import progress
from simkit.cli.arguments import PARAMETER_FLAGS, as_flags
from simkit.cli.main import build_parser, main
from simkit.forensics import TESTS
from simkit.forensics.defaults import CALIBRATION_DRAWS, NULL_DRAWS
from simkit.engine.summary import format_summary

from conftest import small_config_dict


def write_config(tmp_path, raw, name="x.toml"):
    path = tmp_path / name
    path.write_text(tomli_w.dumps(raw))
    return path


def one_line_error(capsys, code) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path, small_config_dict(replicates=5))


@pytest.fixture
def scenarios_config(tmp_path):
    """Two scenarios (honest, stuffing) on the small election."""
    raw = small_config_dict(replicates=5)
    raw["manipulation"] = [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.6,
                            "f_extreme": 0.0, "theta": 0.3, "alpha": 1.5}]
    raw["scenario"] = [{"name": "honest"}, {"name": "stuffing", "manipulations": ["stuff"]}]
    return write_config(tmp_path, raw, "s.toml")


@pytest.fixture
def swept_result(tmp_path, scenarios_config):
    """A result with 2 scenarios × 2 sweep points."""
    out = tmp_path / "swept.nc"
    assert main(["run", str(scenarios_config), "-o", str(out), "--sweep", "turnout.dispersion=0.3,0.6",
                 "--quiet"]) == 0
    return out


# -- sweeps ---------------------------------------------------------------------------------------------------

def test_sweep_flag_and_quoted_set_give_the_same_sweep_bit_for_bit(tmp_path, config):
    by_flag, by_set = tmp_path / "flag.nc", tmp_path / "set.nc"
    assert main(["run", str(config), "-o", str(by_flag), "--sweep", "turnout.dispersion=0.3,0.6", "--quiet"]) == 0
    assert main(["run", str(config), "-o", str(by_set), "--set", 'sweep."turnout.dispersion"=[0.3,0.6]',
                 "--quiet"]) == 0
    a, b = simkit.open_result(by_flag), simkit.open_result(by_set)
    assert list(a["turnout.dispersion"].values) == [0.3, 0.6]
    assert a["total_votes"].dims[0] == "turnout.dispersion"
    xr.testing.assert_identical(a["votes"], b["votes"])
    assert simkit.parse_config(a.attrs["simkit_config"]).sweep == {"turnout.dispersion": [0.3, 0.6]}


def test_sweep_flag_is_kept_beside_the_configs_own_sweep(tmp_path, capsys):
    config = write_config(tmp_path, small_config_dict(replicates=5, sweep={"preferences.dispersion": [10.0, 30.0]}))
    assert main(["validate", str(config), "--sweep", "turnout.dispersion=0.3,0.5,0.6"]) == 0
    assert "6 sweep point(s)" in capsys.readouterr().out


@pytest.mark.parametrize("sweep, flags", [
    (None, ["--sweep", "turnout.dispersion=0.3,0.6", "--set", "turnout.dispersion=0.5"]),
    ({"turnout.dispersion": [0.3, 0.6]}, ["--set", "turnout.dispersion=0.5"]),
    ({"turnout.dispersion": [0.3, 0.6]}, ["--set", 'turnout."dispersion"=0.5']),
])
def test_setting_a_swept_field_is_refused_not_ignored(tmp_path, capsys, sweep, flags):
    """Every sweep point sets its swept field, so a value set for it (``--set``, or ``overrides`` in Python)
    would be used at none: refused, as a scenario's override of a swept field is, not silently dropped."""
    config = write_config(tmp_path, small_config_dict(replicates=5, sweep=sweep))
    err = one_line_error(capsys, main(["validate", str(config), *flags]))
    assert err.startswith(f"--set {flags[-1].removeprefix('--set ')} (on {config}): turnout.dispersion: "), err
    assert "swept" in err
    with pytest.raises(simkit.InputError, match="swept"):
        simkit.load_config(config, overrides={"turnout.dispersion": 0.5, "sweep.turnout.dispersion": [0.3, 0.6]})


def test_setting_a_table_is_refused_only_where_it_sets_a_swept_field(tmp_path, capsys):
    """A ``--set`` of a table is applied before the sweep: the table's fields are used at every point except the
    swept one, whose value there would be used at none: refused when the table holds it (turnout needs its
    dispersion, so its other fields are set one by one, which is not refused)."""
    config = write_config(tmp_path, small_config_dict(replicates=5, sweep={"turnout.dispersion": [0.3, 0.6]}))
    table = '{model="logit_normal", mean=0.6, dispersion=0.9}'
    err = one_line_error(capsys, main(["validate", str(config), "--set", f"turnout={table}"]))
    assert err == (f"--set turnout={table} (on {config}): turnout: holds the swept field turnout.dispersion "
                   "([sweep] or --sweep), whose value here would be used at no point; set the table's other fields "
                   "one by one (turnout.FIELD=...)"), err
    assert main(["validate", str(config), "--set", "turnout.mean=0.6"]) == 0


def test_a_sweep_reaches_an_optional_field_the_config_leaves_out(tmp_path, capsys):
    """A block's optional field (default None) that the config leaves out is swept as it stands (it was 'no such
    field', and the --set that made it exist was then refused as swept); a --set of it beside the sweep is used
    at no point, so refused; a --set of a required field the file lacks is what lets the config validate, so
    kept."""
    raw = small_config_dict(replicates=2)
    raw["manipulation"] = [{"name": "fab", "kind": "protocol_fabrication", "beneficiary": "a", "target_turnout": 0.9}]
    config = write_config(tmp_path, raw)
    sweep = ["--sweep", "manipulation.fab.target_share=0.7,0.9"]
    assert main(["validate", str(config), *sweep]) == 0
    cfg = simkit.load_config(config, overrides={"sweep.manipulation.fab.target_share": [0.7, 0.9]})
    assert [point.manipulation[0].target_share for point in map(cfg.at, cfg.sweep_points())] == [0.7, 0.9]
    err = one_line_error(capsys, main(["validate", str(config), "--set", "manipulation.fab.target_share=0.8",
                                       *sweep]))
    assert err == (f"--set manipulation.fab.target_share=0.8 (on {config}): manipulation.fab.target_share: swept "
                   "([sweep] or --sweep): this value would be used at no point; drop one"), err
    del raw["turnout"]["dispersion"]
    config = write_config(tmp_path, raw)
    assert main(["validate", str(config), "--set", "turnout.dispersion=0.5",
                 "--sweep", "turnout.dispersion=0.3,0.6"]) == 0


@pytest.mark.parametrize("flags, expected", [
    (["--set", "tunout.mean=0.3"], "--set tunout.mean=0.3 (on CONFIG): tunout: unknown field"),
    (["--set", "turnout.mean=abc"], "--set turnout.mean=abc (on CONFIG): turnout.mean: Input should be a valid number"),
    (["--sweep", "turnout.dispersoin=0.3,0.6"], "--sweep turnout.dispersoin=0.3,0.6 (on CONFIG): "
                                                "sweep.turnout.dispersoin: no such field"),
    (["--sweep", "turnout.dispersion=0.3,x"], "--sweep turnout.dispersion=0.3,x: 'x': not a number"),
    (["--sweep", "turnout.dispersion"], "--sweep turnout.dispersion: expected dotted.path=V1,V2,..."),
    (["--sweep", "turnout.dispersion=0.3,0.6", "--set", "sweep.turnout.dispersion=[0.4]"],
     "--sweep turnout.dispersion=0.3,0.6: turnout.dispersion is swept by --set sweep.turnout.dispersion=[0.4] too "
     "(one flag per sweep dimension)"),
    (["--sweep", "turnout.dispersion=0.3,0.6", "--sweep", "turnout.dispersion=0.4,0.5"],
     "--sweep turnout.dispersion=0.4,0.5: turnout.dispersion is swept by --sweep turnout.dispersion=0.3,0.6 too"),
    (["--set", 'sweep."turnout.dispersion"=[0.3,0.6]', "--sweep", "turnout.dispersion=0.4,0.5"],
     "--sweep turnout.dispersion=0.4,0.5: turnout.dispersion is swept by --set sweep.\"turnout.dispersion\"=[0.3,0.6] "
     "too"),
    (["--set", 'sweep."turnout.dispersion"=0.3'], "--set sweep.\"turnout.dispersion\"=0.3 (on CONFIG): "
                                                  "sweep.turnout.dispersion: Input should be a valid list"),
])
def test_override_problems_are_blamed_on_the_flag_not_the_file(tmp_path, config, capsys, flags, expected):
    out = tmp_path / "o.zarr"
    err = one_line_error(capsys, main(["run", str(config), "-o", str(out), *flags]))
    assert err.startswith(expected.replace("CONFIG", str(config))), err
    assert not out.exists()


def test_set_and_sweep_reach_a_region_whose_name_holds_a_dot(tmp_path, capsys):
    """A region read from a CSV electorate may be named with a dot: a quoted path segment reaches it."""
    (tmp_path / "stations.csv").write_text("registered,region\n900,St. Petersburg\n700,St. Petersburg\n"
                                           "800,Moscow\n600,Moscow\n")
    raw = small_config_dict(replicates=2)
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region"}
    config, out = write_config(tmp_path, raw), tmp_path / "o.nc"
    assert main(["run", str(config), "-o", str(out), "--quiet", "--set", "turnout.regional_mean.'Moscow'=0.7",
                 "--sweep", 'turnout.regional_mean."St. Petersburg"=0.6,0.8']) == 0
    stored = simkit.parse_config(simkit.open_result(out).attrs["simkit_config"])
    assert stored.turnout.regional_mean == {"Moscow": 0.7}
    assert stored.sweep == {'turnout.regional_mean."St. Petersburg"': [0.6, 0.8]}
    assert [point.turnout.regional_mean for point in map(stored.at, stored.sweep_points())] == [
        {"Moscow": 0.7, "St. Petersburg": 0.6}, {"Moscow": 0.7, "St. Petersburg": 0.8}]
    err = one_line_error(capsys, main(["validate", str(config), "--set", 'turnout.regional_mean."St. Petersburg"=2']))
    assert err.startswith(f'--set turnout.regional_mean."St. Petersburg"=2 (on {config}): '
                          "turnout.regional_mean.St. Petersburg: "), err


@pytest.mark.parametrize("source", ["csv", "synthetic"])
def test_a_sweep_reaches_a_region_without_a_regional_mean_and_no_other(tmp_path, capsys, source):
    """A region's turnout mean is swept though the config gives it none (a region read from a CSV has none until
    one is given); a region the electorate lacks is refused, as it is when set."""
    (tmp_path / "stations.csv").write_text("registered,region\n900,north\n700,south\n")
    raw = small_config_dict(replicates=2)
    if source == "csv":
        raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                             "region_column": "region"}
    config = write_config(tmp_path, raw)
    cfg = simkit.load_config(config, overrides={"sweep.turnout.regional_mean.north": [0.5, 0.7]})
    assert [point.turnout.regional_mean for point in map(cfg.at, cfg.sweep_points())] == [{"north": 0.5},
                                                                                          {"north": 0.7}]
    ds = simkit.simulate(cfg, replicates=2, seed=1)
    assert ds["turnout.regional_mean.north"].values.tolist() == [0.5, 0.7]
    err = one_line_error(capsys, main(["run", str(config), "--sweep", "turnout.regional_mean.west=0.5,0.7"]))
    assert "turnout.regional_mean.west" in err and "not a region of the electorate" in err, err


@pytest.mark.parametrize("path", ["timeline.regional.north", "timeline.regional.west"])
def test_a_sweep_of_a_region_table_of_lists_is_one_line(config, capsys, path):
    """Only a table of one number per region gains a swept region's entry: a timeline's regional table holds a
    list per region, so sweeping a region the config leaves out of it is one line (it was each point's every
    problem, 8 lines)."""
    err = one_line_error(capsys, main(["validate", str(config), "--sweep", f"{path}=0.7,0.9"]))
    assert err.endswith(f"sweep.{path}: no such field"), err


@pytest.mark.parametrize("flag", ["--set", "--sweep"])
def test_an_unbalanced_quote_in_an_override_is_one_line(config, capsys, flag):
    text = 'turnout.regional_mean."St. Petersburg=0.6'
    err = one_line_error(capsys, main(["validate", str(config), flag, text]))
    assert err.startswith(f'{flag} {text}: turnout.regional_mean."St. Petersburg: unbalanced quote'), err


@pytest.mark.parametrize("source", ["csv", "synthetic"])
def test_an_unbalanced_quote_in_a_config_sweep_key_is_one_line(tmp_path, capsys, source):
    """A ``[sweep]`` key with an unbalanced quote is refused in one line naming it (the check of swept regions,
    which splits every sweep key, raised KeyError instead)."""
    (tmp_path / "stations.csv").write_text("registered,region\n900,north\n700,south\n")
    raw = small_config_dict(replicates=2, sweep={'"turnout.dispersion': [0.3, 0.5]})
    if source == "csv":
        raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                             "region_column": "region"}
    config = write_config(tmp_path, raw)
    err = one_line_error(capsys, main(["validate", str(config)]))
    assert err.startswith(f'{config}: sweep."turnout.dispersion: unbalanced quote'), err


def test_a_problem_of_the_file_itself_still_names_the_file(tmp_path, capsys):
    raw = small_config_dict()
    raw["turnout"]["dispersoin"] = 0.3
    config = write_config(tmp_path, raw)
    err = one_line_error(capsys, main(["validate", str(config), "--set", "turnout.mean=0.5"]))
    assert err.startswith(f"{config}: turnout.dispersoin: unknown field")



def test_a_problem_a_flag_causes_in_another_field_is_blamed_on_the_flag(tmp_path, capsys):
    """f_incremental + f_extreme must be at most 1: raising f_incremental puts the problem at f_extreme, which the
    file alone has right; a problem the file has without the flags still names the file."""
    raw = small_config_dict()
    raw["manipulation"] = [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.2,
                            "f_extreme": 0.05, "theta": 0.1, "alpha": 2.0}]
    config = write_config(tmp_path, raw)
    err = one_line_error(capsys, main(["validate", str(config), "--set", "manipulation.stuff.f_incremental=1"]))
    assert err.startswith(f"--set manipulation.stuff.f_incremental=1 (on {config}): manipulation.stuff.f_extreme: "
                          "f_incremental + f_extreme must be at most 1"), err
    raw["manipulation"][0]["f_extreme"] = 0.9
    config = write_config(tmp_path, raw)
    err = one_line_error(capsys, main(["validate", str(config), "--set", "manipulation.stuff.f_incremental=0.5"]))
    assert err.startswith(f"{config}: manipulation.stuff.f_extreme: f_incremental + f_extreme must be at most 1"), err


def test_a_problem_of_the_file_stays_the_files_when_a_flag_mends_another(tmp_path, capsys):
    """A file with two problems, one stopping the checks that find the other: a flag that mends the first lets the
    second show, and it is still the file's, not the flag's."""
    raw = small_config_dict(turnout_mean=1.6, shares=(0.5, 0.3, 0.3))
    config = write_config(tmp_path, raw)
    err = one_line_error(capsys, main(["validate", str(config), "--set", "turnout.mean=0.6"]))
    assert err.startswith(f"{config}: preferences.shares"), err

# -- choosing a scenario and sweep point ----------------------------------------------------------------------

def test_forensics_on_a_result_with_several_points_asks_for_one(swept_result, capsys):
    err = one_line_error(capsys, main(["forensics", str(swept_result), "--tests", "dip", "--scenario", "honest"]))
    assert "holds 2 sweep points; choose one with --point: 0: turnout.dispersion=0.3; 1: turnout.dispersion=0.6" \
        in err
    err = one_line_error(capsys, main(["forensics", str(swept_result), "--tests", "dip", "--point", "1"]))
    assert "holds 2 scenarios; choose one with --scenario: 'honest', 'stuffing'" in err
    err = one_line_error(capsys, main(["forensics", str(swept_result), "--tests", "dip", "--point", "2",
                                       "--scenario", "honest"]))
    assert err.startswith("--point 2: outside 0..1")


def test_forensics_tests_the_chosen_scenario_and_point(swept_result, capsys):
    assert main(["forensics", str(swept_result), "--tests", "dip", "--scenario", "stuffing", "--point", "1",
                 "--replicate", "2", "--power", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"]["source"].endswith("(scenario stuffing, turnout.dispersion=0.6, replicate 2)")
    ds = simkit.open_result(swept_result)
    at = {"turnout.dispersion": 1, "scenario": 1, "replicate": 2}
    assert out["data"]["ballots"] == int(ds["ballots"].isel(at).sum())
    assert out["data"]["leader_votes"] == int(ds["votes"].isel(at).sel(option="a").sum())
    others = [dict(at, scenario=0), dict(at, **{"turnout.dispersion": 0})]
    assert all(int(ds["ballots"].isel(other).sum()) != out["data"]["ballots"] for other in others)


def test_forensics_bad_scenario_lists_the_scenarios(swept_result, capsys):
    err = one_line_error(capsys, main(["forensics", str(swept_result), "--scenario", "nope", "--point", "0"]))
    assert err == f"--scenario nope: not a scenario of {swept_result}: 'honest', 'stuffing'"


def test_summary_reads_every_point_unless_one_is_chosen(swept_result, tmp_path, capsys):
    assert main(["summary", str(swept_result), "--json"]) == 0
    every = json.loads(capsys.readouterr().out)
    quantities = 4  # turnout and three options
    assert every["chosen"] == "all" and len(every["rows"]) == 2 * 2 * quantities
    target = tmp_path / "s.json"
    assert main(["summary", str(swept_result), "--scenario", "stuffing", "--point", "0", "-o", str(target)]) == 0
    assert "at turnout.dispersion = 0.3, scenario = stuffing" in capsys.readouterr().out
    saved = json.loads(target.read_text())
    assert saved["chosen"] == "scenario stuffing, turnout.dispersion=0.3"
    assert {tuple(sorted(row["point"].items())) for row in saved["rows"]} == {
        (("scenario", "stuffing"), ("turnout.dispersion", 0.3))}
    chosen = next(row for row in every["rows"] if row["point"] == {"turnout.dispersion": 0.3, "scenario": "stuffing"}
                  and row["quantity"] == "turnout")
    assert next(row for row in saved["rows"] if row["quantity"] == "turnout") == chosen
    code = main(["summary", str(swept_result), "--json", "-o", str(target)])
    assert "output path exists; give --overwrite" in one_line_error(capsys, code)
    assert main(["summary", str(swept_result), "--json", "-o", str(target), "--overwrite"]) == 0


def test_summary_json_writes_an_undefined_share_as_null(tmp_path, capsys):
    """Protocols that report no ballot at all leave no valid vote: the shares do not exist. JSON has no NaN, so
    --json and -o PATH.json write null (strict parsers, such as json.loads with parse_constant refusing NaN)."""
    raw = small_config_dict(replicates=2, keep="summary")
    raw["manipulation"] = [{"name": "empty", "kind": "protocol_fabrication", "beneficiary": "a",
                            "target_turnout": 0.0}]
    result = tmp_path / "empty.nc"
    assert main(["run", str(write_config(tmp_path, raw)), "-o", str(result), "--quiet"]) == 0
    target = tmp_path / "s.json"
    assert main(["summary", str(result), "--scenario", "manipulated", "--json", "-o", str(target)]) == 0

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    for text in (capsys.readouterr().out, target.read_text()):
        rows = json.loads(text, parse_constant=refuse)["rows"]
        assert {row["quantity"]: row["mean"] for row in rows} == {"turnout": 0.0, "a": None, "b": None, "c": None}


@pytest.mark.parametrize("name", ["empty.nc", "empty.zarr"])
def test_summary_text_shows_an_undefined_share_as_n_a(tmp_path, capsys, name):
    """The same protocols in the text summary (``summary`` and ``run``'s): n/a where a share does not exist, and no
    warning of the 0/0 (a zarr result's totals are divided in dask's threads, beyond the caller's errstate)."""
    raw = small_config_dict(replicates=2, keep="summary")
    raw["manipulation"] = [{"name": "empty", "kind": "protocol_fabrication", "beneficiary": "a",
                            "target_turnout": 0.0}]
    result = tmp_path / name
    assert main(["run", str(write_config(tmp_path, raw)), "-o", str(result)]) == 0
    printed = capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["summary", str(result), "--scenario", "manipulated"]) == 0
    for text in (printed, capsys.readouterr().out):
        assert "nan" not in text
        assert f"{'a':<16}{'n/a':>8}{'n/a':>8}{'n/a':>8}" in text, text


def test_summary_output_must_be_json(swept_result, tmp_path, capsys):
    err = one_line_error(capsys, main(["summary", str(swept_result), "-o", str(tmp_path / "s.txt")]))
    assert "-o: must end in .json" in err


# -- outputs, plots, draws, help, version ---------------------------------------------------------------------

def test_calibrate_writes_its_json_with_o(tmp_path, scenarios_config, capsys):
    target = tmp_path / "cal.json"
    assert main(["calibrate", str(scenarios_config), "--tests", "zero_five", "--null", "textbook", "--replicates", "3",
                 "-o", str(target), "--sweep", "turnout.dispersion=0.3,0.5"]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(target.read_text())["rows"]
    assert len(rows) == 2 * 2  # two scenarios × two sweep points
    assert len({row["mechanism"] for row in rows}) == 2 and "none" in {row["mechanism"] for row in rows}
    assert "zero_five" in printed
    err = one_line_error(capsys, main(["calibrate", str(scenarios_config), "--tests", "zero_five", "-o", str(target)]))
    assert "output path exists" in err


@pytest.mark.parametrize("command", ["forensics", "calibrate", "report"])
@pytest.mark.parametrize("tests, named", [("nope", "'nope'"), ("", "(none)"), ("dip,nope", "'nope'")])
def test_tests_is_refused_in_the_same_words_by_every_command(tmp_path, config, capsys, command, tests, named):
    target = tmp_path / {"forensics": "out.nc", "calibrate": "out.json", "report": "out.html"}[command]
    err = one_line_error(capsys, main([command, str(config), "--tests", tests, "-o", str(target)]))
    assert err == f"--tests: unknown test id {named} (choose from {', '.join(TESTS)})"
    assert not target.exists()


@pytest.mark.parametrize("command, nulls", [("forensics", "textbook, simulated, flat"),
                                            ("calibrate", "textbook, simulated, both"),
                                            ("report", "textbook, simulated")])
def test_null_is_refused_in_the_words_of_the_library(tmp_path, config, capsys, command, nulls):
    """``--null`` reads like ``--tests`` and like the library's ``null: 'x': …``, not in argparse's words."""
    target = tmp_path / {"forensics": "out.nc", "calibrate": "out.json", "report": "out.html"}[command]
    err = one_line_error(capsys, main([command, str(config), "--null", "x", "-o", str(target)]))
    assert err == f"--null: 'x': unknown name (choose from {nulls})"
    assert not target.exists()


def test_forensics_without_data_says_what_to_give(capsys):
    err = one_line_error(capsys, main(["forensics"]))
    assert err.startswith("DATA: missing: give a returns file") and "None" not in err


def test_plot_is_a_folder_everywhere(tmp_path, config, swept_result, capsys):
    plots = tmp_path / "plots"
    assert main(["forensics", str(swept_result), "--tests", "fingerprint", "--scenario", "honest", "--point", "0",
                 "--power", "0", "--plot", str(plots)]) == 0
    assert (plots / "fingerprint.png").stat().st_size > 0
    afile = tmp_path / "a.png"
    afile.write_bytes(b"not a folder")
    for command in (["forensics", str(swept_result), "--scenario", "honest", "--point", "0"],
                    ["compare", str(config)], ["timeline", str(config)]):
        err = one_line_error(capsys, main([*command, "--plot", str(afile)]))
        assert err.startswith(f"--plot: {afile}: exists and is not a folder"), err


def test_a_plot_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, swept_result, monkeypatch,
                                                                          capsys):
    """A folder this user may not write in (os.access: root passes every permission bit, so it is faked here)
    fails at once, not after the computation, when the figures are written."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    for plot in (locked, locked / "new"):
        err = one_line_error(capsys, main(["forensics", str(swept_result), "--tests", "fingerprint", "--scenario",
                                           "honest", "--point", "0", "--power", "0", "--plot", str(plot)]))
        assert err == f"--plot: {plot}: cannot write in {locked}", err
    assert not list(locked.iterdir())


def _parsers():
    parser = build_parser()
    sub = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return parser, sub.choices


def test_every_flag_of_every_command_has_help():
    _, commands = _parsers()
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}" for name, command in commands.items()
               for action in command._actions if not action.help]
    assert missing == []


@pytest.mark.parametrize("command, nulls", [("forensics", "textbook|simulated|flat"),
                                            ("calibrate", "textbook|simulated|both"), ("report", "textbook|simulated")])
def test_help_shows_the_choices_of_null(command, nulls, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert f"--null {nulls}" in capsys.readouterr().out


def test_draws_default_once_per_meaning():
    _, commands = _parsers()

    def default(command, dest):
        return next(a.default for a in commands[command]._actions if a.dest == dest)

    assert default("forensics", "draws") == default("report", "draws") == NULL_DRAWS
    assert default("calibrate", "draws") == CALIBRATION_DRAWS


def test_shared_flags_are_on_every_analysis_command():
    _, commands = _parsers()
    flags = {name: {option for action in command._actions for option in action.option_strings}
             for name, command in commands.items()}
    for name in ("forensics", "calibrate", "compare", "summary", "timeline", "infer"):
        assert {"-o", "--json"} <= flags[name], name
    for name in ("forensics", "compare", "timeline"):
        assert "--plot" in flags[name], name
    for name in ("run", "validate", "compare", "calibrate", "report"):
        assert {"--set", "--sweep"} <= flags[name], name
    for name in ("forensics", "summary", "compare"):
        assert {"--scenario", "--point"} <= flags[name], name


def test_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"simkit {simkit.__version__}"


def test_run_without_output_equals_the_engine(config, capsys):
    """``simkit run`` calls the engine: its summary is the one of ``simkit.simulate`` with the same settings."""
    assert main(["run", str(config), "--replicates", "5", "--seed", "9", "--quiet"]) == 0
    printed = capsys.readouterr().out
    ds = simkit.simulate(simkit.load_config(config), replicates=5, seed=9)
    assert printed.strip() == format_summary(ds).strip()
    assert np.issubdtype(ds["votes"].dtype, np.integer)


def test_compare_reads_a_saved_simulation_and_its_chosen_scenario(tmp_path, capsys):
    raw = small_config_dict(stations=60, registered=60_000, shares=(0.6, 0.3, 0.1), replicates=20)
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20, "published": {"a": 0.62, "b": 0.28,
                                                                                      "c": 0.10}}]
    raw["manipulation"] = [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.6,
                            "f_extreme": 0.0, "theta": 0.3, "alpha": 1.5}]
    raw["scenario"] = [{"name": "honest"}, {"name": "stuffing", "manipulations": ["stuff"]}]
    config, saved = write_config(tmp_path, raw), tmp_path / "sim.nc"
    assert main(["run", str(config), "-o", str(saved), "--quiet"]) == 0
    common = ["--json", "--ledger-points", "0", "--quiet"]
    assert main(["compare", str(config), *common]) == 0
    from_config = json.loads(capsys.readouterr().out)
    assert main(["compare", str(saved), *common]) == 0
    from_saved = json.loads(capsys.readouterr().out)
    assert from_saved["rows"] == from_config["rows"]  # the same elections: simulated again, or read back
    assert main(["compare", str(saved), "--scenario", "stuffing", *common]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert chosen["compared"] == "scenario stuffing"
    assert [entry["scenario"] for entry in chosen["scenarios"]] == ["stuffing"]
    err = one_line_error(capsys, main(["compare", str(config), "--scenario", "stuffing", *common]))
    assert err.startswith("--scenario, --point: choose within a saved simulation")


@pytest.mark.parametrize("message, expected", [
    ("x.zarr: resume: kernel differs from the partial run", "x.zarr: --resume: --kernel differs from the partial run"),
    ("x.zarr: resume: keep differs from the partial run", "x.zarr: --resume: --keep differs from the partial run"),
    ("block_size: must be at least 1, got 0", "--block-size: must be at least 1, got 0"),
    ("scheduler tcp://h:1: cannot connect: refused", "--scheduler tcp://h:1: cannot connect: refused"),
    ("x.zarr: --resume: --kernel differs", "x.zarr: --resume: --kernel differs"),
    ("tcp://h:1: no dask worker joined within 60 s", "tcp://h:1: no dask worker joined within 60 s"),
])
def test_the_command_line_names_the_engines_parameters_as_its_flags(message, expected):
    assert as_flags(message, PARAMETER_FLAGS) == expected


@pytest.mark.parametrize("value", ["keep: " + "a" * 31 + "\n" + "b", "keep: " + "a" * 30 + "\\" + "b" * 5])
def test_a_quoted_value_cut_through_an_escape_ends_its_quote(value):
    """A value cut at :data:`simkit.errors.MAX_SHOWN` just after an escape's backslash (``\\n``) left the backslash
    before ``…``, which escaped it: the quote ran on, and a parameter name in the value became a flag."""
    from simkit.errors import shown

    text = shown(value)
    assert text.endswith("…")
    message = f"leader: not an option, got {text}, seed: x"
    assert as_flags(message, PARAMETER_FLAGS) == f"--leader: not an option, got {text}, --seed: x"


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stderr, flags, shown", [(Terminal, [], True), (Terminal, ["--quiet"], False),
                                                   (io.StringIO, [], False)])
def test_compare_shows_a_progress_bar_on_a_terminal_unless_quiet(tmp_path, monkeypatch, capsys, stderr, flags,
                                                                 shown):
    raw = small_config_dict(stations=60, registered=60_000, shares=(0.6, 0.3, 0.1), replicates=10)
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20, "published": {"a": 0.62, "b": 0.28,
                                                                                      "c": 0.10}}]
    config = write_config(tmp_path, raw)
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0)
    err = stderr()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["compare", str(config), "--json", "--ledger-points", "0", *flags]) == 0
    assert ("10/10" in err.getvalue()) is shown, err.getvalue()


@pytest.mark.parametrize("stderr, flags, shown", [(Terminal, [], True), (Terminal, ["--quiet"], False),
                                                   (io.StringIO, [], False)])
def test_forensics_shows_a_bar_over_the_simulated_nulls_draws_on_a_terminal_unless_quiet(
        swept_result, monkeypatch, capsys, stderr, flags, shown):
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0)
    err = stderr()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["forensics", str(swept_result), "--scenario", "honest", "--point", "0", "--tests", "dip",
                 "--null", "simulated", "--draws", "19", "--power", "0", "--json", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["draws"] == 19  # the bar stays off stdout
    assert ("19/19" in err.getvalue()) is shown, err.getvalue()


@pytest.mark.parametrize("stderr, flags, shown", [(Terminal, [], True), (Terminal, ["--quiet"], False),
                                                   (io.StringIO, [], False)])
def test_calibrate_shows_a_bar_over_its_replicates_on_a_terminal_unless_quiet(tmp_path, monkeypatch, capsys,
                                                                              stderr, flags, shown):
    config = write_config(tmp_path, small_config_dict(stations=60, registered=60_000, replicates=3))
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0)
    err = stderr()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["calibrate", str(config), "--tests", "zero_five", "--null", "textbook", "--json",
                 "--sweep", "turnout.dispersion=0.3,0.6", *flags]) == 0
    assert [row["n"] for row in json.loads(capsys.readouterr().out)["rows"]] == [3, 3]
    # the simulation's bar counts 3 replicates, the tests' bar 6 elections (the swept dispersion changes the
    # honest election: one per replicate and sweep point)
    assert ("3/3" in err.getvalue()) is shown, err.getvalue()
    assert ("6/6" in err.getvalue()) is shown, err.getvalue()


def test_report_takes_the_overrides_and_blames_them(tmp_path, config, capsys):
    target = tmp_path / "r.html"
    err = one_line_error(capsys, main(["report", str(config), "--set", "tunout.mean=0.3", "-o", str(target),
                                       "--quiet"]))
    assert err == f"--set tunout.mean=0.3 (on {config}): tunout: unknown field"
    assert not target.exists()
    err = one_line_error(capsys, main(["report", "--preset", "russia-2011", "--sweep", "turnout.mean=0.5,0.6",
                                       "-o", str(target)]))
    assert err == "--sweep turnout.mean=0.5,0.6: overrides a config field, and no CONFIG is given"


def test_timeline_takes_set_and_refuses_a_sweep_in_one_line(repo, capsys):
    """``simkit timeline`` reads its config with the command's ``--set`` (the profile's interpolation moves with
    it); a ``--sweep`` cannot apply to the one published timeline it tests, and a typo is blamed on the flag."""
    config = repo / "configs" / "kazakhstan-2022.toml"
    base = ["timeline", str(config), "--json", "--draws", "100"]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["profile"]["interpolation"] == "linear"
    assert main([*base, "--set", 'timeline.interpolation="pchip"']) == 0
    assert json.loads(capsys.readouterr().out)["profile"]["interpolation"] == "pchip"
    err = one_line_error(capsys, main([*base, "--sweep", "turnout.mean=0.6,0.7"]))
    assert err == f"--sweep: simkit timeline tests the one published timeline of {config}: there is nothing to sweep"
    err = one_line_error(capsys, main([*base, "--set", "timelin.interpolation=1"]))
    assert err == f"--set timelin.interpolation=1 (on {config}): timelin: unknown field"
