"""Manipulations inside the engine: scenarios, common random numbers and ground truth."""
import numpy as np
import pytest
import tomli_w
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simkit import ConfigError, InputError, parse_config, simulate

from conftest import small_config_dict

BLOCKS = [
    {"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.3, "f_extreme": 0.05,
     "theta": 0.2, "alpha": 2.0},
    {"name": "steal", "kind": "vote_stealing", "beneficiary": "a", "fraction": 0.1, "regions": ["south"]},
    {"name": "coerce", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.2, "compliance": 0.7,
     "loyalty": 0.9},
    {"name": "round", "kind": "protocol_fabrication", "beneficiary": "a", "round_to_percent": True,
     "station_probability": 0.5},
    {"name": "spoil", "kind": "invalidation", "beneficiary": "a", "fraction": 0.05},
]


def scenario_config(scenarios, blocks=BLOCKS, **kwargs):
    raw = small_config_dict(options=("a", "b", "c", "invalid"), shares=(0.5, 0.25, 0.2, 0.05), invalid=True,
                            **kwargs)
    raw["manipulation"] = blocks
    raw["scenario"] = scenarios
    return parse_config(tomli_w.dumps(raw))


ALL_SCENARIOS = [{"name": "honest"}] + [{"name": f"only_{b['name']}", "manipulations": [b["name"]]} for b in BLOCKS] \
    + [{"name": "everything", "manipulations": [b["name"] for b in BLOCKS]}]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), stations=st.integers(3, 40))
def test_ground_truth_reconciles_every_scenario_with_the_honest_count(seed, stations):
    ds = simulate(scenario_config(ALL_SCENARIOS, stations=stations, replicates=3), seed=seed)
    honest = ds.sel(scenario="honest", drop=True)
    for scenario in ds.scenario.values:
        at = ds.sel(scenario=scenario, drop=True)
        xr.testing.assert_equal(at["votes"] - at["manipulated_votes"], honest["votes"])
        xr.testing.assert_equal(at["ballots"] - at["added_ballots"], honest["ballots"])
        assert (at["votes"] >= 0).all() and (at["votes"].sum("option") == at["ballots"]).all()
        assert (at["ballots"] <= ds["registered"]).all()
    assert (honest["manipulated"] == 0).all() and (honest["manipulated_votes"] == 0).all()


def test_bits_name_the_blocks_that_touched_a_station():
    ds = simulate(scenario_config(ALL_SCENARIOS, stations=30, replicates=4))
    for bit, block in enumerate(BLOCKS):
        only = ds["manipulated"].sel(scenario=f"only_{block['name']}")
        assert ((only & ~(1 << bit)) == 0).all()  # no other bit set
    assert "bit 1: steal (vote_stealing)" in ds["manipulated"].attrs["bits"]
    stolen_regions = ds["region"].where(ds["manipulated"].sel(scenario="only_steal") > 0)
    assert set(np.unique(stolen_regions.values[stolen_regions.notnull().values])) <= {"south"}


def test_stations_without_voters_are_never_marked_manipulated(tmp_path):
    """A station with nobody registered (closed, or abroad) has 0 ballots whatever a block does: every block
    selecting every station marks the stations with voters and leaves those without unmarked."""
    rows = [f"{region},{0 if i % 3 == 0 else 300 + 50 * i}" for region in ("north", "south") for i in range(9)]
    (tmp_path / "stations.csv").write_text("\n".join(["region,registered", *rows]) + "\n")
    blocks = [dict(block, station_probability=1.0) for block in BLOCKS]
    blocks[0] = dict(blocks[0], f_incremental=0.95, f_extreme=0.05)  # stuffing at every selected station
    raw = scenario_config(ALL_SCENARIOS, blocks=blocks, replicates=3).raw()
    raw["electorate"] = {"source": "csv", "path": str(tmp_path / "stations.csv"), "registered_column": "registered",
                         "region_column": "region"}
    ds = simulate(parse_config(tomli_w.dumps(raw)))
    empty = (ds["registered"] == 0).values
    everything = ds["manipulated"].sel(scenario="everything").values
    assert empty.sum() == 6 and (everything[:, empty] == 0).all()
    south = (ds["region"] == "south").values
    assert (everything[:, ~empty & south] == 2 ** len(BLOCKS) - 1).all()  # every block, steal in the south only
    assert (everything[:, ~empty & ~south] == 2 ** len(BLOCKS) - 1 - 2).all()
    assert "stations with voters" in ds["manipulated"].attrs["description"]  # the output says so


