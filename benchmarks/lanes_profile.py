"""Would drawing several stations at once in vector registers (lanes) speed up the fused kernel? A measured prototype.

    python benchmarks/lanes_profile.py [--replicates 10] [--lanes 16] [--json]

The kernel's samplers (:mod:`simkit.model.samplers`) draw one station at a time from one xoshiro256** generator.
This prototype gives each of ``--lanes`` stations its own generator (arrays of lanes: one array per state word) and
writes the common path of each rejection sampler as a loop over the lanes with a run-time trip count, which numba's
LLVM vectorises (AVX2: four 64-bit lanes to a register; numba runs no SLP vectoriser, so a constant trip count is
unrolled instead of vectorised); the lanes the common path rejects are finished by the scalar sampler from the same
lane's generator, so each lane draws from the exact law. Two stages, each against the kernel's scalar samplers on
the workload of ``benchmarks/compare.py`` (one thread, CPU time, best of ``--repeats``):

1. standard normals: xoshiro256** in lanes, the ziggurat's rectangle test in lanes, wedge and tail scalar
   (:func:`simkit.model.samplers.normal_from_bits`); CPU ns per normal;
2. the eight Dirichlet gammas of each station (shapes κ × composition of its region, four of them below 1):
   Marsaglia & Tsang's candidate (a lane normal and a lane uniform) and its squeeze ``u < 1 - 0.0331 x⁴`` in
   lanes, the logarithmic test and restarts scalar, and ``× U^(1/a)`` for shapes below 1 scalar (it needs
   ``log`` and ``exp``, which numba does not vectorise without SVML); CPU ns per station (eight gammas).

``--lanes`` should be at least 8 (fewer run, slower): LLVM's vector loop takes 8 or 16 lanes at a time and leaves fewer to its scalar
remainder. The verdict (docs/performance.md's kernel-profile paragraph): the normals gain, the gammas do not.

It also prints Kolmogorov-Smirnov p-values of the lane normals and of each option's lane gammas (stations of the
first region) against the exact laws, so that the timings are of correct samplers.
"""
from __future__ import annotations

import json
import math

import numba
import numpy as np
from scipy import stats

from cpu_timing import best_cpu_seconds, profile_parser
from kernel_profile import workload_model
from simkit.model.samplers import (_ZIGGURAT_X, _next64, _gamma_at_least_one, gamma_constants, gamma_sample, inline_jit,
                                   normal_from_bits, normal_sample)

#: 2^-53: a uniform on [0, 1) from the top 53 of 64 bits, as :func:`simkit.model.samplers.uniform_sample`
_UNIT = 1.0 / 9007199254740992.0


@inline_jit
def _next_lanes(s0, s1, s2, s3, bits, n_lanes):
    """One xoshiro256** step of every lane: state words ``s0`` … ``s3`` (lane,) uint64 updated in place,
    ``bits`` (lane,) uint64 written (the same arithmetic as :func:`simkit.model.samplers._next64`)."""
    for lane in range(n_lanes):
        bits[lane], (s0[lane], s1[lane], s2[lane], s3[lane]) = _next64((s0[lane], s1[lane], s2[lane], s3[lane]))


@inline_jit
def _rectangle_normals(bits, z, inside, n_lanes):
    """The ziggurat's common path in lanes: candidate ``z`` (lane,) from ``bits`` and whether it lies inside its
    layer's rectangle (``inside``, lane,) bool; the others need :func:`normal_from_bits`."""
    for lane in range(n_lanes):
        word = bits[lane]
        layer = np.int64(word & np.uint64(127))
        x = np.int64(word >> np.uint64(11)) * _UNIT * _ZIGGURAT_X[layer]
        inside[lane] = x < _ZIGGURAT_X[layer + 1]
        z[lane] = -x if (word & np.uint64(128)) != 0 else x


@inline_jit
def _count_false(flags, n_lanes):
    """How many of the lanes' ``flags`` (lane,) bool are False (a vectorised count: the scalar loop that
    finishes rejected lanes runs only when there is one, so its branches are taken rarely)."""
    count = 0
    for lane in range(n_lanes):
        count += not flags[lane]
    return count


