"""Memory bounded by the block: the mechanisms (peak-memory figures live in benchmarks/memory.py)."""
import io
import json
import sys

import numpy as np
import pytest

from conftest import small_config_dict
from simkit.cli.io import json_text
from simkit.config.core import Config
from simkit import io as storage
from simkit.engine import resources
from simkit.engine import run as engine
from simkit.polls.compare import compare_config

OFFICIAL = {"registered": 60_000, "ballots": 36_600, "votes": {"a": 22_000, "b": 9_000, "c": 5_600}}


def scenarios_config(replicates: int = 12) -> Config:
    """Two sweep points × three count-matched scenarios (coercion acts on voters, stuffing on the count)."""
    raw = small_config_dict(stations=60, registered=60_000, replicates=replicates, seed=5)
    raw["manipulation"] = [
        {"name": "coerce", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.1, "compliance": 0.7,
         "loyalty": 0.9},
        {"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.2, "f_extreme": 0.0,
         "theta": 0.1, "alpha": 2.0}]
    raw["scenario"] = [{"name": "honest"},
                       {"name": "coercion", "manipulations": ["coerce"]},
                       {"name": "both", "manipulations": ["coerce", "stuff"]}]
    raw["sweep"] = {"manipulation.coerce.share": [0.05, 0.1]}
    raw["observed"] = OFFICIAL
    raw["exit_poll"] = [{"name": "p", "stations": 10, "per_station": 20, "stated_error": 0.02,
                         "published": {"a": 0.62, "b": 0.25}}]
    return Config.model_validate(raw)


def test_world_votes_are_the_runs_votes():
    """One world drawn alone (int16 for registers below 32,768, block by block) holds the same counts as the whole
    run at that world."""
    cfg = scenarios_config()
    ds = engine.simulate(cfg, keep="full", workers=1)
    run = engine.prepare(cfg, keep="full")
    for point in range(2):
        for scenario in range(3):
            votes, voters = engine.world_votes(run, point, scenario, workers=1)
            at = ds.isel({"manipulation.coerce.share": point, "scenario": scenario})
            assert votes.dtype == np.int16
            np.testing.assert_array_equal(votes, at["votes"].values)
            expected_voters = at["voter_votes"].values
            if voters is None:
                np.testing.assert_array_equal(expected_voters, at["votes"].values)
            else:
                np.testing.assert_array_equal(voters, expected_voters)


def test_compare_one_world_at_a_time_equals_compare_in_memory():
    """compare_config simulating worlds on demand gives the report of the whole simulated Dataset, to the bit."""
    cfg = scenarios_config()
    in_memory = compare_config(cfg, ds=engine.simulate(cfg, keep="full", workers=1), history=None, ledger_points=6)
    streamed = compare_config(cfg, history=None, ledger_points=6)
    assert json.loads(json_text(streamed.to_json())) == json.loads(json_text(in_memory.to_json()))
    assert streamed.estimates.identical(in_memory.estimates)
    assert {entry["assumed"]["manipulation.coerce.share"] for entry in streamed.ledger} == {0, 1}


