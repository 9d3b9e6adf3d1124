"""Config validation: every problem named by its dotted path, blocks by name."""
import pytest
import tomli_w

from simkit.config.core import Config
from simkit.config.load import load_config, parse_config
from simkit.config.messages import ConfigError
from simkit.paths import get_path, join_path, set_path, split_path

from conftest import small_config_dict


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(tomli_w.dumps(raw), source="x.toml")
    return caught.value.problems


def test_small_config_is_valid():
    cfg = parse_config(tomli_w.dumps(small_config_dict()))
    assert cfg.option_names == ["a", "b", "c"]
    assert cfg.leader == "a"


def test_the_valid_options_are_all_but_the_invalid_one():
    raw = small_config_dict()
    cfg = Config.model_validate(raw)
    assert (cfg.valid_option_names, cfg.invalid_option_name) == (["a", "b", "c"], None)
    raw["options"][1]["kind"] = "invalid"
    cfg = Config.model_validate(raw)
    assert (cfg.valid_option_names, cfg.invalid_option_name) == (["a", "c"], "b")


@pytest.mark.parametrize("observed, expected", [
    ({"ballots": 3600, "votes": {"a": 3000, "b": 1080, "c": 720}},
     "x.toml: observed.votes: sum to 4,800, more than observed.ballots (3,600)"),
    ({"registered": 4000, "votes": {"a": 3000, "b": 1080, "c": 720}},
     "x.toml: observed.votes: sum to 4,800, more than observed.registered (4,000)"),
    ({"votes": {"a": 0, "b": 0, "c": 0}},
     "x.toml: observed.votes: every valid option has 0 votes: there are no official shares"),
])
def test_an_impossible_official_count_is_named(observed, expected):
    """Votes above the ballots (or the register) were accepted; a count without a valid vote stopped compare on
    a division by zero."""
    raw = small_config_dict()
    raw["observed"] = observed
    assert problems_of(raw) == [expected]


def test_an_official_count_within_its_ballots_is_valid():
    raw = small_config_dict()
    raw["observed"] = {"registered": 6000, "ballots": 3600, "votes": {"a": 1800, "b": 1080, "c": 700}}
    parse_config(tomli_w.dumps(raw))


def test_share_outside_unit_interval_is_named():
    raw = small_config_dict(shares=(1.3, 0.3, 0.2))
    assert "x.toml: preferences.shares.a: must be between 0 and 1, got 1.3" in problems_of(raw)


def test_shares_must_sum_to_one():
    problems = problems_of(small_config_dict(shares=(0.5, 0.3, 0.3)))
    assert any(p.startswith("x.toml: preferences.shares: must sum to 1") for p in problems)


def test_typo_key_is_rejected_with_its_path():
    raw = small_config_dict()
    raw["turnout"]["dispersoin"] = 0.3
    assert "x.toml: turnout.dispersoin: unknown field" in problems_of(raw)


def test_block_errors_name_the_block_not_its_position():
    raw = small_config_dict()
    raw["options"][1]["colour"] = "red"
    assert "x.toml: options.b.colour: unknown field" in problems_of(raw)


def test_every_problem_is_reported():
    raw = small_config_dict(shares=(1.3, 0.3, 0.2))
    raw["turnout"]["dispersoin"] = 0.3
    raw["run"]["replicates"] = 0
    assert len(problems_of(raw)) >= 3


def test_sweep_path_must_exist_and_be_numeric():
    problems = problems_of(small_config_dict(sweep={"turnout.nope": [1.0], "turnout.model": [1.0]}))
    assert any("turnout.nope" in p and "no such field" in p for p in problems)
    assert any("turnout.model: not a numeric field" in p for p in problems)


def test_sweep_values_are_validated():
    problems = problems_of(small_config_dict(sweep={"turnout.mean": [0.5, 1.5]}))
    assert any("sweep.turnout.mean=1.5" in p and "between 0 and 1" in p for p in problems)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_resolved_config_round_trips():
    cfg = parse_config(tomli_w.dumps(small_config_dict(sweep={"turnout.dispersion": [0.2, 0.4]})))
    assert parse_config(cfg.to_toml()) == cfg


def test_paths_address_blocks_by_name():
    raw = small_config_dict()
    assert get_path(raw, "options.b") == {"name": "b"}
    changed = set_path(raw, "options.b.label", "Bee")
    assert get_path(changed, "options.b.label") == "Bee"
    assert "label" not in raw["options"][1]  # the original is untouched
    with pytest.raises(KeyError, match="no block named"):
        set_path(raw, "options.zzz.label", "x")


@pytest.mark.parametrize("path, segments", [
    ("turnout.dispersion", ["turnout", "dispersion"]),
    ('turnout.regional_mean."St. Petersburg"', ["turnout", "regional_mean", "St. Petersburg"]),
    ("turnout.regional_mean.'St. Petersburg'", ["turnout", "regional_mean", "St. Petersburg"]),
    ('a."say \\"hi\\"."', ["a", 'say "hi".']),
    ("regions.O'Brien.x", ["regions", "O'Brien", "x"]),
    ("electorate.regions.Алматы", ["electorate", "regions", "Алматы"]),
])
def test_a_quoted_segment_may_hold_dots(path, segments):
    assert split_path(path) == segments
    assert split_path(join_path(segments)) == segments


