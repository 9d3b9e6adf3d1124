"""The flagship config reproduces the figures it was calibrated to (Kazakhstan 2022, FACTS.md §1)."""
import numpy as np
import pytest

from simkit import load_config, simulate
from simkit.engine.summary import national_shares, official_figures

REPLICATES = 100


@pytest.fixture(scope="module")
def flagship(repo_root=None):
    from conftest import REPO
    cfg = load_config(REPO / "configs" / "kazakhstan-2022.toml")
    return cfg, simulate(cfg, replicates=REPLICATES, seed=7).sel(scenario="honest")


def test_national_turnout_and_shares_within_02_points(flagship):
    cfg, ds = flagship
    shares = national_shares(ds, cfg)
    official = official_figures(cfg)
    assert abs(float(shares["turnout"].mean()) - official["turnout"]) < 0.2
    for option in cfg.option_names:
        simulated = float(shares["share"].sel(option=option).mean())
        assert abs(simulated - official[option]) < 0.2, (option, simulated, official[option])


def test_regional_turnouts_within_one_point(flagship):
    cfg, ds = flagship
    turnout = 100 * ds["region_ballots"].mean("replicate") / ds["region_registered"]
    for region, published in cfg.observed.regional_turnout.items():
        assert abs(float(turnout.sel(region_name=region)) - 100 * published) < 1.0, region


def test_station_turnout_varies_as_much_as_the_published_regions(flagship):
    """Published regional turnouts range from 28.72% to 81.42%: stations must cover at least that range,
    and vary more than regions do (stations within a region differ too)."""
    cfg, ds = flagship
    station_turnout = (ds["ballots"].isel(replicate=0) / ds["registered"]).values
    low, high = np.quantile(station_turnout, [0.05, 0.95])
    regional = np.array(list(cfg.observed.regional_turnout.values()))
    assert low < regional.min() and high > regional.max()
    assert station_turnout.std() > regional.std()


def test_register_and_stations_match_the_facts(flagship):
    _, ds = flagship
    assert int(ds["registered"].sum()) == 11_953_465
    assert ds.sizes["station"] == 10_101
    assert int((ds["region"] == "abroad").sum()) == 68
    assert int(ds["region_registered"].sel(region_name="abroad")) == 12_841
