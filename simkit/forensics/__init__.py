"""Election forensics on one election's station returns (real or simulated), with textbook or simulated nulls.

``run_tests(election, tests, null=..., draws=..., seed=...)`` runs the tests by id (``TESTS``);
``rejection_rates(ds, ...)`` runs them on every replicate of a simulated Dataset, ``replicate_rejections`` on
one (the basis of ``calibrate``).
Test modules share the interface described in ``simkit.forensics.core``.
"""
from __future__ import annotations

from dataclasses import replace
from types import ModuleType
from typing import Iterable

import numpy as np
import xarray as xr

from simkit.forensics import (correlation, dip, fingerprint, integer_percent, klimek, klimek_ml, last_digit,
                              log_vote_rate, second_digit, shpilkin, sobyanin, spikes, zero_five)
from simkit.forensics.core import ALPHA, Election, TestResult, check_null, election
from simkit.forensics.nulls import as_seed_sequence, draw_generators, fit_honest, simulate_honest
from simkit.schema import REPLICATE

__all__ = ["TESTS", "TestResult", "Election", "election", "run_tests", "simulated_null_statistics",
           "rejection_rates", "replicate_rejections", "replicate_seed", "parse_tests"]

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


def simulated_null_statistics(e: Election, tests: Iterable[str], draws: int,
                              seed: np.random.SeedSequence) -> dict[str, np.ndarray]:
    """Each test's statistic on ``draws`` honest elections matched to ``e`` (shape (draws,) per test).

    Each honest election is simulated once and shared by all tests. Tests whose statistic is a model fit
    (``MAX_NULL_DRAWS`` in their module) use only the first ``MAX_NULL_DRAWS`` draws.
    """
    model = fit_honest(e)
    tests = list(tests)
    limits = {t: min(draws, getattr(TESTS[t], "MAX_NULL_DRAWS", draws)) for t in tests}
    values = {t: np.full(limits[t], np.nan) for t in tests}
    for i, gen in enumerate(draw_generators(seed, draws)):
        honest = simulate_honest(e, model, gen)
        for t in tests:
            if i < limits[t]:
                values[t][i] = TESTS[t].statistic(honest)
    return values


def run_tests(e: Election, tests: Iterable[str] | None = None, *, null: str = "textbook", draws: int = 1000,
              seed: int | np.random.SeedSequence | None = None) -> list[TestResult]:
    """Run tests (ids, all by default) on one election. Seeds are derived per test from ``seed``."""
    check_null(null)
    ids = list(tests) if tests is not None else list(TESTS)
    root = as_seed_sequence(seed)
    per_test, simulated_seed = root.spawn(2)
    children = dict(zip(TESTS, per_test.spawn(len(TESTS))))
    null_values = simulated_null_statistics(e, ids, draws, simulated_seed) if null == "simulated" else {}
    results = [TESTS[t].run(e, null=null, draws=draws, rng=children[t], null_statistics=null_values.get(t))
               for t in ids]
    return [_with_null_z(r, null_values[r.test]) if r.test in null_values else r for r in results]


def _with_null_z(result: TestResult, null_statistics: np.ndarray) -> TestResult:
    """Add ``null_z`` = (statistic - simulated null mean) / null sd and ``null_draws``: how far beyond its null a
    test lies when the Monte Carlo p-value sits at its floor 1 / (draws + 1)."""
    sims = null_statistics[np.isfinite(null_statistics)]
    spread = float(sims.std(ddof=1)) if sims.size > 1 else 0.0
    z = (result.statistic - float(sims.mean())) / spread if spread > 0 else float("nan")
    return replace(result, extra={**result.extra, "null_z": z, "null_draws": int(sims.size)})


def replicate_rejections(ds: xr.Dataset, tests: Iterable[str] | None = None, *, null: str = "textbook",
                         draws: int = 200, alpha: float = ALPHA,
                         seed: int | np.random.SeedSequence | None = None) -> dict[str, bool]:
    """Whether each test rejects at ``alpha`` on one simulated election (a Dataset without a ``replicate``
    dim); descriptive tests are left out."""
    ids = [t for t in (tests or TESTS) if t != fingerprint.ID]
    return {result.test: result.p_value < alpha
            for result in run_tests(election(ds), ids, null=null, draws=draws, seed=seed)}


def replicate_seed(seed: int | None, replicate: int) -> np.random.SeedSequence:
    """The forensic seed of replicate ``replicate``: the ``replicate``-th child of ``SeedSequence(seed)``,
    computed from the position alone (so any worker computes the same one)."""
    return np.random.SeedSequence(seed, spawn_key=(replicate,))


def rejection_rates(ds: xr.Dataset, tests: Iterable[str] | None = None, *, null: str = "textbook",
                    draws: int = 200, alpha: float = ALPHA, seed: int | None = None) -> dict[str, dict]:
    """Share of replicates (the ``replicate`` dim of a simulated Dataset) in which each test rejects at ``alpha``.

    Returns test id -> {"rejection_rate", "n"} (descriptive tests are left out). Replicate ``r`` uses
    :func:`replicate_seed` ``(seed, r)``."""
    n = ds.sizes.get(REPLICATE, 1)
    rejections = [replicate_rejections(ds.isel({REPLICATE: r}) if REPLICATE in ds.dims else ds, tests, null=null,
                                       draws=draws, alpha=alpha, seed=replicate_seed(seed, r)) for r in range(n)]
    return {t: {"rejection_rate": float(np.mean([row[t] for row in rejections])), "n": n} for t in rejections[0]}
