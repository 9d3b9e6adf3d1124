"""The exact numba samplers shared by the engine's compiled kernel (:mod:`simkit.engine.kernels`), the coercion
mechanism (:mod:`simkit.model.manipulation`), the forensic nulls' compiled draws
(:mod:`simkit.forensics.nulls.compiled_draws`) and the poll sampler (:mod:`simkit.polls.compiled_draws`): one
set, in one module (of the model layer, so that models and everything above can use it).

Each sampler takes and returns a generator ``state`` (a 4-tuple of uint64, xoshiro256**; kept in registers) and is
inlined into its compiled callers (:func:`inline_jit`):

- :func:`uniform_sample`: a double on [0, 1) from the top 53 bits;
- :func:`normal_sample`: standard normals by the ziggurat method (Marsaglia & Tsang 2000, 128 layers);
- :func:`gamma_sample`: standard gamma variates by Marsaglia & Tsang (2000), with ``G(a) = G(a + 1) × U^(1/a)``
  below a = 1 (constants from :func:`gamma_constants`);
- :func:`binomial_sample`: by inversion when ``n × min(p, 1 − p) < 10``, else Hörmann's (1993) transformed
  rejection with squeeze (BTRS), reading log-factorials from :data:`CONSTANT_LOG_FACTORIALS` (compiled in as a
  constant), ``lgamma`` beyond it;
- :func:`multinomial_sample`: sequential conditional binomials (:func:`multinomial_step`, one of them);
- :func:`hypergeometric_sample`: by inversion searched outward from the mode.

All are exact (no approximation beyond floating point).

A NaN probability fails every test of the binomial's inversion and rejection loops, which would then never end:
:func:`binomial_sample` raises ValueError (:data:`NAN_PROBABILITY`) instead when n > 0, told apart inside the
branch of its first test (``not p > 0``, true for p <= 0 and NaN), so that the common path still makes one
comparison. :func:`multinomial_sample` hands a NaN weight or total on as a NaN share, which raises there too. The
others need no guard: NaN gamma constants (from a NaN shape) pass the squeeze, so :func:`gamma_sample` returns NaN
(which the multinomial split then refuses), :func:`hypergeometric_sample` takes integer counts and
:func:`normal_from_bits` random bits.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from scipy import special


#: log(k!) for k < 2^14 (float64, read-only, from ``gammaln``), read by the samplers as a global: numba freezes a
#: global array into the compiled code as a constant with no reference count, whereas an array argument passed on
#: to an inlined sampler is incremented and decremented atomically at every call (a sixth of the multinomial
#: chain's time). Counts beyond it read ``lgamma``.
CONSTANT_LOG_FACTORIALS = special.gammaln(np.arange(2**14, dtype=np.float64) + 1.0)
CONSTANT_LOG_FACTORIALS.setflags(write=False)  # compiled code holds a copy: a write here would not reach it


def inline_jit(function):
    """numba-compile a helper, inlined into its callers at numba's IR level (LLVM does not inline across
    numba functions, and the call overhead was a third of the gamma sampler's time)."""
    return numba.njit(inline="always", error_model="numpy")(function)


@inline_jit
def _next64(state):
    """One xoshiro256** step: ``state`` is a 4-tuple of uint64 (kept in registers: an array would be
    re-read from memory after every store to the output); returns ``(bits, state)``, 64 random bits (all
    of them usable, unlike xoshiro256+'s low bits)."""
    s0, s1, s2, s3 = state
    scrambled = s1 * np.uint64(5)
    bits = ((scrambled << np.uint64(7)) | (scrambled >> np.uint64(57))) * np.uint64(9)
    shifted = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= shifted
    s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    return bits, (s0, s1, s2, s3)


@inline_jit
def uniform_sample(state):
    """A double uniform on [0, 1) from the top 53 bits of :func:`_next64`; returns ``(u, state)``."""
    bits, state = _next64(state)
    return (bits >> np.uint64(11)) * (1.0 / 9007199254740992.0), state