def test_vote_stealing_keeps_every_total():
    ds = simulate(scenario_config(ALL_SCENARIOS, stations=30, replicates=4))
    xr.testing.assert_equal(ds["ballots"].sel(scenario="only_steal", drop=True),
                            ds["ballots"].sel(scenario="honest", drop=True))


@pytest.mark.parametrize("zero", [
    {"f_incremental": 0.0, "f_extreme": 0.0}, {"station_probability": 0.0}])
def test_a_mechanism_at_rate_zero_reproduces_the_honest_run(zero):
    blocks = [dict(BLOCKS[0], **zero)]
    ds = simulate(scenario_config([{"name": "honest"}, {"name": "zero", "manipulations": ["stuff"]}], blocks=blocks))
    xr.testing.assert_identical(ds.sel(scenario="zero", drop=True)[["votes", "ballots"]],
                                ds.sel(scenario="honest", drop=True)[["votes", "ballots"]])


def test_manipulation_strength_is_sweepable_with_common_random_numbers():
    cfg = scenario_config([{"name": "honest"}, {"name": "coercion", "manipulations": ["coerce"]}])
    raw = cfg.raw()
    raw["sweep"] = {"manipulation.coerce.share": [0.0, 0.1, 0.3]}
    ds = simulate(parse_config(tomli_w.dumps(raw)))
    honest = ds["votes"].sel(scenario="honest")
    xr.testing.assert_equal(honest.sel({"manipulation.coerce.share": 0.0}, drop=True),
                          honest.sel({"manipulation.coerce.share": 0.3}, drop=True))
    added = ds["added_ballots"].sel(scenario="coercion").sum(["replicate", "station"])
    assert added.sel({"manipulation.coerce.share": 0.0}) == 0
    assert added.sel({"manipulation.coerce.share": 0.1}) < added.sel({"manipulation.coerce.share": 0.3})


def test_scenario_overrides_apply_only_to_their_scenario():
    cfg = scenario_config([{"name": "weak", "manipulations": ["coerce"]},
                           {"name": "strong", "manipulations": ["coerce"],
                            "overrides": {"manipulation.coerce.share": 0.6}}], replicates=10)
    ds = simulate(cfg)
    added = ds["added_ballots"].sum(["replicate", "station"])
    assert added.sel(scenario="strong") > added.sel(scenario="weak")


def test_without_scenario_blocks_there_are_honest_and_manipulated():
    raw = scenario_config([]).raw()
    raw.pop("scenario")
    ds = simulate(parse_config(tomli_w.dumps(raw)), replicates=2)
    assert list(ds.scenario.values) == ["honest", "manipulated"]


