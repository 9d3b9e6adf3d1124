"""The smallest p-value a test can report with a number of null draws, and whether it can reject at all.

A p-value read from ``n`` draws of a null (a Monte Carlo p-value (1 + k) / (n + 1), a bootstrap's share
(1 + k) / (n + 1)) is at least 1 / (n + 1): its **floor**. When the floor is above the rejection level
:data:`ALPHA`, the test cannot reject at p ≤ ALPHA (:func:`simkit.schema.rejects`) whatever the data: with
ALPHA = 0.05, any ``n`` up to 18 (:func:`minimum_draws`: 19). Which p-values are read from draws (:func:`floor_draws`):

- under ``simulated`` and ``flat``: every test's (its statistic on ``n`` simulated honest elections), ``n`` =
  ``draws``, at most ``MAX_NULL_DRAWS`` (39) for the two Klimek fits
  (:func:`simkit.forensics.registry.null_draws_used`);
- under ``textbook``: the tests whose textbook null is drawn
  (:data:`simkit.forensics.registry.TEXTBOOK_DRAWN`: ``spikes``, ``shpilkin``, ``klimek``); every other textbook
  null is a law (continuous, or the integer test's Poisson-binomial: exact station probabilities, its tail by
  Volkova's refined normal approximation), without a floor.

A test read empirically under ``simulated`` (:func:`simkit.forensics.calibration.empirical_tests`) reports a
Student-t p-value fitted on clean elections: it has no floor (:func:`smallest_p`; its Monte Carlo p-value,
kept as ``monte_carlo_p``, does). A draw on which a statistic cannot be computed is left out of its p-value,
which raises its floor: a result's floor is that of the finite draws it records (``null_draws``,
:func:`result_draws`), the draws asked for give the rules before any result exists (:func:`rejection_floor`).
"""
from __future__ import annotations

import math
from typing import Iterable

from simkit.errors import counted
from simkit.forensics.calibration import empirical_tests
from simkit.forensics.core import ALPHA, check_null
from simkit.forensics.registry import TEXTBOOK_DRAWN, alternative, null_draws_used
from simkit.schema import rejects

#: the fewest finite null draws whose spread (an SD, ``simulated_sd``) an empirical reading needs
#: (:func:`simkit.forensics.empirical.calibrated_reading`)
EMPIRICAL_MIN_DRAWS = 2


def floor_draws(test: str, null: str, draws: int) -> int | None:
    """The draws that ``test``'s Monte Carlo p-value under ``null`` rests on with ``draws`` asked for (module
    docstring); None for a p-value read from a law and for the descriptive fingerprint."""
    check_null(null)
    if alternative(test) is None or (null == "textbook" and test not in TEXTBOOK_DRAWN):
        return None
    return null_draws_used(test, draws)


def floor_of(n: int) -> float:
    """1 / (n + 1): the smallest Monte Carlo p-value from ``n`` null draws."""
    return 1 / (n + 1)


def monte_carlo_floor(test: str, null: str, draws: int) -> float | None:
    """The floor (:func:`floor_of`) of ``test``'s Monte Carlo p-value under ``null`` (n: :func:`floor_draws`);
    None when its p-value is read from a law."""
    n = floor_draws(test, null, draws)
    return None if n is None else floor_of(n)


def smallest_p(test: str, null: str, draws: int) -> float | None:
    """The smallest p-value ``test`` can report under ``null`` with ``draws`` null draws: its
    :func:`monte_carlo_floor`, or None when it reports a law's p-value or an empirically calibrated one (a test
    read empirically, with the two draws its null's spread needs at least: with one its Monte Carlo p-value
    stands; a test no control measured keeps it too, which only its result says, :func:`result_draws`)."""
    read_empirically = test in empirical_tests(null) and draws >= EMPIRICAL_MIN_DRAWS
    return None if read_empirically else monte_carlo_floor(test, null, draws)


def result_draws(result, null: str, draws: int) -> int | None:
    """The draws that ``result``'s p-value (:class:`simkit.forensics.core.TestResult` of a run under ``null`` with
    ``draws`` asked for) rests on: its finite null draws where it records them (``null_draws``: a simulated or
    flat null's, a drawn textbook null's), else :func:`floor_draws`; None for a result without a p-value, one
    read from a law and one read empirically (``empirical_p``)."""
    asked = floor_draws(result.test, null, draws)
    if result.p_value is None or asked is None or "empirical_p" in result.extra:
        return None
    return result.extra.get("null_draws", asked)


