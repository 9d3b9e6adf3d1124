"""The multinomial chain's binomials drawn for several stations at once in vector registers (lanes): a measured
prototype for :mod:`chain_variants` (issue 19), not used by the kernel.

Each lane (a station) has its own xoshiro256** generator (``S`` (4, lane) uint64, one row per state word); every
loop over the lanes is branch-free (selects and masks, no libm call), so that numba's LLVM vectorises it with AVX2
(4 doubles a ymm register). :func:`lane_binomials` draws Binomial(n, p) for every lane: inversion from 0 (P(0) =
qⁿ by squaring, 14 fixed steps) for lanes with n min(p, 1 − p) < 10, Hörmann's BTRS for the others, each as a loop
"until every lane accepted" that advances only the unfinished lanes' generators (so a lane's numbers depend on its
own generator alone); lanes beyond the constant log-factorial table (n ≥ 2^14) or in inversion's numerical tail
finish with the scalar :func:`simkit.model.samplers.binomial_sample` from their own generator. Uniforms have 52
random bits (from the bit pattern of a double in [1, 2)). The logarithm (:func:`lane_log`, fdlibm's polynomial with
bit casts) and log(k!) (:func:`lane_log_factorial`, Stirling's series to 1/x⁹, shifted by 10 below 10) are
written out, since numba does not vectorise ``math.log`` without SVML nor a gather from the table (LLVM's cost
model refused the BTRS round with two gathers); their errors against ``math.log`` and ``scipy.special.gammaln``
are printed by ``python benchmarks/chain_variants.py``.

:func:`compact_binomials` is the other way round: only BTRS's first candidate and its squeeze in the vector loop,
and the work the squeeze leaves (its exact test, inversion lanes, the rejected candidates' fresh draws) lane by lane
with the kernel's scalar code and ``math.log``, so that no lane does work it does not need beyond one round.
"""
from __future__ import annotations

import math
import numba
import numpy as np
from numba import types
from numba.extending import intrinsic
from simkit.model.samplers import (CONSTANT_LOG_FACTORIALS, _binomial_btrs, _binomial_inversion, _log_factorial,
                                   _next64, binomial_sample, inline_jit)


@intrinsic
def _as_float(typingctx, bits):
    """The float64 whose IEEE-754 bits are the uint64 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.uint64), codegen


@intrinsic
def _as_bits(typingctx, value):
    """The IEEE-754 bits of the float64 ``value`` as a uint64."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint64))
    return types.uint64(types.float64), codegen


_LG1, _LG2, _LG3, _LG4 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01
_LG5, _LG6, _LG7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_MANTISSA = np.uint64(0x000FFFFFFFFFFFFF)
_ONE_BITS = np.uint64(0x3FF0000000000000)
_MAGIC_BITS = np.uint64(0x4330000000000000)


@inline_jit
def lane_log(x):
    """Natural logarithm of x > 0 (normal), branch-free (fdlibm's e_log.c polynomial): -inf for x <= 0."""
    bits = _as_bits(x)
    exponent = (_as_float((bits >> np.uint64(52)) | _MAGIC_BITS) - 4503599627370496.0) - 1023.0  # no int64->double
    mantissa = _as_float((bits & _MANTISSA) | _ONE_BITS)
    big = mantissa > _SQRT2
    mantissa = mantissa * 0.5 if big else mantissa
    exponent = exponent + 1.0 if big else exponent
    f = mantissa - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    r = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7))) + w * (_LG2 + w * (_LG4 + w * _LG6))
    hfsq = 0.5 * f * f
    value = exponent * _LN2_HI - ((hfsq - (s * (hfsq + r) + exponent * _LN2_LO)) - f)
    return value if x > 0.0 else -math.inf

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@inline_jit
def _stirling(k):
    """log(k!) for integer-valued float k >= 0 as ``(value, divisor)``: log(k!) = value − log(divisor), branch-free;
    Stirling's series for lgamma(x), x = k + 1, terms to 1/x⁹ (truncation below 2e-14 at x >= 10), x shifted by
    10 below 10 with the shift's product x (x + 1) … (x + 9) as ``divisor`` (else 1), so that callers can take
    the logarithm of several divisors at once."""
    x = k + 1.0
    small = x < 10.0
    shifted = x + 10.0 if small else x
    product = x * (x + 1.0) * (x + 2.0) * (x + 3.0) * (x + 4.0) * (x + 5.0) * (x + 6.0) * (x + 7.0) * (x + 8.0) * (x + 9.0)
    r = 1.0 / shifted
    r2 = r * r
    tail = r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0 - r2 * (1.0 / 1188.0)))))
    return (shifted - 0.5) * lane_log(shifted) - shifted + _HALF_LOG_2PI + tail, (product if small else 1.0)


