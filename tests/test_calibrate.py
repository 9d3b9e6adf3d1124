"""``simkit calibrate``: size under honest simulations, power under a planted mechanism."""
import json

import tomli_w

from simkit import parse_config
from simkit.calibrate import calibration_table
from simkit.cli import main

from conftest import small_config_dict


def stuffing_config(replicates=12):
    raw = small_config_dict(stations=400, registered=400_000, replicates=replicates, seed=4,
                            turnout_dispersion=0.3, preference_dispersion=60.0)
    raw["manipulation"] = [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.6,
                            "f_extreme": 0.0, "theta": 0.3, "alpha": 1.5}]
    raw["scenario"] = [{"name": "honest"}, {"name": "stuffing", "manipulations": ["stuff"]}]
    return raw


def test_power_against_heavy_stuffing_exceeds_the_size():
    """Incremental stuffing moves turnout and the leader's share together: the turnout-share correlation test
    must reject in most manipulated replicates (power) and rarely in honest ones (size ≈ 0.05; with 12
    replicates, 4 rejections has binomial probability < 0.003 at a true size of 0.05)."""
    rows = calibration_table(parse_config(tomli_w.dumps(stuffing_config())), tests=["correlation"],
                             nulls=("textbook",), seed=1)
    rate = {row["mechanism"]: row["rejection_rate"] for row in rows}
    assert rate["none"] <= 3 / 12
    assert rate["stuffing"] >= 0.75
    assert all(row["n"] == 12 for row in rows)
    assert next(r for r in rows if r["mechanism"] == "stuffing")["strength"].startswith("stuff: ")


def test_cli_json_rows(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(stuffing_config(replicates=3)))
    assert main(["calibrate", str(path), "--tests", "zero_five", "--null", "textbook", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["mechanism"] for row in rows} == {"none", "stuffing"}
    assert set(rows[0]) >= {"test", "null", "mechanism", "strength", "rejection_rate", "n"}


def test_cli_unknown_test_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(stuffing_config(replicates=2)))
    assert main(["calibrate", str(path), "--tests", "nope"]) == 2
    assert "--tests: unknown test id nope" in capsys.readouterr().err
