"""Count-matched scenarios: the manipulated count reproduces the official figures; unreachable ones say so."""
import json

import pytest

from conftest import small_config_dict
from simkit.config import Config
from simkit.count_match import PILOT_REPLICATES, TOLERANCE
from simkit.engine import simulate
from simkit.errors import InputError

OFFICIAL = {"registered": 60_000, "ballots": 36_600, "votes": {"a": 22_000, "b": 9_000, "c": 5_600},
            "regional_turnout": {"north": 0.58, "south": 0.63}}


def matched_config(share: float, compliance: float = 0.7) -> Config:
    raw = small_config_dict(stations=60, registered=60_000, replicates=PILOT_REPLICATES, seed=5)
    raw["manipulation"] = [{"name": "coerce", "kind": "coerced_turnout", "beneficiary": "a", "share": share,
                            "compliance": compliance, "loyalty": 0.9}]
    raw["scenario"] = [{"name": "honest", "match_observed": True},
                       {"name": "coercion", "manipulations": ["coerce"], "match_observed": True}]
    raw["observed"] = OFFICIAL
    return Config.model_validate(raw)


def test_count_matched_scenarios_reproduce_the_official_figures():
    """With the pilot's replicates (the solver's common random numbers), every scenario's count is within
    0.1 points of every official figure: turnout, regional turnout and each option's share of the ballots."""
    ds = simulate(matched_config(0.2), keep="full")
    registered = ds["registered"].sum()
    for scenario in ("honest", "coercion"):
        at = ds.sel(scenario=scenario)
        turnout = float(at["ballots"].sum() / (registered * at.sizes["replicate"]))
        assert abs(100 * turnout - 100 * 36_600 / 60_000) <= TOLERANCE
        votes = at["votes"].sum(("replicate", "station"))
        for name, count in OFFICIAL["votes"].items():
            assert abs(100 * float(votes.sel(option=name) / votes.sum()) - 100 * count / 36_600) <= TOLERANCE
        for region, target in OFFICIAL["regional_turnout"].items():
            stations = at["region"] == region
            regional = float(at["ballots"].where(stations).sum() / (ds["registered"].where(stations).sum()
                                                                     * at.sizes["replicate"]))
            assert abs(100 * regional - 100 * target) <= TOLERANCE
    # the count matches because coercion moved the honest parameters: fewer honest voters, fewer for "a"
    solved = {json.loads(key)["scenario"]: value for key, value in json.loads(ds.attrs["count_matched"]).items()}
    honest, coerced = solved["honest"], solved["coercion"]
    assert all(coerced["turnout.regional_mean"][r] < honest["turnout.regional_mean"][r] for r in ("north", "south"))
    assert coerced["preferences.shares"]["a"] < honest["preferences.shares"]["a"]


def test_count_matching_runs_every_sweep_point():
    cfg = matched_config(0.1)
    cfg = Config.model_validate({**cfg.raw(), "sweep": {"manipulation.coerce.share": [0.05, 0.2]}})
    ds = simulate(cfg, replicates=4, keep="summary")
    assert ds["total_ballots"].dims[:2] == ("manipulation.coerce.share", "scenario")
    turnout = ds["total_ballots"].sel(scenario="coercion").mean("replicate") / ds["registered"].sum()
    # both sweep points are matched: the coercion share no longer moves the count's turnout much
    assert abs(float(turnout[0] - turnout[1])) < 0.01


def test_unreachable_official_figure_is_named():
    with pytest.raises(InputError, match=r"scenario\.coercion\.match_observed: the official turnout"):
        simulate(matched_config(1.0, compliance=1.0))


def test_streaming_a_count_matched_config_is_refused():
    from simkit.engine import prepare

    with pytest.raises(InputError, match="match_observed"):
        prepare(matched_config(0.2))