@pytest.mark.parametrize("change,fragment", [
    (lambda raw: raw["manipulation"][0].update(beneficiary="zed"), "manipulation.stuff.beneficiary"),
    (lambda raw: raw["manipulation"][1].update(regions=["east"]), "manipulation.steal.regions"),
    (lambda raw: raw["scenario"].append({"name": "x", "manipulations": ["nope"]}), "scenario.x.manipulations"),
    (lambda raw: raw["scenario"].append({"name": "y", "overrides": {"turnout.mean": 0.3}}),
     "scenario.y.overrides.turnout.mean"),
    (lambda raw: raw["manipulation"][0].update(theta=-1.0), "manipulation.stuff.theta"),
    (lambda raw: raw["manipulation"][3].update(round_to_percent=False), "manipulation.round: nothing to fabricate"),
    (lambda raw: raw["manipulation"].extend(dict(BLOCKS[1], name=f"steal_{k}") for k in range(60)),
     "manipulation: at most 63 blocks (one bit each in the int64 manipulated mask), got 65"),
    (lambda raw: raw["options"].pop(), "manipulation.spoil.kind: invalidation needs an option of kind"),
    (lambda raw: (raw["options"].pop(), raw["manipulation"][1].update(from_invalid=True)),
     "manipulation.steal.from_invalid: needs an option of kind"),
    (lambda raw: raw["scenario"].append({"name": "z", "overrides": {"manipulation.steal.beneficiary": "zed"}}),
     "scenario.z.overrides: manipulation.steal.beneficiary: not an option, got 'zed'"),
    (lambda raw: raw["scenario"].append({"name": "w", "overrides": {"manipulation.steal.beneficiary": "invalid"}}),
     "scenario.w.overrides: manipulation.steal.beneficiary: the invalid column cannot benefit"),
    (lambda raw: raw["manipulation"][1].update(regions=[]),
     "manipulation.steal.regions: empty: the block would act nowhere; leave regions out for every region"),
])
def test_bad_manipulation_config_names_the_field(change, fragment):
    raw = scenario_config(ALL_SCENARIOS).raw()
    change(raw)
    with pytest.raises(ConfigError) as caught:
        parse_config(tomli_w.dumps(raw))
    assert any(fragment in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("sweep", [{"manipulation.coerce.share": [0.1, 0.3]}, {'manipulation."coerce".share': [0.1]}])
def test_a_scenario_may_not_override_a_swept_field(sweep):
    """The override would win at every sweep point: that scenario would not vary along the sweep's coordinate."""
    scenarios = [{"name": "honest"}, {"name": "fixed", "manipulations": ["coerce"],
                                      "overrides": {"manipulation.coerce.share": 0.6}}]
    with pytest.raises(ConfigError) as caught:
        scenario_config(scenarios, sweep=sweep)
    assert caught.value.problems == ["<config>: scenario.fixed.overrides.manipulation.coerce.share: the field is swept "
                                     "([sweep] or --sweep): the override would hold it at every sweep point; sweep it "
                                     "or override it, not both"]


@pytest.mark.parametrize("override", ["manipulation.coerce", 'manipulation."coerce"', "manipulation"])
def test_a_scenario_may_not_override_a_block_or_table_holding_a_swept_field(override):
    """A block or table above a swept field holds it too: refused in the same line, naming the swept field."""
    scenarios = [{"name": "honest"}, {"name": "fixed", "manipulations": ["coerce"], "overrides": {override: 0.6}}]
    with pytest.raises(ConfigError) as caught:
        scenario_config(scenarios, sweep={"manipulation.coerce.share": [0.1, 0.3]})
    assert caught.value.problems == [f"<config>: scenario.fixed.overrides.{override}: it holds the swept field "
                                     "manipulation.coerce.share ([sweep] or --sweep): the override would hold it at "
                                     "every sweep point; sweep it or override it, not both"]


@pytest.mark.parametrize("sweep", ["manipulation.coerce", "manipulation"])
def test_a_swept_block_or_table_is_refused_whatever_a_scenario_overrides_inside_it(sweep):
    """The reverse: only a number can be swept, so a sweep never holds an overridden field; a block or table swept
    is refused as not numeric, and the override inside it stands."""
    scenarios = [{"name": "honest"}, {"name": "fixed", "manipulations": ["coerce"],
                                      "overrides": {"manipulation.coerce.share": 0.6}}]
    with pytest.raises(ConfigError) as caught:
        scenario_config(scenarios, sweep={sweep: [0.1, 0.3]})
    assert caught.value.problems == [f"<config>: sweep.{sweep}: not a numeric field"]


def test_scenarios_config_validates(repo):
    from simkit import load_config
    cfg = load_config(repo / "configs" / "kazakhstan-2022-scenarios.toml")
    assert [s.name for s in cfg.scenarios()][:2] == ["honest", "coercion"]
    assert cfg.electorate.stations == 10_101  # inherited through `extends`


def test_exit_polls_interview_voters_not_stuffed_ballots():
    """`voter_votes` keeps coercion (real voters) but not stuffing (no voter behind a stuffed ballot)."""
    blocks = [BLOCKS[2], BLOCKS[0]]  # coercion, then stuffing
    cfg = scenario_config([{"name": "honest"}, {"name": "both", "manipulations": ["coerce", "stuff"]},
                           {"name": "coerced", "manipulations": ["coerce"]}], blocks=blocks, replicates=3)
    ds = simulate(cfg)
    xr.testing.assert_equal(ds["voter_votes"].sel(scenario="both", drop=True),
                            ds["votes"].sel(scenario="coerced", drop=True))
    xr.testing.assert_equal(ds["voter_votes"].sel(scenario="honest", drop=True),
                            ds["votes"].sel(scenario="honest", drop=True))
    assert (ds["votes"].sel(scenario="both") != ds["voter_votes"].sel(scenario="both")).any()


@pytest.mark.parametrize("change, field", [
    (lambda raw: raw["manipulation"][0].update(regions=["Zurich Nord"]), "manipulation.steal.regions"),
    (lambda raw: raw["turnout"].update(regional_mean={"Zurich Nord": 0.5}), "turnout.regional_mean.Zurich Nord"),
    (lambda raw: raw.update(observed={"regional_turnout": {"Zurich Nord": 0.5}}),
     "observed.regional_turnout.Zurich Nord"),
])
def test_a_region_the_electorate_file_does_not_have_is_refused(tmp_path, change, field):
    """A synthetic electorate's regions are in the config and checked with it; an electorate file's are known once
    it is read: a misspelt one (no umlaut) would otherwise turn out at the national mean, or be manipulated nowhere."""
    raw = _csv_regions_config(tmp_path)
    change(raw)
    (tmp_path / "c.toml").write_text(tomli_w.dumps(raw), encoding="utf-8")
    from simkit import load_config
    with pytest.raises(InputError) as caught:
        simulate(load_config(tmp_path / "c.toml"), replicates=1)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'stations.csv'}: {field}: ") and message.endswith(
        "not a region of the electorate (the file's 2 regions: 'Zürich Nord', 'Île-de-France')"), message


