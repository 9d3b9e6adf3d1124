"""Mean-matching helpers shared by the turnout and preference models.

A station-level distribution is set by a latent location and a dispersion; users give its *mean*.
These helpers invert mean(location) numerically, once per config, so every model is specified by
the expectation a user can check against published figures.
"""
from __future__ import annotations

import numpy as np
from scipy import special

#: Gauss–Hermite nodes and weights for E[f(Z)], Z ~ N(0, 1)
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def normal_expectation(function, location: np.ndarray, sd: float) -> np.ndarray:
    """E[function(location + sd * Z)] for Z ~ N(0, 1), elementwise over ``location``."""
    location = np.asarray(location, dtype=float)
    values = function(location[..., None] + sd * _NODES)
    return values @ _WEIGHTS


def _tail_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(a < Z < b) for Z ~ N(0, 1), accurate in either tail."""
    return np.where(a > 0, special.ndtr(-a) - special.ndtr(-b), special.ndtr(b) - special.ndtr(a))


def truncated_normal_mean(location: np.ndarray, sd: float) -> np.ndarray:
    """Mean of N(location, sd²) truncated to [0, 1] (locations within 8 sd of [0, 1])."""
    a, b = (0.0 - location) / sd, (1.0 - location) / sd
    density = (np.exp(-0.5 * a * a) - np.exp(-0.5 * b * b)) / np.sqrt(2 * np.pi)
    return location + sd * density / _tail_mass(a, b)


def invert_monotone(mean_of_location, targets: np.ndarray, low: float, high: float) -> np.ndarray:
    """Locations whose mean equals ``targets``, for an increasing ``mean_of_location`` (bisection,
    vectorized, to ~1e-12)."""
    targets = np.asarray(targets, dtype=float)
    lo = np.full(targets.shape, low)
    hi = np.full(targets.shape, high)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = mean_of_location(mid) > targets
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return 0.5 * (lo + hi)


def logit_normal_mean(location: np.ndarray, sd: float) -> np.ndarray:
    """E[expit(location + sd Z)], Z ~ N(0, 1)."""
    return normal_expectation(special.expit, location, sd)


#: Newton's iterations of :func:`logit_location_for_mean` stop when every step is below this (logit units)
LOCATION_TOLERANCE = 1e-12
#: at most this many iterations (each Newton's or, where it would leave the bracket, a bisection's)
MAX_LOCATION_ITERATIONS = 200


def logit_location_for_mean(mean: np.ndarray, sd: float) -> np.ndarray:
    """μ with E[expit(μ + sd Z)] = mean (elementwise), to :data:`LOCATION_TOLERANCE`.

    Newton's method on the increasing mean(μ) (its derivative E[expit' (μ + sd Z)] from the same quadrature
    nodes), safeguarded by a bracket that starts at [-40, 40]: a step that would leave it bisects instead (a
    mean of 0 or 1 ends where the computed mean reaches it). Four to six evaluations where bisection
    (:func:`invert_monotone`) needs sixty."""
    mean = np.asarray(mean, dtype=float)
    low, high = np.full(mean.shape, -40.0), np.full(mean.shape, 40.0)
    with np.errstate(divide="ignore"):  # a mean of 0 or 1: logit ±inf, clipped to the bracket
        location = np.clip(special.logit(mean) * np.sqrt(1.0 + np.pi * sd * sd / 8.0), low + 1.0, high - 1.0)
    for _ in range(MAX_LOCATION_ITERATIONS):
        values = special.expit(location[..., None] + sd * _NODES)
        excess = values @ _WEIGHTS - mean
        slope = (values * (1.0 - values)) @ _WEIGHTS
        above = excess > 0
        high = np.where(above, location, high)
        low = np.where(above, low, location)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = location - excess / slope
        step = np.where((step >= low) & (step <= high), step, 0.5 * (low + high))
        done = np.all(np.abs(step - location) < LOCATION_TOLERANCE)
        location = step
        if done:
            break
    return location


def truncated_location_for_mean(mean: np.ndarray, sd: float) -> np.ndarray:
    """μ with mean of N(μ, sd²) truncated to [0, 1] equal to ``mean``."""
    # within 8 sd of [0, 1] the mean is computed accurately; beyond, a mean of 0 or 1 is all that is left
    return invert_monotone(lambda mu: truncated_normal_mean(mu, sd), mean, -8.0 * sd, 1.0 + 8.0 * sd)


def truncated_normal_quantile(u: np.ndarray, location: np.ndarray, sd: float) -> np.ndarray:
    """Quantile ``u`` of N(location, sd²) truncated to [0, 1]. Computed on whichever side of 1/2 the
    location lies (by reflection), so that the CDF differences stay accurate in the tails."""
    location = np.broadcast_to(location, np.shape(u))
    reflect = location < 0.5
    centre = np.where(reflect, 1.0 - location, location)
    quantile = np.where(reflect, 1.0 - u, u)
    lower = special.ndtr((0.0 - centre) / sd)
    upper = special.ndtr((1.0 - centre) / sd)
    value = centre + sd * special.ndtri(lower + quantile * (upper - lower))
    return np.clip(np.where(reflect, 1.0 - value, value), 0.0, 1.0)
