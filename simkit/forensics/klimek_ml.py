"""Klimek's fraud model fitted by maximum likelihood (after Mebane & Kalinin's likelihood fit).

The same model as ``simkit.forensics.klimek`` (honest truncated normals from the same first stage, incremental
``x ~ |N(0, theta)|``, extreme ``x ~ 1 - |N(0, 0.075)|``, both truncated to (0, 1)), but each station's observed
(turnout, leader share) enters a mixture likelihood ``(1 - f_i - f_e) h + f_i g + f_e e``: ``h`` is the honest
density and ``g``, ``e`` integrate the change of variables (a, v) -> (turnout, share) over ``x`` by midpoint
quadrature (``NODES`` points in (0, 1); a node's density does not depend on ``theta``, only its weight does, so
every ``theta`` of the grid costs one weighted sum).

Fit: for every ``(alpha, theta)`` on ``ALPHAS`` x ``THETAS``, ``(f_i, f_e)`` maximise the log-likelihood, which is
concave in them, by projected Newton steps on the triangle ``f_i, f_e >= 0, f_i + f_e <= 1``; the estimate is the
grid point with the highest maximum (profile likelihood; the first stage stays fixed, a simplification of the
joint fit). ``theta`` is fitted rather than taken from the first stage's rule, whose value tracks the honest
spread whatever stuffing was planted.

Intervals (95%): the grid points whose profile log-likelihood lies within ``chi2_2(0.95) / 2`` of the best form a
confidence set for ``(alpha, theta)``; ``alpha`` and ``theta`` intervals are its range, and ``f_i``, ``f_e``
intervals the union over it of ``f +- 1.96`` standard errors from the observed information (so they carry the
uncertainty of ``alpha`` and ``theta``). Test of ``f_i = f_e = 0``: ``LR = 2 (l_best - l_honest)``; textbook p
from chi-square with 4 degrees of freedom (``f_i``, ``f_e``, and ``alpha``, ``theta``, which are unidentified under
the null: an approximation), simulated p from LR on honest simulations (``MAX_NULL_DRAWS`` draws).
"""
from __future__ import annotations

import math

import numba
import numpy as np
from scipy import stats

from simkit.forensics.core import Election, TestResult, check_null, simulated_p_value, verdict
from simkit.forensics.klimek import EXTREME_SD, FirstStage, first_stage

ID = "klimek_ml"
ALPHAS = np.arange(0.5, 4.01, 0.5)
THETAS = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.4])
NODES = 32
FLOOR = 1e-300
#: a normal density beyond this many SDs is taken as 0 (exp(-32) ~ 1e-14 of the peak)
CUTOFF_SD = 8.0
NEWTON_ITERATIONS = 100
MAX_NULL_DRAWS = 39
#: half the 95% quantile of chi-square with 2 degrees of freedom: the profile drop of the (alpha, theta) set
PROFILE_DROP = stats.chi2.ppf(0.95, 2) / 2


def _truncated_normal_mass(mean: float, sd: float) -> float:
    return float(stats.norm.cdf((1 - mean) / sd) - stats.norm.cdf(-mean / sd))


@numba.njit(inline="always")
def _truncated_pdf(x, mean, sd, mass):
    """Normal(mean, sd) density truncated to (0, 1) (``mass`` is its probability in (0, 1))."""
    z = (x - mean) / sd
    if x <= 0.0 or x >= 1.0 or abs(z) > CUTOFF_SD:
        return 0.0
    return math.exp(-0.5 * z * z) / (sd * math.sqrt(2.0 * math.pi) * mass)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _densities(turnout, share, tau, sigma_tau, mass_tau, nu, sigma_nu, mass_nu, nodes, node_powers,
               incremental_weights, extreme_weights, honest, incremental, extreme):
    """Fill ``honest`` (station,), ``incremental`` (alpha, theta, station) and ``extreme`` (alpha, station)."""
    for station in range(turnout.shape[0]):
        t, v = turnout[station], share[station]
        honest[station] = _truncated_pdf(t, tau, sigma_tau, mass_tau) * _truncated_pdf(v, nu, sigma_nu, mass_nu)
        for node in range(nodes.shape[0]):
            x = nodes[node]
            a = (t - x) / (1.0 - x)  # honest turnout that fraud x turns into t
            turnout_part = _truncated_pdf(a, tau, sigma_tau, mass_tau)
            if turnout_part == 0.0:
                continue
            turnout_part *= t / ((1.0 - x) * a)
            for k in range(node_powers.shape[0]):
                xa = node_powers[k, node]
                honest_share = (t * v - x * (1.0 - a) - xa * a) / (a * (1.0 - xa))
                density = turnout_part * _truncated_pdf(honest_share, nu, sigma_nu, mass_nu) / (1.0 - xa)
                if density == 0.0:
                    continue
                for j in range(incremental_weights.shape[0]):
                    incremental[k, j, station] += density * incremental_weights[j, node]
                extreme[k, station] += density * extreme_weights[node]


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
    (f_i, f_e, log-likelihood, se_i, se_e); standard errors from the inverse observed information at the
    maximum (NaN where it is singular)."""
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
    det = now[3] * now[5] - now[4] * now[4]
    if det <= 0.0:
        return f_i, f_e, now[0], np.nan, np.nan
    return f_i, f_e, now[0], math.sqrt(now[5] / det), math.sqrt(now[3] / det)


def _node_weights(nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature weights: (theta, node) for incremental fraud, (node,) for extreme fraud (rows sum to 1)."""
    incremental = 2 * stats.norm.pdf(nodes[None, :], 0, THETAS[:, None])
    extreme = 2 * stats.norm.pdf(1 - nodes, 0, EXTREME_SD)
    return incremental / incremental.sum(axis=1, keepdims=True), extreme / extreme.sum()