@inline_jit
def lane_log_factorial(k):
    """log(k!) for integer-valued float k >= 0, branch-free (:func:`_stirling`)."""
    value, divisor = _stirling(k)
    return value - lane_log(divisor)


@inline_jit
def _step(s0, s1, s2, s3):
    """One xoshiro256** step (:func:`simkit.model.samplers._next64`): ``(u, s0, s1, s2, s3)``, u a uniform on
    [0, 1) from the top 52 bits (no uint64 to double conversion, which AVX2 lacks)."""
    bits, (s0, s1, s2, s3) = _next64((s0, s1, s2, s3))
    return _as_float((bits >> np.uint64(12)) | _ONE_BITS) - 1.0, s0, s1, s2, s3


@inline_jit
def _lane_uniforms(S, active, out, n_lanes):
    """A uniform on [0, 1) (52 bits) for every lane into ``out`` (lane,), advancing only the generators of the
    ``active`` (lane,) bool lanes (the others' values are unused)."""
    for lane in range(n_lanes):
        u, s0, s1, s2, s3 = _step(S[0, lane], S[1, lane], S[2, lane], S[3, lane])
        a = active[lane]
        S[0, lane] = s0 if a else S[0, lane]
        S[1, lane] = s1 if a else S[1, lane]
        S[2, lane] = s2 if a else S[2, lane]
        S[3, lane] = s3 if a else S[3, lane]
        out[lane] = u


@inline_jit
def _count_set(flags, n_lanes):
    """How many of ``flags`` (lane,) bool are set (a vectorised count)."""
    count = 0
    for lane in range(n_lanes):
        count += flags[lane]
    return count

TABLE = CONSTANT_LOG_FACTORIALS
#: the largest count the lanes draw (larger ones go to the scalar sampler)
TABLE_TOP = TABLE.shape[0] - 1
#: rows of :func:`lane_binomials`' float scratch ``w`` (12, lane)
SCRATCH_ROWS = 12


@inline_jit
def _prepare(n, p, w, flags, out, n_lanes):
    """Each lane's method: ``flags`` rows inversion, BTRS, scalar, flipped (p > 1/2, drawn as n − Binomial(n, 1 −
    p)); ``w`` rows 0, 1 the smaller probability and its complement; ``out`` zeroed."""
    small, q = w[0], w[1]
    inv, btrs, scalar, flip = flags[0], flags[1], flags[2], flags[3]
    for lane in range(n_lanes):
        pp = min(max(p[lane], 0.0), 1.0)
        fl = pp > 0.5
        flip[lane] = fl
        ps = 1.0 - pp if fl else pp
        nn = n[lane]
        small[lane] = ps
        q[lane] = 1.0 - ps
        trivial = (nn <= 0.0) | (ps <= 0.0)
        covered = nn <= TABLE_TOP
        scalar[lane] = (~trivial) & (~covered)
        low = nn * ps < 10.0
        inv[lane] = (~trivial) & covered & low
        btrs[lane] = (~trivial) & covered & (~low)
        out[lane] = 0.0