def test_names_with_dots_are_addressed_by_quoting():
    raw = small_config_dict(regions=(("St. Petersburg", 0.4), ("south", 0.6)))
    assert get_path(raw, 'electorate.regions."St. Petersburg".register_share') == 0.4
    changed = set_path(raw, "turnout.regional_mean.'St. Petersburg'", 0.7)
    assert changed["turnout"]["regional_mean"] == {"St. Petersburg": 0.7}


@pytest.mark.parametrize("path, problem", [
    ('turnout.regional_mean."St. Petersburg', "unbalanced quote"),
    ("turnout.regional_mean.'St. Petersburg", "unbalanced quote"),
    ('turnout."regional_mean"x.y', "a quoted segment must end at a dot"),
])
def test_an_unbalanced_quote_is_one_line_naming_the_path(path, problem):
    with pytest.raises(KeyError) as error:
        get_path(small_config_dict(), path)
    assert error.value.args[0].startswith(f"{path}: {problem}") and "\n" not in error.value.args[0]


def test_flagship_config_validates(repo):
    cfg = load_config(repo / "configs" / "kazakhstan-2022.toml")
    assert isinstance(cfg, Config)
    assert cfg.electorate.registered == 11_953_465 and cfg.electorate.stations == 10_101


@pytest.mark.parametrize("registered, ballots, turnout", [(6000, 3600, 60.0), (6000, 0, 0.0), (6000, None, None),
                                                          (None, 3600, None), (0, 0, None)])
def test_the_counts_turnout_is_read_one_way(registered, ballots, turnout):
    """[observed]'s turnout (ballots over the register, percent) is one figure wherever it is read: the summary's
    official figures and the timeline's and the polls' checks use :meth:`Observed.counted_turnout`; a count of 0
    ballots has turnout 0%."""
    from simkit.engine.summary import official_figures

    raw = small_config_dict()
    raw["observed"] = {key: value for key, value in (("registered", registered), ("ballots", ballots))
                       if value is not None}
    cfg = Config.model_validate(raw)
    assert cfg.observed.counted_turnout() == turnout
    assert official_figures(cfg).get("turnout") == turnout


def test_shipped_configs_simulate_the_official_register(repo):
    """[observed] registered is compared with nothing (every official figure is read as a fraction), but the
    simulated spread is that of [electorate]'s register: a shipped config that models a real election draws its
    official register."""
    from simkit.config.core import SyntheticElectorate

    checked = 0
    for path in sorted((repo / "configs").glob("*.toml")):
        cfg = load_config(path)
        if isinstance(cfg.electorate, SyntheticElectorate) and cfg.observed.registered is not None:
            assert cfg.electorate.registered == cfg.observed.registered, path.name
            checked += 1
    assert checked >= 3


def test_region_problems_read_the_validated_config_not_a_dump_of_it(monkeypatch):
    """Each sweep point and each prior probe is cross-checked: the regions of its tables are read from the config
    itself (dumping the whole config to read them cost a dump per check)."""
    from simkit.config import regions

    raw = small_config_dict()
    raw["turnout"]["regional_mean"] = {"north": 0.5, "west": 0.6}
    raw["observed"] = {"regional_turnout": {"east": 0.5}}
    cfg = Config.model_validate(raw)
    monkeypatch.setattr(Config, "raw", lambda self: pytest.fail("the config was dumped"))
    assert regions.region_problems(cfg, ["north", "south"]) == [
        "turnout.regional_mean.west: not a region of the electorate",
        "observed.regional_turnout.east: not a region of the electorate"]
    assert regions.region_keys(cfg, "timeline.regional") == []  # no [timeline] block


@pytest.mark.parametrize("sweep, overrides, expected", [
    (None, {}, 0),
    ({"turnout.mean": [0.5, 0.7]}, {}, 1),
    (None, {"manipulation.m.fraction": 0.2}, 1 + 1)])
def test_a_cross_check_dumps_a_config_only_for_its_sweep_or_overrides(monkeypatch, sweep, overrides, expected):
    """A sweep of two values checks three configs (the unswept one and each point, which have no sweep): only the
    swept one is dumped, once for its scenarios' check and its sweep's; a config with neither is not dumped. A
    scenario's overrides are checked against that dump (and the config they leave, :meth:`Config.at`, a dump of its
    own)."""
    from simkit.config import checks

    raw = small_config_dict(sweep=sweep)
    raw["manipulation"] = [{"name": "m", "kind": "vote_stealing", "beneficiary": "a", "fraction": 0.1}]
    raw["scenario"] = [{"name": "s", "manipulations": ["m"], "overrides": overrides}]
    cfg = Config.model_validate(raw)
    dumps, dump = [], Config.raw
    monkeypatch.setattr(Config, "raw", lambda self: dumps.append(1) or dump(self))
    assert checks.cross_check(cfg) == []
    assert len(dumps) == expected
