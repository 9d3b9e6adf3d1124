"""Klimek's fraud model fitted by maximum likelihood (after Mebane & Kalinin's likelihood fit).

The same model as ``simkit.forensics.klimek`` (honest truncated normals from the same first stage, incremental
``x ~ |N(0, theta)|``, extreme ``x ~ 1 - |N(0, 0.075)|``), but each station's observed (turnout, leader share)
enters a mixture likelihood ``(1 - f_i - f_e) h + f_i g_alpha + f_e e_alpha``: ``h`` is the honest density and
``g``, ``e`` integrate the change of variables (a, v) -> (turnout, share) over ``x`` by midpoint quadrature
(``NODES`` points). ``f_i, f_e`` maximise it by EM for each ``alpha`` on ``ALPHAS``; ``alpha`` by profile.
Intervals: ``alpha`` from the profile likelihood (drop of 1.92, on the grid), ``f_i``, ``f_e`` +- 1.96 standard
errors from the observed information. The first stage stays fixed (a simplification of the joint fit).
Test of ``f_i = f_e = 0``: likelihood ratio ``LR = 2 (l_best - l_honest)``; textbook p from chi-square with 3
degrees of freedom (``f_i``, ``f_e``, and ``alpha``, unidentified under the null: an approximation), simulated p
from LR on honest simulations (``MAX_NULL_DRAWS`` draws).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from simkit.forensics.core import Election, TestResult, check_null, simulated_p_value, verdict
from simkit.forensics.klimek import EXTREME_SD, FirstStage, first_stage

ID = "klimek_ml"
ALPHAS = np.arange(0.5, 4.01, 0.5)
NODES = 32
EM_ITERATIONS = 200
FLOOR = 1e-300
MAX_NULL_DRAWS = 39
CHUNK = 20000


def _truncated_pdf(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    """Normal(mean, sd) density truncated to (0, 1)."""
    mass = stats.norm.cdf((1 - mean) / sd) - stats.norm.cdf(-mean / sd)
    density = np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi) * mass)
    return np.where((x > 0) & (x < 1), density, 0.0)


def _nodes(stage: FirstStage) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Quadrature nodes in x and their probability weights, for incremental and extreme fraud."""
    mids = (np.arange(NODES) + 0.5) / NODES
    inc = 2 * stats.norm.pdf(mids, 0, stage.theta)
    ext = 2 * stats.norm.pdf(1 - mids, 0, EXTREME_SD)
    return {"inc": (mids, inc / inc.sum()), "ext": (mids, ext / ext.sum())}


def _fraud_density(turnout, share, stage, x, weight, alpha) -> np.ndarray:
    """Density of (turnout, share) under fraud with x on nodes, shape (station,)."""
    t, v = turnout[:, None], share[:, None]
    xa = x[None, :] ** alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (t - x) / (1 - x)
        v_h = (t * v - x * (1 - a) - xa * a) / (a * (1 - xa))
        jacobian = (1 - x) * a * (1 - xa) / t
        density = (_truncated_pdf(a, stage.tau, stage.sigma_tau) * _truncated_pdf(v_h, stage.nu, stage.sigma_nu)
                   / jacobian)
    density = np.where(np.isfinite(density) & (a > 0) & (a < 1), density, 0.0)
    return density @ weight


def component_densities(turnout: np.ndarray, share: np.ndarray, stage: FirstStage) -> tuple[np.ndarray, ...]:
    """Honest density (station,) and fraud densities (alpha, station) for incremental and extreme fraud."""
    honest = _truncated_pdf(turnout, stage.tau, stage.sigma_tau) * _truncated_pdf(share, stage.nu, stage.sigma_nu)
    nodes = _nodes(stage)
    inc = np.zeros((ALPHAS.size, turnout.size))
    ext = np.zeros((ALPHAS.size, turnout.size))
    for start in range(0, turnout.size, CHUNK):
        part = slice(start, start + CHUNK)
        for k, alpha in enumerate(ALPHAS):
            inc[k, part] = _fraud_density(turnout[part], share[part], stage, *nodes["inc"], alpha)
            ext[k, part] = _fraud_density(turnout[part], share[part], stage, *nodes["ext"], alpha)
    return honest, inc, ext


def _em(h: np.ndarray, g: np.ndarray, e: np.ndarray) -> tuple[float, float, float]:
    """Mixture weights (f_i, f_e) maximising sum log((1 - f_i - f_e) h + f_i g + f_e e), and the maximum."""
    weights = np.array([0.8, 0.1, 0.1])
    dens = np.stack([h, g, e]) + FLOOR
    for _ in range(EM_ITERATIONS):
        mix = weights[:, None] * dens
        weights = (mix / mix.sum(axis=0)).mean(axis=1)
    return float(weights[1]), float(weights[2]), float(np.log(weights @ dens).sum())


def fit(turnout: np.ndarray, share: np.ndarray, stage: FirstStage | None = None) -> dict[str, float]:
    """Maximum-likelihood (f_i, f_e, alpha) with intervals and the LR statistic against f_i = f_e = 0."""
    stage = stage or first_stage(turnout, share)
    honest, inc, ext = component_densities(turnout, share, stage)
    profile = [_em(honest, inc[k], ext[k]) for k in range(ALPHAS.size)]
    loglik = np.array([p[2] for p in profile])
    best = int(np.argmax(loglik))
    f_i, f_e, top = profile[best]
    null_loglik = float(np.log(honest + FLOOR).sum())
    within = ALPHAS[loglik >= top - stats.chi2.ppf(0.95, 1) / 2]
    mix = (1 - f_i - f_e) * honest + f_i * inc[best] + f_e * ext[best] + FLOOR
    scores = np.stack([inc[best] - honest, ext[best] - honest]) / mix
    covariance = np.linalg.pinv(scores @ scores.T)
    se = np.sqrt(np.maximum(np.diag(covariance), 0))
    return {"f_incremental": f_i, "f_incremental_low": max(f_i - 1.96 * se[0], 0.0),
            "f_incremental_high": f_i + 1.96 * se[0], "f_extreme": f_e,
            "f_extreme_low": max(f_e - 1.96 * se[1], 0.0), "f_extreme_high": f_e + 1.96 * se[1],
            "alpha": float(ALPHAS[best]), "alpha_low": float(within.min()), "alpha_high": float(within.max()),
            "likelihood_ratio": 2 * (top - null_loglik)}


def statistic(e: Election) -> float:
    """Likelihood ratio of the fitted fraud model against f_i = f_e = 0."""
    return fit(e.turnout, e.leader_share)["likelihood_ratio"]


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    result = fit(e.turnout, e.leader_share)
    lr = result.pop("likelihood_ratio")
    if null == "textbook":
        p_value, reference = float(stats.chi2.sf(lr, 3)), 0.0
    else:
        p_value, reference = simulated_p_value(lr, null_statistics, "greater")
    return TestResult(test=ID, statistic=lr, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={**result, "assumptions": "mixture likelihood with the first stage fixed from the data "
                                                      "(modes and left halves), x integrated by quadrature"})
