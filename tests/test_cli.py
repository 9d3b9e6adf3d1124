"""The command line end to end: runs, summaries, and bad input (one line, exit 2, nothing written)."""
import subprocess
import sys

import numpy as np
import pytest
import tomli_w

from simkit.cli.main import main

from conftest import small_config_dict


def write_config(tmp_path, raw, name="x.toml"):
    path = tmp_path / name
    path.write_text(tomli_w.dumps(raw))
    return path


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "simkit.cli.main", *map(str, args)], capture_output=True,
                          text=True)


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_run_writes_a_result_and_summary_reads_it(tmp_path, capsys, suffix):
    config = write_config(tmp_path, small_config_dict())
    out = tmp_path / f"result{suffix}"
    assert main(["run", str(config), "-o", str(out), "--replicates", "7", "--seed", "3"]) == 0
    assert "turnout" in capsys.readouterr().out
    assert main(["summary", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "7 replicates, seed 3" in printed


def test_one_station_and_one_replicate_are_counted_in_the_singular(tmp_path, capsys):
    config = write_config(tmp_path, small_config_dict(stations=1, regions=(("north", 1.0),)))
    assert main(["validate", str(config)]) == 0
    assert "ok (1 station, 6,000 registered" in capsys.readouterr().out
    assert main(["run", str(config), "-o", str(tmp_path / "r.nc"), "--replicates", "1", "--quiet"]) == 0
    assert main(["summary", str(tmp_path / "r.nc")]) == 0
    assert "test: 1 replicate, seed 1, 1 station, 6,000 registered" in capsys.readouterr().out


def test_run_set_overrides_a_field(tmp_path, capsys):
    import simkit
    config = write_config(tmp_path, small_config_dict())
    out = tmp_path / "r.nc"
    assert main(["run", str(config), "-o", str(out), "--set", "turnout.mean=0.3", "--quiet"]) == 0
    assert simkit.parse_config(simkit.open_result(out).attrs["simkit_config"]).turnout.mean == 0.3


def assert_bad_input(result, out, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))


def test_typo_key(tmp_path):
    raw = small_config_dict()
    raw["turnout"]["dispersoin"] = 0.3
    config, out = write_config(tmp_path, raw), tmp_path / "o.zarr"
    assert_bad_input(run_cli("run", config, "-o", out), out, "x.toml", "turnout.dispersoin", "unknown field")


def test_share_outside_range(tmp_path):
    config = write_config(tmp_path, small_config_dict(shares=(1.3, 0.3, 0.2)))
    out = tmp_path / "o.zarr"
    assert_bad_input(run_cli("run", config, "-o", out), out,
                     "x.toml: preferences.shares.a: must be between 0 and 1, got 1.3")


def test_shares_not_summing_to_one(tmp_path):
    config, out = write_config(tmp_path, small_config_dict(shares=(0.5, 0.3, 0.3))), tmp_path / "o.nc"
    assert_bad_input(run_cli("run", config, "-o", out), out, "preferences.shares: must sum to 1")


def test_missing_config_file(tmp_path):
    out = tmp_path / "o.zarr"
    assert_bad_input(run_cli("run", tmp_path / "absent.toml", "-o", out), out, "absent.toml: file not found")


def test_unreadable_csv_electorate(tmp_path):
    raw = small_config_dict()
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered"}
    (tmp_path / "stations.csv").write_text("id,registered\n1,500\n2,abc\n")
    config, out = write_config(tmp_path, raw), tmp_path / "o.zarr"
    assert_bad_input(run_cli("run", config, "-o", out), out, "stations.csv", "registered_column", "row 3")


def test_missing_csv_electorate(tmp_path):
    raw = small_config_dict()
    raw["electorate"] = {"source": "csv", "path": "nowhere.csv", "registered_column": "registered"}
    config, out = write_config(tmp_path, raw), tmp_path / "o.zarr"
    assert_bad_input(run_cli("run", config, "-o", out), out, "nowhere.csv", "file not found")


def test_bad_output_extension(tmp_path):
    config, out = write_config(tmp_path, small_config_dict()), tmp_path / "o.csv"
    assert_bad_input(run_cli("run", config, "-o", out), out, "extension must be .zarr or .nc")


def test_validate_lists_every_problem(tmp_path):
    raw = small_config_dict(shares=(1.3, 0.3, 0.2))
    raw["turnout"]["dispersoin"] = 0.3
    raw["run"]["replicates"] = 0
    result = run_cli("validate", write_config(tmp_path, raw))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 3 and all(line.startswith(str(tmp_path / "x.toml")) for line in lines)


def test_csv_electorate_runs(tmp_path, capsys):
    raw = small_config_dict()
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region"}
    (tmp_path / "stations.csv").write_text("region,registered\nnorth,500\nsouth,800\nsouth,300\n")
    assert main(["run", str(write_config(tmp_path, raw)), "--replicates", "3", "--quiet"]) == 0


def test_a_csv_electorate_runs_with_stations_of_no_voters(tmp_path):
    """A register lists stations of 0 voters (closed, or abroad with nobody registered), even a whole region of
    them: they run, drawing no ballots, and every count stays consistent."""
    import simkit

    raw = small_config_dict()
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region"}
    (tmp_path / "stations.csv").write_text("region,registered\nnorth,500\nnorth,0\nsouth,800\nsouth,300\n"
                                           "abroad,0\n")
    out = tmp_path / "o.zarr"
    assert main(["run", str(write_config(tmp_path, raw)), "--replicates", "3", "--quiet", "-o", str(out)]) == 0
    ds = simkit.open_result(out)
    empty = ds["registered"].values == 0
    assert empty.sum() == 2
    assert (ds["ballots"].values[..., empty] == 0).all()
    assert (ds["votes"].sum("option") == ds["ballots"]).all() and (ds["ballots"] <= ds["registered"]).all()
    assert (ds["region_ballots"].sel(region_name="abroad") == 0).all()
    # the forensic tests read the stations with ballots only: no turnout or share of 0 / 0
    from simkit.forensics.core import election
    e = election(ds)
    assert e.excluded["no ballots"] >= 2 and np.isfinite(e.turnout).all() and np.isfinite(e.leader_share).all()


def test_failed_run_keeps_the_previous_result(tmp_path, monkeypatch):
    """Atomic output: an error mid-run leaves the old result untouched and no staging files."""
    from simkit.engine import run as engine
    config = write_config(tmp_path, small_config_dict())
    out = tmp_path / "o.zarr"
    assert main(["run", str(config), "-o", str(out), "--quiet"]) == 0
    before = sorted(p.name for p in out.rglob("*"))

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(engine, "block_dataset", boom)
    with pytest.raises(RuntimeError):
        main(["run", str(config), "-o", str(out), "--quiet", "--overwrite"])
    assert sorted(p.name for p in out.rglob("*")) == before
    assert not list(tmp_path.glob(".o.zarr*"))


def test_rerunning_a_saved_result_reproduces_it(tmp_path):
    import xarray as xr
    import simkit
    config = write_config(tmp_path, small_config_dict())
    first, second = tmp_path / "first.zarr", tmp_path / "second.zarr"
    assert main(["run", str(config), "-o", str(first), "--seed", "5", "--replicates", "4", "--quiet"]) == 0
    assert main(["run", str(first), "-o", str(second), "--quiet"]) == 0
    a, b = simkit.open_result(first), simkit.open_result(second)
    xr.testing.assert_identical(a.drop_attrs().load(), b.drop_attrs().load())
    assert a.attrs["simkit_config_sha256"] == b.attrs["simkit_config_sha256"]


def test_rerunning_a_numpy_kernel_result_uses_its_kernel(tmp_path):
    """A result drawn by the numpy reference path (e.g. before the numba kernel became the default) reruns
    with the kernel recorded in its attrs, so it is reproduced bit for bit."""
    import xarray as xr
    import simkit
    config = write_config(tmp_path, small_config_dict())
    first, second = tmp_path / "first.zarr", tmp_path / "second.zarr"
    assert main(["run", str(config), "-o", str(first), "--replicates", "3", "--kernel", "numpy", "--quiet"]) == 0
    assert main(["run", str(first), "-o", str(second), "--quiet"]) == 0
    a, b = simkit.open_result(first), simkit.open_result(second)
    assert a.attrs["kernel"] == b.attrs["kernel"] == "numpy"
    xr.testing.assert_identical(a.drop_attrs().load(), b.drop_attrs().load())


def test_bad_run_option_is_one_line(tmp_path):
    config, out = write_config(tmp_path, small_config_dict()), tmp_path / "o.zarr"
    assert_bad_input(run_cli("run", config, "-o", out, "--replicates", "0"), out,
                     "--replicates 0: Input should be greater than or equal to 1")