def _csv_regions_config(tmp_path) -> dict:
    """The scenario config on an electorate file of 8 stations in "Île-de-France" and "Zürich Nord"."""
    rows = [f"s{k},{400 + 10 * k},{'Île-de-France' if k % 2 else 'Zürich Nord'}" for k in range(8)]
    (tmp_path / "stations.csv").write_text("station,registered,region\n" + "\n".join(rows) + "\n", encoding="utf-8")
    raw = scenario_config([{"name": "steal", "manipulations": ["steal"]}]).raw()
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region", "station_column": "station"}
    raw["manipulation"] = [dict(BLOCKS[1], regions=["Zürich Nord"], fraction=0.5)]
    return raw


def test_a_manipulation_acts_in_a_csv_region_whose_name_is_free_text(tmp_path):
    """An electorate file names its regions as it likes ("Île-de-France", "Zürich Nord"): a block's regions
    take those names as written, as turnout.regional_mean does, and act there only."""
    raw = _csv_regions_config(tmp_path)
    (tmp_path / "c.toml").write_text(tomli_w.dumps(raw), encoding="utf-8")
    from simkit import load_config
    ds = simulate(load_config(tmp_path / "c.toml"), replicates=2)
    touched = (ds["manipulated"].sel(scenario="steal") > 0).any("replicate")
    assert touched.any() and set(ds["region"].values[touched.values]) == {"Zürich Nord"}


def test_a_refusal_lists_a_bounded_number_of_the_files_regions(tmp_path):
    """An electorate file may have thousands of regions: the refusal lists the first few, quoted, and their count."""
    from simkit.config.regions import check_regions
    from simkit.errors import MAX_LISTED
    from simkit import load_config
    raw = _csv_regions_config(tmp_path)
    raw["turnout"]["regional_mean"] = {"Zurich Nord": 0.6}
    (tmp_path / "c.toml").write_text(tomli_w.dumps(raw), encoding="utf-8")
    names = tuple(f"region {k}, east" for k in range(3 * MAX_LISTED))
    with pytest.raises(InputError) as caught:
        check_regions(load_config(tmp_path / "c.toml"), names)
    message = str(caught.value)
    assert f"(the file's {len(names)} regions: 'region 0, east', " in message, message
    assert message.endswith(f"'region {MAX_LISTED - 1}, east', and {2 * MAX_LISTED} more)"), message