@inline_jit
def _inversion_start(n, w, n_lanes):
    """Inversion's P(0) = qⁿ (``w`` row 2; by squaring over n's 14 bits) and odds p / q (row 5)."""
    small, q, prob, odds = w[0], w[1], w[2], w[5]
    for lane in range(n_lanes):
        base = q[lane]
        power = 1.0
        e = np.int64(n[lane])
        for bit in range(14):
            power = power * base if (e >> bit) & 1 else power
            base = base * base
        prob[lane] = power
        odds[lane] = small[lane] / q[lane]


@inline_jit
def _inversion_first(w, inv, n_lanes):
    """Inversion lanes whose uniform (``w`` row 11) lies beyond P(0) stay active."""
    prob, u = w[2], w[11]
    for lane in range(n_lanes):
        inv[lane] = inv[lane] & (u[lane] > prob[lane])


@inline_jit
def _inversion_step(n, w, inv, scalar, out, n_lanes):
    """One step of inversion for the active lanes (``inv``): k + 1, the uniform less P(k), P(k + 1) from P(k);
    a lane past n or 256 steps (rounding) is handed to the scalar sampler."""
    prob, odds, u = w[2], w[5], w[11]
    for lane in range(n_lanes):
        act = inv[lane]
        k = out[lane] + 1.0
        uu = u[lane] - prob[lane]
        pr = prob[lane] * (n[lane] - k + 1.0) * odds[lane] / k
        out[lane] = k if act else out[lane]
        u[lane] = uu if act else u[lane]
        prob[lane] = pr if act else prob[lane]
        tail = act & ((k > n[lane]) | (k >= 256.0))
        scalar[lane] = scalar[lane] | tail
        inv[lane] = act & (~tail) & (uu > pr)


@inline_jit
def _btrs_setup(n, w, btrs, n_lanes):
    """BTRS's constants for every lane (``w`` rows 3 to 10: mode, log(mode!) + log((n − mode)!), log(p / q),
    b, a, c, v_r, alpha), as :func:`simkit.model.samplers._binomial_btrs`."""
    small, q, mode, lmt, lodds, b, a, c, vr, alpha = w[0], w[1], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10]
    for lane in range(n_lanes):
        ps = small[lane]
        nn = n[lane]
        spq = math.sqrt(nn * ps * q[lane])
        bb = 1.15 + 2.53 * spq
        b[lane] = bb
        a[lane] = -0.0873 + 0.0248 * bb + 0.01 * ps
        c[lane] = nn * ps + 0.5
        vr[lane] = 0.92 - 4.2 / bb
        md = math.floor((nn + 1.0) * ps)
        mode[lane] = md
        mdc = md if btrs[lane] else 0.0
        lmt[lane] = TABLE[np.int64(mdc)] + TABLE[np.int64(min(max(nn - mdc, 0.0), TABLE_TOP))]
        lodds[lane] = lane_log(ps / q[lane])
        alpha[lane] = (2.83 + 5.1 / bb) * spq


@inline_jit
def btrs_round(n, w, btrs, out, n_lanes):
    """One BTRS candidate for every lane from its uniforms (``w`` rows 11 and 2): the squeeze and the exact test
    both evaluated (no branch); the active lanes (``btrs``) that accept keep it."""
    v, mode, lmt, lodds, b, a, c, vr, alpha, u = w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], w[11]
    for lane in range(n_lanes):
        uu = u[lane] - 0.5
        us = 0.5 - abs(uu)
        k = math.floor((2.0 * a[lane] / us + b[lane]) * uu + c[lane])
        nn = n[lane]
        valid = (k >= 0.0) & (k <= nn)
        kk = min(max(k, 0.0), nn)
        squeeze = (us >= 0.07) & (v[lane] <= vr[lane])
        stirling_k, divisor_k = _stirling(kk)
        stirling_rest, divisor_rest = _stirling(nn - kk)
        # log(v α / (a / us² + b)) <= log(mode!) + log((n - mode)!) - log(k!) - log((n - k)!) + (k - mode) log(p / q),
        # the log-factorials' divisors moved left: one logarithm for the three
        lhs = lane_log(v[lane] * alpha[lane] / (a[lane] / (us * us) + b[lane]) * divisor_k * divisor_rest)
        rhs = lmt[lane] - stirling_k - stirling_rest + (kk - mode[lane]) * lodds[lane]
        accept = btrs[lane] & valid & (squeeze | (lhs <= rhs))
        out[lane] = kk if accept else out[lane]
        btrs[lane] = btrs[lane] & (~accept)