def test_default_block_fits_the_budget_whatever_the_run():
    """Unless given, a block holds as many replicates as fit in BLOCK_BYTES (at least one): more sweep points or
    scenarios make blocks smaller, not bigger."""
    small = engine.prepare(scenarios_config(replicates=64), keep="summary")
    assert resources.block_size(small) == resources.MAX_BLOCK_SIZE
    assert resources.block_size(small, 3) == 3
    raw = scenarios_config(replicates=64).raw()
    raw["electorate"]["stations"] = 20_000
    raw["electorate"]["registered"] = 20_000_000
    big = engine.prepare(Config.model_validate(raw), keep="full")
    size = resources.block_size(big)
    per_replicate = resources.plan(big).per_replicate
    assert per_replicate > resources.BLOCK_BYTES // resources.MAX_BLOCK_SIZE
    assert size == max(1, resources.BLOCK_BYTES // per_replicate)
    blocks = [block.sizes["replicate"] for block in engine.iter_blocks(
        engine.prepare(Config.model_validate(raw), replicates=3, keep="full"), workers=1)]
    assert max(blocks) <= max(1, size) and sum(blocks) == 3


def test_run_without_output_keeps_totals_only(tmp_path, monkeypatch, capsys):
    """``simkit run`` without ``-o`` prints a summary: it draws the same elections but keeps no station arrays."""
    from simkit.cli.main import main

    kept = []
    iter_blocks = engine.iter_blocks

    def recording(run, *args, **kwargs):
        for block in iter_blocks(run, *args, **kwargs):
            kept.append(set(block.data_vars))
            yield block

    monkeypatch.setattr(engine, "iter_blocks", recording)
    path = tmp_path / "c.toml"
    path.write_text(scenarios_config().to_toml())
    assert main(["run", str(path), "--replicates", "4"]) == 0
    assert kept and all("votes" not in names and "total_votes" in names for names in kept)
    assert "test: 4 replicates" in capsys.readouterr().out


def test_a_world_is_held_in_the_type_its_results_are_stored_in():
    """One choice of integer widths: a world's votes are held in the type a result stores them in."""
    cfg = scenarios_config()
    run = engine.prepare(cfg, replicates=2, keep="full")
    votes, _ = engine.world_votes(run, 0, 0, workers=1)
    static = engine.static_dataset(run)
    block = next(engine.iter_blocks(run, workers=1))
    stored = storage.stored_dtypes(static, block)["votes"]
    assert votes.dtype == stored == storage.count_dtype(run.electorate.registered)


def test_stuffed_and_coerced_counts_at_full_int16_registers_fit_without_widening():
    """The invariant world_votes rests on (no count exceeds its station's register): every register exactly
    32,767, near-total stuffing (extreme fraud at every station) after heavy coercion; the world held as int16
    equals the run's int64 counts, so nothing wrapped, and its largest count reaches the register."""
    raw = small_config_dict(stations=4, registered=4 * 32_767, replicates=2, seed=9, turnout_mean=0.9,
                           regions=(("all", 1.0),))
    raw["electorate"]["station_size_sd"] = 0.0
    raw["manipulation"] = [
        {"name": "coerce", "kind": "coerced_turnout", "beneficiary": "a", "share": 0.9, "compliance": 1.0,
         "loyalty": 1.0},
        {"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.0, "f_extreme": 1.0,
         "theta": 0.1, "alpha": 1.0, "extreme_sd": 0.001}]
    raw["scenario"] = [{"name": "both", "manipulations": ["coerce", "stuff"]}]
    cfg = Config.model_validate(raw)
    run = engine.prepare(cfg, keep="full")
    assert (run.electorate.registered == 32_767).all()
    votes, _ = engine.world_votes(run, 0, 0, workers=1)
    expected = engine.simulate(cfg, keep="full", workers=1)["votes"].isel(scenario=0).values
    assert votes.dtype == np.int16
    np.testing.assert_array_equal(votes, expected)
    assert expected.sum(axis=-1).max() > 32_000


def test_large_blocks_go_back_to_the_system():
    """On glibc the command line fixes malloc's mapping threshold (a block's arrays are returned when freed)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("mallopt is glibc's (Linux)")
    assert resources.release_large_blocks()


@pytest.mark.parametrize("command, threshold", [(["forensics", "nowhere.csv"], "REUSED_ARRAYS_THRESHOLD"),
                                                (["validate", "nowhere.toml"], "MMAP_THRESHOLD")])
def test_each_command_sets_its_mapping_threshold(monkeypatch, command, threshold):
    """forensics keeps its null draws' arrays in the heap (reused draw after draw); every other command maps its
    blocks (returned when freed)."""
    from simkit.cli import main as cli

    chosen = []
    monkeypatch.setattr(cli, "release_large_blocks", chosen.append)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert cli.main(command) == 2  # the missing file is refused after the threshold is set
    assert chosen == [getattr(resources, threshold)]


def test_a_pool_holds_at_most_its_blocks_in_flight():
    """A run is lazy in its blocks: when the first block comes back, at most 2 × workers + 1 have been asked for,
    whatever the number of blocks (so a run never holds all its blocks)."""
    from simkit.engine.parallel import KeyedPool

    asked = []

    def keys():
        for key in range(1_000):
            asked.append(key)
            yield key

    with KeyedPool(lambda state, key: key, None, "threads", 2) as pool:
        results = pool.map(keys())
        assert next(results) == 0
        assert len(asked) <= 2 * 2 + 1
        assert list(results) == list(range(1, 1_000))
