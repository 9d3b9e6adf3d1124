"""The density of Klimek's fraud model at one station, in pieces shared by the likelihood fits.

Klimek, Yegorov, Hanel & Thurner (2012): honest turnout ``a ~ N(tau, sigma_tau)`` and leader share
``v_h ~ N(nu, sigma_nu)``, truncated to (0, 1); a stuffing fraction ``x`` turns them into turnout
``t = a + x (1 - a)`` and leader share ``v = (a v_h + x (1 - a) + x**alpha a (1 - v_h)) / t``. Incremental fraud
has ``x ~ |N(0, theta)|``, extreme fraud ``x ~ 1 - |N(0, 0.075)|``. A fraud component's density at (t, v) is
the integral over x of ``p(x) N(a) N(v_h) t / ((1 - x) a (1 - x**alpha))`` (the change of variables
(a, v_h) -> (t, v)). :mod:`simkit.forensics.klimek.ml` integrates incremental fraud over x (``NODES``
midpoints) and extreme fraud over the honest turnout a (:func:`extreme_stuffing`), as does
:mod:`simkit.forensics.klimek.joint`.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special, stats

from simkit.forensics.klimek.histogram import EXTREME_SD

#: likelihood floor: a station no component can produce (turnout 1, say) adds log(FLOOR) whatever the fit
FLOOR = 1e-300
#: incremental fraud's x nodes: midpoints of (0, 1)
NODES = 32
#: a normal density beyond this many SDs is taken as 0 (where exp(-z**2 / 2) reaches the likelihood floor;
#: a lower cutoff makes the likelihood jump by ~690 when a lone station crosses it)
CUTOFF_SD = 37.0
#: a share within this of 0 or 1 is outside the honest normals' support: a station at exactly 100% (share or
#: turnout) maps to an honest value of 1 up to rounding, which would otherwise count or not as the rounding
#: falls, and make the likelihood jump with alpha
EDGE = 1e-9


def incremental_log_weights(nodes: np.ndarray, theta) -> np.ndarray:
    """log quadrature weights of incremental fraud's x ``nodes`` for x ~ |N(0, theta)| cut at 1: shape
    ``theta.shape + (node,)``, the weights summing to 1 along the last axis (in logs: no underflow at small
    theta)."""
    exponent = -0.5 * (nodes / np.asarray(theta, dtype=float)[..., None]) ** 2
    return exponent - special.logsumexp(exponent, axis=-1, keepdims=True)


def incremental_weights(nodes: np.ndarray, theta) -> np.ndarray:
    """:func:`incremental_log_weights`, exponentiated."""
    return np.exp(incremental_log_weights(nodes, theta))


def truncated_normal_mass(mean, sd):
    """Probability that Normal(mean, sd) falls in (0, 1) (``mean`` a number or an array; the same shape)."""
    mean = np.asarray(mean, dtype=float)
    return stats.norm.cdf((1 - mean) / sd) - stats.norm.cdf(-mean / sd)


@numba.njit(inline="always")
def truncated_pdf(x, mean, sd, mass):
    """Normal(mean, sd) density truncated to (0, 1) (``mass`` is its probability in (0, 1))."""
    z = (x - mean) / sd
    if x <= EDGE or x >= 1.0 - EDGE or abs(z) > CUTOFF_SD:
        return 0.0
    return math.exp(-0.5 * z * z) / (sd * math.sqrt(2.0 * math.pi) * mass)


@numba.njit(inline="always")
def extreme_range(t, center, spread, count):
    """The honest turnouts a that extreme fraud can turn into turnout t, within ``spread`` of ``center``:
    (first node, node width) of ``count`` midpoints (width 0: none)."""
    low = max(center - spread, 0.0)
    high = min(center + spread, t)
    if high <= low:
        return 0.0, 0.0
    width = (high - low) / count
    return low + 0.5 * width, width


@numba.njit(inline="always")
def extreme_stuffing(t, a):
    """Extreme fraud integrated over the honest turnout ``a`` (``x = (t - a) / (1 - a)`` is then a smooth
    function of the node; on x-midpoints the density, whose x sits within 0.075 of 1, was off by a factor of
    e^2 per station at 32 nodes): returns (x, the density of x times dx/da), (0, 0) where no x in (0, 1)
    turns ``a`` into ``t``. The node's density is this times ``t / ((1 - x) a (1 - x**alpha))`` and the two
    honest densities (the change of variables; :func:`honest_share`)."""
    x = (t - a) / (1.0 - a)
    if x <= 0.0 or x >= 1.0:
        return 0.0, 0.0
    z = (1.0 - x) / EXTREME_SD
    return x, 2.0 * math.exp(-0.5 * z * z) / (EXTREME_SD * math.sqrt(2.0 * math.pi)) * (1.0 - t) / (1.0 - a) ** 2


@numba.njit(inline="always")
def honest_share(t, v, a, x, xa):
    """The honest leader share that fraud x (``xa = x ** alpha``) turns into share v at turnout t from honest
    turnout a."""
    return (t * v - x * (1.0 - a) - xa * a) / (a * (1.0 - xa))
