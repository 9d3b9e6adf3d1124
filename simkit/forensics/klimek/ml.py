"""Klimek's fraud model by maximum likelihood (after Mebane & Kalinin's likelihood fit): a test of extreme
fraud and estimates of f_i, f_e, alpha, theta with intervals.

The model is that of ``simkit.forensics.klimek.histogram`` (honest truncated normals centred per honest group, region or
district, :func:`simkit.forensics.klimek.histogram.honest_groups`; incremental ``x ~ |N(0, theta)|``,
extreme ``x ~ 1 - |N(0, 0.075)|``, both truncated to (0, 1)); each station's (turnout, leader share) enters the
mixture likelihood ``(1 - f_i - f_e) h + f_i g + f_e e`` (:mod:`simkit.forensics.klimek.density`: incremental
fraud integrated over x on ``NODES`` midpoints, whose densities do not depend on ``theta``, only their weights
do; extreme fraud over the honest turnout).

Fits with the honest part held at the first stage (the modes and left halves of the histograms,
:func:`simkit.forensics.klimek.histogram.first_stage`), by projected Newton steps on the triangle
``f_i, f_e >= 0, f_i + f_e <= 1`` (the likelihood is concave in the weights): the **grid fit**
(:func:`grid_fit`: ``(f_i, f_e)`` for every ``(alpha, theta)`` on ``GRID_ALPHAS`` x ``THETAS``,
``LR = 2 (l_best - l_honest)``) and the **extreme fit** (:func:`extreme_fit`: ``f_e`` alone, ``f_i = 0``, for
every alpha of ``GRID_ALPHAS``).

Test. Under a simulated null the statistic is the extreme fit's ``f_e`` (:func:`statistic`), on the data and
on ``MAX_NULL_DRAWS`` honest simulations. Extreme fraud sits in the corner of turnout and share near 100%,
where an honest cloud has almost no mass; incremental fraud with theta up to 0.4 is a broad smear to the upper
right, and the grid fit's f_i and LR take up any skew or heavy tail of a real honest cloud that the truncated
normals miss, on honest simulations as on clean data (``benchmarks/klimek_candidates.py``). A fraction is an effect size, comparable across election sizes,
as the empirical calibration of :mod:`simkit.forensics.empirical` assumes. (Choice made on that panel: the
docs/forensics.md's false-positive panel gives the numbers of every candidate.) There is no textbook null
(:data:`NO_TEXTBOOK_LAW`): the grid fit's likelihood ratio against f_i = f_e = 0 holds the honest part at the
first stage's estimates (histogram modes on a 0.01 grid, root-mean-square spreads below them), which are not its
maximum under the null, so Wilks's chi-square is not its law at any number of stations: the fraud components take
up the first stage's misfit, a bias of the modes that does not shrink as stations are added (on honest
two-option elections of 30, 300, 3,000 and 30,000 stations it rejected 18%, 53%, 45% and 50% at 0.05 against
chi-square with 4 degrees of freedom, and none with the honest part at the clouds' own centres and spreads;
docs/forensics.md). The boundary (f_i, f_e >= 0: chi-bar-square) and alpha and theta, unidentified under the
null, would each change the law too.

Estimates: with the honest part fixed at the first stage, incremental stuffing shifts and widens it and the
honest part absorbs the stuffing (f_i far too low). The reported figures come from the joint fit of
:mod:`simkit.forensics.klimek.joint` (EM over the honest groups' centres and SDs, f_i, f_e and theta; alpha
profiled on ``ALPHAS`` and between them, its 95% interval where the profile likelihood drops by
chi2_1(0.95) / 2), started from the test's best grid point; their 95% intervals carry the uncertainty of the
honest part, theta and alpha.
"""
from __future__ import annotations

import math
import warnings

import numba
import numpy as np

from simkit.forensics.klimek import joint as klimek_joint
from simkit.forensics.core import DrawnNull, Election, TestResult, check_null, verdict
from simkit.forensics.klimek.first_stage import FirstStage, first_stage, honest_groups
from simkit.forensics.klimek.density import (FLOOR, NODES, extreme_range, extreme_stuffing, honest_share,
                                             incremental_weights, truncated_normal_mass, truncated_pdf)

