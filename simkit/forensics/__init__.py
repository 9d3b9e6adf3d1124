"""Election forensics on one election's station returns (real or simulated), with textbook or simulated nulls.

``run_tests(election, tests, null=..., draws=..., seed=...)`` runs the tests by id (``TESTS``);
``rejection_rates(ds, ...)`` runs them on every replicate of a simulated Dataset, ``replicate_rejections`` on
one; ``election_rejections`` and ``rejection_counts`` are the machine of every size and power (``calibrate``'s
table and :mod:`simkit.forensics.power`).
Test modules share the interface described in ``simkit.forensics.core``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Hashable, Iterable

import numpy as np
import xarray as xr

from simkit.forensics import empirical, fingerprint
from simkit.forensics.applicable import (data_reason, is_not_applicable, not_applicable, ran,
                                        reason_not_applicable)
from simkit.forensics.calibration import controls, data_fingerprint, empirical_tests, measured, uncalibrated
from simkit.forensics.calibration_status import CALIBRATED, NOT_MEASURED, UNCALIBRATED, CalibrationStatus
from simkit.forensics.core import ALPHA, Election, TestResult, check_draws, check_null, election, holm, verdict
from simkit.forensics.floor import EMPIRICAL_MIN_DRAWS, floor_of, floor_verdict, result_draws, result_floors
from simkit.forensics.nulls.flat import as_seed_sequence, keyed_seed
from simkit.forensics.nulls.simulated import SimulatedNull
from simkit.forensics.nulls.tails import null_tail
from simkit.forensics.registry import (ESTIMATES_APART, NOT_HELD_OUT, TESTS, alternative, check_tests,
                                      chosen_on_panel, parse_tests, statistic_function)
from simkit.schema import REPLICATE, rejects
from simkit.streams import OBSERVED, REPLICATE_TESTS

__all__ = ["TESTS", "TestResult", "Election", "election", "run_tests", "simulated_null_statistics",
           "rejection_rates", "replicate_rejections", "election_rejections", "election_outcomes", "rejection_counts",
           "run_each", "replicate_seed", "observed_seed", "parse_tests", "alternative", "family_p_value", "holm_alarms",
           "rejected_tests",
           "calibration_label", "is_calibrated", "calibration_state", "statistic_function", "CalibrationStatus"]

def simulated_null_statistics(e: Election, tests: Iterable[str], draws: int,
                              seed: np.random.SeedSequence, workers: int | None = None,
                              null: str = "simulated") -> dict[str, np.ndarray]:
    """Each test's statistic on ``draws`` honest elections matched to ``e`` (shape (draws,) per test, or
    ``MAX_NULL_DRAWS`` for model fits) under the honest model of ``null``:
    :class:`simkit.forensics.nulls.simulated.SimulatedNull`, waited for."""
    with SimulatedNull(e, tests, draws, seed, workers, null=null) as simulated:
        return simulated.values()


def run_tests(e: Election, tests: Iterable[str] | None = None, *, null: str = "textbook", draws: int = 1000,
              seed: int | np.random.SeedSequence | None = None) -> list[TestResult]:
    """Run tests (ids, all by default) on one election. Seeds are derived per test from ``seed``. A test whose
    p-value cannot fall to :data:`ALPHA` with ``draws`` null draws (:mod:`simkit.forensics.floor`) says so in
    its verdict and carries ``smallest_p`` in ``extra``."""
    return list(run_each(e, tests, null, draws, seed, tolerate=False).values())


def run_each(e: Election, tests: Iterable[str] | None, null: str, draws: int,
         seed: int | np.random.SeedSequence | None, tolerate: bool, progress: bool = False,
         estimates: bool = True) -> dict[str, TestResult]:
    """Test id -> result (seeds as in :func:`run_tests`). A test that cannot run on these data
    (:func:`simkit.forensics.applicable.reason_not_applicable`) gives an ``n/a`` result with the reason, and with
    what it estimates when the data allow it (:func:`_not_applicable`); so does,
    with ``tolerate``, a test that raised ValueError or LinAlgError (else the error propagates). ``progress``: a
    bar over a simulated null's draws. ``estimates`` False: the tests of
    :data:`~simkit.forensics.registry.ESTIMATES_APART` leave out their estimates (the same statistic, p-value and
    verdict; their other figures absent)."""
    check_null(null)
    check_draws(draws)
    ids = check_tests(tests) if tests is not None else list(TESTS)
    root = as_seed_sequence(seed)
    per_test, simulated_seed = root.spawn(2)
    children = dict(zip(TESTS, per_test.spawn(len(TESTS))))
    reasons = {test: reason_not_applicable(e, test, null) for test in ids}
    skipped = {test: _not_applicable(e, test, null, reason, children[test], tolerate, estimates)
               for test, reason in reasons.items() if reason}
    ids = [test for test in ids if not reasons[test]]
    if null == "textbook" or not ids:
        done = {test: _run_one(e, test, null, draws, children[test], None, tolerate, estimates) for test in ids}
        return _with_floor(_with_calibration({test: skipped.get(test) or done[test] for test in reasons}, null, e),
                           null, draws)
    with SimulatedNull(e, ids, draws, simulated_seed, null=null, progress=progress) as simulated:
        # each test runs in a thread while the null draws run: a test's own work (fits, bootstraps, exact
        # nulls; compiled code releases the GIL) overlaps the draws, and its p-value waits for them
        threads = ThreadPoolExecutor(len(ids))
        try:
            futures = {test: threads.submit(_run_one, e, test, null, draws, children[test],
                                            simulated.pending(test), tolerate, estimates) for test in ids}
            results = {test: future.result() for test, future in futures.items()}
        except BaseException:  # an error or a signal: do not wait for tests that wait for the draws
            threads.shutdown(wait=False, cancel_futures=True)
            raise
        threads.shutdown()
        null_values = simulated.values()
    done = {test: result if result is None or is_not_applicable(result)
            else _with_null_z(result, null_values[test], simulated.models[test]) for test, result in results.items()}
    return _with_floor(_with_calibration({test: skipped.get(test) or done[test] for test in reasons}, null, e),
                       null, draws)


def _with_floor(results: dict[str, TestResult | None], null: str, draws: int) -> dict[str, TestResult | None]:
    """Mark each result whose p-value cannot fall to :data:`ALPHA` with the null draws it rests on
    (:mod:`simkit.forensics.floor`: a Monte Carlo p-value, not an empirically calibrated one, whose floor
    1 / (n + 1) is above ALPHA, n the draws on which its statistic could be computed,
    :func:`simkit.forensics.floor.result_draws`, of ``draws`` asked for): ``smallest_p`` (that floor) and
    ``null_draws`` (n) added, and the verdict says it cannot reject with these draws
    (:func:`simkit.forensics.floor.floor_verdict`) rather than "no anomaly detected"."""
    def mark(result: TestResult | None) -> TestResult | None:
        n = None if result is None else result_draws(result, null, draws)
        floor = None if n is None else floor_of(n)
        if floor is None or rejects(floor):
            return result
        return replace(result, verdict=floor_verdict(n, floor),
                       extra={**result.extra, "smallest_p": floor, "null_draws": n})

    return {test: mark(result) for test, result in results.items()}


def _with_calibration(results: dict[str, TestResult | None], null: str, e: Election
                      ) -> dict[str, TestResult | None]:
    """Add ``calibration``, the text of a :class:`CalibrationStatus`, to each result
    (:mod:`simkit.forensics.calibration`): ``uncalibrated`` when its
    measured size under ``null`` is above nominal, ``calibrated`` when measured and not, ``not measured``; a test
    read empirically under ``null`` gets its empirically calibrated p-value (:func:`_empirically`). A calibrated
    status of a test whose statistic was chosen on the panel that measured it
    (:func:`simkit.forensics.registry.chosen_on_panel`) says so: ``calibrated (on the panel it was chosen on:
    not held out)``, or ``calibrated (empirical, k clean elections; on the panel ...)``."""
    flagged, measured_tests = uncalibrated(null), {t for counts in measured(null).values() for t in counts}
    read_empirically = empirical_tests(null)
    reading = (controls(null), data_fingerprint(e.registered, e.ballots)) if read_empirically & set(results) else None

    def mark(test: str, result: TestResult | None) -> TestResult | None:
        if result is None or result.p_value is None:
            return result
        if test in read_empirically:
            result, status = _empirically(result, e.n, *reading, test in flagged)
        else:
            status = CalibrationStatus(UNCALIBRATED if test in flagged
                                       else CALIBRATED if test in measured_tests else NOT_MEASURED)
        if status.calibrated and chosen_on_panel(test, null):
            status = status.qualified(NOT_HELD_OUT)
        return replace(result, extra={**result.extra, "calibration": status.text})

    return {test: mark(test, result) for test, result in results.items()}


def _empirically(result: TestResult, stations: int, control_elections: dict, fingerprint: str, flagged: bool
                 ) -> tuple[TestResult, CalibrationStatus]:
    """``result`` (on an election of ``stations`` stations and data ``fingerprint``) read against the
    systematic-error model of the clean ``control_elections`` (:func:`simkit.forensics.calibration.controls`;
    :func:`simkit.forensics.empirical.calibrated_p`, held out for a control), and its calibration status: its
    p-value becomes ``empirical_p``, the Monte Carlo one stays as ``monte_carlo_p``, and the status is
    ``calibrated (empirical, k clean elections)`` (``uncalibrated (...)`` when its held-out size is above
    nominal); the result unchanged and ``uncalibrated`` when no control measured it or the null's spread is
    unknown."""
    x = result.extra
    reading = empirical.calibrated_reading(result.test, result.statistic, x.get("simulated_mean"),
                                           x.get("simulated_sd"), stations, control_elections, fingerprint,
                                           alternative(result.test))
    if reading is None:
        return result, CalibrationStatus(UNCALIBRATED)
    k = reading["empirical_k"]
    status = CalibrationStatus(UNCALIBRATED if flagged else CALIBRATED,
                               (f"empirical, {k} clean election{'s' if k != 1 else ''}",))
    return replace(result, p_value=reading["empirical_p"], verdict=verdict(reading["empirical_p"]),
                   extra={**x, "monte_carlo_p": result.p_value, **reading}), status


def calibration_state(status: str | None) -> str | None:
    """The state (:data:`simkit.forensics.calibration_status.STATES`) of a ``calibration`` status given as its
    text (:class:`CalibrationStatus`), whatever its qualifiers; None for no status."""
    read = CalibrationStatus.read(status)
    return None if read is None else read.state


def is_calibrated(status: str | None) -> bool:
    """Whether a ``calibration`` status (its text) makes a test a member of the family-wise verdict."""
    read = CalibrationStatus.read(status)
    return read is not None and read.calibrated


def calibration_label(status: str | None) -> str | None:
    """The label shown beside a p-value whose ``calibration`` is ``status`` (its text,
    :attr:`CalibrationStatus.label`); None for no status and for a calibrated test read by its Monte Carlo
    p-value and chosen without its panel."""
    read = CalibrationStatus.read(status)
    return None if read is None else read.label


def family_p_value(result: TestResult) -> float | None:
    """The p-value a family-wise verdict uses: the empirically calibrated p-value of a test read empirically;
    else the simulated null's direction-aware tail p-value (``null_tail_p``, past the Monte Carlo floor) when
    there is one; else the test's p-value. None for a descriptive test and for a test not measured as calibrated
    on clean elections under its null (``uncalibrated`` or ``not measured``: left out of the family)."""
    if result.p_value is None or not is_calibrated(result.extra.get("calibration")):
        return None
    return result.extra.get("empirical_p", result.extra.get("null_tail_p", result.p_value))


def holm_alarms(results: Iterable[TestResult], alpha: float = ALPHA) -> list[str]:
    """Tests rejecting after Holm's correction at ``alpha`` over the calibrated tests (:func:`family_p_value`):
    adjusted p-value at or below ``alpha`` (:func:`simkit.schema.rejects`), as a single test's verdict
    (:func:`simkit.forensics.core.verdict`)."""
    results = list(results)
    adjusted = holm([family_p_value(r) for r in results])
    return [r.test for r, p in zip(results, adjusted) if rejects(p, alpha)]


def rejected_tests(results: Iterable[TestResult], alpha: float = ALPHA) -> set[str]:
    """Tests rejected at ``alpha``: their shown p-value rejects (:func:`simkit.schema.rejects`) or Holm's correction
    rejects them (:func:`holm_alarms`, which may reject on a null's tail p-value past the shown one)."""
    results = list(results)
    return {r.test for r in results if rejects(r.p_value, alpha)} | set(holm_alarms(results, alpha))


def _not_applicable(e: Election, test: str, null: str, reason: str, seed: np.random.SeedSequence, tolerate: bool,
                    estimates: bool) -> TestResult:
    """The ``n/a`` result of ``test`` for ``reason``; with ``estimates``, it reports what the test estimates
    without a null (its module's ``estimates_of``, from ``seed`` as its ``run`` would draw them) when the reason
    is the null's, not the data's (:func:`simkit.forensics.applicable.data_reason`). With ``tolerate``, estimates
    that raise ValueError or LinAlgError are left out and their error kept as ``estimates_failed`` (else it
    propagates)."""
    estimates_of = getattr(TESTS[test], "estimates_of", None)
    if not estimates or estimates_of is None or data_reason(e, test):
        return not_applicable(test, null, reason)
    try:
        return not_applicable(test, null, reason, estimates_of(e, seed))
    except (ValueError, np.linalg.LinAlgError) as error:
        if not tolerate:
            raise
        return not_applicable(test, null, reason, {"estimates_failed": _error_text(error)})


def _error_text(error: Exception) -> str:
    """An error as a result reports it: its type and the start of its message."""
    return f"{type(error).__name__}: {str(error)[:120]}"


def _run_one(e: Election, test: str, null: str, draws: int, seed: np.random.SeedSequence, null_statistics,
             tolerate: bool, estimates: bool = True) -> TestResult:
    """One test's result; with ``tolerate``, an ``n/a`` result when it raises ValueError or LinAlgError;
    ``estimates`` False: without the estimates of a test of :data:`~simkit.forensics.registry.ESTIMATES_APART`."""
    options = {} if estimates or test not in ESTIMATES_APART else {"estimates": False}
    try:
        return TESTS[test].run(e, null=null, draws=draws, rng=seed, null_statistics=null_statistics, **options)
    except (ValueError, np.linalg.LinAlgError) as error:
        if not tolerate:
            raise
        return not_applicable(test, null, f"failed on these data ({_error_text(error)})")


def _with_null_z(result: TestResult, null_statistics: np.ndarray, model: str) -> TestResult:
    """Add the honest ``model`` the simulated null drew from (``honest_model``) and where the statistic lies in
    that null, in the test's direction
    (``simulated_mean`` and ``simulated_sd`` of the finite draws, in the statistic's units;
    :func:`simkit.forensics.nulls.tails.null_tail`: ``null_z``, ``null_draws``, ``null_normal_p``, ``null_tail_p``,
    ``null_tail``): how far beyond its null a test lies when the Monte Carlo p-value sits at its floor
    1 / (draws + 1), which no correction across tests at 0.01 can pass."""
    direction = alternative(result.test)
    finite = np.asarray(null_statistics, dtype=float)
    finite = finite[np.isfinite(finite)]
    extra = {**result.extra, "honest_model": model,
             "simulated_mean": float(finite.mean()) if finite.size else None,
             "simulated_sd": float(finite.std(ddof=1)) if finite.size >= EMPIRICAL_MIN_DRAWS else None}
    if direction is not None:
        extra.update(null_tail(result.statistic, null_statistics, direction))
    return replace(result, extra=extra)


def election_outcomes(e: Election, tests: Iterable[str] | None = None, *, null: str = "textbook",
                      draws: int = 200, alpha: float = ALPHA, seed: int | np.random.SeedSequence | None = None
                      ) -> dict[str, tuple[bool | None, float | None]]:
    """Each test's (default: all; descriptive tests are left out) outcome on the election ``e``: whether it
    rejects at ``alpha``, and the ``smallest_p`` of a result that could not reject with the null draws its
    p-value rests on (:func:`simkit.forensics.floor.result_floors`; else None). Rejected is None for a test that
    cannot run on these data (it raised a ValueError or a LinAlgError, or is n/a: too few stations for its fit, as
    on regional totals), so that a count keeps it apart instead of counting it as a rejection or an acceptance.
    Seeds as in :func:`run_tests`. The one reading of verdicts behind every size and power (:func:`rejection_counts`
    counts them): the tests run without the estimates no verdict reads (:func:`run_each`'s ``estimates``), so
    an estimate that cannot be computed on an election does not make its test n/a there."""
    ids = [t for t in (TESTS if tests is None else tests) if t != fingerprint.ID]
    if tests is not None and not ids:  # only the descriptive fingerprint asked for: nothing to reject
        return {}
    results = run_each(e, ids, null, draws, seed, tolerate=True, estimates=False)
    floors = result_floors(results.values())
    return {test: (rejects(result.p_value, alpha), floors.get(test)) if ran(result) else (None, None)
            for test, result in results.items()}


def election_rejections(e: Election, tests: Iterable[str] | None = None, *, null: str = "textbook",
                        draws: int = 200, alpha: float = ALPHA,
                        seed: int | np.random.SeedSequence | None = None) -> dict[str, bool | None]:
    """Whether each test rejects at ``alpha`` on the election ``e`` (:func:`election_outcomes` without the
    floors)."""
    return {test: rejected for test, (rejected, _) in election_outcomes(
        e, tests, null=null, draws=draws, alpha=alpha, seed=seed).items()}


def replicate_rejections(ds: xr.Dataset, tests: Iterable[str] | None = None, *, null: str = "textbook",
                         draws: int = 200, alpha: float = ALPHA,
                         seed: int | np.random.SeedSequence | None = None) -> dict[str, bool | None]:
    """:func:`election_rejections` of one simulated election (a Dataset without a ``replicate`` dim); no tests
    (None or empty) means all."""
    return election_rejections(election(ds), tests or None, null=null, draws=draws, alpha=alpha, seed=seed)


def rejection_counts(outcomes: Iterable[tuple[Hashable, dict[str, bool | None]]]
                     ) -> dict[Hashable, dict[str, tuple[int, int]]]:
    """The counting half of every size and power (``calibrate``'s table, :mod:`simkit.forensics.power`,
    :func:`rejection_rates`): ``outcomes`` pairs a group (a plant, a scenario at a sweep point under a null...)
    with one election's :func:`election_rejections`; returns group -> test -> (rejections, elections where the
    test ran), groups and tests in the order first seen."""
    counts: dict[Hashable, dict[str, tuple[int, int]]] = {}
    for group, rejections in outcomes:
        row = counts.setdefault(group, {})
        for test, rejected in rejections.items():
            k, n = row.get(test, (0, 0))
            row[test] = (k, n) if rejected is None else (k + int(rejected), n + 1)
    return counts


def replicate_seed(seed: int | None, replicate: int) -> np.random.SeedSequence:
    """The forensic seed of replicate ``replicate`` of a simulation under ``seed``: the position
    ``(REPLICATE_TESTS, replicate)`` below it (:data:`simkit.streams.REPLICATE_TESTS`), computed from the position
    alone (so any worker computes the same one). At ``(replicate,)`` :func:`run_each`'s tree (test ``i`` at
    ``(replicate, 0, i)``) held the engine's own streams of that replicate (``(replicate, station group,
    component)``, :mod:`simkit.streams`)."""
    return keyed_seed(seed, REPLICATE_TESTS, replicate)


def observed_seed(seed: int | np.random.SeedSequence | np.random.Generator | None) -> np.random.SeedSequence:
    """The seed of the tests of one election's returns under ``seed`` (``simkit report``, ``simkit forensics``):
    the position ``(OBSERVED,)`` below it (:data:`simkit.streams.OBSERVED`,
    :func:`~simkit.forensics.nulls.flat.keyed_seed`). Under ``seed`` itself, :func:`run_each`'s tree (test ``i`` at
    ``(0, i)``, null draw ``d`` at ``(1, d)``, then their own children) would hold the engine's streams of
    replicates 0 and 1 (``(replicate, station group, component)``, :mod:`simkit.streams`) of that seed."""
    return keyed_seed(seed, OBSERVED)


def rejection_rates(ds: xr.Dataset, tests: Iterable[str] | None = None, *, null: str = "textbook",
                    draws: int = 200, alpha: float = ALPHA, seed: int | None = None) -> dict[str, dict]:
    """Share of replicates (the ``replicate`` dim of a simulated Dataset) in which each test rejects at ``alpha``.

    Returns test id -> {"rejection_rate", "n"} (descriptive tests are left out; :func:`rate`). Replicate
    ``r`` uses :func:`replicate_seed` ``(seed, r)``."""
    n = ds.sizes.get(REPLICATE, 1)
    counts = rejection_counts(
        (None, replicate_rejections(ds.isel({REPLICATE: r}) if REPLICATE in ds.dims else ds, tests, null=null,
                                    draws=draws, alpha=alpha, seed=replicate_seed(seed, r))) for r in range(n))
    return {t: rate(count) for t, count in counts[None].items()}


def rate(count: tuple[int, int]) -> dict:
    """{"rejection_rate", "n"} of a :func:`rejection_counts` entry (rejections, elections where the test ran);
    the rate is None when it ran nowhere."""
    rejections, n = count
    return {"rejection_rate": rejections / n if n else None, "n": n}