def _ziggurat_tables(layers: int = 128, right: float = 3.442619855899,
                     area: float = 9.91256303526217e-3) -> tuple[np.ndarray, np.ndarray]:
    """Layer edges ``x`` (layers + 1,) decreasing from the base strip's virtual width to 0, and the density
    ``exp(-x²/2)`` at them, for the ziggurat of Marsaglia & Tsang (2000) with equal-area (``area``) layers
    and tail start ``right`` (their 128-layer constants)."""
    edges = np.empty(layers + 1)
    edges[0], edges[1] = area / math.exp(-0.5 * right * right), right
    for layer in range(1, layers - 1):
        edges[layer + 1] = math.sqrt(-2.0 * math.log(math.exp(-0.5 * edges[layer] ** 2) + area / edges[layer]))
    edges[layers] = 0.0
    return edges, np.exp(-0.5 * edges * edges)


_ZIGGURAT_X, _ZIGGURAT_F = _ziggurat_tables()
_ZIGGURAT_RIGHT = float(_ZIGGURAT_X[1])


@inline_jit
def normal_sample(state):
    """A standard normal by the ziggurat method (Marsaglia & Tsang 2000): the low 7 bits of one draw pick
    the layer, bit 7 the sign, the top 53 bits the abscissa; the tail beyond ``R`` by Marsaglia (1964).
    Returns ``(z, state)``."""
    bits, state = _next64(state)
    return normal_from_bits(state, bits)


@inline_jit
def normal_from_bits(state, bits):
    """:func:`normal_sample` whose first 64 random bits ``bits`` were drawn already (e.g. for several
    generators at once): the same candidate, and further draws from ``state`` only when the ziggurat
    rejects it. Returns ``(z, state)``."""
    while True:
        layer = np.int64(bits & np.uint64(127))
        negative = (bits & np.uint64(128)) != 0
        x = (bits >> np.uint64(11)) * (1.0 / 9007199254740992.0) * _ZIGGURAT_X[layer]
        if x < _ZIGGURAT_X[layer + 1]:  # inside the layer's rectangle below the curve
            return (-x if negative else x), state
        if layer == 0:  # the tail beyond R
            while True:
                u, state = uniform_sample(state)
                w, state = uniform_sample(state)
                excess = -math.log(1.0 - u) / _ZIGGURAT_RIGHT
                if -2.0 * math.log(1.0 - w) > excess * excess:
                    break
            x = _ZIGGURAT_RIGHT + excess
            return (-x if negative else x), state
        u, state = uniform_sample(state)  # the wedge: accept under the density
        if _ZIGGURAT_F[layer] + u * (_ZIGGURAT_F[layer + 1] - _ZIGGURAT_F[layer]) < math.exp(-0.5 * x * x):
            return (-x if negative else x), state
        bits, state = _next64(state)