ID = "klimek_ml"
ALTERNATIVE = "greater"  #: the direction in which the statistic is anomalous (a likelihood ratio)
#: alpha grid of the estimates' profile (:func:`simkit.forensics.klimek.joint.profile`)
ALPHAS = np.arange(0.5, 4.01, 0.5)
#: the test's grid (it is refitted on every null draw; the estimates refine it)
GRID_ALPHAS = np.array([0.5, 1.5, 2.5, 3.5])
THETAS = np.array([0.05, 0.1, 0.2, 0.4])
#: extreme fraud is integrated over the honest turnout a: this many midpoints within HONEST_RANGE_SD of tau
EXTREME_NODES = 24
HONEST_RANGE_SD = 7.0
NEWTON_ITERATIONS = 100
#: the starting f_e of the extreme-fraud-only fit
EXTREME_START = 0.01
MAX_NULL_DRAWS = 39
#: what the test's statistic is, beside the joint fit's estimates in a result
STATISTIC_IS = "f_e of the extreme-fraud-only fit"
#: why the test has no textbook null (module docstring): the n/a reason of ``--null textbook``
NO_TEXTBOOK_LAW = ("no textbook law: its likelihood ratio holds the honest part at the first stage's estimates, not "
                   "at their null maximum, so chi-square does not describe it at any size (use --null simulated)")


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _densities(turnout, share, taus, sigma_tau, masses_tau, nus, sigma_nu, masses_nu, nodes, node_powers, alphas,
               incremental_weights, honest, incremental, extreme):
    """Fill ``honest`` (station,), ``incremental`` (alpha, theta, station) and ``extreme`` (alpha, station);
    ``taus``, ``nus``, ``masses_tau``, ``masses_nu`` (station,): the honest centres of each station's group and
    their truncated-normal masses."""
    for station in range(turnout.shape[0]):
        t, v = turnout[station], share[station]
        tau, nu, mass_tau, mass_nu = taus[station], nus[station], masses_tau[station], masses_nu[station]
        honest[station] = truncated_pdf(t, tau, sigma_tau, mass_tau) * truncated_pdf(v, nu, sigma_nu, mass_nu)
        for node in range(nodes.shape[0]):
            x = nodes[node]
            a = (t - x) / (1.0 - x)  # honest turnout that fraud x turns into t
            turnout_part = truncated_pdf(a, tau, sigma_tau, mass_tau)
            if turnout_part == 0.0:
                continue
            turnout_part *= t / ((1.0 - x) * a)
            for k in range(node_powers.shape[0]):
                xa = node_powers[k, node]
                density = turnout_part * truncated_pdf(honest_share(t, v, a, x, xa), nu, sigma_nu, mass_nu) / (1.0 - xa)
                if density == 0.0:
                    continue
                for j in range(incremental_weights.shape[0]):
                    incremental[k, j, station] += density * incremental_weights[j, node]
        first, width = extreme_range(t, tau, HONEST_RANGE_SD * sigma_tau, EXTREME_NODES)
        for m in range(EXTREME_NODES if width > 0.0 else 0):
            a = first + m * width
            x, stuffing = extreme_stuffing(t, a)
            if stuffing == 0.0:
                continue
            part = stuffing * truncated_pdf(a, tau, sigma_tau, mass_tau) * t / ((1.0 - x) * a) * width
            if part == 0.0:
                continue
            for k in range(alphas.shape[0]):
                xa = x ** alphas[k]
                extreme[k, station] += (part * truncated_pdf(honest_share(t, v, a, x, xa), nu, sigma_nu, mass_nu)
                                        / (1.0 - xa))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _evaluate(h, g, e, f_i, f_e, out):
    """Log-likelihood sum log(h + f_i (g - h) + f_e (e - h)) (densities already floored), its gradient and
    the observed information at (f_i, f_e): ``out`` = (loglik, d_i, d_e, info_ii, info_ie, info_ee)."""
    out[:] = 0.0
    for s in range(h.shape[0]):
        du, dv = g[s] - h[s], e[s] - h[s]
        mix = h[s] + f_i * du + f_e * dv
        su, sv = du / mix, dv / mix
        out[0] += math.log(mix)
        out[1] += su
        out[2] += sv
        out[3] += su * su
        out[4] += su * sv
        out[5] += sv * sv


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mixture_fit(h, g, e, start_i, start_e, iterations):
    """Maximise the concave log-likelihood of the weights (f_i, f_e) on the triangle f_i, f_e >= 0,
    f_i + f_e <= 1 from (start_i, start_e) by projected Newton steps with step halving. Returns
    (f_i, f_e, log-likelihood)."""
    f_i, f_e = start_i, start_e
    now = np.zeros(6)
    trial = np.zeros(6)
    _evaluate(h, g, e, f_i, f_e, now)
    for _ in range(iterations):
        free_i = not (f_i <= 0.0 and now[1] <= 0.0)
        free_e = not (f_e <= 0.0 and now[2] <= 0.0)
        det = now[3] * now[5] - now[4] * now[4]
        step_i, step_e = 0.0, 0.0
        if free_i and free_e and det > 1e-12 * now[3] * now[5]:
            step_i = (now[5] * now[1] - now[4] * now[2]) / det
            step_e = (now[3] * now[2] - now[4] * now[1]) / det
        elif free_i and now[3] > 0.0:
            step_i = now[1] / now[3]
        elif free_e and now[5] > 0.0:
            step_e = now[2] / now[5]
        else:
            break
        length = 1.0  # the longest step along (step_i, step_e) that stays in the triangle
        if step_i < 0.0:
            length = min(length, -f_i / step_i)
        if step_e < 0.0:
            length = min(length, -f_e / step_e)
        if step_i + step_e > 0.0:
            length = min(length, (1.0 - f_i - f_e) / (step_i + step_e))
        gain = -1.0
        while length > 1e-12:
            next_i, next_e = max(f_i + length * step_i, 0.0), max(f_e + length * step_e, 0.0)
            _evaluate(h, g, e, next_i, next_e, trial)
            gain = trial[0] - now[0]
            if gain >= 0.0:
                moved = abs(next_i - f_i) + abs(next_e - f_e)
                f_i, f_e = next_i, next_e
                now[:] = trial
                break
            length *= 0.5
        if gain < 1e-10 or moved < 1e-12:
            break
    return f_i, f_e, now[0]


