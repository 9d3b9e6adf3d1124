"""Election forensics on one election's station returns (real or simulated), with textbook or simulated nulls.

``run_tests(election, tests, null=..., draws=..., seed=...)`` runs the tests by id (``TESTS``);
``rejection_rates(ds, ...)`` runs them on every replicate of a simulated Dataset, ``replicate_rejections`` on
one (the basis of ``calibrate``).
Test modules share the interface described in ``simkit.forensics.core``.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from types import ModuleType
from typing import Iterable

import numpy as np
import xarray as xr

from simkit.forensics import (correlation, dip, fingerprint, integer_percent, klimek, klimek_ml, last_digit,
                              log_vote_rate, second_digit, shpilkin, sobyanin, spikes, zero_five)
from simkit.forensics.core import ALPHA, Election, TestResult, check_null, election
from simkit.forensics.nulls import as_seed_sequence, fit_honest, simulate_honest
from simkit.schema import REPLICATE

__all__ = ["TESTS", "TestResult", "Election", "election", "run_tests", "simulated_null_statistics",
           "rejection_rates", "replicate_rejections", "run_each", "replicate_seed", "parse_tests"]

_MODULES = (second_digit, last_digit, zero_five, log_vote_rate, dip, correlation, sobyanin, fingerprint, klimek,
            klimek_ml, integer_percent, spikes, shpilkin)
TESTS: dict[str, ModuleType] = {m.ID: m for m in _MODULES}


def parse_tests(text: str | None) -> list[str]:
    """Test ids from a comma-separated list (all tests when None); raises ValueError on an unknown id."""
    if text is None:
        return list(TESTS)
    ids = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in ids if t not in TESTS]
    if unknown or not ids:
        raise ValueError(f"unknown test id {', '.join(unknown) or '(none)'} (choose from {', '.join(TESTS)})")
    return ids


#: below this many station-draws (stations × null draws) the simulated null stays in this process
PARALLEL_MIN_STATION_DRAWS = 2_000_000

_null_job: tuple | None = None  # (election, model, tests, limits) in a worker process


def simulated_null_statistics(e: Election, tests: Iterable[str], draws: int,
                              seed: np.random.SeedSequence, workers: int | None = None) -> dict[str, np.ndarray]:
    """Each test's statistic on ``draws`` honest elections matched to ``e`` (shape (draws,) per test).

    Each honest election is simulated once and shared by all tests. Tests whose statistic is a model fit
    (``MAX_NULL_DRAWS`` in their module) use only the first ``MAX_NULL_DRAWS`` draws. A draw on which a
    statistic cannot be computed (ValueError, LinAlgError: e.g. a fit on a few regional units) stays NaN
    and is left out of the p-value (which then raises if no draw ran). Draw ``i`` uses the ``i``-th child
    of ``seed`` alone, so the draws run in ``workers`` processes (default: every core, for large
    elections, outside daemonic processes such as dask workers) with the same result as in one.
    """
    model = fit_honest(e)
    tests = list(tests)
    limits = {t: min(draws, getattr(TESTS[t], "MAX_NULL_DRAWS", draws)) for t in tests}
    job = (e, model, tests, limits)
    children = seed.spawn(draws)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or e.n * draws < PARALLEL_MIN_STATION_DRAWS or multiprocessing.current_process().daemon:
        rows = [_null_draw(job, i, child) for i, child in enumerate(children)]
    else:
        from simkit.engine import process_context

        with ProcessPoolExecutor(workers, mp_context=process_context(), initializer=_init_null_worker,
                                 initargs=(job,)) as pool:
            rows = list(pool.map(_null_draw_in_worker, range(draws), children,
                                 chunksize=max(1, draws // (8 * workers))))
    return {t: np.array([row[t] for row in rows[:limits[t]]], dtype=float) for t in tests}


def _null_draw(job: tuple, index: int, seed: np.random.SeedSequence) -> dict[str, float]:
    """The statistics of null draw ``index`` (NaN for a test past its limit or that cannot run)."""
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


def _init_null_worker(job: tuple) -> None:
    global _null_job
    _null_job = job


def _null_draw_in_worker(index: int, seed: np.random.SeedSequence) -> dict[str, float]:
    return _null_draw(_null_job, index, seed)


def run_tests(e: Election, tests: Iterable[str] | None = None, *, null: str = "textbook", draws: int = 1000,
              seed: int | np.random.SeedSequence | None = None) -> list[TestResult]:
    """Run tests (ids, all by default) on one election. Seeds are derived per test from ``seed``."""
    return list(run_each(e, tests, null, draws, seed, tolerate=False).values())


def run_each(e: Election, tests: Iterable[str] | None, null: str, draws: int,
         seed: int | np.random.SeedSequence | None, tolerate: bool) -> dict[str, TestResult | None]:
    """Test id -> result (seeds as in :func:`run_tests`); with ``tolerate``, None for a test that raised
    ValueError or LinAlgError (it cannot run on these data), else the error propagates."""
    check_null(null)
    ids = list(tests) if tests is not None else list(TESTS)
    root = as_seed_sequence(seed)
    per_test, simulated_seed = root.spawn(2)
    children = dict(zip(TESTS, per_test.spawn(len(TESTS))))
    null_values = simulated_null_statistics(e, ids, draws, simulated_seed) if null == "simulated" else {}
    results: dict[str, TestResult | None] = {}
    for test in ids:
        try:
            result = TESTS[test].run(e, null=null, draws=draws, rng=children[test],
                                     null_statistics=null_values.get(test))
        except (ValueError, np.linalg.LinAlgError):
            if not tolerate:
                raise
            results[test] = None
            continue
        results[test] = _with_null_z(result, null_values[test]) if test in null_values else result
    return results


def _with_null_z(result: TestResult, null_statistics: np.ndarray) -> TestResult:
    """Add ``null_z`` = (statistic - simulated null mean) / null sd and ``null_draws``: how far beyond its null a
    test lies when the Monte Carlo p-value sits at its floor 1 / (draws + 1)."""
    sims = null_statistics[np.isfinite(null_statistics)]
    spread = float(sims.std(ddof=1)) if sims.size > 1 else 0.0
    z = (result.statistic - float(sims.mean())) / spread if spread > 0 else float("nan")
    return replace(result, extra={**result.extra, "null_z": z, "null_draws": int(sims.size)})


def replicate_rejections(ds: xr.Dataset, tests: Iterable[str] | None = None, *, null: str = "textbook",
                         draws: int = 200, alpha: float = ALPHA,
                         seed: int | np.random.SeedSequence | None = None) -> dict[str, bool | None]:
    """Whether each test rejects at ``alpha`` on one simulated election (a Dataset without a ``replicate``
    dim); descriptive tests are left out. None for a test that cannot run on these data (it raised a
    ValueError or a LinAlgError: too few stations for its fit, as on regional totals), so that a table
    counts it apart instead of as a rejection or an acceptance. Seeds as in :func:`run_tests`."""
    ids = [t for t in (tests or TESTS) if t != fingerprint.ID]
    return {test: None if result is None else result.p_value < alpha
            for test, result in run_each(election(ds), ids, null, draws, seed, tolerate=True).items()}


def replicate_seed(seed: int | None, replicate: int) -> np.random.SeedSequence:
    """The forensic seed of replicate ``replicate``: the ``replicate``-th child of ``SeedSequence(seed)``,
    computed from the position alone (so any worker computes the same one)."""
    return np.random.SeedSequence(seed, spawn_key=(replicate,))


def rejection_rates(ds: xr.Dataset, tests: Iterable[str] | None = None, *, null: str = "textbook",
                    draws: int = 200, alpha: float = ALPHA, seed: int | None = None) -> dict[str, dict]:
    """Share of replicates (the ``replicate`` dim of a simulated Dataset) in which each test rejects at ``alpha``.

    Returns test id -> {"rejection_rate", "n"} (descriptive tests are left out; :func:`rate`). Replicate
    ``r`` uses :func:`replicate_seed` ``(seed, r)``."""
    n = ds.sizes.get(REPLICATE, 1)
    rejections = [replicate_rejections(ds.isel({REPLICATE: r}) if REPLICATE in ds.dims else ds, tests, null=null,
                                       draws=draws, alpha=alpha, seed=replicate_seed(seed, r)) for r in range(n)]
    return {t: rate([row[t] for row in rejections]) for t in rejections[0]}


def rate(rejections: list[bool | None]) -> dict:
    """{"rejection_rate", "n"} over the replicates where the test could run (None entries left out); the
    rate is None when it ran nowhere."""
    ran = [value for value in rejections if value is not None]
    return {"rejection_rate": float(np.mean(ran)) if ran else None, "n": len(ran)}
