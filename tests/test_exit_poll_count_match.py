"""Count-matched scenarios: the manipulated count reproduces the official figures; unreachable ones say so."""
import json

import pytest
import tomli_w

from conftest import small_config_dict
from simkit.config.core import Config
from simkit.electorate.build import build_electorate
from simkit.engine.count_match import NOISE_MULTIPLE, PILOT_REPLICATES, TOLERANCE
from simkit.engine.run import simulate
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
    record = json.loads(ds.attrs["count_matched"])
    assert (record["pilot_replicates"], record["pilot_seed"]) == (PILOT_REPLICATES, 5)
    solved = {entry["scenario"]: entry["parameters"] for entry in record["solved"]}
    honest, coerced = solved["honest"], solved["coercion"]
    assert all(coerced[f"turnout.regional_mean.{r}"] < honest[f"turnout.regional_mean.{r}"] for r in ("north", "south"))
    assert coerced["preferences.shares.a"] < honest["preferences.shares.a"]


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


def test_a_small_region_is_matched_within_the_pilots_noise_and_says_so():
    """A region of a few stations: its pilot turnout's Monte Carlo standard error (16 replicates) is far above the
    0.1-point tolerance, so no iteration gets within it (once an error saying the official figure "cannot be
    reached"). The solution is then the iteration whose misses are all within NOISE_MULTIPLE standard errors, and the
    record gives them."""
    raw = small_config_dict(stations=100, registered=100_000, replicates=4, seed=5, turnout_dispersion=0.8,
                            regions=(("north", 0.97), ("tiny", 0.03)))
    raw["scenario"] = [{"name": "honest", "match_observed": True}]
    raw["observed"] = {"registered": 100_000, "ballots": 60_000, "votes": {"a": 30_000, "b": 18_000, "c": 12_000},
                       "regional_turnout": {"north": 0.6, "tiny": 0.55}}
    ds = simulate(Config.model_validate(raw), keep="summary")
    entry = json.loads(ds.attrs["count_matched"])["solved"][0]
    errors, pilot = entry["pilot_standard_errors"], entry["pilot"]
    assert entry["noise_multiple"] == NOISE_MULTIPLE and errors["turnout.tiny"] > TOLERANCE
    assert abs(pilot["turnout.tiny"] - 55.0) <= max(TOLERANCE, NOISE_MULTIPLE * errors["turnout.tiny"])
    assert abs(pilot["turnout.north"] - 60.0) <= max(TOLERANCE, NOISE_MULTIPLE * errors["turnout.north"])

def test_run_streams_count_matched_configs_bit_identically(tmp_path, monkeypatch):
    """``simkit run`` (streamed to zarr, two block sizes, in-process and two processes) equals
    ``simkit.simulate``; the result carries the resolved config, whose rerun solves nothing and reproduces it."""
    import xarray as xr

    from simkit.engine import count_match
    from simkit.engine import run as engine
    from simkit import io
    from simkit.cli.main import main
    from simkit.config.load import parse_config

    cfg = matched_config(0.2)
    cfg = Config.model_validate({**cfg.raw(), "sweep": {"manipulation.coerce.share": [0.1, 0.2]}})
    path = tmp_path / "matched.toml"
    path.write_text(cfg.to_toml())
    expected = simulate(cfg, replicates=6, keep="full")
    monkeypatch.setattr(engine, "PARALLEL_MIN_DRAWS", 0)  # two processes really draw blocks, small as the run is
    for block_size, processes in ((1, "1"), (4, "2")):
        out = tmp_path / f"run-{block_size}.zarr"
        assert main(["run", str(path), "-o", str(out), "--replicates", "6", "--keep", "full", "--quiet",
                     "--block-size", str(block_size), "--processes", processes]) == 0
        streamed = io.open_result(out).load()
        xr.testing.assert_identical(streamed.drop_attrs(), expected.drop_attrs())
        assert streamed.attrs["simkit_config"] == expected.attrs["simkit_config"]
        assert json.loads(streamed.attrs["count_matched"]) == json.loads(expected.attrs["count_matched"])
    resolved = parse_config(expected.attrs["simkit_config"], source="attrs")
    assert not count_match._unsolved(resolved, expected.attrs["kernel"])
    assert all(len(s.solved_honest) == 2 for s in resolved.scenario)
    rerun = simulate(resolved)
    xr.testing.assert_identical(rerun.drop_attrs(), expected.drop_attrs())
    assert json.loads(rerun.attrs["count_matched"])["solved"][0]["pilot"] is None  # given, not solved
    # another seed invalidates the stored solution: it is solved again and equals a fresh run with that seed
    reseeded = simulate(resolved, replicates=3, seed=6)
    assert json.loads(reseeded.attrs["count_matched"])["solved"][0]["pilot"] is not None
    xr.testing.assert_identical(reseeded.drop_attrs(), simulate(cfg, replicates=3, seed=6).drop_attrs())