def minimum_draws(alpha: float = ALPHA) -> int:
    """The fewest draws ``n`` whose floor 1 / (n + 1) can reject at ``alpha`` (:func:`simkit.schema.rejects`:
    at or below it; 0 < alpha <= 1; 19 at 0.05)."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    n = max(0, math.floor(1 / alpha) - 1)
    while not rejects(floor_of(n), alpha):
        n += 1
    return n


def rejection_floor(test: str, null: str, draws: int, alpha: float = ALPHA, monte_carlo: bool = False
                    ) -> float | None:
    """``test``'s :func:`smallest_p` under ``null`` with ``draws`` draws (``monte_carlo``: its
    :func:`monte_carlo_floor`, even when it is read empirically) when it cannot reject at ``alpha``
    (:func:`simkit.schema.rejects`: it is above ``alpha``); else None."""
    floor = (monte_carlo_floor if monte_carlo else smallest_p)(test, null, draws)
    return floor if floor is not None and not rejects(floor, alpha) else None


def cannot_reject(tests: Iterable[str], null: str, draws: int, alpha: float = ALPHA, monte_carlo: bool = False
                  ) -> dict[str, float]:
    """The tests of ``tests`` that cannot reject at p ≤ ``alpha`` under ``null`` with ``draws`` draws by rule,
    before any result (:func:`rejection_floor`; ``monte_carlo``: by their Monte Carlo p-values): test -> floor."""
    return {t: floor for t in tests if (floor := rejection_floor(t, null, draws, alpha, monte_carlo)) is not None}


def result_floors(results: Iterable) -> dict[str, float]:
    """The tests of ``results`` (:class:`simkit.forensics.core.TestResult`, as :func:`simkit.forensics.run_tests`
    gives them) that could not reject with the null draws their p-values rest on: test -> ``smallest_p``."""
    return {r.test: r.extra["smallest_p"] for r in results if "smallest_p" in r.extra}


def draws_of_floor(floor: float) -> int:
    """The null draws ``n`` whose floor (:func:`floor_of`, 1 / (n + 1)) is ``floor``."""
    return round(1 / floor) - 1


def draws_used(floors: dict[str, float]) -> list[int]:
    """The distinct null draws (sorted) that the floors of ``floors`` (test -> floor) rest on."""
    return sorted({draws_of_floor(floor) for floor in floors.values()})


def draws_behind(floors: dict[str, float], draws: int) -> str:
    """``20 null draws``, the ``draws`` asked for, when the floors of ``floors`` (test -> floor) rest on them all;
    else ``20 null draws asked (19 used)``: a draw on which a statistic could not be computed is left out, a Klimek
    fit uses at most its ``MAX_NULL_DRAWS`` (module docstring), and a floor is that of the draws used."""
    used = draws_used(floors)
    asked = counted(draws, "null draw")
    if used == [draws]:
        return asked
    return f"{asked} asked ({used[0]:,}" + (f" to {used[-1]:,}" if len(used) > 1 else "") + " used)"


def floor_line(floors: dict[str, float], null: str, draws: int, alpha: float = ALPHA) -> str:
    """The one plain line that says the tests of ``floors`` (test -> its floor above ``alpha`` under
    ``null`` with ``draws`` draws asked for: :func:`cannot_reject` before any result, each result's
    ``smallest_p`` after, :func:`result_floors`) cannot reject, why (the draws they rest on,
    :func:`draws_behind`), and how many draws can: draws on which the statistic (each statistic, of several tests)
    can be computed, when some of those asked for were left out."""
    values = sorted(set(floors.values()))
    floor = f"{values[0]:.3g}" + (f" to {values[-1]:.3g}" if len(values) > 1 else "")
    statistic = "the statistic" if len(floors) == 1 else "each statistic"
    computed = "" if draws_used(floors) == [draws] else f" on which {statistic} can be computed"
    return (f"with {draws_behind(floors, draws)} the smallest p-value of {', '.join(floors)} ({null} null) is {floor}: "
            f"{'it' if len(floors) == 1 else 'they'} cannot reject at p ≤ {alpha:g}; use at least "
            f"{minimum_draws(alpha)} draws{computed}")


def floor_lines(floors_by_null: dict[str, dict[str, float]], draws: int, alpha: float = ALPHA) -> list[str]:
    """One :func:`floor_line` per null of ``floors_by_null`` (null -> test -> floor) with some test that cannot
    reject at p ≤ ``alpha`` with ``draws`` draws asked for."""
    return [floor_line(floors, null, draws, alpha) for null, floors in floors_by_null.items() if floors]


def floor_verdict(draws: int, floor: float) -> str:
    """The verdict of a test that cannot reject: its p-value's floor with ``draws`` draws, not "no anomaly"."""
    return f"cannot reject with {counted(draws, 'draw')} (smallest p {floor:.3g})"
