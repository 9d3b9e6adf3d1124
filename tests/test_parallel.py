"""The one parallel module (:mod:`simkit.engine.parallel`): where a job runs is chosen in one place, its state reaches
each worker once, keyed chunks come back in key order, and the results do not depend on where they ran."""
from __future__ import annotations

import os

import numpy as np
import pytest

from simkit.engine.parallel import KeyedPool, choose, chunks, process_context
from simkit.forensics.integer.exact import station_probabilities


def _draws(seed: int, key: range) -> np.ndarray:
    """Draws keyed by logical position alone: one stream per index."""
    return np.array([np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,))).random() for i in key])


def _pid(_state, _key) -> int:
    return os.getpid()


def _where(_state, _key) -> tuple:
    return choose(2, 10, 1)


def test_choose_decides_in_one_place():
    assert choose(1, 10**9, 1) == ("serial", 1)
    assert choose(4, 10, 100) == ("serial", 1)
    assert choose(4, 100, 100, releases_gil=True) == ("threads", 4)
    assert choose(4, 100, 100) == ("processes", 4)
    assert choose(None, 100, 100)[1] == (os.cpu_count() or 1)


@pytest.mark.parametrize("where", ["serial", "threads", "processes"])
def test_keyed_chunks_come_back_in_order_whatever_runs_them(where):
    keys = chunks(103, 10)
    expected = np.concatenate([_draws(7, key) for key in keys])
    with KeyedPool(_draws, 7, where, 2) as pool:
        got = np.concatenate(list(pool.map(keys, in_flight=3)))
    assert np.array_equal(got, expected)


def test_processes_really_run_in_workers_and_do_not_nest():
    with KeyedPool(_pid, None, "processes", 2) as pool:
        pids = set(pool.map(range(8)))
    assert os.getpid() not in pids
    with KeyedPool(_where, None, "processes", 2) as pool:
        assert pool.submit(None).result() == ("serial", 1)  # a worker runs its own jobs in itself


def test_close_without_waiting_terminates_the_workers():
    pool = KeyedPool(_pid, None, "processes", 2)
    pool.submit(None).result()
    processes = list(pool._executor._processes.values())
    pool.close(wait=False)
    assert not any(process.is_alive() for process in processes)


def test_chunks_cover_the_range_once():
    assert [list(c) for c in chunks(5, 2)] == [[0, 1], [2, 3], [4]]
    assert chunks(0, 3) == []
    with pytest.raises(ValueError, match="size must be at least 1"):
        chunks(3, 0)


def test_processes_still_fork_after_every_compiled_null_has_run():
    """No compiled function of simkit starts numba's OpenMP layer (not fork-safe): after the exact
    integer-percentage null, the heaviest compiled loop of the forensic tests, a process pool forks and works."""
    station_probabilities(np.array([900, 1200]), np.array([0.6, 0.7]), np.array([0.5, 0.8]), 0.5, 6.0)
    assert process_context().get_start_method() == "fork"
    with KeyedPool(_pid, None, "processes", 2) as pool:
        pids = list(pool.map(range(4)))
    assert os.getpid() not in pids