@numba.njit(error_model="numpy")
def lane_normals(words, n_rounds, out):
    """``n_rounds`` × lane standard normals from the lanes' states ``words`` (4, lane) uint64 into ``out``
    (n_rounds × lane,); returns their sum."""
    n_lanes = words.shape[1]
    s0, s1, s2, s3 = words[0].copy(), words[1].copy(), words[2].copy(), words[3].copy()
    bits, z, inside = np.empty(n_lanes, np.uint64), np.empty(n_lanes), np.empty(n_lanes, np.bool_)
    total = 0.0
    for round_index in range(n_rounds):
        _next_lanes(s0, s1, s2, s3, bits, n_lanes)
        _rectangle_normals(bits, z, inside, n_lanes)
        if _count_false(inside, n_lanes):
            for lane in range(n_lanes):
                if not inside[lane]:
                    state = (s0[lane], s1[lane], s2[lane], s3[lane])
                    z[lane], state = normal_from_bits(state, bits[lane])
                    s0[lane], s1[lane], s2[lane], s3[lane] = state
        for lane in range(n_lanes):
            out[round_index * n_lanes + lane] = z[lane]
            total += z[lane]
    return total


@numba.njit(error_model="numpy")
def scalar_normals(words, n_draws, out):
    """``n_draws`` standard normals by the kernel's :func:`normal_sample` from lane 0's state; returns their sum."""
    state = (words[0, 0], words[1, 0], words[2, 0], words[3, 0])
    total = 0.0
    for index in range(n_draws):
        out[index], state = normal_sample(state)
        total += out[index]
    return total


@inline_jit
def _gamma_from_candidate(state, d, c, bits, u):
    """Marsaglia & Tsang's gamma (shape ``d + 1/3``) whose normal's first bits ``bits`` and uniform ``u`` were
    drawn in lanes: the normal finished by :func:`normal_from_bits`, the exact test, and on rejection a fresh
    scalar draw. Returns ``(g, state)``."""
    x, state = normal_from_bits(state, bits)
    v = 1.0 + c * x
    if v > 0.0:
        v = v * v * v
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return d * v, state
    return _gamma_at_least_one(state, d, c)


@numba.njit(error_model="numpy")
def lane_gammas(constants, region_index, words, replicates, out):
    """The eight (``option``) Dirichlet gammas of every station, stations in consecutive groups of ``lane``
    (the last partial group left out), ``replicates`` times: ``constants`` (region, option, 3) rows of
    :func:`gamma_constants`, ``region_index`` (station,) int64, ``words`` (4, lane) uint64 lane states,
    ``out`` (station, option) float64 (the last replicate's gammas). Returns their sum."""
    n_lanes = words.shape[1]
    n_options = constants.shape[1]
    s0, s1, s2, s3 = words[0].copy(), words[1].copy(), words[2].copy(), words[3].copy()
    normal_bits, uniform_bits, boost_bits = (np.empty(n_lanes, np.uint64), np.empty(n_lanes, np.uint64),
                                             np.empty(n_lanes, np.uint64))
    d, c, z, u, g = np.empty(n_lanes), np.empty(n_lanes), np.empty(n_lanes), np.empty(n_lanes), np.empty(n_lanes)
    inside, accepted = np.empty(n_lanes, np.bool_), np.empty(n_lanes, np.bool_)
    total = 0.0
    for _ in range(replicates):
        for start in range(0, region_index.shape[0] - n_lanes + 1, n_lanes):
            for option in range(n_options):
                for lane in range(n_lanes):
                    d[lane] = constants[region_index[start + lane], option, 0]
                    c[lane] = constants[region_index[start + lane], option, 1]
                _next_lanes(s0, s1, s2, s3, normal_bits, n_lanes)
                _next_lanes(s0, s1, s2, s3, uniform_bits, n_lanes)
                _next_lanes(s0, s1, s2, s3, boost_bits, n_lanes)
                _rectangle_normals(normal_bits, z, inside, n_lanes)
                for lane in range(n_lanes):  # the candidate and the squeeze
                    v = 1.0 + c[lane] * z[lane]
                    u[lane] = np.int64(uniform_bits[lane] >> np.uint64(11)) * _UNIT
                    x2 = z[lane] * z[lane]
                    accepted[lane] = inside[lane] & (v > 0.0) & (u[lane] < 1.0 - 0.0331 * x2 * x2)
                    g[lane] = d[lane] * v * v * v
                rejected = _count_false(accepted, n_lanes)
                for lane in range(n_lanes):  # the rest, scalar
                    inverse_shape = constants[region_index[start + lane], option, 2]
                    if inverse_shape < 0.0:
                        g[lane] = 0.0
                        continue
                    if rejected and not accepted[lane]:
                        state = (s0[lane], s1[lane], s2[lane], s3[lane])
                        g[lane], state = _gamma_from_candidate(state, d[lane], c[lane], normal_bits[lane], u[lane])
                        s0[lane], s1[lane], s2[lane], s3[lane] = state
                    if inverse_shape > 0.0:
                        boost = np.int64(boost_bits[lane] >> np.uint64(11)) * _UNIT
                        g[lane] *= math.exp(math.log(boost) * inverse_shape)
                    out[start + lane, option] = g[lane]
                    total += g[lane]
    return total


