"""Klimek's fraud model with the honest part fitted jointly: EM over the latent honest values.

:mod:`simkit.forensics.klimek.ml` holds the honest part at the first stage (the modes and left halves of the
histograms). Incremental stuffing shifts and widens those, so the honest part absorbs it and ``f_i`` comes
out far too low (docs/forensics.md: 0 of 20 planted replicates covered). Here all of ``f_i, f_e, sigma_tau, sigma_nu,
theta`` and the honest centres ``tau_g``, ``nu_g`` of every honest group ``g`` (region or district,
:func:`simkit.forensics.klimek.histogram.honest_groups`) are fitted together at a given ``alpha`` by EM, with each
station's latent component and stuffing fraction ``x`` on the quadrature nodes of ``klimek_ml``:

- E-step: the posterior probability of each (component, node) at every station; a station in the fraud
  components at node ``x`` had honest turnout ``a = (t - x) / (1 - x)`` and honest share ``v_h``
  (:func:`simkit.forensics.klimek.ml._densities` has the change of variables);
- M-step: ``f_i``, ``f_e`` the mean posterior masses; ``tau_g``, ``nu_g`` the posterior-weighted means of the
  honest turnouts (shares) of group ``g`` over every component, ``sigma_tau``, ``sigma_nu`` the pooled
  posterior-weighted SDs around them, ``theta`` from the posterior second moment of ``x`` in the incremental
  component (the half-normal's estimate). The truncation of the normals to (0, 1) is left out of the M-step
  (it matters only for honest centres near 0 or 1).

Why per-group centres with common SDs (the honest part a mixture over groups): a vote whose level differs by
region is a mixture of clouds, which one national normal can only fit by sending the regions off its centre
into the fraud components (Uganda 2016: 77-94% of stations "stuffed"). Centring the honest part per group
removes that while the fraud model keeps its geometry (stuffing moves a station toward turnout and share 1
from its own group's honest point; residuals recentred on a national point would distort that map). The SDs
are pooled so that a group of 30 stations cannot shrink its cloud onto a few stations. What it absorbs:
stuffing applied uniformly to every station of a group is read as that group's honest level.

Stations at the corner (turnout 1, or leader share 1 near full turnout: :func:`corner_stations`), which extreme
fraud reaches in counts but no component of the continuous model produces, count as extreme fraud (likelihood
``f_e`` times a constant) rather than dropping out at the likelihood floor.

Standard errors: the inverse of the outer product of the per-station scores at the maximum (Fisher's identity:
each score is the posterior mean of the complete-data score). The information has one 2 x 2 block per group
for its centres, so the covariance of the five common :data:`GLOBALS` is the inverse of their Schur
complement; ``f_i``'s interval carries the uncertainty of the honest part and of ``theta``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy import optimize, stats

from simkit.forensics.klimek.first_stage import EXTREME_SD, FirstStage
from simkit.forensics.klimek.density import (EDGE, FLOOR, NODES, extreme_range, extreme_stuffing, honest_share,
                                             incremental_log_weights, incremental_weights, truncated_normal_mass,
                                             truncated_pdf)

#: the common parameters, in the order of :attr:`JointFit.covariance` and of the head of :attr:`JointFit.values`
GLOBALS = ("f_incremental", "f_extreme", "sigma_tau", "sigma_nu", "theta")
N_GLOBAL = len(GLOBALS)
#: SQUAREM cycles at most (three EM passes each)
MAX_CYCLES = 200
#: EM stops when a cycle gains less log-likelihood than this
TOLERANCE = 1e-4
MIN_SD = 1e-3
MAX_THETA = 10.0
#: extreme-fraud nodes over the honest turnout, within RANGE_SD first-stage SDs of the group's first-stage tau
EM_EXTREME_NODES = 32
RANGE_SD = 8.0
#: a station at share 1 is a corner station when its turnout is at least 1 - CORNER_SD extreme-fraud SDs
CORNER_SD = 4.0
#: half the 95% quantile of chi-square with 1 degree of freedom: the profile drop of the alpha interval
ALPHA_DROP = stats.chi2.ppf(0.95, 1) / 2


@dataclass(frozen=True)
class JointFit:
    """EM estimates at one ``alpha``. ``values`` (5 + 2 G,): the :data:`GLOBALS`, then the honest centres
    ``tau_g`` (G,) and ``nu_g`` (G,) of the G honest groups; ``weights`` (G,) the groups' station counts;
    the log-likelihood, the SQUAREM cycles used, whether EM converged (a cycle gained less than
    ``TOLERANCE``) within ``MAX_CYCLES``; ``covariance`` (5, 5) of the globals (NaN where the information is
    singular)."""

    values: np.ndarray
    weights: np.ndarray
    alpha: float
    log_likelihood: float
    iterations: int
    converged: bool
    covariance: np.ndarray

    @property
    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(tau_g, nu_g), each shape (G,)."""
        g = self.weights.size
        return self.values[N_GLOBAL:N_GLOBAL + g], self.values[N_GLOBAL + g:]

    def value(self, name: str) -> float:
        """A global's estimate; ``tau``, ``nu``: the station-weighted mean of the groups' centres."""
        if name in ("tau", "nu"):
            return float(np.average(self.centres[name == "nu"], weights=self.weights))
        return float(self.values[GLOBALS.index(name)])

    def interval(self, name: str, z: float = 1.96) -> tuple[float, float]:
        """A global's value -+ z standard errors, clipped to the parameter's range ([0, 1] for the fractions)."""
        i = GLOBALS.index(name)
        se = math.sqrt(self.covariance[i, i]) if self.covariance[i, i] >= 0 else math.nan
        low, high = self.values[i] - z * se, self.values[i] + z * se
        return (max(low, 0.0), min(high, 1.0)) if np.isfinite(se) else (0.0, 1.0)

    def stage(self) -> FirstStage:
        """The honest part and theta as a :class:`simkit.forensics.klimek.histogram.FirstStage`."""
        return _as_stage(self.values, self.weights.size)


