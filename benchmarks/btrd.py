"""Hörmann's (1993) BTRD binomial sampler, tried against the kernel's BTRS for the multinomial chain (issue 19).

BTRD is BTRS with two changes: a decomposition that accepts most draws from one uniform instead of two, and, for a
candidate within 15 of the mode, the density ratio by recursive products instead of logs. It draws from the same
law (:func:`draws` is checked against it by ``chain_variants.py``) but consumes the generator differently, so the
kernel would draw other numbers with it. ``chain_variants.py`` times :func:`chain` against the kernel's chain;
the constants follow the paper (and Boost's ``binomial_distribution``).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from simkit.model.samplers import (INVERSION_MAX_MEAN, _binomial_inversion, _log_factorial, inline_jit,
                                   uniform_sample)

#: a candidate at most this far from the mode is judged by recursive products of f(i) / f(i - 1), not by logs
RECURSION_MAX_DISTANCE = 15.0


@inline_jit
def _btrd(state, n, p):
    """Binomial(n, p) by BTRD, for p <= 0.5 and n p >= 10. Returns ``(k, state)``."""
    q = 1.0 - p
    spq = math.sqrt(n * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    mode = math.floor((n + 1) * p)
    while True:
        v, state = uniform_sample(state)
        if v <= 0.86 * v_r:  # the decomposition's box: one uniform, always accepted
            u = v / v_r - 0.43
            return int(math.floor((2.0 * a / (0.5 - abs(u)) + b) * u + c)), state
        if v >= v_r:
            u, state = uniform_sample(state)
            u -= 0.5
        else:
            u = v / v_r - 0.93
            u = (-0.5 if u < 0.0 else 0.5) - u
            v, state = uniform_sample(state)
            v *= v_r
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0.0 or k > n:
            continue
        v = v * (2.83 + 5.1 / b) * spq / (a / (us * us) + b)
        if abs(k - mode) <= RECURSION_MAX_DISTANCE:
            r = p / q
            ratio_numerator = (n + 1) * r
            f = 1.0
            for i in range(int(min(k, mode)) + 1, int(max(k, mode)) + 1):
                if k > mode:
                    f *= ratio_numerator / i - r
                else:
                    v *= ratio_numerator / i - r
            if v <= f:
                return int(k), state
        elif math.log(v) <= (_log_factorial(mode) + _log_factorial(n - mode) - _log_factorial(k)
                             - _log_factorial(n - k) + (k - mode) * math.log(p / q)):
            return int(k), state


@inline_jit
def _binomial(state, n, p):
    """:func:`simkit.model.samplers.binomial_sample` with BTRD in place of BTRS. Returns ``(k, state)``."""
    if n <= 0 or p <= 0.0:
        return 0, state
    if p >= 1.0:
        return n, state
    small = min(p, 1.0 - p)
    if n * small < INVERSION_MAX_MEAN:
        drawn, state = _binomial_inversion(state, n, small)
    else:
        drawn, state = _btrd(state, n, small)
    return (n - drawn if p > 0.5 else drawn), state


@numba.njit(cache=True, error_model="numpy")
def draws(state, n, p, count):
    """``count`` Binomial(``n``, ``p``) draws by :func:`_binomial` (count,) int64."""
    out = np.empty(count, np.int64)
    for index in range(count):
        out[index], state = _binomial(state, n, p)
    return out


@numba.njit(cache=True, error_model="numpy")
def chain(cast, weights, state, replicates):
    """The multinomial chain of ``chain_variants.chain_kernel`` (``cast`` (station,) ballots, ``weights``
    (station, option) probabilities) with BTRD binomials; returns a checksum."""
    checksum = 0
    for _ in range(replicates):
        for station in range(cast.shape[0]):
            remaining, left = cast[station], 1.0
            for option in range(weights.shape[1] - 1):
                if remaining == 0:
                    break
                drawn, state = _binomial(state, remaining, weights[station, option] / left if left > 0.0 else 1.0)
                remaining -= drawn
                left -= weights[station, option]
            checksum += remaining
    return checksum
