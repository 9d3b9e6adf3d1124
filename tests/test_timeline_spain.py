"""The honest profile fitted to Spain 2019 reproduces Spain's national turnout at 14:00 and 18:00 and the
station-level spread of the share of the final turnout reached by then (k standard errors), and the shipped
preset is what the fitting script computes."""
from __future__ import annotations

import numpy as np
import pytest

from simkit.data import data_file
from simkit.timeline.profile import load_fit
from simkit.timeline.spain import RELATIVE_PATH, fit_spain, read_spain, reproduction, usable

K = 3.0  #: standard errors allowed
REPLICATES = 20

pytestmark = pytest.mark.skipif(data_file(RELATIVE_PATH) is None, reason=f"shared data {RELATIVE_PATH} absent")


@pytest.fixture(scope="module")
def spain():
    frame = read_spain()
    kept, _ = usable(frame)
    return frame, kept


def test_the_shipped_fit_is_what_the_script_computes(spain):
    frame, _ = spain
    shipped = load_fit()
    fresh = fit_spain(frame, bootstrap=2)
    for key in ("bin_shares", "kappa_station", "kappa_region", "kappa_station_by_bin", "station_sd"):
        assert np.allclose(fresh[key], shipped[key], rtol=1e-12), key
    assert fresh["excluded"] == shipped["excluded"] and fresh["stations"] == shipped["stations"]


def test_fitted_profile_reproduces_national_turnouts_and_station_spread(spain):
    _, kept = spain
    fit = load_fit()
    result = reproduction(kept, fit, replicates=REPLICATES)
    # SE of the national share: the replicates' spread (regional draws) plus the fit's own SE of p
    scale = kept["ballots_final"].sum() / kept["registered"].sum()
    se = np.sqrt(result["simulated_sd"] ** 2 + np.square(np.cumsum(fit["bin_shares_se"])[:2] * scale))
    assert np.all(np.abs(result["simulated"] - result["observed"]) <= K * se), result
    se_spread = np.sqrt(result["spread_sd"] ** 2 + np.square(fit["station_sd_se"]))
    assert np.all(np.abs(result["spread"] - fit["station_sd"]) <= K * se_spread), result


def test_spain_in_sample_through_the_command_line(repo, capsys):
    import json

    from simkit.cli.main import main

    code = main(["timeline", str(data_file(RELATIVE_PATH)), "--map",
                 str(repo / "configs" / "maps" / "spain-2019-11-timeline.toml"), "--json", "--draws", "2000",
                 "--station-draws", "20"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["excluded_stations"] == {"decreasing": 213}
    provinces = [row for row in out["rows"] if row["region"] not in ("all", "national") and "calibration" not in row]
    assert len(provinces) == 3 * 52
    station = [row for row in out["rows"] if row["test"].startswith("station_")]
    assert len(station) == 2 * 52 and all(row["calibration"].startswith("uncalibrated") for row in station)
    national = {row["test"]: row for row in out["rows"] if row["region"] == "national"}
    assert abs(national["front_loading"]["statistic"] - load_fit()["cumulative_share"][1]) < 0.01
