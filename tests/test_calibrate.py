"""``simkit calibrate``: size under honest simulations, power under a planted mechanism."""
import json

import pytest

import tomli_w

from simkit import parse_config
from simkit.forensics import replicate_seed
from simkit.forensics.calibrate import calibration_table
from simkit.cli.main import main

from conftest import small_config_dict
from forensics_helpers import engine_positions, overlapping


def stuffing_config(replicates=12):
    raw = small_config_dict(stations=400, registered=400_000, replicates=replicates, seed=4,
                            turnout_dispersion=0.3, preference_dispersion=60.0)
    raw["manipulation"] = [{"name": "stuff", "kind": "ballot_stuffing", "beneficiary": "a", "f_incremental": 0.6,
                            "f_extreme": 0.0, "theta": 0.3, "alpha": 1.5}]
    raw["scenario"] = [{"name": "honest"}, {"name": "stuffing", "manipulations": ["stuff"]}]
    return raw


def test_power_against_heavy_stuffing_exceeds_the_size():
    """Incremental stuffing moves turnout and the leader's share together: the turnout-share correlation test
    must reject in most manipulated replicates (power) and rarely in honest ones (size ≈ 0.05; with 12
    replicates, 4 rejections has binomial probability < 0.003 at a true size of 0.05)."""
    rows = calibration_table(parse_config(tomli_w.dumps(stuffing_config())), tests=["correlation"],
                             nulls=("textbook",), seed=1)
    rate = {row["mechanism"]: row["rejection_rate"] for row in rows}
    assert rate["none"] <= 3 / 12
    assert rate["stuffing"] >= 0.75
    assert all(row["n"] == 12 for row in rows)
    assert next(r for r in rows if r["mechanism"] == "stuffing")["strength"].startswith("stuff: ")


def test_cli_json_rows(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(stuffing_config(replicates=3)))
    assert main(["calibrate", str(path), "--tests", "zero_five", "--null", "textbook", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["mechanism"] for row in rows} == {"none", "stuffing"}
    assert set(rows[0]) >= {"test", "null", "mechanism", "strength", "rejection_rate", "n"}


def test_cli_unknown_test_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(stuffing_config(replicates=2)))
    assert main(["calibrate", str(path), "--tests", "nope"]) == 2
    assert "--tests: unknown test id 'nope'" in capsys.readouterr().err


def test_cli_empty_tests_is_refused_not_read_as_all(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(stuffing_config(replicates=2)))
    assert main(["calibrate", str(path), "--tests", ""]) == 2
    assert "--tests: unknown test id (none)" in capsys.readouterr().err


def test_calibration_on_a_dask_cluster_equals_the_local_table():
    """The same per-replicate function through dask tasks (one per sweep point and block, each simulating
    its part from the config alone) gives exactly the local table, sweep included. And as each local election
    holds BLAS to one thread (its process's main thread), so do the tasks on the local cluster that
    ``--workers`` starts (:func:`simkit.engine.distributed.connect`): dask's nanny starts its single-threaded
    worker processes with ``OPENBLAS_NUM_THREADS=1``, so the tasks, in worker threads, need no limit of their
    own."""
    pytest.importorskip("dask.distributed")
    from simkit.engine.distributed import connect

    raw = stuffing_config(replicates=5)
    raw["sweep"] = {"manipulation.stuff.f_incremental": [0.2, 0.6]}
    cfg = parse_config(tomli_w.dumps(raw))
    arguments = dict(tests=["correlation", "zero_five", "integer_percent"], nulls=("textbook", "simulated"),
                     draws=9, seed=2)
    local = calibration_table(cfg, **arguments)
    with connect(workers=2) as client:
        remote = calibration_table(cfg, **arguments, cluster={"client": client, "block_size": 2})
        blas_threads = client.submit(_blas_threads, pure=False).result()
    assert remote == local
    assert blas_threads and set(blas_threads) == {1}
    assert len(local) == 2 * 2 * 2 * 3  # sweep points x scenarios x nulls x tests


def test_default_seed_is_the_configs_so_the_table_is_reproducible():
    cfg = parse_config(tomli_w.dumps(stuffing_config(replicates=3)))
    first = calibration_table(cfg, tests=["last_digit"], nulls=("simulated",), draws=9)
    assert calibration_table(cfg, tests=["last_digit"], nulls=("simulated",), draws=9) == first