def test_bad_solved_honest_is_named():
    from simkit.config.load import parse_config
    from simkit.config.messages import ConfigError

    raw = matched_config(0.2).raw()
    raw["scenario"][0].update(solved_honest=[{"turnout.mean": 0.6}, {"turnout.mean": 0.6}], solved_for="0")
    with pytest.raises(ConfigError, match=r"scenario\.honest\.solved_honest: 2 tables for 1 sweep point"):
        parse_config(tomli_w.dumps(raw), source="x.toml")
    raw["scenario"][0]["solved_honest"] = [{"preferences.dispersion": 0.6}]
    with pytest.raises(ConfigError, match=r"solved_honest\.preferences\.dispersion: only"):
        parse_config(tomli_w.dumps(raw), source="x.toml")


def test_dask_run_of_a_count_matched_config_equals_simulate(tmp_path):
    """The dask path solves in the client (the workers receive the resolved config) and gives the same numbers."""
    distributed_api = pytest.importorskip("dask.distributed")
    import xarray as xr

    from simkit.engine.distributed import run_on_cluster

    cfg = matched_config(0.2)
    expected = simulate(cfg, replicates=5, keep="summary")
    with distributed_api.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=50) as cluster, distributed_api.Client(cluster) as client:
        result = run_on_cluster(cfg, tmp_path / "dask.zarr", replicates=5, keep="summary", block_size=2,
                                client=client, quiet=True).load()
    xr.testing.assert_identical(result.drop_attrs(), expected.drop_attrs())
    assert result.attrs["simkit_config"] == expected.attrs["simkit_config"]


@pytest.mark.parametrize("releases_gil, where_solved", [(False, "processes"), (True, "threads")])
def test_scenarios_solved_on_two_workers_equal_the_serial_solution(monkeypatch, releases_gil, where_solved):
    """Each scenario's chain of sweep points is solved from the config alone: on two worker processes, or two
    threads where the pilots' kernel releases the GIL (the threshold lowered so that this small config starts
    them), the resolved config and its record are the serial ones, and an unreachable figure at the second sweep
    point raises its error from a worker."""
    from simkit.engine import count_match
    from simkit.engine import run as engine

    cfg = matched_config(0.1)
    cfg = Config.model_validate({**cfg.raw(), "sweep": {"manipulation.coerce.share": [0.05, 0.2]}})
    serial = count_match.resolve(cfg, build_electorate(cfg.electorate), engine.simulate, "numba")
    monkeypatch.setattr(count_match, "PARALLEL_MIN_PILOT_DRAWS", 0)
    where = []
    monkeypatch.setattr(count_match, "choose", lambda *a: where.append(engine.choose(*a)) or where[-1])
    parallel = count_match.resolve(cfg, build_electorate(cfg.electorate), engine.simulate, "numba",
                                   releases_gil=lambda: releases_gil)
    assert where[0][0] == where_solved
    assert parallel[1] == serial[1] and parallel[0].to_toml() == serial[0].to_toml()
    unreachable = Config.model_validate({**cfg.raw(), "sweep": {"manipulation.coerce.share": [0.05, 1.0]},
                                         "manipulation": [{**cfg.raw()["manipulation"][0], "compliance": 1.0}]})
    with pytest.raises(InputError, match=r"scenario\.coercion\.match_observed: the official turnout"):
        count_match.resolve(unreachable, build_electorate(unreachable.electorate), engine.simulate, "numba",
                            releases_gil=lambda: releases_gil)


def test_count_matching_keeps_to_the_callers_workers(monkeypatch):
    """``simulate(cfg, workers=1)`` solves the count-matched chains in this process, however large the work."""
    from simkit.engine import count_match
    from simkit.engine import run as engine

    cfg = matched_config(0.1)
    cfg = Config.model_validate({**cfg.raw(), "sweep": {"manipulation.coerce.share": [0.05, 0.2]}})
    monkeypatch.setattr(count_match, "PARALLEL_MIN_PILOT_DRAWS", 0)
    where = []
    monkeypatch.setattr(count_match, "choose", lambda *a: where.append(engine.choose(*a)) or where[-1])
    engine.simulate(cfg, replicates=1, workers=1)
    assert where and where[0][1] == 1 and where[0][0] != "processes"


