"""The simulated null: each test's statistic on honest elections matched to the data, drawn in the background.

:class:`SimulatedNull` fits an honest model (:data:`simkit.forensics.nulls.flat.NULL_MODELS`) and starts the draws: in worker
processes for large elections (every core; not inside daemonic processes such as dask workers), else at once
in this process. While workers draw, the caller runs the tests on the observed election; each test receives
:meth:`SimulatedNull.pending` ``(test)``, an array-like whose values are waited for only when the test's
p-value reads them (``numpy.asarray``), so the tests' own work (model fits, bootstraps, exact nulls)
overlaps the draws.

Each honest election is simulated once and shared by all tests. Tests whose statistic is a model fit
(``MAX_NULL_DRAWS`` in their module) use only the first ``MAX_NULL_DRAWS`` draws. A draw on which a statistic
cannot be computed (ValueError, LinAlgError: e.g. a fit on a few regional units) stays NaN and is left out of
the p-value (which then raises if no draw ran). Draw ``i`` uses the ``i``-th child of the seed alone, so the
result does not depend on the number of workers.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Iterable

import numpy as np

from simkit.forensics.core import Election
from simkit.forensics.nulls.flat import NULL_MODELS, simulate_honest
from simkit.engine.parallel import process_pool, stop_pool

#: below this many station-draws (stations × null draws) the simulated null stays in this process
PARALLEL_MIN_STATION_DRAWS = 2_000_000
#: draws per task handed to a worker process, as a share of draws per worker
CHUNKS_PER_WORKER = 8

_job: tuple | None = None  # (election, model, tests, limits) in a worker process


class SimulatedNull:
    """Each test's statistic on ``draws`` honest elections matched to ``e`` by the honest model of the null
    named ``model`` (:data:`simkit.forensics.nulls.flat.NULL_MODELS`; see the module docstring).

    Use as a context manager (the worker processes stop on exit); :meth:`values` waits for every draw.
    """

    def __init__(self, e: Election, tests: Iterable[str], draws: int, seed: np.random.SeedSequence,
                 workers: int | None = None, model: str = "simulated"):
        from simkit.forensics import TESTS

        self.tests = list(tests)
        self.limits = {t: min(draws, getattr(TESTS[t], "MAX_NULL_DRAWS", draws)) for t in self.tests}
        job = (e, NULL_MODELS[model](e), self.tests, self.limits)
        children = seed.spawn(draws)
        workers = workers or os.cpu_count() or 1
        self._values: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()  # tests in several threads read values()
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future] = []
        self._rows: list[dict[str, float]] | None = None  # the draws, when drawn in this process
        if workers == 1 or e.n * draws < PARALLEL_MIN_STATION_DRAWS or multiprocessing.current_process().daemon:
            self._rows = [_draw(job, i, child) for i, child in enumerate(children)]
            return
        self._pool = process_pool(workers, _init_worker, (job,))
        size = max(1, draws // (CHUNKS_PER_WORKER * workers))
        self._futures = [self._pool.submit(_draws_in_worker, range(start, min(start + size, draws)),
                                           children[start:start + size]) for start in range(0, draws, size)]

    def __enter__(self) -> SimulatedNull:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(wait=exc_type is None)

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes, cancelling draws not yet started; ``wait=False`` (an error or an
        interruption) terminates the draws under way too."""
        if self._pool is not None:
            if wait:
                self._pool.shutdown(cancel_futures=True)
            else:
                stop_pool(self._pool, wait=False)
            self._pool = None

    def values(self) -> dict[str, np.ndarray]:
        """test -> its statistic on each draw it uses, shape (draws,) or (MAX_NULL_DRAWS,); waits for the
        draws."""
        with self._lock:
            if self._values is None:
                rows = self._rows if self._rows is not None else [row for f in self._futures for row in f.result()]
                self.close()
                self._values = {t: np.array([row[t] for row in rows[:self.limits[t]]], dtype=float)
                                for t in self.tests}
            return self._values

    def pending(self, test: str) -> PendingStatistics:
        """``test``'s null statistics as an array-like that waits for the draws when read."""
        return PendingStatistics(self, test)


class PendingStatistics:
    """One test's simulated null statistics, waited for when ``numpy.asarray`` (or ``np.mean``...) reads them."""

    def __init__(self, null: SimulatedNull, test: str):
        self._null, self._test = null, test

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        values = self._null.values()[self._test]
        return values if dtype is None else values.astype(dtype, copy=False)


def _draw(job: tuple, index: int, seed: np.random.SeedSequence) -> dict[str, float]:
    """The statistics of null draw ``index`` (NaN for a test past its limit or that cannot run)."""
    from simkit.forensics import TESTS

    e, model, tests, limits = job
    honest = simulate_honest(e, model, seed)
    values = {}
    for t in tests:
        values[t] = np.nan
        if index < limits[t]:
            try:
                values[t] = TESTS[t].statistic(honest)
            except (ValueError, np.linalg.LinAlgError):  # left NaN: the p-value uses the draws that ran
                pass
    return values


def _init_worker(job: tuple) -> None:
    global _job
    _job = job


def _draws_in_worker(indices: range, seeds: list[np.random.SeedSequence]) -> list[dict[str, float]]:
    return [_draw(_job, i, seed) for i, seed in zip(indices, seeds)]