def _as_stage(values: np.ndarray, n_groups: int) -> FirstStage:
    return FirstStage(tau=values[N_GLOBAL:N_GLOBAL + n_groups].copy(), sigma_tau=float(values[2]),
                      nu=values[N_GLOBAL + n_groups:].copy(), sigma_nu=float(values[3]), theta=float(values[4]))


def corner_stations(turnout: np.ndarray, share: np.ndarray) -> np.ndarray:
    """The stations at turnout 1, or at leader share 1 with turnout at least ``1 - CORNER_SD * EXTREME_SD``
    (within EDGE), shape (station,) bool: the corner that extreme fraud reaches in counts (every non-voter
    stuffed, or every rival vote moved, once x is within a few 1/register of 1) while the continuous model gives
    it density 0 in every component. Its likelihood is taken as ``f_e q`` with q, the probability that an
    extreme station lands on the corner, held constant: the EM counts these stations as extreme fraud. Left at
    the likelihood floor, they dropped out of the fractions' denominator and numerator alike and biased f_e
    low (planted f_e = 0.02 at 20,000 stations: the interval's upper end under 0.02 in 4 of 10 replicates)."""
    return (turnout >= 1.0 - EDGE) | ((share >= 1.0 - EDGE) & (turnout >= 1.0 - CORNER_SD * EXTREME_SD))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _geometry(turnout, share, alpha, nodes, range_center, range_spread, honest_turnouts, honest_shares, log_base):
    """Fill the parameter-free part of every station's quadrature nodes, shape (station, node): the first
    ``nodes.size`` nodes are incremental fraud's x nodes, the last ``EM_EXTREME_NODES`` extreme fraud's nodes
    over the honest turnout (within ``range_spread`` of the station's ``range_center``, shape (station,)).
    ``honest_turnouts``, ``honest_shares``: the honest (a, v_h) each node maps to (t, v); ``log_base``: the
    log of everything in the node's density but the two honest normal densities and, for incremental nodes,
    x's weight (-inf where the node cannot produce (t, v))."""
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
            ok = EDGE < a < 1.0 - EDGE and EDGE < honest_shares[station, k] < 1.0 - EDGE and base > 0.0
            log_base[station, k] = math.log(base) if ok else -np.inf
        first, width = extreme_range(t, range_center[station], range_spread, EM_EXTREME_NODES)
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
            if EDGE < v_h < 1.0 - EDGE and EDGE < a < 1.0 - EDGE:
                log_base[station, k] = math.log(stuffing * t / ((1.0 - x) * a * (1.0 - xa)) * width)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pass(turnout, share, group, corner, params, mass_tau, mass_nu, nodes, log_weights, honest_turnouts,
          honest_shares, log_base, sums, group_sums, global_scores, local_scores):
    """One E-step over every station at ``params`` (:attr:`JointFit.values`), on the node geometry of
    :func:`_geometry` (fixed for the whole fit, so every pass integrates the same discretised model and EM
    increases its likelihood at every step). ``group`` (station,): each station's honest group; ``corner``
    (station,) bool: the stations at the corner (:func:`corner_stations`), whose likelihood is ``f_e`` (they
    are extreme fraud's, with posterior 1, and carry nothing on the honest part); ``mass_tau``, ``mass_nu``
    (G,): the groups' truncated-normal masses.

    ``sums`` (6,) receives: log-likelihood, posterior masses of incremental and extreme fraud (corner stations
    included), the posterior sum of x^2 over incremental nodes, the total posterior mass of the stations off
    the corner (the station count but for stations that no component can produce, such as turnout 0, whose
    likelihood is the floor whatever the parameters), and the corner stations' count.
    ``group_sums`` (G, 5): per group the posterior sums of a, a^2, v_h, v_h^2 and the posterior mass. With
    ``global_scores`` of shape (station, 5) and ``local_scores`` (station, 2), each station's scores for the
    globals and for its group's (tau, nu) are written too (else pass shapes (0, 5) and (0, 2))."""
    f_i, f_e, sigma_tau, sigma_nu, theta = params[0], params[1], params[2], params[3], params[4]
    n_groups = mass_tau.shape[0]
    n_inc = nodes.shape[0]
    n_nodes = honest_turnouts.shape[1]
    second_moment = 0.0  # of x under the incremental weights
    for k in range(n_inc):
        second_moment += math.exp(log_weights[k]) * nodes[k] ** 2
    density = np.empty(n_nodes)
    sums[:] = 0.0
    group_sums[:] = 0.0
    for station in range(turnout.shape[0]):
        if corner[station]:
            sums[0] += math.log(f_e + FLOOR)
            sums[2] += 1.0
            sums[5] += 1.0
            if global_scores.shape[0] > 0:
                global_scores[station, :] = 0.0
                global_scores[station, 1] = 1.0 / (f_e + FLOOR)
                local_scores[station, :] = 0.0
            continue
        t, v = turnout[station], share[station]
        g = group[station]
        tau, nu = params[5 + g], params[5 + n_groups + g]
        log_norm = -math.log(sigma_tau * math.sqrt(2.0 * math.pi) * mass_tau[g]) - math.log(
            sigma_nu * math.sqrt(2.0 * math.pi) * mass_nu[g])
        honest = truncated_pdf(t, tau, sigma_tau, mass_tau[g]) * truncated_pdf(v, nu, sigma_nu, mass_nu[g])
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
        responsibility = r_honest + mass_i + mass_e  # 1 up to the floor
        sums[1] += mass_i
        sums[2] += mass_e
        sums[3] += x2
        sums[4] += responsibility
        group_sums[g, 0] += weight_a
        group_sums[g, 1] += weight_a2
        group_sums[g, 2] += weight_v
        group_sums[g, 3] += weight_v2
        group_sums[g, 4] += responsibility
        if global_scores.shape[0] > 0:
            global_scores[station, 0] = (incremental - honest) / mixture
            global_scores[station, 1] = (extreme - honest) / mixture
            global_scores[station, 2] = ((weight_a2 - 2 * tau * weight_a + responsibility * tau * tau) / sigma_tau ** 3
                                         - responsibility / sigma_tau)
            global_scores[station, 3] = ((weight_v2 - 2 * nu * weight_v + responsibility * nu * nu) / sigma_nu ** 3
                                         - responsibility / sigma_nu)
            global_scores[station, 4] = (x2 - mass_i * second_moment) / theta ** 3
            local_scores[station, 0] = (weight_a - responsibility * tau) / sigma_tau ** 2
            local_scores[station, 1] = (weight_v - responsibility * nu) / sigma_nu ** 2


