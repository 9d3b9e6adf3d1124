"""Coarsening a simulated election to what a source publishes: regional totals, or a sample of stations."""
import numpy as np
import pytest
import tomli_w

from simkit.engine import aggregation
from simkit import parse_config, simulate
from simkit.forensics.calibrate import calibration_table

from conftest import small_config_dict


@pytest.fixture(scope="module")
def election():
    cfg = parse_config(tomli_w.dumps(small_config_dict(stations=300, registered=300_000, replicates=1)))
    return simulate(cfg, keep="full").isel(replicate=0, scenario=0)


def test_regional_totals_sum_every_station_of_the_region(election):
    regions = aggregation.coarsen(election, "region")
    names = np.asarray(election["region"].values).astype(str)
    assert list(regions.station.values) == sorted(set(names))
    for name in regions.station.values:
        at = names == name
        assert int(regions.registered.sel(station=name)) == int(election.registered.values[at].sum())
        np.testing.assert_array_equal(regions.votes.sel(station=name).values, election.votes.values[at].sum(axis=0))
    assert regions.votes.dtype == np.int64 and int(regions.ballots.sum()) == int(election.ballots.sum())


def test_sample_draws_distinct_stations_reproducibly(election):
    first = aggregation.coarsen(election, "sample:50", np.random.default_rng(3))
    again = aggregation.coarsen(election, "sample:50", np.random.default_rng(3))
    assert first.sizes["station"] == 50 == len(set(first.station.values.tolist()))
    np.testing.assert_array_equal(first.votes.values, again.votes.values)
    with pytest.raises(ValueError, match="only 300 stations"):
        aggregation.coarsen(election, "sample:301", np.random.default_rng(3))


@pytest.mark.parametrize("text", ["regions", "sample:0", "sample:x", "sample"])
def test_bad_aggregation_is_a_clear_error(text):
    with pytest.raises(ValueError, match="must be station, region or sample:N"):
        aggregation.parse(text)


def test_calibration_on_regional_totals_marks_tests_that_cannot_run():
    """On 4 regional units the Klimek fits cannot run: n/a (None, n = 0), not a rejection; the cheap digit test
    (4 units x 3 candidates: enough counts) runs on each of the 3 replicates."""
    regions = (("north", 0.25), ("south", 0.25), ("east", 0.25), ("west", 0.25))
    cfg = parse_config(tomli_w.dumps(small_config_dict(stations=300, registered=300_000, replicates=3,
                                                       regions=regions)))
    rows = calibration_table(cfg, tests=["zero_five", "klimek"], nulls=("textbook",), draws=9,
                             aggregate="region")
    by_test = {row["test"]: row for row in rows}
    assert {row["aggregate"] for row in rows} == {"region"}
    assert by_test["zero_five"]["n"] == 3
    assert by_test["klimek"]["n"] == 0 and by_test["klimek"]["rejection_rate"] is None