@pytest.mark.parametrize("kernel, where_solved", [("numba", "threads"), ("numpy", "processes")])
def test_a_run_solves_in_threads_where_the_fused_kernel_draws_the_pilots(monkeypatch, kernel, where_solved):
    """The fused numba kernel draws the pilots without the GIL: their chains share this process's memory in
    threads; numpy's samplers hold it, so they are solved in worker processes."""
    from simkit.engine import count_match
    from simkit.engine import run as engine

    cfg = matched_config(0.1)
    cfg = Config.model_validate({**cfg.raw(), "sweep": {"manipulation.coerce.share": [0.05, 0.2]}})
    assert engine.fused(engine.honest_plan(cfg, build_electorate(cfg.electorate)), "numba")
    monkeypatch.setattr(count_match, "PARALLEL_MIN_PILOT_DRAWS", 0)
    where = []
    monkeypatch.setattr(count_match, "choose", lambda *a: where.append(engine.choose(*a)) or where[-1])
    engine.prepare(cfg, replicates=1, kernel=kernel, workers=2)
    assert where[0] == (where_solved, 2)


def test_a_run_asks_whether_the_pilots_release_the_gil_only_for_two_chains_or_more(monkeypatch):
    """Whether the kernel fuses every sweep point's models (which builds each point's config) decides only where
    two chains or more are solved: a run with one scenario to solve, or with every solution already in its config,
    never asks."""
    from simkit.engine import run as engine

    asked, ask = [], engine._pilots_release_gil
    monkeypatch.setattr(engine, "_pilots_release_gil", lambda *a: asked.append(a) or ask(*a))
    cfg = matched_config(0.1)
    cfg = Config.model_validate({**cfg.raw(), "sweep": {"manipulation.coerce.share": [0.05, 0.2]}})
    solved = engine.prepare(cfg, replicates=1).config
    assert len(asked) == 1
    engine.prepare(solved, replicates=1)
    one_to_solve = {**cfg.raw(), "scenario": [{"name": "honest"}, cfg.raw()["scenario"][1]]}
    engine.prepare(Config.model_validate(one_to_solve), replicates=1)
    assert len(asked) == 1


def test_a_scenario_that_the_sweep_does_not_touch_is_solved_once(monkeypatch):
    """The honest scenario's pilots draw the same elections at every sweep point of the coercion share: it is
    solved at the first point and keeps that solution (the one a warm-started solve would return), while the
    coercion scenario is solved at each point; the record equals a solve of every point."""
    from simkit.engine import count_match
    from simkit.engine import run as engine

    cfg = matched_config(0.1)
    cfg = Config.model_validate({**cfg.raw(), "sweep": {"manipulation.coerce.share": [0.05, 0.2]}})
    solved, solve = [], count_match.solve
    monkeypatch.setattr(count_match, "solve", lambda c, name, *a: solved.append(name) or solve(c, name, *a))
    electorate = build_electorate(cfg.electorate)
    _, record = count_match.resolve(cfg, electorate, engine.simulate, "numba")
    assert solved.count("honest") == 1 and solved.count("coercion") == 2
    monkeypatch.setattr(count_match, "_pilot_key", lambda *a: object())  # every point differs: each is solved
    assert count_match.resolve(cfg, electorate, engine.simulate, "numba")[1] == record



def test_a_solution_for_an_edited_electorate_csv_is_solved_again(tmp_path):
    """The electorate file is not in the config text: a solution stored in a resolved config stands only for the
    file it was solved on (a rerun after the CSV changed solves again, and equals a fresh solve)."""
    from simkit.config.load import parse_config
    from simkit.engine import run as engine

    def stations_csv(sizes):
        rows = [f"{'north' if i < 24 else 'south'},{size}" for i, size in enumerate(sizes)]
        (tmp_path / "stations.csv").write_text("region,registered\n" + "\n".join(rows) + "\n")

    raw = matched_config(0.2).raw()
    raw["electorate"] = {"source": "csv", "path": str(tmp_path / "stations.csv"), "registered_column": "registered",
                         "region_column": "region"}
    stations_csv([1000] * 60)
    resolved = engine.prepare(parse_config(tomli_w.dumps(raw)), replicates=2).config
    again = engine.prepare(resolved, replicates=2)
    assert json.loads(again.count_matched)["solved"][0]["pilot"] is None  # the same file: the stored solution stands
    stations_csv([600 + 800 * (i % 2) for i in range(60)])  # the same regions and totals, other station sizes
    edited = engine.prepare(resolved, replicates=2)
    assert json.loads(edited.count_matched)["solved"][0]["pilot"] is not None  # solved again
    fresh = engine.prepare(parse_config(tomli_w.dumps(raw)), replicates=2)
    assert edited.config.to_toml() == fresh.config.to_toml()