def component_densities(turnout: np.ndarray, share: np.ndarray, stage: FirstStage,
                        group: np.ndarray, incremental_fraud: bool = True) -> tuple[np.ndarray, ...]:
    """Honest density (station,), incremental fraud densities (alpha, theta, station) and extreme fraud
    densities (alpha, station), each plus ``FLOOR``; each station's honest part is its group's
    (``group``, shape (station,)). ``incremental_fraud=False`` skips the incremental densities (the costly
    part), returned as an (alpha, theta, 0) array; the others are the same to the bit."""
    turnout = np.ascontiguousarray(turnout, dtype=np.float64)
    share = np.ascontiguousarray(share, dtype=np.float64)
    nodes = (np.arange(NODES if incremental_fraud else 0) + 0.5) / NODES
    weights = incremental_weights(nodes, THETAS) if incremental_fraud else np.zeros((THETAS.size, 0))
    n = turnout.size
    honest = np.zeros(n)
    incremental = np.zeros((GRID_ALPHAS.size, THETAS.size, n if incremental_fraud else 0))
    extreme = np.zeros((GRID_ALPHAS.size, n))
    taus, nus = np.ascontiguousarray(stage.tau[group]), np.ascontiguousarray(stage.nu[group])
    _densities(turnout, share, taus, stage.sigma_tau, truncated_normal_mass(taus, stage.sigma_tau),
               nus, stage.sigma_nu, truncated_normal_mass(nus, stage.sigma_nu), nodes,
               nodes[None, :] ** GRID_ALPHAS[:, None], GRID_ALPHAS, weights, honest, incremental, extreme)
    for densities in (honest, incremental, extreme):  # in place: no second 12 MB array per fit
        densities += FLOOR
    return honest, incremental, extreme


def grid_fit(turnout: np.ndarray, share: np.ndarray, stage: FirstStage, group: np.ndarray) -> dict[str, float]:
    """The fixed-first-stage fit on the ``GRID_ALPHAS`` x ``THETAS`` grid: the best grid point's
    ``f_incremental``, ``f_extreme``, ``alpha``, ``theta`` and the likelihood ratio against f_i = f_e = 0
    (shares and honest groups, shape (station,))."""
    honest, incremental, extreme = component_densities(turnout, share, stage, group)
    grid = np.zeros((GRID_ALPHAS.size, THETAS.size, 3))  # (alpha, theta) -> f_i, f_e, loglik
    for k in range(GRID_ALPHAS.size):
        start = (0.05, 0.01)
        for j in range(THETAS.size):  # each theta starts from its neighbour's maximum
            grid[k, j] = _mixture_fit(honest, incremental[k, j], extreme[k], *start, NEWTON_ITERATIONS)
            start = (min(max(grid[k, j, 0], 1e-3), 0.9), min(max(grid[k, j, 1], 1e-3), 0.09))
    k, j = np.unravel_index(int(np.argmax(grid[..., 2])), grid.shape[:2])
    return {"f_incremental": float(grid[k, j, 0]), "f_extreme": float(grid[k, j, 1]),
            "alpha": float(GRID_ALPHAS[k]), "theta": float(THETAS[j]),
            "likelihood_ratio": float(2 * (grid[k, j, 2] - np.log(honest).sum()))}


