"""Voting through the day in the engine: exact cumulative counts, manipulation traces in time, and the
existing variables unchanged bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from simkit.engine import run as engine
from simkit.config.load import parse_config
from simkit.config.messages import ConfigError
from simkit.engine.timeline import arrival_shares
from simkit.model.timeline import cumulative, honest_bins, parse_clock, split_counts, window_shares
from tests.conftest import small_config_dict

TIMELINE = {"opening": "07:00", "closing": "20:00", "reports": ["10:00", "12:00", "14:00", "18:00"]}


def config(timeline=True, manipulation=None, arrival=None, **kwargs):
    raw = small_config_dict(stations=40, registered=40000, **kwargs)
    if timeline:
        raw["timeline"] = dict(TIMELINE, **({"arrival": arrival} if arrival else {}))
    if manipulation:
        raw["manipulation"] = manipulation
    return parse_config(tomli_w.dumps(raw))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=30), st.integers(0, 2**32 - 1),
       st.floats(0.5, 500.0))
def test_honest_bins_are_exact_non_decreasing_and_end_at_the_ballots(ballots, seed, kappa):
    ballots = np.array(ballots, np.int64)
    rng = np.random.default_rng(seed)
    profiles = np.array([[0.3, 0.2, 0.4, 0.1], [0.0, 0.5, 0.25, 0.25]])
    region = rng.integers(0, 2, ballots.size)
    bins = honest_bins(rng, ballots, profiles, region, kappa)
    assert bins.dtype == np.int64 and (bins >= 0).all()
    timeline = cumulative(bins)
    assert (np.diff(timeline, axis=1) >= 0).all()
    assert np.array_equal(timeline[:, -1], ballots)
    assert (bins[region == 1, 0] == 0).all()  # a bin of mean share 0 receives nobody


def test_split_counts_has_the_multinomial_mean():
    rng = np.random.default_rng(5)
    shares = np.array([0.1, 0.6, 0.3])
    bins = split_counts(rng, np.full(20000, 100), shares)
    # mean of 20000 multinomial(100) draws: SE sqrt(100 p (1-p) / 20000) < 0.035; 5 SE
    assert np.abs(bins.mean(axis=0) - 100 * shares).max() < 5 * np.sqrt(100 * 0.24 / 20000)


def test_window_shares_spread_a_window_uniformly_over_the_bins():
    edges = np.array([420, 600, 720, 840, 1080, 1200], float)
    assert np.allclose(window_shares(edges, 420, 720), [0.6, 0.4, 0, 0, 0])
    assert np.allclose(window_shares(edges, 1080, 1200), [0, 0, 0, 0, 1])
    assert window_shares(edges, 700, 700)[1] == 1.0


def test_existing_variables_are_bit_identical_with_and_without_a_timeline():
    manipulation = [{"name": "coerce", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.2,
                     "compliance": 0.8, "loyalty": 0.9}]
    without = engine.simulate(config(False, manipulation), workers=1)
    with_ = engine.simulate(config(True, manipulation), workers=1)
    assert "timeline_ballots" not in without and "timeline_ballots" in with_
    for name in without.data_vars:
        assert np.array_equal(without[name].values, with_[name].values), name


def test_engine_timelines_end_at_the_counts_and_record_added_ballots_by_time():
    manipulation = [
        {"name": "coerce", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.3, "compliance": 0.9,
         "loyalty": 0.9},
        {"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.5, "f_extreme": 0.0,
         "theta": 0.1, "alpha": 1.0},
        {"name": "fabricate", "kind": "protocol_fabrication", "beneficiary": "a", "target_turnout": 0.95,
         "station_probability": 0.3}]
    ds = engine.simulate(config(True, manipulation), workers=1)
    timeline = ds["station_timeline_ballots"].values
    assert list(ds["report_time"].values) == ["10:00", "12:00", "14:00", "18:00", "20:00"]
    assert np.array_equal(timeline[..., -1], ds["ballots"].values)
    regional = ds["timeline_ballots"].values
    assert np.array_equal(regional[..., -1], ds["region_ballots"].values)
    added = ds["timeline_added_ballots"].values
    assert np.array_equal(added[..., -1], ds["added_ballots"].values)
    honest = ds.sel(scenario="honest")
    assert (np.diff(honest["station_timeline_ballots"].values, axis=-1) >= 0).all()
    assert (honest["timeline_added_ballots"].values == 0).all()


def per_block_added(manipulation, arrival=None):
    ds = engine.simulate(config(True, manipulation, arrival), workers=1).sel(scenario="manipulated")
    return ds["timeline_added_ballots"].values, ds["added_ballots"].values


def test_coerced_voters_arrive_in_the_morning_and_stuffing_late_by_default():
    coerce = [{"name": "coerce", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.3, "compliance": 0.9,
               "loyalty": 0.9}]
    added, total = per_block_added(coerce)
    assert total.sum() > 0
    assert np.array_equal(added[..., 1], total)  # all arrived by 12:00 (default window 07:00-12:00)
    stuff = [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.5,
              "f_extreme": 0.0, "theta": 0.1, "alpha": 1.0}]
    added, total = per_block_added(stuff)
    assert total.sum() > 0 and (added[..., 3] == 0).all()  # default window 18:00-20:00: after the 18:00 report
    added, total = per_block_added(stuff, {"stuff": {"start": "10:00", "end": "12:00"}})
    assert (added[..., 0] == 0).all() and np.array_equal(added[..., 1], total)


def test_fabrication_changes_only_the_final_report():
    fabricate = [{"name": "fabricate", "kind": "protocol_fabrication", "beneficiary": "a", "target_turnout": 0.2}]
    ds = engine.simulate(config(True, fabricate), workers=1)
    honest, fabricated = (ds["station_timeline_ballots"].sel(scenario=s).values for s in ("honest", "manipulated"))
    assert np.array_equal(honest[..., :-1], fabricated[..., :-1])
    assert (fabricated[..., -1] < fabricated[..., -2]).any()  # lowered turnout shows as a fall at the close


def test_arrival_defaults_by_kind():
    edges = np.array([parse_clock(t) for t in ("07:00", "10:00", "12:00", "14:00", "18:00", "20:00")], float)
    assert np.allclose(arrival_shares(None, "coerced_turnout", edges), [0.6, 0.4, 0, 0, 0])
    assert np.allclose(arrival_shares(None, "ballot_stuffing", edges), [0, 0, 0, 0, 1])
    assert np.allclose(arrival_shares(None, "protocol_fabrication", edges), [0, 0, 0, 0, 1])


@pytest.mark.parametrize("timeline, message", [
    ({"reports": ["12:00", "10:00"]}, "timeline.reports: reporting times must increase"),
    ({"reports": ["06:00"]}, "timeline.reports: 06:00 is outside the opening hours"),
    ({"regional": {"nowhere": [0.1, 0.2, 0.3, 0.9]}}, "timeline.regional.nowhere: not a region"),
    ({"arrival": {"nobody": {"when": "final"}}}, "timeline.arrival.nobody: not a [[manipulation]] block"),
])
def test_bad_timeline_configs_name_the_field(timeline, message):
    raw = small_config_dict()
    raw["timeline"] = dict(TIMELINE, **timeline)
    with pytest.raises(ConfigError) as error:
        parse_config(tomli_w.dumps(raw))
    assert message in str(error.value)


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_timeline_round_trips_through_saved_results(tmp_path, suffix):
    from simkit import io

    ds = engine.simulate(config(True), workers=1)
    io.write_dataset(ds, tmp_path / f"result{suffix}")
    back = io.open_result(tmp_path / f"result{suffix}")
    assert list(back["report_time"].values) == list(ds["report_time"].values)
    assert np.array_equal(back["timeline_ballots"].values, ds["timeline_ballots"].values)