def test_a_regional_target_for_a_region_without_voters_is_one_line(tmp_path, capsys):
    """A region whose stations have no voters (closed, or abroad with nobody registered) has no turnout: matching
    an official one there is refused in one line, not divided by 0."""
    from simkit.cli.main import main

    raw = small_config_dict(replicates=4, seed=5)
    raw["electorate"] = {"source": "csv", "path": "stations.csv", "registered_column": "registered",
                         "region_column": "region"}
    (tmp_path / "stations.csv").write_text("region,registered\nnorth,500\nnorth,700\nsouth,800\nabroad,0\n")
    raw["scenario"] = [{"name": "honest", "match_observed": True}]
    raw["observed"] = {"registered": 2000, "ballots": 1200, "votes": {"a": 600, "b": 360, "c": 240},
                       "regional_turnout": {"north": 0.6, "abroad": 0.5}}
    config = tmp_path / "x.toml"
    config.write_text(tomli_w.dumps(raw))
    assert main(["run", str(config), "--quiet", "-o", str(tmp_path / "o.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{config}: scenario.honest.match_observed: observed.regional_turnout.abroad: the stations of "
                   "region abroad have no voters on the register: it has no turnout to compare"]


def _matched_config_with_a_region_without_voters(tmp_path) -> Config:
    """A count-matched config on an electorate file whose region "abroad" has no voters, with an official turnout
    given there."""
    raw = small_config_dict(replicates=4, seed=5)
    raw["electorate"] = {"source": "csv", "path": str(tmp_path / "stations.csv"), "registered_column": "registered",
                         "region_column": "region"}
    (tmp_path / "stations.csv").write_text("region,registered\nnorth,500\nsouth,800\nabroad,0\n")
    raw["scenario"] = [{"name": "honest", "match_observed": True}]
    raw["observed"] = {"registered": 1300, "ballots": 780, "votes": {"a": 390, "b": 234, "c": 156},
                       "regional_turnout": {"abroad": 0.5}}
    return Config.model_validate(raw)


def test_a_regional_target_for_a_region_without_voters_is_refused_before_any_pilot(tmp_path, monkeypatch):
    """The register alone tells: no pilot is drawn first."""
    from simkit.engine import count_match, run as engine

    cfg = _matched_config_with_a_region_without_voters(tmp_path)
    monkeypatch.setattr(count_match, "solve", lambda *args, **kwargs: pytest.fail("a pilot was drawn"))
    with pytest.raises(InputError, match=r"^x\.toml: scenario\.honest\.match_observed: "
                                         r"observed\.regional_turnout\.abroad: the stations of region abroad have no"):
        engine.prepare(cfg, source="x.toml")


def test_resolve_called_alone_refuses_a_region_without_voters_before_any_pilot(tmp_path, monkeypatch):
    """``count_match.resolve`` called directly (as scripts and tests do), given the electorate its caller built
    (it builds none): the same refusal before any pilot; ``prepare`` checks the regions once, inside ``resolve``."""
    from simkit.engine import count_match, run as engine

    cfg = _matched_config_with_a_region_without_voters(tmp_path)
    monkeypatch.setattr(count_match, "solve", lambda *args, **kwargs: pytest.fail("a pilot was drawn"))
    with pytest.raises(InputError, match=r"^x\.toml: scenario\.honest\.match_observed: "
                                         r"observed\.regional_turnout\.abroad: the stations of region abroad have no"):
        count_match.resolve(cfg, build_electorate(cfg.electorate), engine.simulate, "numba", source="x.toml")
    with pytest.raises(TypeError, match="positional"):  # the arguments after kernel are keyword-only
        count_match.resolve(cfg, build_electorate(cfg.electorate), engine.simulate, "numba", "x.toml")
    checks, check = [], count_match.check_matched_regions
    monkeypatch.setattr(count_match, "check_matched_regions", lambda *a: checks.append(a) or check(*a))
    with pytest.raises(InputError):
        engine.prepare(cfg, source="x.toml")
    assert len(checks) == 1
