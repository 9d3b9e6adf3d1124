"""Klimek's fraud model with the honest part fitted jointly: EM over the latent honest values.

:mod:`simkit.forensics.klimek_ml` holds the honest part at the first stage (the modes and left halves of the
histograms). Incremental stuffing shifts and widens those, so the honest part absorbs it and ``f_i`` comes
out far too low (README: 0 of 20 planted replicates covered). Here all of ``f_i, f_e, tau, sigma_tau, nu,
sigma_nu, theta`` are fitted together at a given ``alpha`` by EM, with each station's latent component and
stuffing fraction ``x`` on the quadrature nodes of ``klimek_ml``:

- E-step: the posterior probability of each (component, node) at every station; a station in the fraud
  components at node ``x`` had honest turnout ``a = (t - x) / (1 - x)`` and honest share ``v_h``
  (:func:`simkit.forensics.klimek_ml._densities` has the change of variables);
- M-step: ``f_i``, ``f_e`` the mean posterior masses; ``tau``, ``sigma_tau`` (``nu``, ``sigma_nu``) the
  posterior-weighted mean and SD of the honest turnouts (shares) over every component, ``theta`` from the
  posterior second moment of ``x`` in the incremental component (the half-normal's estimate). The truncation
  of the normals to (0, 1) is left out of the M-step (it matters only for honest parts near 0 or 1).

Standard errors: the inverse of the outer product of the per-station scores at the maximum (Fisher's identity:
each score is the posterior mean of the complete-data score), over all seven parameters, so ``f_i``'s interval
carries the uncertainty of the honest part and of ``theta``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy import optimize, stats

from simkit.forensics.klimek import FirstStage
from simkit.forensics.klimek_density import (FLOOR, NODES, extreme_range, extreme_stuffing, honest_share,
                                             incremental_log_weights, incremental_weights, truncated_normal_mass,
                                             truncated_pdf)

#: parameters in the order of :attr:`JointFit.covariance`
PARAMETERS = ("f_incremental", "f_extreme", "tau", "sigma_tau", "nu", "sigma_nu", "theta")
#: SQUAREM cycles at most (three EM passes each)
MAX_CYCLES = 200
#: EM stops when a cycle gains less log-likelihood than this
TOLERANCE = 1e-4
MIN_SD = 1e-3
MAX_THETA = 10.0
#: extreme-fraud nodes over the honest turnout, within RANGE_SD first-stage SDs of the first-stage tau
EM_EXTREME_NODES = 32
RANGE_SD = 8.0
#: half the 95% quantile of chi-square with 1 degree of freedom: the profile drop of the alpha interval
ALPHA_DROP = stats.chi2.ppf(0.95, 1) / 2


@dataclass(frozen=True)
class JointFit:
    """EM estimates at one ``alpha``: the seven :data:`PARAMETERS`, the log-likelihood, the SQUAREM cycles
    used, whether EM converged (a cycle gained less than ``TOLERANCE``) within ``MAX_CYCLES``, and the
    covariance (7, 7) of the estimates (NaN where the information is singular)."""

    values: np.ndarray
    alpha: float
    log_likelihood: float
    iterations: int
    converged: bool
    covariance: np.ndarray

    def value(self, name: str) -> float:
        return float(self.values[PARAMETERS.index(name)])

    def interval(self, name: str, z: float = 1.96) -> tuple[float, float]:
        """value -+ z standard errors, clipped to the parameter's range ([0, 1] for the fractions)."""
        i = PARAMETERS.index(name)
        se = math.sqrt(self.covariance[i, i]) if self.covariance[i, i] >= 0 else math.nan
        low, high = self.values[i] - z * se, self.values[i] + z * se
        return (max(low, 0.0), min(high, 1.0)) if np.isfinite(se) else (0.0, 1.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _geometry(turnout, share, alpha, nodes, range_center, range_spread, honest_turnouts, honest_shares, log_base):
    """Fill the parameter-free part of every station's quadrature nodes, shape (station, node): the first
    ``nodes.size`` nodes are incremental fraud's x nodes, the last ``EM_EXTREME_NODES`` extreme fraud's nodes
    over the honest turnout. ``honest_turnouts``, ``honest_shares``: the honest (a, v_h) each node maps to
    (t, v); ``log_base``: the log of everything in the node's density but the two honest normal densities and,
    for incremental nodes, x's weight (-inf where the node cannot produce (t, v))."""
    n_inc = nodes.shape[0]
    for station in range(turnout.shape[0]):
        t, v = turnout[station], share[station]
        for k in range(n_inc):
            x = nodes[k]
            a = (t - x) / (1.0 - x)
            xa = x ** alpha
            honest_turnouts[station, k] = a
            honest_shares[station, k] = honest_share(t, v, a, x, xa) if a > 0.0 else 0.0
            base = t / ((1.0 - x) * a * (1.0 - xa))
            ok = 0.0 < a < 1.0 and 0.0 < honest_shares[station, k] < 1.0 and base > 0.0
            log_base[station, k] = math.log(base) if ok else -np.inf
        first, width = extreme_range(t, range_center, range_spread, EM_EXTREME_NODES)
        for m in range(EM_EXTREME_NODES):
            k = n_inc + m
            a = first + m * width
            honest_turnouts[station, k] = a
            honest_shares[station, k] = 0.0
            log_base[station, k] = -np.inf
            if width <= 0.0:
                continue
            x, stuffing = extreme_stuffing(t, a)
            if stuffing == 0.0:
                continue
            xa = x ** alpha
            v_h = honest_share(t, v, a, x, xa)
            honest_shares[station, k] = v_h
            if 0.0 < v_h < 1.0:
                log_base[station, k] = math.log(stuffing * t / ((1.0 - x) * a * (1.0 - xa)) * width)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pass(turnout, share, params, mass_tau, mass_nu, nodes, log_weights, honest_turnouts, honest_shares, log_base,
          sums, scores):
    """One E-step over every station at ``params`` (the seven parameters), on the node geometry of
    :func:`_geometry` (fixed for the whole fit, so every pass integrates the same discretised model and EM
    increases its likelihood at every step).

    ``sums`` (9,) receives: log-likelihood, posterior masses of incremental and extreme fraud, the posterior
    sums of a, a^2, v_h, v_h^2, of x^2 over incremental nodes, and the total posterior mass (the station count
    but for stations that no component can produce, such as turnout 1, whose likelihood is the floor whatever
    the parameters). With ``scores`` of shape (station, 7), each station's score vector is written too (else
    pass shape (0, 7))."""
    f_i, f_e, tau, sigma_tau, nu, sigma_nu, theta = params
    n_inc = nodes.shape[0]
    n_nodes = honest_turnouts.shape[1]
    second_moment = 0.0  # of x under the incremental weights
    for k in range(n_inc):
        second_moment += math.exp(log_weights[k]) * nodes[k] ** 2
    log_norm = -math.log(sigma_tau * math.sqrt(2.0 * math.pi) * mass_tau) - math.log(
        sigma_nu * math.sqrt(2.0 * math.pi) * mass_nu)
    density = np.empty(n_nodes)
    sums[:] = 0.0
    for station in range(turnout.shape[0]):
        t, v = turnout[station], share[station]
        honest = truncated_pdf(t, tau, sigma_tau, mass_tau) * truncated_pdf(v, nu, sigma_nu, mass_nu)
        incremental = 0.0
        extreme = 0.0
        for k in range(n_nodes):
            base = log_base[station, k]
            if base == -np.inf:
                density[k] = 0.0
                continue
            za = (honest_turnouts[station, k] - tau) / sigma_tau
            zv = (honest_shares[station, k] - nu) / sigma_nu
            log_density = base + log_norm - 0.5 * (za * za + zv * zv)
            if k < n_inc:
                log_density += log_weights[k]
            density[k] = math.exp(log_density)
            if k < n_inc:
                incremental += density[k]
            else:
                extreme += density[k]
        mixture = (1.0 - f_i - f_e) * honest + f_i * incremental + f_e * extreme + FLOOR
        sums[0] += math.log(mixture)
        r_honest = (1.0 - f_i - f_e) * honest / mixture
        weight_a = r_honest * t
        weight_a2 = r_honest * t * t
        weight_v = r_honest * v
        weight_v2 = r_honest * v * v
        mass_i = 0.0
        mass_e = 0.0
        x2 = 0.0
        for k in range(n_nodes):
            if density[k] == 0.0:
                continue
            r = (f_i if k < n_inc else f_e) * density[k] / mixture
            if k < n_inc:
                mass_i += r
                x2 += r * nodes[k] ** 2
            else:
                mass_e += r
            a, v_h = honest_turnouts[station, k], honest_shares[station, k]
            weight_a += r * a
            weight_a2 += r * a * a
            weight_v += r * v_h
            weight_v2 += r * v_h * v_h
        sums[1] += mass_i
        sums[2] += mass_e
        sums[3] += weight_a
        sums[4] += weight_a2
        sums[5] += weight_v
        sums[6] += weight_v2
        sums[7] += x2
        sums[8] += r_honest + mass_i + mass_e
        if scores.shape[0] > 0:
            responsibility = r_honest + mass_i + mass_e  # 1 up to the floor
            scores[station, 0] = (incremental - honest) / mixture
            scores[station, 1] = (extreme - honest) / mixture
            scores[station, 2] = (weight_a - responsibility * tau) / sigma_tau ** 2
            scores[station, 3] = ((weight_a2 - 2 * tau * weight_a + responsibility * tau * tau) / sigma_tau ** 3
                                  - responsibility / sigma_tau)
            scores[station, 4] = (weight_v - responsibility * nu) / sigma_nu ** 2
            scores[station, 5] = ((weight_v2 - 2 * nu * weight_v + responsibility * nu * nu) / sigma_nu ** 3
                                  - responsibility / sigma_nu)
            scores[station, 6] = (x2 - mass_i * second_moment) / theta ** 3


def _masses(params: np.ndarray) -> tuple[float, float]:
    return truncated_normal_mass(params[2], params[3]), truncated_normal_mass(params[4], params[5])


def _theta_for(second_moment: float, nodes: np.ndarray) -> float:
    """The theta whose weights on ``nodes`` (a half-normal discretised and cut at 1) have this mean x^2: the
    exact M-step for theta (theta^2 = E[x^2] ignores the cut, which matters once theta nears 0.3)."""
    def gap(theta: float) -> float:
        return float(incremental_weights(nodes, theta) @ nodes ** 2) - second_moment

    if gap(MIN_SD) >= 0:
        return MIN_SD
    if gap(MAX_THETA) <= 0:
        return MAX_THETA
    return float(optimize.brentq(gap, MIN_SD, MAX_THETA, xtol=1e-10))


def _em_update(sums: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The M-step: the seven parameters from one pass's posterior sums."""
    mass = sums[8]
    tau, nu = sums[3] / mass, sums[5] / mass
    return np.array([sums[1] / mass, sums[2] / mass, tau, max(math.sqrt(max(sums[4] / mass - tau * tau, 0.0)), MIN_SD),
                     nu, max(math.sqrt(max(sums[6] / mass - nu * nu, 0.0)), MIN_SD),
                     _theta_for(sums[7] / max(sums[1], 1e-12), nodes)])


def _valid(params: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(params)) and params[0] >= 0 and params[1] >= 0 and params[0] + params[1] <= 1
                and 0 < params[2] < 1 and 0 < params[4] < 1 and np.all(params[[3, 5, 6]] >= MIN_SD))


def fit(turnout: np.ndarray, share: np.ndarray, alpha: float, stage: FirstStage, f_incremental: float,
        f_extreme: float, theta: float) -> JointFit:
    """EM from the first stage and starting fractions (shares of shape (station,)), accelerated by SQUAREM
    (Varadhan & Roland 2008, scheme S3, falling back to the plain EM step whenever the extrapolated point is
    outside the parameter space or lowers the likelihood)."""
    turnout = np.ascontiguousarray(turnout, dtype=np.float64)
    share = np.ascontiguousarray(share, dtype=np.float64)
    nodes = (np.arange(NODES) + 0.5) / NODES
    shape = (turnout.size, NODES + EM_EXTREME_NODES)
    geometry = np.empty(shape), np.empty(shape), np.empty(shape)  # honest turnout, honest share, log base
    _geometry(turnout, share, float(alpha), nodes, stage.tau, RANGE_SD * stage.sigma_tau, *geometry)
    sums = np.zeros(9)
    no_scores = np.zeros((0, 7))

    def step(params: np.ndarray) -> tuple[float, np.ndarray]:
        _pass(turnout, share, params, *_masses(params), nodes, incremental_log_weights(nodes, params[6]), *geometry,
              sums, no_scores)
        return float(sums[0]), _em_update(sums, nodes)

    params = np.array([max(f_incremental, 0.01), max(f_extreme, 0.001), stage.tau, stage.sigma_tau, stage.nu,
                       stage.sigma_nu, theta])
    loglik, first = step(params)  # first = one EM step from params
    cycles, converged = 0, False
    for cycles in range(1, MAX_CYCLES + 1):
        loglik_first, second = step(first)
        r, v = first - params, second - 2 * first + params
        scale = min(-math.sqrt(float(r @ r) / float(v @ v)), -1.0) if float(v @ v) > 0 else -1.0
        jump = params - 2 * scale * r + scale * scale * v
        gained_from = loglik
        if _valid(jump) and (candidate := step(jump))[0] >= loglik_first:
            params, (loglik, first) = jump, candidate
        else:  # the plain EM step, two passes on (EM: it does not lower the likelihood, up to the truncation
            params, (loglik, first) = second, step(second)  # of the normals, which the M-step leaves out)
        if loglik - gained_from < TOLERANCE:
            converged = True
            break
    scores = np.zeros((turnout.size, 7))
    _pass(turnout, share, params, *_masses(params), nodes, incremental_log_weights(nodes, params[6]), *geometry,
          sums, scores)
    information = scores.T @ scores
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        covariance = np.full((7, 7), np.nan)
    return JointFit(values=params, alpha=float(alpha), log_likelihood=float(sums[0]), iterations=cycles,
                    converged=converged, covariance=covariance)


def profile(turnout: np.ndarray, share: np.ndarray, stage: FirstStage, alphas: np.ndarray, start: int,
            f_incremental: float, f_extreme: float, theta: float) -> tuple[dict[str, float], JointFit]:
    """EM fits (:func:`fit`) along ``alphas`` from index ``start``: walks toward higher likelihood, then on
    while a neighbour stays within ``chi2_1(0.95) / 2`` of the best (the alpha interval). The fractions'
    and theta's intervals are the union of their Wald intervals over that alpha interval. Each fit starts
    from its neighbour's estimates (the first from the given fractions and theta). Returns the estimates
    with their intervals (and the honest part's estimates) and the best fit."""
    fits: dict[int, JointFit] = {}

    def at(index: int, source: int | None = None) -> JointFit:
        if index not in fits:
            if source is None:
                fits[index] = fit(turnout, share, alphas[index], stage, f_incremental, f_extreme, theta)
            else:
                values = fits[source].values
                fits[index] = fit(turnout, share, alphas[index], stage, values[0], values[1], values[6])
        return fits[index]

    best = start
    at(best)
    for step in (-1, 1):  # climb the profile
        index = best
        while 0 <= index + step < alphas.size and at(index + step, index).log_likelihood > fits[index].log_likelihood:
            index += step
        if fits[index].log_likelihood > fits[best].log_likelihood:
            best = index
    top = fits[best].log_likelihood
    for step in (-1, 1):  # the interval: on while within the drop
        index = best
        while 0 <= index + step < alphas.size and at(index + step, index).log_likelihood >= top - ALPHA_DROP:
            index += step
    kept = sorted(i for i, f in fits.items() if f.log_likelihood >= top - ALPHA_DROP)
    result = {"alpha": float(alphas[best]), "alpha_low": float(alphas[kept[0]]),
              "alpha_high": float(alphas[kept[-1]]), "em_cycles": sum(f.iterations for f in fits.values()),
              "em_converged": all(f.converged for f in fits.values())}
    for name in ("f_incremental", "f_extreme", "theta"):
        bounds = np.array([fits[i].interval(name) for i in kept])
        result.update({name: fits[best].value(name), f"{name}_low": float(bounds[:, 0].min()),
                       f"{name}_high": float(bounds[:, 1].max())})
    result.update({name: fits[best].value(name) for name in ("tau", "sigma_tau", "nu", "sigma_nu")})
    return result, fits[best]