@numba.njit(error_model="numpy")
def scalar_gammas(constants, region_index, words, replicates, out):
    """As :func:`lane_gammas`, by the kernel's :func:`gamma_sample` station by station from lane 0's state."""
    state = (words[0, 0], words[1, 0], words[2, 0], words[3, 0])
    total = 0.0
    for _ in range(replicates):
        for station in range(out.shape[0]):
            region = region_index[station]
            for option in range(constants.shape[1]):
                out[station, option], state = gamma_sample(state, constants[region, option, 0],
                                                           constants[region, option, 1], constants[region, option, 2])
                total += out[station, option]
    return total


def main(argv: list[str] | None = None) -> int:
    parser = profile_parser(__doc__.splitlines()[0], replicates=10, repeats=5)
    parser.add_argument("--lanes", type=int, default=16)
    args = parser.parse_args(argv)

    _, _, _, concentration, composition, region_index = workload_model()
    shapes = concentration * composition
    constants = gamma_constants(shapes.ravel()).reshape(*shapes.shape, 3)
    n_stations = region_index.shape[0] // args.lanes * args.lanes
    region_index = np.ascontiguousarray(region_index[:n_stations], dtype=np.int64)
    words = np.random.SeedSequence(1).generate_state(4 * args.lanes, np.uint64).reshape(4, args.lanes)
    n_normals = args.replicates * n_stations * 8

    def best_ns(calls: dict, per: int) -> dict:
        """CPU ns per ``per`` (draws or station-replicates) of each call, the best of ``--repeats``, taking turns."""
        return {name: seconds * 1e9 / per for name, seconds in best_cpu_seconds(calls, args.repeats).items()}

    normals = np.empty(n_normals)
    normal_ns = best_ns({"scalar": lambda: scalar_normals(words, n_normals, normals),
                         "lanes": lambda: lane_normals(words, n_normals // args.lanes, normals)}, n_normals)
    gammas = np.empty((n_stations, shapes.shape[1]))
    gamma_arguments = (constants, region_index, words, args.replicates, gammas)
    gamma_ns = best_ns({"scalar": lambda: scalar_gammas(*gamma_arguments),
                        "lanes": lambda: lane_gammas(*gamma_arguments)}, args.replicates * n_stations)
    normal_ks = float(stats.kstest(normals, stats.norm.cdf).pvalue)  # the lanes' normals (the last call)
    first_region = region_index == region_index[0]
    ks = [float(stats.kstest(gammas[first_region, option], stats.gamma(shapes[region_index[0], option]).cdf).pvalue)
          for option in range(shapes.shape[1])]
    report = {"stations": n_stations, "replicates": args.replicates, "lanes": args.lanes,
              "normal_ns_per_draw": normal_ns, "gammas_ns_per_station": gamma_ns,
              "normal_speed_up": normal_ns["scalar"] / normal_ns["lanes"],
              "gamma_speed_up": gamma_ns["scalar"] / gamma_ns["lanes"], "lane_normal_ks_pvalue": normal_ks,
              "lane_gamma_ks_pvalues": ks}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"standard normal: scalar {normal_ns['scalar']:.2f}, {args.lanes} lanes {normal_ns['lanes']:.2f} CPU ns "
              f"per draw ({report['normal_speed_up']:.2f}x)")
        print(f"8 Dirichlet gammas: scalar {gamma_ns['scalar']:.1f}, {args.lanes} lanes {gamma_ns['lanes']:.1f} CPU ns "
              f"per station ({report['gamma_speed_up']:.2f}x)")
        print(f"against the exact laws (Kolmogorov-Smirnov p-values): lane normals {normal_ks:.2f}; lane gammas, "
              "per option (first region): " + ", ".join(f"{p:.2f}" for p in ks))
        print(f"({n_stations:,} stations x {args.replicates} replicates, one thread, best of {args.repeats})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