def component_densities(turnout: np.ndarray, share: np.ndarray, stage: FirstStage) -> tuple[np.ndarray, ...]:
    """Honest density (station,), incremental fraud densities (alpha, theta, station) and extreme fraud
    densities (alpha, station), each plus ``FLOOR``."""
    turnout = np.ascontiguousarray(turnout, dtype=np.float64)
    share = np.ascontiguousarray(share, dtype=np.float64)
    nodes = (np.arange(NODES) + 0.5) / NODES
    incremental_weights, extreme_weights = _node_weights(nodes)
    n = turnout.size
    honest = np.zeros(n)
    incremental = np.zeros((ALPHAS.size, THETAS.size, n))
    extreme = np.zeros((ALPHAS.size, n))
    _densities(turnout, share, stage.tau, stage.sigma_tau, _truncated_normal_mass(stage.tau, stage.sigma_tau),
               stage.nu, stage.sigma_nu, _truncated_normal_mass(stage.nu, stage.sigma_nu), nodes,
               nodes[None, :] ** ALPHAS[:, None], incremental_weights, extreme_weights, honest, incremental, extreme)
    return honest + FLOOR, incremental + FLOOR, extreme + FLOOR


def fit(turnout: np.ndarray, share: np.ndarray, stage: FirstStage | None = None) -> dict[str, float]:
    """Maximum-likelihood (f_i, f_e, alpha, theta) with 95% intervals and the LR statistic against
    f_i = f_e = 0 (shares, shape (station,))."""
    stage = stage or first_stage(turnout, share)
    honest, incremental, extreme = component_densities(turnout, share, stage)
    grid = np.zeros((ALPHAS.size, THETAS.size, 5))  # (alpha, theta) -> f_i, f_e, loglik, se_i, se_e
    for k in range(ALPHAS.size):
        start = (0.05, 0.01)
        for j in range(THETAS.size):  # each theta starts from its neighbour's maximum
            grid[k, j] = _mixture_fit(honest, incremental[k, j], extreme[k], *start, NEWTON_ITERATIONS)
            start = (min(max(grid[k, j, 0], 1e-3), 0.9), min(max(grid[k, j, 1], 1e-3), 0.09))
    loglik = grid[..., 2]
    k, j = np.unravel_index(int(np.argmax(loglik)), loglik.shape)
    f_i, f_e, top = grid[k, j, :3]
    inside = loglik >= top - PROFILE_DROP
    sets = grid[inside]
    low = np.maximum(sets[:, :2] - 1.96 * np.nan_to_num(sets[:, 3:5], nan=np.inf), 0.0).min(axis=0)
    high = np.minimum(sets[:, :2] + 1.96 * np.nan_to_num(sets[:, 3:5], nan=np.inf), 1.0).max(axis=0)
    alphas, thetas = np.nonzero(inside)
    return {"f_incremental": float(f_i), "f_incremental_low": float(low[0]), "f_incremental_high": float(high[0]),
            "f_extreme": float(f_e), "f_extreme_low": float(low[1]), "f_extreme_high": float(high[1]),
            "alpha": float(ALPHAS[k]), "alpha_low": float(ALPHAS[alphas].min()),
            "alpha_high": float(ALPHAS[alphas].max()), "theta": float(THETAS[j]),
            "theta_low": float(THETAS[thetas].min()), "theta_high": float(THETAS[thetas].max()),
            "likelihood_ratio": float(2 * (top - np.log(honest).sum()))}


def statistic(e: Election) -> float:
    """Likelihood ratio of the fitted fraud model against f_i = f_e = 0."""
    return fit(e.turnout, e.leader_share)["likelihood_ratio"]


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    result = fit(e.turnout, e.leader_share)
    lr = result.pop("likelihood_ratio")
    if null == "textbook":
        p_value, reference = float(stats.chi2.sf(lr, 4)), 0.0
    else:
        p_value, reference = simulated_p_value(lr, null_statistics, "greater")
    return TestResult(test=ID, statistic=lr, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={**result, "assumptions": "mixture likelihood with the first stage fixed from the data "
                                                      "(modes and left halves), x integrated by quadrature, "
                                                      "(alpha, theta) profiled on a grid"})
