"""The honest profile fitted to Spain 2019 reproduces Spain's national turnout at 14:00 and 18:00 and the
station-level spread of the share of the final turnout reached by then (k standard errors), and the shipped
preset is what the fitting script computes."""
from __future__ import annotations

import numpy as np
import pytest

from simkit.data import data_file
from simkit.model.timeline import dirichlet, honest_bins
from simkit.timeline.profile import load_fit
from simkit.timeline.spain import RELATIVE_PATH, fit_spain, read_spain, usable

K = 3.0  #: standard errors allowed
REPLICATES = 20

pytestmark = pytest.mark.skipif(data_file(RELATIVE_PATH) is None, reason=f"shared data {RELATIVE_PATH} absent")


@pytest.fixture(scope="module")
def spain():
    frame = read_spain()
    kept, _ = usable(frame)
    return frame, kept


def simulate(kept, fit, seed):
    """Spain's tables (their final counts, their provinces) drawn from the fitted model, R times:
    cumulative counts at 14:00 and 18:00, (replicate, station, 2)."""
    rng = np.random.default_rng(seed)
    final = kept["ballots_final"].to_numpy(np.int64)
    codes, province = np.unique(kept["region"].to_numpy(), return_inverse=True)
    out = []
    for _ in range(REPLICATES):
        regional = dirichlet(rng, np.tile(fit["bin_shares"], (len(codes), 1)), fit["kappa_region"])
        bins = honest_bins(rng, final, regional, province, fit["kappa_station"])
        out.append(np.cumsum(bins, axis=1)[:, :2])
    return np.array(out)


def test_the_shipped_fit_is_what_the_script_computes(spain):
    frame, _ = spain
    shipped = load_fit()
    fresh = fit_spain(frame, bootstrap=2)
    for key in ("bin_shares", "kappa_station", "kappa_region", "kappa_station_by_bin", "station_sd"):
        assert np.allclose(fresh[key], shipped[key], rtol=1e-12), key
    assert fresh["excluded"] == shipped["excluded"] and fresh["stations"] == shipped["stations"]


def test_fitted_profile_reproduces_national_turnouts_and_station_spread(spain):
    frame, kept = spain
    fit = load_fit()
    simulated = simulate(kept, fit, seed=2019)
    registered = kept["registered"].to_numpy().sum()
    observed = kept[["ballots_1400", "ballots_1800"]].to_numpy().sum(axis=0) / registered
    national = simulated.sum(axis=1) / registered  # (replicate, 2)
    # SE of the national share: the replicates' spread (regional draws) plus the fit's own SE of p
    se = np.sqrt(national.var(axis=0, ddof=1) + np.square(np.cumsum(fit["bin_shares_se"])[:2])
                 * (kept["ballots_final"].sum() / registered) ** 2)
    assert np.all(np.abs(national.mean(axis=0) - observed) <= K * se), (national.mean(axis=0), observed, se)
    final = kept["ballots_final"].to_numpy(float)
    spread = (simulated / final[None, :, None]).std(axis=1)  # (replicate, 2)
    se_spread = np.sqrt(spread.var(axis=0, ddof=1) + np.square(fit["station_sd_se"]))
    assert np.all(np.abs(spread.mean(axis=0) - fit["station_sd"]) <= K * se_spread), (
        spread.mean(axis=0), fit["station_sd"], se_spread)


def test_spain_in_sample_through_the_command_line(repo, capsys):
    import json

    from simkit.cli import main

    code = main(["timeline", str(data_file(RELATIVE_PATH)), "--map",
                 str(repo / "configs" / "maps" / "spain-2019-11-timeline.toml"), "--json", "--draws", "2000"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["excluded_stations"] == {"decreasing": 213}
    provinces = [row for row in out["rows"] if row["region"] not in ("all", "national")]
    assert len(provinces) == 3 * 52
    national = {row["test"]: row for row in out["rows"] if row["region"] == "national"}
    assert abs(national["front_loading"]["statistic"] - load_fit()["cumulative_share"][1]) < 0.01