@inline_jit
def _finish(n, w, flags, out, S, n_lanes):
    """The scalar lanes drawn by :func:`binomial_sample` from their own generators; flipped lanes n − k."""
    small = w[0]
    scalar, flip = flags[2], flags[3]
    for lane in range(n_lanes):
        if scalar[lane]:  # rare: registers beyond the table, or inversion's numerical tail
            state = (S[0, lane], S[1, lane], S[2, lane], S[3, lane])
            drawn, state = binomial_sample(state, np.int64(n[lane]), small[lane])
            S[0, lane], S[1, lane], S[2, lane], S[3, lane] = state
            out[lane] = drawn
        out[lane] = n[lane] - out[lane] if flip[lane] else out[lane]


@inline_jit
def lane_binomials(S, n, p, out, w, flags, n_lanes):
    """``out[l] ~ Binomial(n[l], p[l])`` for every lane l: ``n`` (lane,) float64 integer-valued counts, ``p``
    (lane,) float64; ``S`` (4, lane) uint64 the lanes' generators (advanced in place); scratch ``w``
    (:data:`SCRATCH_ROWS`, lane) float64 and ``flags`` (4, lane) bool."""
    _prepare(n, p, w, flags, out, n_lanes)
    if _count_set(flags[0], n_lanes):
        _inversion_start(n, w, n_lanes)
        _lane_uniforms(S, flags[0], w[11], n_lanes)
        _inversion_first(w, flags[0], n_lanes)
        while _count_set(flags[0], n_lanes):
            _inversion_step(n, w, flags[0], flags[2], out, n_lanes)
    if _count_set(flags[1], n_lanes):
        _btrs_setup(n, w, flags[1], n_lanes)
        while _count_set(flags[1], n_lanes):
            _lane_uniforms(S, flags[1], w[11], n_lanes)
            _lane_uniforms(S, flags[1], w[2], n_lanes)
            btrs_round(n, w, flags[1], out, n_lanes)
    _finish(n, w, flags, out, S, n_lanes)


@inline_jit
def lane_scratch(n_lanes):
    """The work arrays a caller of :func:`lane_binomials` or :func:`lane_chain` hands them (uninitialised):
    counts, probabilities, draws, weight left (lane,) float64 each, the float scratch (:data:`SCRATCH_ROWS`, lane)
    and the flags (4, lane) bool."""
    return (np.empty(n_lanes), np.empty(n_lanes), np.empty(n_lanes), np.empty(n_lanes),
            np.empty((SCRATCH_ROWS, n_lanes)), np.empty((4, n_lanes), np.bool_))


@inline_jit
def _compact_round(n, w, flags, out, S, n_lanes):
    """BTRS's first candidate and squeeze for every BTRS lane (``flags`` row 1) at once, from two uniforms of its
    own generator (only the BTRS lanes' generators advance): a lane whose candidate the squeeze accepts keeps it in
    ``out`` and leaves row 1; the others stay in row 1, row 2 set when the candidate lies in [0, n] (the exact
    test decides it), their ``v``, ``us`` and candidate in ``w`` rows 2, 9, 10."""
    b, a, c, vr = w[6], w[7], w[8], w[4]
    v_, us_, k_ = w[2], w[9], w[10]
    btrs, exact = flags[1], flags[2]
    for lane in range(n_lanes):
        act = btrs[lane]
        s0, s1, s2, s3 = S[0, lane], S[1, lane], S[2, lane], S[3, lane]
        u, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
        v, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
        S[0, lane] = s0 if act else S[0, lane]
        S[1, lane] = s1 if act else S[1, lane]
        S[2, lane] = s2 if act else S[2, lane]
        S[3, lane] = s3 if act else S[3, lane]
        uu = u - 0.5
        us = 0.5 - abs(uu)
        k = math.floor((2.0 * a[lane] / us + b[lane]) * uu + c[lane])
        valid = (k >= 0.0) & (k <= n[lane])
        accepted = act & valid & (us >= 0.07) & (v <= vr[lane])
        out[lane] = k if accepted else 0.0
        btrs[lane] = act & (~accepted)
        exact[lane] = act & (~accepted) & valid
        v_[lane], us_[lane], k_[lane] = v, us, k