@inline_jit
def _gamma_at_least_one(state, d, c):
    """Standard gamma variate of shape ``d + 1/3`` >= 1 (Marsaglia & Tsang 2000; ``c = 1 / sqrt(9 d)``).
    Returns ``(g, state)``."""
    while True:
        x, state = normal_sample(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u, state = uniform_sample(state)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return d * v, state
        if math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v, state


@inline_jit
def gamma_constants(shapes):
    """Marsaglia-Tsang constants for ``shapes`` (n,) >= 0: (n, 3) rows ``d``, ``c``, ``1 / shape`` for shapes
    below 1 (0 for shapes >= 1, -1 for shape 0), so that :func:`gamma_sample` needs no square root or division."""
    constants = np.empty((shapes.shape[0], 3))
    for index in range(shapes.shape[0]):
        shape = shapes[index]
        boosted = shape + 1.0 if shape < 1.0 else shape
        constants[index, 0] = boosted - 1.0 / 3.0
        constants[index, 1] = 1.0 / math.sqrt(9.0 * constants[index, 0])
        constants[index, 2] = -1.0 if shape <= 0.0 else (1.0 / shape if shape < 1.0 else 0.0)
    return constants


@inline_jit
def gamma_sample(state, d, c, inverse_shape):
    """Standard gamma variate for one row ``d, c, inverse_shape`` of :func:`gamma_constants` (0 for shape
    0); shapes below 1 as ``G(shape + 1) × U^(1 / shape)``. Returns ``(g, state)``."""
    if inverse_shape < 0.0:
        return 0.0, state
    variate, state = _gamma_at_least_one(state, d, c)
    if inverse_shape > 0.0:
        u, state = uniform_sample(state)
        variate *= math.exp(math.log(u) * inverse_shape)  # u ** (1 / shape); libm's pow is twice as slow
    return variate, state


#: what :func:`binomial_sample` raises for a NaN probability (numba raises constant messages only)
NAN_PROBABILITY = ("a binomial probability is NaN (a NaN turnout, share or weight, e.g. from 0/0, reached the "
                   "sampler): no count can be drawn")
#: inversion draws Binomial(n, p) (p <= 1/2) when n p is below this, BTRS above (BTRS needs n p >= 10; with 20 or
#: 30 here the flagship's multinomial chain was slower, ``benchmarks/kernel_profile.py``)
INVERSION_MAX_MEAN = 10.0
#: inversion walks at most this many steps before it restarts (the mass beyond is below 1e-100 for n p < 30)
_INVERSION_STEPS = 256
#: 1 / k for k = 1 … _INVERSION_STEPS - 1 (entry 0 unused): inversion's steps multiply instead of divide
_RECIPROCALS = 1.0 / np.maximum(np.arange(_INVERSION_STEPS, dtype=np.float64), 1.0)
#: up to this n, inversion's P(0) = q^n by repeated squaring (relative error n × 2^-53 from rounding q = 1 - p,
#: below 1e-12); above, exp(n log1p(-p))
_POWER_MAX_N = 4096


@inline_jit
def _binomial_inversion(state, n, p):
    """Binomial(n, p) by sequential inversion from 0; for p <= 0.5 and n p < :data:`INVERSION_MAX_MEAN` (a few
    steps on average, each a multiplication by a tabulated 1 / k). A uniform beyond the summed probabilities
    (rounding, or the mass beyond :data:`_INVERSION_STEPS`) is redrawn, as numpy does. Returns ``(k, state)``."""
    q = 1.0 - p
    first = q ** n if n <= _POWER_MAX_N else math.exp(n * math.log1p(-p))
    odds = p / q
    k = 0
    probability = first
    u, state = uniform_sample(state)
    while u > probability:
        k += 1
        if k > n or k >= _INVERSION_STEPS:  # numerical tail: restart
            k = 0
            probability = first
            u, state = uniform_sample(state)
        else:
            u -= probability
            probability *= (n - k + 1) * odds * _RECIPROCALS[k]
    return k, state


@inline_jit
def _log_factorial(k):
    """log(k!) for integer-valued ``k`` >= 0: from :data:`CONSTANT_LOG_FACTORIALS` below 2^14, else ``lgamma``."""
    if k < CONSTANT_LOG_FACTORIALS.shape[0]:
        return CONSTANT_LOG_FACTORIALS[int(k)]
    return math.lgamma(k + 1.0)


@inline_jit
def _binomial_btrs(state, n, p):
    """Binomial(n, p) by transformed rejection with squeeze (Hörmann 1993); for p <= 0.5 and n p >= 10.
    Returns ``(k, state)``."""
    spq = math.sqrt(n * p * (1.0 - p))
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    mode = math.floor((n + 1) * p)
    log_mode_terms = -1.0  # log(mode!) + log((n - mode)!) > 0: computed on first need
    log_odds = 0.0
    while True:
        u, state = uniform_sample(state)
        v, state = uniform_sample(state)
        u -= 0.5
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0.0 or k > n:
            continue
        if us >= 0.07 and v <= v_r:
            return int(k), state
        if log_mode_terms < 0.0:
            log_mode_terms = _log_factorial(mode) + _log_factorial(n - mode)
            log_odds = math.log(p / (1.0 - p))
        v = math.log(v * (2.83 + 5.1 / b) * spq / (a / (us * us) + b))
        if v <= log_mode_terms - _log_factorial(k) - _log_factorial(n - k) + (k - mode) * log_odds:
            return int(k), state


@inline_jit
def binomial_sample(state, n, p):
    """Binomial(n, p) count for n >= 0 and any p (clipped to [0, 1]). Returns ``(k, state)``; raises ValueError
    for a NaN p when n > 0 (no draw could end: every test of the candidate would be false)."""
    if n <= 0 or not p > 0.0:  # one comparison on the common path: NaN is told apart here, off it
        if n > 0 and p != p:
            raise ValueError(NAN_PROBABILITY)
        return 0, state
    if p >= 1.0:
        return n, state
    small = min(p, 1.0 - p)
    if n * small < INVERSION_MAX_MEAN:
        drawn, state = _binomial_inversion(state, n, small)
    else:
        drawn, state = _binomial_btrs(state, n, small)
    return (n - drawn if p > 0.5 else drawn), state


@inline_jit
def multinomial_step(state, remaining_ballots, remaining_weight, weight):
    """One conditional binomial of the sequential multinomial split: the count of an option of ``weight`` among the
    ``remaining_ballots`` ballots not yet split, whose options (this one and those after it) weigh
    ``remaining_weight`` in all; the rest to it once no weight is left (rounding), none drawn once nothing is left.
    Returns ``(drawn, remaining_ballots - drawn, remaining_weight - weight, state)``: the next option's remainders
    (a NaN weight left stays NaN and raises at :func:`binomial_sample` while ballots are left)."""
    if remaining_ballots == 0:  # nothing left to split: no draw
        return 0, 0, remaining_weight, state
    share = 1.0 if remaining_weight <= 0.0 else weight / remaining_weight
    drawn, state = binomial_sample(state, remaining_ballots, share)
    return drawn, remaining_ballots - drawn, remaining_weight - weight, state


@inline_jit
def multinomial_sample(state, n, weights, total, out):
    """``out[:] ~ Multinomial(n, weights / total)`` as sequential conditional binomials (:func:`multinomial_step`;
    the last option takes the rest, so ``out`` sums to ``n`` exactly); ``weights`` (option,) >= 0 with sum
    ``total`` > 0, ``out`` (option,) int64 written in place. Returns the state; a NaN weight or total reaches
    :func:`binomial_sample` as a NaN share, which raises ValueError (while ballots are left to split)."""
    n_options = weights.shape[0]
    remaining_ballots = n
    remaining_weight = total
    for option in range(n_options - 1):
        out[option], remaining_ballots, remaining_weight, state = multinomial_step(
            state, remaining_ballots, remaining_weight, weights[option])
    out[n_options - 1] = remaining_ballots
    return state


@inline_jit
def hypergeometric_sample(state, good, bad, draws):
    """Hypergeometric count: good items among ``draws`` taken without replacement from ``good`` good and
    ``bad`` bad items (0 <= draws <= good + bad), by inversion searched outward from the mode (the
    probabilities of the mode and of its neighbours in turn, one step up then one down, until they exceed a
    uniform): exact, about one standard deviation of steps. Returns ``(k, state)``."""
    total = good + bad
    low = max(0, draws - bad)
    high = min(good, draws)
    if low >= high:
        return low, state
    mode = ((draws + 1) * (good + 1)) // (total + 2)
    mode = min(max(mode, low), high)
    log_mode = (_log_factorial(good) - _log_factorial(mode) - _log_factorial(good - mode)
                + _log_factorial(bad) - _log_factorial(draws - mode) - _log_factorial(bad - draws + mode)
                - _log_factorial(total) + _log_factorial(draws) + _log_factorial(total - draws))
    while True:  # a uniform beyond the probabilities' rounded sum (below 1e-12) is redrawn, as numpy does
        u, state = uniform_sample(state)
        probability_up = probability_down = cumulative = math.exp(log_mode)
        if u < cumulative:
            return mode, state
        up = down = mode
        while up < high or down > low:
            if up < high:
                probability_up *= (good - up) * (draws - up) / ((up + 1.0) * (bad - draws + up + 1.0))
                up += 1
                cumulative += probability_up
                if u < cumulative:
                    return up, state
            if down > low:
                probability_down *= down * (bad - draws + down) / ((good - down + 1.0) * (draws - down + 1.0))
                down -= 1
                cumulative += probability_down
                if u < cumulative:
                    return down, state