def test_cli_workers_runs_the_same_table_on_a_local_cluster(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(stuffing_config(replicates=3)))
    arguments = ["calibrate", str(path), "--tests", "zero_five", "--null", "textbook", "--json"]
    assert main(arguments) == 0
    local = json.loads(capsys.readouterr().out)["rows"]
    assert main(arguments + ["--workers", "2", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == local


def test_an_election_that_sweep_points_share_is_tested_once(monkeypatch):
    """The honest scenario does not depend on the swept stuffing strength: the engine draws the same election
    at both sweep points, and it is tested once per replicate and null (the stuffed one at each point); the
    table still has a row per point, equal to the point's own."""
    from simkit.forensics import calibrate

    raw = stuffing_config(replicates=2)
    raw["sweep"] = {"manipulation.stuff.f_incremental": [0.2, 0.6]}
    cfg = parse_config(tomli_w.dumps(raw))
    calls = []
    tested = calibrate.election_outcomes
    monkeypatch.setattr(calibrate, "election_outcomes", lambda e, *a, **k: calls.append(e.n) or tested(e, *a, **k))
    rows = calibration_table(cfg, tests=["zero_five"], nulls=("textbook",), seed=3, workers=1)
    assert len(calls) == 2 * (1 + 2)  # replicates x (honest once + stuffing at each point)
    honest = [row["rejection_rate"] for row in rows if row["mechanism"] == "none"]
    assert len(honest) == 2 and honest[0] == honest[1]


def test_the_table_does_not_depend_on_the_workers(monkeypatch):
    """Each election is one task seeded by its replicate alone: in this process or on two worker processes (the
    threshold lowered so that this small run starts them), the same table, bit for bit."""
    from simkit.forensics import calibrate

    raw = stuffing_config(replicates=3)
    raw["sweep"] = {"manipulation.stuff.f_incremental": [0.2, 0.6]}
    cfg = parse_config(tomli_w.dumps(raw))
    arguments = dict(tests=["correlation", "zero_five", "integer_percent"], draws=9, seed=5)
    serial = calibration_table(cfg, **arguments, workers=1)
    monkeypatch.setattr(calibrate, "PARALLEL_MIN_STATION_DRAWS", 0)
    monkeypatch.setattr(calibrate, "KeyedPool", spy := _PoolSpy(calibrate.KeyedPool))
    assert calibration_table(cfg, **arguments, workers=2) == serial
    assert spy.where == ["processes"]
    assert len(serial) == 2 * 2 * 2 * 3  # sweep points x scenarios x nulls x tests


def test_replicates_tested_as_simulated_give_the_table_of_the_whole_simulation():
    """The replicates simulated one after another, each tested as soon as it is drawn, are the elections of
    the whole simulation: the table equals the one computed from ``simulate``'s Dataset, bit for bit."""
    from simkit.engine.run import simulate

    raw = stuffing_config(replicates=3)
    raw["sweep"] = {"manipulation.stuff.f_incremental": [0.2, 0.6]}
    cfg = parse_config(tomli_w.dumps(raw))
    arguments = dict(tests=["correlation", "zero_five"], nulls=("textbook",), seed=5, workers=1)
    whole = calibration_table(cfg, **arguments, ds=simulate(cfg, seed=5, keep="full"))
    assert calibration_table(cfg, **arguments) == whole
    assert len(whole) == 2 * 2 * 2  # sweep points x scenarios x tests


def test_elections_waiting_for_workers_are_bounded(monkeypatch):
    """Memory holds one replicate and the elections handed to the workers: at most ``2 x workers + 1`` are
    submitted and unfinished at any time, whatever the replicates (here 9 elections on 2 worker processes)."""
    from simkit.forensics import calibrate

    raw = stuffing_config(replicates=3)
    raw["sweep"] = {"manipulation.stuff.f_incremental": [0.2, 0.6]}
    cfg = parse_config(tomli_w.dumps(raw))
    monkeypatch.setattr(calibrate, "PARALLEL_MIN_STATION_DRAWS", 0)
    monkeypatch.setattr(calibrate, "KeyedPool", spy := _PoolSpy(calibrate.KeyedPool))
    calibration_table(cfg, tests=["zero_five"], nulls=("simulated",), draws=19, seed=5, workers=2)
    assert spy.where == ["processes"]
    assert len(spy.outstanding) == 3 * (1 + 2)  # replicates x (honest once + stuffing at each point)
    assert max(spy.outstanding) <= 2 * 2 + 1


class _PoolSpy:
    """A stand-in for KeyedPool that records where each pool ran and, at each submission, how many of its
    futures were unfinished."""

    def __init__(self, pool):
        self.pool, self.where, self.outstanding, self.futures = pool, [], [], []

    def __call__(self, task, state, where, workers=1):
        self.where.append(where)
        pool = self.pool(task, state, where, workers)
        submit = pool.submit

        def counted(key):  # the futures not finished once this one is submitted
            self.futures.append(submit(key))
            self.outstanding.append(sum(not future.done() for future in self.futures))
            return self.futures[-1]

        pool.submit = counted
        return pool


def test_blas_is_limited_from_the_main_thread_only():
    """The BLAS limit is process-wide: set from a process's main thread, a no-op from other threads (a dask
    worker's), where nested limits would be restored out of order."""
    import contextlib
    import threading

    from threadpoolctl import threadpool_limits

    from simkit.forensics import calibrate

    with calibrate._one_blas_thread() as limit:  # (restored on leaving)
        assert isinstance(limit, threadpool_limits)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(calibrate._one_blas_thread()))
    thread.start()
    thread.join()
    assert isinstance(seen[0], contextlib.nullcontext)


def _blas_threads() -> list[int]:
    """The thread count of each BLAS pool loaded in this process."""
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_a_test_that_runs_on_no_election_is_named_in_a_warning(tmp_path, capsys):
    """Regional totals of a two-region config are too few for the correlation test: its rate is n/a in every
    row, and the run says so instead of leaving a table of n/a."""
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(stuffing_config(replicates=2)))
    assert main(["calibrate", str(path), "--tests", "correlation", "--null", "textbook", "--aggregate", "region",
                 "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert all(row["n"] == 0 for row in payload["rows"])
    assert payload["warnings"] == ["correlation (textbook null): ran on none of the simulated elections as published "
                                   "(aggregate region): no rate to quote; `simkit forensics` on one of them says why"]
    assert f"warning: {payload['warnings'][0]}" in captured.err


def test_a_sample_larger_than_the_election_is_one_line(tmp_path, capsys):
    """``--aggregate sample:N`` above the election's stations ended in a traceback (a ValueError), exit 1."""
    path, out = tmp_path / "c.toml", tmp_path / "rates.json"
    raw = stuffing_config(replicates=2)
    path.write_text(tomli_w.dumps(raw))
    stations = raw["electorate"]["stations"]
    assert main(["calibrate", str(path), "--tests", "spikes", "--null", "textbook", "--aggregate",
                 f"sample:{stations + 1}", "--quiet", "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"--aggregate: sample:{stations + 1}: the election has only "
                                               f"{stations} stations")
    assert not list(tmp_path.glob("*rates.json*"))


@pytest.mark.parametrize("cluster", [None, {"workers": 1}])
def test_a_sample_larger_than_the_election_is_refused_before_any_simulation(monkeypatch, cluster):
    """The refusal came from the first replicate's election, after the count matching and that simulation."""
    from simkit.errors import InputError
    from simkit.forensics import calibrate

    def simulated(*args, **kwargs):
        raise AssertionError("simulated before the sample size was checked")

    monkeypatch.setattr(calibrate, "prepare", simulated)
    monkeypatch.setattr(calibrate, "map_replicates", simulated)
    raw = stuffing_config(replicates=2)
    stations = raw["electorate"]["stations"]
    with pytest.raises(InputError, match=f"aggregate: sample:{stations + 1}: the election has only {stations} "):
        calibration_table(parse_config(tomli_w.dumps(raw)), tests=["spikes"], nulls=("textbook",), aggregate=f"sample:{stations + 1}")


def test_the_forensic_seed_of_a_replicate_shares_no_stream_with_the_engine():
    """The tests of simulated replicate r draw from below (REPLICATE_TESTS, r), which no engine stream of the same
    seed reaches; keyed (r,), test i's seed was the engine's own position (r, 0, i) of that replicate (the Shpilkin
    bootstrap drew the generator of manipulation block 1's target selection)."""
    seeds = [replicate_seed(5, r) for r in range(3)]
    assert overlapping([(s.entropy, s.spawn_key) for s in seeds], engine_positions(5, replicates=3, groups=16)) == []
