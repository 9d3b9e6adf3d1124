"""The simulated null: each test's statistic on honest elections matched to the data, drawn in the background.

:class:`SimulatedNull` fits the honest models its tests read (under ``simulated`` each test's own,
:data:`simkit.forensics.registry.SIMULATED_MODEL`; under ``flat`` the flat model) and starts the draws: in worker
processes for large elections (every core; not inside daemonic processes such as dask workers), else at once
in this process. While workers draw, the caller runs the tests on the observed election; each test receives
:meth:`SimulatedNull.pending` ``(test)``, an array-like whose values are waited for only when the test's
p-value reads them (``numpy.asarray``), so the tests' own work (model fits, bootstraps, exact nulls)
overlaps the draws.

Each draw simulates one honest election per model its tests read (at most a hierarchical and a
turnout-conditional one, each from its own seed, :func:`simkit.forensics.nulls.flat.model_seed`), shared by
all tests of that model. Tests whose statistic is a model fit
(``MAX_NULL_DRAWS`` in their module) use only the first ``MAX_NULL_DRAWS`` draws. A draw on which a statistic
cannot be computed (ValueError, LinAlgError: e.g. a fit on a few regional units) stays NaN and is left out of
the p-value (which then raises if no draw ran). Draw ``i`` uses the ``i``-th child of the seed alone, so the
result does not depend on the number of workers.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Iterable

import numpy as np

from simkit.forensics.core import Election
from simkit.forensics.nulls.flat import HONEST_MODELS, model_seed, simulate_honest
from simkit.forensics.registry import TESTS, honest_model, null_draws_used
from simkit.engine.parallel import KeyedPool, choose, chunks
from simkit.progress import progress_bar

#: below this many station-draws (stations × null draws) the simulated null stays in this process
PARALLEL_MIN_STATION_DRAWS = 2_000_000
#: draws per task handed to a worker process, as a share of draws per worker
CHUNKS_PER_WORKER = 8


class SimulatedNull:
    """Each test's statistic on ``draws`` honest elections matched to ``e`` by its honest model under the null
    named ``null`` (``simulated`` or ``flat``; :func:`simkit.forensics.registry.honest_model`, module docstring).

    Use as a context manager (the worker processes stop on exit); :meth:`values` waits for every draw.
    ``progress``: a bar counting the draws done (:func:`simkit.progress.progress_bar`).
    """

    def __init__(self, e: Election, tests: Iterable[str], draws: int, seed: np.random.SeedSequence,
                 workers: int | None = None, null: str = "simulated", progress: bool = False):
        self.tests = list(tests)
        self.limits = {t: null_draws_used(t, draws) for t in self.tests}
        #: test -> the name of the honest model its null draws from
        self.models = {t: honest_model(t, null) for t in self.tests}
        fitted = {name: HONEST_MODELS[name](e) for name in dict.fromkeys(self.models.values())}
        job = (e, fitted, self.models, self.limits)
        self._values: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()  # tests in several threads read values()
        where, workers = choose(workers, e.n * draws, PARALLEL_MIN_STATION_DRAWS)
        self._pool = KeyedPool(_draws, job, where, workers)
        self._bar = progress_bar(draws, enabled=progress, unit="draw")
        children = seed.spawn(draws)
        size = max(1, draws // (CHUNKS_PER_WORKER * workers))
        self._futures: list[Future] = []
        for indices in chunks(draws, size):
            future = self._pool.submit((indices, children[indices.start:indices.stop]))
            future.add_done_callback(lambda f, done=len(indices): f.cancelled() or self._bar.update(done))
            self._futures.append(future)

    def __enter__(self) -> SimulatedNull:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(wait=exc_type is None)

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes, cancelling draws not yet started; ``wait=False`` (an error or an
        interruption) terminates the draws under way too."""
        self._pool.close(wait)
        self._bar.close()

    def values(self) -> dict[str, np.ndarray]:
        """test -> its statistic on each draw it uses, shape (draws,) or (MAX_NULL_DRAWS,); waits for the
        draws."""
        with self._lock:
            if self._values is None:
                rows = [row for future in self._futures for row in future.result()]
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
    """The statistics of null draw ``index`` (NaN for a test past its limit or that cannot run): one honest
    election per model that a test still within its limit reads."""
    e, fitted, models, limits = job
    needed = {models[t] for t in models if index < limits[t]}
    honest = {name: simulate_honest(e, model, model_seed(seed, name)) for name, model in fitted.items()
              if name in needed}
    values = {}
    for t, name in models.items():
        values[t] = np.nan
        if index < limits[t]:
            try:
                values[t] = TESTS[t].statistic(honest[name])
            except (ValueError, np.linalg.LinAlgError):  # left NaN: the p-value uses the draws that ran
                pass
    return values


def _draws(job: tuple, chunk: tuple[range, list[np.random.SeedSequence]]) -> list[dict[str, float]]:
    """The statistics of the null draws of ``chunk`` (their indices and seeds)."""
    indices, seeds = chunk
    return [_draw(job, i, seed) for i, seed in zip(indices, seeds)]
