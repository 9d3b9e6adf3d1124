"""One-mechanism explanations of a poll's gap to the count: each fitted over all the poll's published
figures, with its interval and goodness of fit, and whether it can move the gap the way it is observed.

Every mechanism maps the official count to the poll's expected published shares through ONE parameter θ.
The count is held at the official figures (count-matched): for the count manipulations, the honest voters
are solved from the official count and the manipulation, and the poll, which interviews voters, sees them.

=========================  ==============================================================  ==========
mechanism                  θ                                                               null θ
=========================  ==============================================================  ==========
``misreport_incumbent``    share of the other valid options' voters who name the           0
                           incumbent (< 0: share of the incumbent's voters naming the
                           others, in proportion to their counts)
``refusal_<option>``       relative response of that option's voters (1 = like all others)  1
``invalid_name_incumbent`` share of invalid-ballot voters who name the incumbent            0
``missed_home_voters``     share of the valid vote cast in mobile boxes at home, all for   0
                           the incumbent (the most favourable case), which the poll misses
``stuffing``               stuffed ballots for the incumbent, as a share of the counted     0
                           valid vote
``vote_stealing``          share of the other options' real votes recorded for the          0
                           incumbent
``coercion``               coerced voters vote for the incumbent and say so: poll and       —
                           count move together, so it cannot produce a gap
=========================  ==============================================================  ==========

The fit minimises d²(θ) = (x − μ(θ))ᵀ Σ⁻¹ (x − μ(θ)) over the admissible range, where x (D,) are the
published figures (fractions; a poll publishing every valid option loses its last one), μ(θ) the
expected published shares and Σ (D, D) the covariance of (poll − count) over the simulated replicates of
the sampling-only baseline. ``low``/``high`` bound the θ with d²(θ) ≤ d²min + χ²₁(0.95) (a 95% profile
interval); ``fit_p`` is the χ² tail of d²min on D − 1 degrees of freedom (D for coercion, which has no free
effect). Expected shares are ratios of expectations: exact for large samples, which these polls are.

Two families coincide: misreporting toward the incumbent by a share θ of every other voter and refusal by
the incumbent's voters at relative response ρ both rescale the incumbent against the others and keep the
others' ratios, so they reach the same best fit (θ = 1 − 1 / (ρ v + 1 − v), v the incumbent's share).
Likewise missed home voters and stuffing have one form (counted incumbent votes with no voter behind them
at the station door) and differ only in what θ means.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import optimize, stats

#: profile-interval level
LEVEL = 0.95
#: grid points of the first search
GRID = 2001


@dataclass(frozen=True)
class Ballot:
    """The official count as fractions of all ballots ``shares`` (K,) (invalid included), with the indices
    of the ``incumbent``, the ``invalid`` option (None: none) and the ``valid`` mask (K,)."""

    shares: np.ndarray
    incumbent: int
    valid: np.ndarray
    invalid: int | None = None

    @property
    def valid_shares(self) -> np.ndarray:
        """(K,) shares over valid votes (0 for invalid)."""
        counted = np.where(self.valid, self.shares, 0.0)
        return counted / counted.sum()


def _renormalise(weights: np.ndarray, valid: np.ndarray) -> np.ndarray:
    counted = np.where(valid, np.maximum(weights, 0.0), 0.0)
    return counted / counted.sum()


def misreport_incumbent(theta: float, ballot: Ballot) -> np.ndarray:
    v, i = ballot.valid_shares.copy(), ballot.incumbent
    others = ballot.valid.copy()
    others[i] = False
    if theta >= 0:
        moved = theta * v[others].sum()
        v[others] *= 1.0 - theta
        v[i] += moved
    else:
        moved = -theta * v[i]
        v[others] += moved * v[others] / v[others].sum()
        v[i] -= moved
    return v


def refusal(option: int) -> Callable[[float, Ballot], np.ndarray]:
    def expected(theta: float, ballot: Ballot) -> np.ndarray:
        weights = ballot.valid_shares.copy()
        weights[option] *= theta
        return _renormalise(weights, ballot.valid)
    return expected


def invalid_name_incumbent(theta: float, ballot: Ballot) -> np.ndarray:
    weights = np.where(ballot.valid, ballot.shares, 0.0)
    weights[ballot.incumbent] += theta * ballot.shares[ballot.invalid]
    return _renormalise(weights, ballot.valid)


def incumbent_ballots_unseen(theta: float, ballot: Ballot) -> np.ndarray:
    """Counted valid votes of which a share θ, all for the incumbent, has no voter the poll can meet (missed
    home voters, or stuffed ballots): the poll sees the rest."""
    weights = ballot.valid_shares.copy()
    weights[ballot.incumbent] -= theta
    return _renormalise(weights, ballot.valid)


def vote_stealing(theta: float, ballot: Ballot) -> np.ndarray:
    v, i = ballot.valid_shares.copy(), ballot.incumbent
    others = ballot.valid.copy()
    others[i] = False
    v[others] /= 1.0 - theta
    v[i] = 1.0 - v[others].sum()
    return _renormalise(v, ballot.valid)


def coercion(theta: float, ballot: Ballot) -> np.ndarray:
    return ballot.valid_shares.copy()


@dataclass(frozen=True)
class Mechanism:
    """One explanation: ``expected(θ, ballot)`` (K,) expected poll shares over valid answers, the
    admissible ``bounds`` of θ, its ``null`` value (no effect), and whether θ is searched on a log scale."""

    name: str
    parameter: str
    expected: Callable[[float, Ballot], np.ndarray]
    bounds: tuple[float, float]
    null: float | None
    log_scale: bool = False


def mechanisms_for(ballot: Ballot, options: list[str], against_all: list[str]) -> list[Mechanism]:
    """The mechanisms that apply to this ballot (invalid naming needs an invalid option with votes)."""
    i = ballot.incumbent
    max_unseen = ballot.valid_shares[i] * 0.999
    found = [Mechanism("misreport_incumbent", "share of the other options' voters naming the incumbent",
                       misreport_incumbent, (-0.999, 0.999), 0.0)]
    for name in against_all + [options[i]]:
        found.append(Mechanism(f"refusal_{name}", f"relative response of {name} voters", refusal(options.index(name)),
                               (0.02, 50.0), 1.0, log_scale=True))
    if ballot.invalid is not None and ballot.shares[ballot.invalid] > 0:
        found.append(Mechanism("invalid_name_incumbent", "share of invalid-ballot voters naming the incumbent",
                               invalid_name_incumbent, (0.0, 1.0), 0.0))
    found += [Mechanism("missed_home_voters", "share of the valid vote cast at home (all for the incumbent), "
                        "missed by the poll", incumbent_ballots_unseen, (0.0, max_unseen), 0.0),
              Mechanism("stuffing", "stuffed ballots for the incumbent, share of the counted valid vote",
                        incumbent_ballots_unseen, (0.0, max_unseen), 0.0),
              Mechanism("vote_stealing", "share of the other options' votes recorded for the incumbent",
                        vote_stealing, (0.0, 0.999), 0.0),
              Mechanism("coercion", "coerced voters (vote for the incumbent and say so)", coercion, (0.0, 0.5), None)]
    return found


@dataclass(frozen=True)
class Observed:
    """What one poll published: ``columns`` (D,) indices among all K options, ``values`` (D,) fractions of
    valid answers, and ``covariance`` (D, D) of (poll − count) under the sampling-only baseline."""

    columns: np.ndarray
    values: np.ndarray
    covariance: np.ndarray

    def distance2(self, expected: np.ndarray) -> float:
        residual = self.values - expected[self.columns]
        return float(residual @ np.linalg.solve(self.covariance, residual))

    def distances2(self, expected: np.ndarray) -> np.ndarray:
        """(G,) :meth:`distance2` of each row of ``expected`` (G, K) with one batched solve (the same numbers:
        each row is solved alone, and each product is a contiguous row's dot product)."""
        residuals = np.ascontiguousarray(self.values - expected[:, self.columns])
        solved = np.linalg.solve(self.covariance, residuals[..., None])[..., 0]
        return np.array([float(residual @ row) for residual, row in zip(residuals, solved)])


def _grid(mechanism: Mechanism) -> np.ndarray:
    low, high = mechanism.bounds
    if mechanism.log_scale:
        return np.geomspace(low, high, GRID)
    return np.linspace(low, high, GRID)


def fit(mechanism: Mechanism, ballot: Ballot, observed: Observed) -> dict:
    """Fit one mechanism: ``estimate``, ``low``, ``high`` (None for coercion), ``d2``, ``df``, ``fit_p``."""
    dof = len(observed.values)
    if mechanism.null is None:
        d2 = observed.distance2(mechanism.expected(0.0, ballot))
        return {"estimate": None, "low": None, "high": None, "d2": d2, "df": dof,
                "fit_p": float(stats.chi2.sf(d2, dof))}
    grid = _grid(mechanism)
    d2 = observed.distances2(np.array([mechanism.expected(theta, ballot) for theta in grid]))
    best = int(np.argmin(d2))
    neighbours = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    refined = optimize.minimize_scalar(lambda t: observed.distance2(mechanism.expected(t, ballot)),
                                       bounds=neighbours, method="bounded")
    estimate, d2_min = (float(refined.x), float(refined.fun)) if refined.fun < d2[best] else (float(grid[best]),
                                                                                            float(d2[best]))
    inside = grid[d2 <= d2_min + stats.chi2.ppf(LEVEL, 1)]
    low, high = (float(inside.min()), float(inside.max())) if len(inside) else (estimate, estimate)
    return {"estimate": estimate, "low": min(low, estimate), "high": max(high, estimate), "d2": d2_min,
            "df": dof - 1, "fit_p": float(stats.chi2.sf(d2_min, dof - 1)) if dof > 1 else None}


def moves_toward(mechanism: Mechanism, ballot: Ballot, option: int, gap: float) -> bool:
    """Whether some admissible θ moves the poll's expected share of ``option`` away from the count in the
    direction of the observed ``gap`` (published − official)."""
    if mechanism.null is None or gap == 0:
        return False
    base = ballot.valid_shares[option]
    shifts = np.array([mechanism.expected(theta, ballot)[option] - base for theta in _grid(mechanism)[::20]])
    return bool(np.any(np.sign(gap) * shifts > 1e-12))


def fit_poll(pollster: str, ballot: Ballot, observed: Observed, options: list[str], against_all: list[str],
             reference: int, gap: float) -> list[dict]:
    """Every mechanism fitted to one poll: JSON entries with ``pollster``, ``mechanism``, ``parameter``,
    ``estimate``, ``low``, ``high``, ``d2``, ``df``, ``fit_p`` and ``moves_gap_observed_way``, judged on
    option index ``reference`` whose published-minus-official ``gap`` (fraction) is observed."""
    entries = []
    for mechanism in mechanisms_for(ballot, options, against_all):
        entries.append({"pollster": pollster, "mechanism": mechanism.name, "parameter": mechanism.parameter,
                        **fit(mechanism, ballot, observed),
                        "moves_gap_observed_way": moves_toward(mechanism, ballot, reference, gap),
                        "judged_on": options[reference]})
    return entries