@inline_jit
def _compact_setup(n, w, n_lanes):
    """BTRS's constants spq, b, a, c, v_r for every lane (``w`` rows 3, 6, 7, 8, 4; no logarithm or table read:
    those only where the exact test needs them)."""
    small, q, spq, b, a, c, vr = w[0], w[1], w[3], w[6], w[7], w[8], w[4]
    for lane in range(n_lanes):
        s = math.sqrt(n[lane] * small[lane] * q[lane])
        bb = 1.15 + 2.53 * s
        spq[lane] = s
        b[lane] = bb
        a[lane] = -0.0873 + 0.0248 * bb + 0.01 * small[lane]
        c[lane] = n[lane] * small[lane] + 0.5
        vr[lane] = 0.92 - 4.2 / bb


@inline_jit
def _compact_finish(n, w, flags, out, S, n_lanes):
    """The lanes the vector round left, one by one from their own generators: inversion lanes (row 0) by the
    scalar sampler; a BTRS lane whose
    candidate reached the exact test (row 2) takes :func:`simkit.model.samplers._binomial_btrs`' test on it, and
    if rejected (or its candidate lay outside [0, n]) draws afresh by that sampler (a rejection sampler's rounds
    are independent, so this is the same law). Flipped lanes (row 3) then take n − k."""
    small, q, spq, b, a = w[0], w[1], w[3], w[6], w[7]
    v_, us_, k_ = w[2], w[9], w[10]
    inv, btrs, exact, flip = flags[0], flags[1], flags[2], flags[3]
    for lane in range(n_lanes):
        if inv[lane] or btrs[lane]:
            state = (S[0, lane], S[1, lane], S[2, lane], S[3, lane])
            nn = np.int64(n[lane])
            ps = small[lane]
            if inv[lane]:
                drawn, state = _binomial_inversion(state, nn, ps)
            else:
                drawn = np.int64(-1)
                if exact[lane]:
                    k = k_[lane]
                    us = us_[lane]
                    mode = math.floor((nn + 1) * ps)
                    bound = (_log_factorial(mode) + _log_factorial(nn - mode) - _log_factorial(k)
                             - _log_factorial(nn - k) + (k - mode) * math.log(ps / q[lane]))
                    hat = v_[lane] * (2.83 + 5.1 / b[lane]) * spq[lane] / (a[lane] / (us * us) + b[lane])
                    if math.log(hat) <= bound:
                        drawn = np.int64(k)
                if drawn < 0:
                    drawn, state = _binomial_btrs(state, nn, ps)
            S[0, lane], S[1, lane], S[2, lane], S[3, lane] = state
            out[lane] = drawn
        out[lane] = n[lane] - out[lane] if flip[lane] else out[lane]


@inline_jit
def compact_binomials(S, n, p, out, w, flags, n_lanes):
    """``out[l] ~ Binomial(n[l], p[l])`` for every lane l, as :func:`lane_binomials` (same arguments), but only
    BTRS's first candidate and its squeeze in the vector loop (:func:`_compact_round`); what the squeeze leaves,
    the inversion lanes and the retries are drawn lane by lane by the kernel's scalar code
    (:func:`_compact_finish`), so no lane does work it does not need beyond the one round."""
    _prepare(n, p, w, flags, out, n_lanes)
    for lane in range(n_lanes):  # counts beyond the table: the same methods (the exact test reads lgamma there)
        low = n[lane] * w[0, lane] < 10.0
        flags[0, lane] = flags[0, lane] | (flags[2, lane] & low)
        flags[1, lane] = flags[1, lane] | (flags[2, lane] & (~low))
    _compact_setup(n, w, n_lanes)
    _compact_round(n, w, flags, out, S, n_lanes)
    _compact_finish(n, w, flags, out, S, n_lanes)


