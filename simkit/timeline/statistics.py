"""Tests on a published turnout timeline against the honest null fitted to clean data.

Inputs are regional cumulative turnouts (share of the register) at each intermediate report and the final
count. Each region's curve is divided by its final turnout, so the tests look at *when* voters came, not how
many: ``c_r`` (report + 1,) is the share of region r's final turnout reached by each report, ``b_r`` its
bin shares (``diff`` of ``c_r``).

Tests (statistic; alternative):

- ``front_loading``: ``c_r`` at the early report (default: the last report at or before the middle of the
  day); greater. Coerced voters sent in the morning raise it.
- ``late_surge``: ``1 - c_r`` at the last intermediate report, the share of the final turnout that arrived
  (or was added) after it; greater. Stuffing late or in the final count only raises it.
- ``departure``: ``sum_k (b_rk - b_nk)^2 / b_nk``, the chi-square distance of the region's bins from the
  national ones (the register-weighted sum of the regions, from the same election); greater. Unlike the
  first two, it does not compare with Spain's shape, only with the same country's curve.

The null: region profiles ``q_r ~ Dirichlet(kappa_region * p)`` around the honest profile ``p`` (Spain's
fit rescaled to the hours, :mod:`simkit.engine.profile`), independently, the national curve their
weighted sum. Station-level noise is left out: it adds ``q(1-q) / ((kappa_station + 1) x stations)`` to a
regional share's variance, below 1% of the regional term for regions of 100 stations or more. The rows
``region = "all"`` combine the regions (mean of the standardised statistics, its own simulated null) and
name the regions contributing most. p-values are Monte Carlo: ``(1 + #{null >= observed}) / (1 + draws)``.

What the null can and cannot say: it holds the spread of Spain's provinces around Spain's curve. A country
whose whole curve differs from Spain's (other hours, habits, no postal vote) shifts ``front_loading`` and
``late_surge`` in every region; ``departure`` is immune to that. Any departure is a reason to look, not proof.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.timeline import dirichlet, parse_clock
from simkit.engine.profile import HonestProfile

TESTS = ("front_loading", "late_surge", "departure")
ALTERNATIVE = "greater"
DEFAULT_DRAWS = 10_000
TOP_CONTRIBUTORS = 3


@dataclass(frozen=True)
class RegionalTimeline:
    """Published regional timelines: ``turnout`` (region, report + 1) share of the register at each
    intermediate report and the final; ``weights`` (region,) register (or final ballots) of each region;
    ``reports`` the intermediate times "HH:MM"; ``national`` (report + 1,) or None."""

    region_names: list[str]
    reports: list[str]
    turnout: np.ndarray
    weights: np.ndarray
    national: np.ndarray | None = None
    early_report: str | None = None

    def early_index(self, opening: str, closing: str) -> int:
        if self.early_report is not None:
            return self.reports.index(self.early_report)
        middle = (parse_clock(opening) + parse_clock(closing)) / 2
        before = [i for i, t in enumerate(self.reports) if parse_clock(t) <= middle]
        return before[-1] if before else 0


def shares_of_final(turnout: np.ndarray) -> np.ndarray:
    """(..., report + 1) cumulative turnout → share of the final turnout reached at each report."""
    final = turnout[..., -1:]
    return np.divide(turnout, final, out=np.zeros(turnout.shape), where=final > 0)


def statistics(cumulative_share: np.ndarray, weights: np.ndarray, early: int) -> dict[str, np.ndarray]:
    """Each test's statistic, (..., region), from cumulative shares (..., region, report + 1) and the
    regions' weights (region,) (final ballots: a region's bins count in the national curve by its voters)."""
    bins = np.diff(cumulative_share, axis=-1, prepend=0.0)
    national = (weights[:, None] * bins).sum(axis=-2, keepdims=True) / weights.sum()
    departure = (np.divide((bins - national) ** 2, national, out=np.zeros(bins.shape), where=national > 0)
                 ).sum(axis=-1)
    return {"front_loading": cumulative_share[..., early], "late_surge": 1.0 - cumulative_share[..., -2],
            "departure": departure}


def null_cumulative(profile: HonestProfile, rng: np.random.Generator, draws: int, n_regions: int) -> np.ndarray:
    """(draw, region, report + 1) honest cumulative shares of the final turnout: each region's profile
    drawn from Dirichlet(kappa_region * p)."""
    mean = np.broadcast_to(profile.bin_shares, (draws, n_regions, len(profile.bin_shares)))
    return np.cumsum(dirichlet(rng, mean, profile.kappa_region), axis=-1)


def monte_carlo_p(null: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """One-sided (greater) Monte Carlo p-values: null (draw, ...), observed (...)."""
    return (1.0 + (null >= observed).sum(axis=0)) / (1.0 + null.shape[0])


def _row(region, test, statistic, null, p_value, **extra) -> dict:
    return {"region": region, "test": test, "statistic": float(statistic), "null_mean": float(np.mean(null)),
            "null_sd": float(np.std(null, ddof=1)), "p_value": float(p_value), "alternative": ALTERNATIVE, **extra}


def untested(n_regions: int) -> dict[str, str]:
    """Test -> why it is not run on ``n_regions`` published regions: ``departure`` needs two (with one, the
    national curve is the region's own and the distance is 0 in every draw)."""
    return {} if n_regions > 1 else {"departure": "one region published: the national curve is its own"}


def run_tests(observed: RegionalTimeline, profile: HonestProfile, opening: str, closing: str,
              rng: np.random.Generator, draws: int = DEFAULT_DRAWS) -> list[dict]:
    """Rows (one per region and test, then ``all`` per test, then ``national`` when published) with
    ``region, test, statistic, null_mean, null_sd, p_value, alternative`` (``all`` adds ``contributors``); the
    tests of :func:`untested` are left out."""
    if len(observed.reports) + 2 != len(profile.edges):
        raise ValueError("the profile's reporting times differ from the observed ones")
    early = observed.early_index(opening, closing)
    n_regions = len(observed.region_names)
    weights = observed.weights * observed.turnout[:, -1]
    seen = statistics(shares_of_final(observed.turnout), weights, early)
    null = statistics(null_cumulative(profile, rng, draws, n_regions), weights, early)
    tests = [test for test in TESTS if test not in untested(n_regions)]
    rows = []
    for test in tests:
        p_values = monte_carlo_p(null[test], seen[test])
        rows += [_row(name, test, seen[test][r], null[test][:, r], p_values[r])
                 for r, name in enumerate(observed.region_names)]
    for test in tests:
        mean, sd = null[test].mean(axis=0), null[test].std(axis=0, ddof=1)
        z_seen, z_null = (seen[test] - mean) / sd, (null[test] - mean) / sd
        order = np.argsort(-z_seen)[:TOP_CONTRIBUTORS]
        rows.append(_row("all", test, z_seen.mean(), z_null.mean(axis=1),
                         monte_carlo_p(z_null.mean(axis=1), z_seen.mean()),
                         contributors=[{"region": observed.region_names[r], "z": round(float(z_seen[r]), 3)}
                                       for r in order]))
    if observed.national is not None:
        national_seen = shares_of_final(observed.national)
        for test in ("front_loading", "late_surge"):
            value = statistics(national_seen[None], np.ones(1), early)[test][0]
            column = null[test][:, 0]  # one region's null: the country as one Spanish province (an assumption)
            rows.append(_row("national", test, value, column, monte_carlo_p(column, value)))
    return rows
