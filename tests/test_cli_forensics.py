"""``simkit forensics``: table, JSON, result Dataset, plot, and one-line input errors."""
from __future__ import annotations

import json

import pytest
import xarray as xr

from forensics_helpers import honest_dataset
from simkit.cli import main

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
    (["--tests", "nope"], "--tests: nope: unknown test id nope"),
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