def _masses(params: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    tau, nu = params[N_GLOBAL:N_GLOBAL + n_groups], params[N_GLOBAL + n_groups:]
    return truncated_normal_mass(tau, params[2]), truncated_normal_mass(nu, params[3])


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


def _em_update(sums: np.ndarray, group_sums: np.ndarray, previous: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The M-step: the parameters from one pass's posterior sums (a group without posterior mass keeps its
    ``previous`` centres)."""
    mass, n_groups = sums[4], group_sums.shape[0]
    stations = mass + sums[5]  # the corner stations count in the fractions only
    group_mass = group_sums[:, 4]
    held = group_mass > 1e-9
    safe = np.where(held, group_mass, 1.0)
    tau = np.where(held, group_sums[:, 0] / safe, previous[N_GLOBAL:N_GLOBAL + n_groups])
    nu = np.where(held, group_sums[:, 2] / safe, previous[N_GLOBAL + n_groups:])
    var_tau = float(np.sum(np.where(held, group_sums[:, 1] - group_sums[:, 0] ** 2 / safe, 0.0))) / mass
    var_nu = float(np.sum(np.where(held, group_sums[:, 3] - group_sums[:, 2] ** 2 / safe, 0.0))) / mass
    f_i, f_e = sums[1] / stations, sums[2] / stations
    fraud = f_i + f_e
    if fraud > 1.0:  # rounding past the simplex: the honest part's posterior turns negative and pushes further out
        f_i = f_i / fraud
        f_e = min(f_e / fraud, 1.0 - f_i)  # f_i + (1 - f_i) does not round above 1
    head = [f_i, f_e, max(math.sqrt(max(var_tau, 0.0)), MIN_SD), max(math.sqrt(max(var_nu, 0.0)), MIN_SD),
            _theta_for(sums[3] / max(sums[1], 1e-12), nodes)]
    return np.concatenate([head, tau, nu])


def _valid(params: np.ndarray) -> bool:
    centres = params[N_GLOBAL:]
    return bool(np.all(np.isfinite(params)) and params[0] >= 0 and params[1] >= 0 and params[0] + params[1] <= 1
                and np.all(params[2:N_GLOBAL] >= MIN_SD) and np.all((centres > 0) & (centres < 1)))


def _information(global_scores: np.ndarray, local_scores: np.ndarray, group: np.ndarray,
                 n_groups: int) -> np.ndarray:
    """The covariance (5, 5) of the globals: the inverse of the Schur complement of the groups' centre blocks
    (local (G, 2, 2), cross (G, 5, 2)) in the outer-product information; NaN where singular."""
    outer_local = local_scores[:, :, None] * local_scores[:, None, :]
    outer_cross = global_scores[:, :, None] * local_scores[:, None, :]
    local = np.stack([np.bincount(group, outer_local[:, i, j], n_groups) for i in range(2) for j in range(2)],
                     axis=1).reshape(n_groups, 2, 2)
    cross = np.stack([np.bincount(group, outer_cross[:, i, j], n_groups) for i in range(N_GLOBAL) for j in range(2)],
                     axis=1).reshape(n_groups, N_GLOBAL, 2)
    schur = global_scores.T @ global_scores - np.einsum("gij,gjk,glk->il", cross, np.linalg.pinv(local), cross)
    try:
        return np.linalg.inv(schur)
    except np.linalg.LinAlgError:
        return np.full((N_GLOBAL, N_GLOBAL), np.nan)


def fit(turnout: np.ndarray, share: np.ndarray, group: np.ndarray, alpha: float, stage: FirstStage,
        f_incremental: float, f_extreme: float, theta: float, start: np.ndarray | None = None) -> JointFit:
    """EM from the first stage and starting fractions and theta, or from ``start`` (the :attr:`JointFit.values`
    of a neighbouring fit), on shares of shape (station,) (``group`` each station's honest group), accelerated
    by SQUAREM (Varadhan & Roland 2008, scheme S3, falling back to the plain EM step whenever the
    extrapolated point is outside the parameter space or lowers the likelihood)."""
    turnout = np.ascontiguousarray(turnout, dtype=np.float64)
    share = np.ascontiguousarray(share, dtype=np.float64)
    group = np.ascontiguousarray(group, dtype=np.int64)
    n_groups = stage.tau.size
    nodes = (np.arange(NODES) + 0.5) / NODES
    shape = (turnout.size, NODES + EM_EXTREME_NODES)
    geometry = np.empty(shape), np.empty(shape), np.empty(shape)  # honest turnout, honest share, log base
    _geometry(turnout, share, float(alpha), nodes, np.ascontiguousarray(stage.tau[group]),
              RANGE_SD * stage.sigma_tau, *geometry)
    sums, group_sums = np.zeros(6), np.zeros((n_groups, 5))
    corner = corner_stations(turnout, share)
    no_scores = np.zeros((0, N_GLOBAL)), np.zeros((0, 2))

    def step(params: np.ndarray) -> tuple[float, np.ndarray]:
        _pass(turnout, share, group, corner, params, *_masses(params, n_groups), nodes,
              incremental_log_weights(nodes, params[4]), *geometry, sums, group_sums, *no_scores)
        return float(sums[0]), _em_update(sums, group_sums, params, nodes)

    params = np.concatenate([[f_incremental, f_extreme, stage.sigma_tau, stage.sigma_nu, theta], stage.tau,
                             stage.nu]) if start is None else start.copy()
    params[:2] = max(params[0], 0.01), max(params[1], 0.001)  # off the boundary, where EM cannot move
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
    scores = np.zeros((turnout.size, N_GLOBAL)), np.zeros((turnout.size, 2))
    _pass(turnout, share, group, corner, params, *_masses(params, n_groups), nodes,
          incremental_log_weights(nodes, params[4]), *geometry, sums, group_sums, *scores)
    covariance = _information(*scores, group, n_groups)
    return JointFit(values=params, weights=np.bincount(group, minlength=n_groups).astype(float), alpha=float(alpha),
                    log_likelihood=float(sums[0]), iterations=cycles, converged=converged, covariance=covariance)


def profile(turnout: np.ndarray, share: np.ndarray, group: np.ndarray, stage: FirstStage, alphas: np.ndarray,
            start: int, f_incremental: float, f_extreme: float, theta: float) -> tuple[dict[str, float], JointFit]:
    """The profile likelihood of alpha, from EM fits (:func:`fit`) at ``alphas`` and between them.

    Walks the grid ``alphas`` from index ``start`` toward higher likelihood, then on while a neighbour stays
    within ``chi2_1(0.95) / 2`` of the best. Where the best grid point is inside the grid and the profile is
    concave there, the parabola through it and its two grid neighbours gives alpha's 95% interval: the
    estimate (the better of that grid point and a fit at the parabola's vertex) plus or minus the distance
    over which the parabola drops by ``chi2_1(0.95) / 2`` (the quadratic approximation, a Wald interval with
    the profile's curvature). On large elections the profile is rough at the scale of 0.001 in alpha by a
    few log-likelihood units (EM's stopping rule and the quadrature), more than the 1.92 of the drop, so a
    root search for the drop itself would follow the noise. Elsewhere the interval is the span of grid
    points within the drop (open at 0.5 or 4). The fractions' and theta's intervals are the union of their
    Wald intervals over the fits inside the alpha interval. Each fit starts from the nearest fit's estimates
    (the first from the given fractions and theta). Returns the estimates with their intervals (and the
    honest part's estimates) and the best fit."""
    fits: dict[float, JointFit] = {}

    def at(alpha: float) -> JointFit:
        alpha = float(alpha)
        if alpha not in fits:
            if fits:
                near = fits[min(fits, key=lambda known: abs(known - alpha))].values
                fits[alpha] = fit(turnout, share, group, alpha, stage, near[0], near[1], near[4], start=near)
            else:
                fits[alpha] = fit(turnout, share, group, alpha, stage, f_incremental, f_extreme, theta)
        return fits[alpha]

    def loglik(alpha: float) -> float:
        return at(alpha).log_likelihood

    best = start
    for step in (-1, 1):  # climb the profile on the grid
        index = best
        while 0 <= index + step < alphas.size and loglik(alphas[index + step]) > loglik(alphas[index]):
            index += step
        if loglik(alphas[index]) > loglik(alphas[best]):
            best = index
    for step in (-1, 1):  # on while within the drop
        index = best
        while 0 <= index + step < alphas.size and loglik(alphas[index + step]) >= loglik(alphas[best]) - ALPHA_DROP:
            index += step
    top = loglik(alphas[best])
    on_grid = [a for a in alphas if float(a) in fits and loglik(a) >= top - ALPHA_DROP]
    estimate, low, high = float(alphas[best]), float(min(on_grid)), float(max(on_grid))
    if 0 < best < alphas.size - 1:
        points = alphas[best - 1:best + 2]
        curvature, vertex = _quadratic(points, [loglik(a) for a in points])
        if curvature > 0:
            loglik(vertex)
            estimate = max((vertex, float(alphas[best])), key=loglik)
            width = math.sqrt(ALPHA_DROP / curvature)
            low, high = max(estimate - width, float(alphas[0])), min(estimate + width, float(alphas[-1]))
    kept = [a for a in fits if low <= a <= high] or [estimate]
    result = {"alpha": estimate, "alpha_low": low, "alpha_high": high,
              "em_cycles": sum(f.iterations for f in fits.values()),
              "em_converged": all(f.converged for f in fits.values())}
    for name in ("f_incremental", "f_extreme", "theta"):
        bounds = np.array([fits[a].interval(name) for a in kept])
        result.update({name: fits[estimate].value(name), f"{name}_low": float(bounds[:, 0].min()),
                       f"{name}_high": float(bounds[:, 1].max())})
    result.update({name: fits[estimate].value(name) for name in ("tau", "sigma_tau", "nu", "sigma_nu")})
    return result, fits[estimate]


def _quadratic(points: np.ndarray, values: list[float]) -> tuple[float, float]:
    """The parabola ``-c (x - v)^2 + d`` through three points (least squares for more): (curvature c, vertex
    v); v is the middle point where c <= 0."""
    a, b, _ = np.polyfit(np.asarray(points, dtype=float), np.asarray(values, dtype=float), 2)
    return float(-a), (float(-b / (2 * a)) if a < 0 else float(points[len(points) // 2]))