def extreme_fit(turnout: np.ndarray, share: np.ndarray, stage: FirstStage, group: np.ndarray
                ) -> dict[str, float]:
    """The extreme-fraud-only fit: the honest part fixed at the first stage, incremental fraud held at
    f_i = 0, and for each alpha of ``GRID_ALPHAS`` the f_e that maximises the likelihood; the best alpha's
    ``f_extreme`` (the test's statistic), ``alpha`` and ``likelihood_ratio`` against f_e = 0 (shares and
    honest groups, shape (station,))."""
    honest, _, extreme = component_densities(turnout, share, stage, group, incremental_fraud=False)
    # with the incremental density equal to the honest one, the incremental direction is void: f_i stays 0
    fits = [_mixture_fit(honest, honest, extreme[k], 0.0, EXTREME_START, NEWTON_ITERATIONS)
            for k in range(GRID_ALPHAS.size)]
    k = int(np.argmax([f[2] for f in fits]))
    return {"f_extreme": float(fits[k][1]), "alpha": float(GRID_ALPHAS[k]),
            "likelihood_ratio": float(2 * (fits[k][2] - np.log(honest).sum()))}


def estimate(turnout: np.ndarray, share: np.ndarray,
             group: np.ndarray | None = None) -> tuple[dict[str, float], klimek_joint.JointFit]:
    """The joint estimates of :func:`simkit.forensics.klimek.joint.profile` started from :func:`grid_fit`'s best
    grid point: f_i, f_e, alpha, theta with 95% intervals, the honest sigma_tau, sigma_nu and the station-weighted
    mean centres tau, nu (shares and honest groups (:func:`simkit.forensics.klimek.histogram.honest_groups`; None:
    one group), shape (station,)); and the best joint fit."""
    group = np.zeros(turnout.size, np.int64) if group is None else group
    stage = first_stage(turnout, share, group)
    grid = grid_fit(turnout, share, stage, group)
    start = int(np.argmin(np.abs(ALPHAS - grid["alpha"])))
    joint, best = klimek_joint.profile(turnout, share, group, stage, ALPHAS, start, grid["f_incremental"],
                                       grid["f_extreme"], grid["theta"])
    return {**joint, "honest_groups": int(stage.tau.size)}, best


def fit(turnout: np.ndarray, share: np.ndarray, group: np.ndarray | None = None) -> dict[str, float]:
    """:func:`estimate`'s figures."""
    return estimate(turnout, share, group)[0]


def election_estimate(e: Election) -> tuple[dict[str, float], klimek_joint.JointFit, list[str]]:
    """:func:`estimate` on the election's shares and honest groups, computed once per election (both Klimek
    tests report it; do not change the figures), with the warnings raised while fitting (``"Category:
    message"``, sorted), which are recorded instead of printed."""
    def compute():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            figures, joint = estimate(e.turnout, e.leader_share, honest_groups(e))
        return figures, joint, sorted({f"{w.category.__name__}: {w.message}" for w in caught})

    return e.derived("klimek_ml.estimate", compute)


def statistic(e: Election) -> float:
    """The fraction of stations in extreme fraud when it alone is fitted beside the honest part
    (:func:`extreme_fit`, first stage fixed, per honest group): the statistic of the simulated nulls."""
    group = honest_groups(e)
    return extreme_fit(e.turnout, e.leader_share, first_stage(e.turnout, e.leader_share, group), group)[
        "f_extreme"]


def run(e: Election, *, null: str = "simulated", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None, estimates: bool = True) -> TestResult:
    """The test against a simulated null's ``null_statistics`` (:func:`statistic` on each draw) and the joint
    estimates; the textbook null has no law of this test (:data:`NO_TEXTBOOK_LAW`: ValueError; ``simkit forensics``
    reports it ``n/a`` with the estimates, :func:`simkit.forensics.applicable.reason_not_applicable`). ``estimates``
    False: without the joint estimates (:func:`election_estimate`, which the p-value does not read), for sizes and
    powers."""
    check_null(null)
    if null == "textbook":
        raise ValueError(f"{ID}: {NO_TEXTBOOK_LAW}")
    extra = {**estimates_of(e), "statistic_is": STATISTIC_IS} if estimates else {}
    observed = statistic(e)
    p_value, reference = DrawnNull(null, null_statistics).p_value(observed, ALTERNATIVE)
    return TestResult(test=ID, statistic=observed, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value), extra=extra)


def estimates_of(e: Election, rng=None) -> dict:
    """The joint fit's estimates of ``e`` (:func:`election_estimate`; it draws nothing, ``rng`` is not read) with
    its warnings and the assumptions: the figures :func:`run` reports under every null, which an ``n/a`` result
    under the textbook null reports too (:mod:`simkit.forensics.core`)."""
    result, _, fit_warnings = election_estimate(e)
    if fit_warnings:  # recorded, not printed
        result = {**result, "warnings": fit_warnings}
    return {**result, "assumptions": "honest part centred per region (or district); test: the extreme-fraud-only "
                                     "f_e, the honest part fixed at the first stage; estimates: joint EM fit of the "
                                     "honest part, f_i, f_e and theta, alpha profiled continuously"}