@numba.njit(error_model="numpy")
def draws(words, n_value, p_value, rounds, compact=False):
    """``rounds`` × lane draws of Binomial(``n_value``, ``p_value``) from the lanes' generators ``words`` (4, lane)
    uint64 (copied), by :func:`lane_binomials` (or, ``compact``, :func:`compact_binomials`): (round, lane)
    float64."""
    n_lanes = words.shape[1]
    states = words.copy()
    n, p, out, _, scratch, flags = lane_scratch(n_lanes)
    n[:] = n_value
    p[:] = p_value
    result = np.empty((rounds, n_lanes))
    for round_index in range(rounds):
        if compact:
            compact_binomials(states, n, p, out, scratch, flags, n_lanes)
        else:
            lane_binomials(states, n, p, out, scratch, flags, n_lanes)
        result[round_index] = out
    return result


@inline_jit
def lane_chain(S, n, left, weights, first, drawn, p, out, w, flags, n_lanes, compact=False):
    """The multinomial chain of ``n_lanes`` stations at once: lane l splits its count ``n[l]`` over the options
    by the weights of row ``min(first + l, rows − 1)`` of ``weights`` (row, option) float64, whose sum is
    ``left[l]``, option j's Binomial(n, w_j / left) for every lane (:func:`lane_binomials`, generators ``S``)
    before option j + 1, ``n`` and ``left`` less the draw and the weight after each; ``drawn`` (lane, option)
    float64 gets the draws, the last option what remains. Scratch ``p``, ``out`` (lane,), ``w`` and ``flags`` as
    :func:`lane_binomials`'. A lane whose ``n`` is 0 draws zeros, its generator not advanced. ``compact``: the
    binomials by :func:`compact_binomials`."""
    rows, n_options = weights.shape
    for option in range(n_options - 1):
        for lane in range(n_lanes):
            p[lane] = weights[min(first + lane, rows - 1), option] / left[lane] if left[lane] > 0.0 else 1.0
        if compact:
            compact_binomials(S, n, p, out, w, flags, n_lanes)
        else:
            lane_binomials(S, n, p, out, w, flags, n_lanes)
        for lane in range(n_lanes):
            n[lane] -= out[lane]
            left[lane] -= weights[min(first + lane, rows - 1), option]
            drawn[lane, option] = out[lane]
    for lane in range(n_lanes):
        drawn[lane, n_options - 1] = n[lane]


@numba.njit(error_model="numpy")
def chain_lanes(cast, weights, words, replicates, compact=False):
    """The multinomial chain of stations ``cast`` (station,) float64 ballots with probabilities ``weights``
    (station, option), ``lane`` consecutive stations at a time (:func:`lane_chain`, ``compact`` as there), from the
    lanes' generators ``words`` (4, lane) uint64 (copied); returns a checksum (the first lane's draws)."""
    n_lanes = words.shape[1]
    n_stations, n_options = weights.shape
    states = words.copy()
    n, p, out, left, scratch, flags = lane_scratch(n_lanes)
    drawn = np.empty((n_lanes, n_options))
    checksum = 0.0
    for _ in range(replicates):
        for start in range(0, n_stations, n_lanes):
            for lane in range(n_lanes):  # lanes beyond the last station draw nothing (n = 0)
                n[lane] = cast[start + lane] if start + lane < n_stations else 0.0
                left[lane] = 1.0
            lane_chain(states, n, left, weights, start, drawn, p, out, scratch, flags, n_lanes, compact)
            for option in range(n_options - 1):
                checksum += drawn[0, option]
    return checksum
