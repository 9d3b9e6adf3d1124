"""Ways of drawing the fused kernel's multinomial chain faster, tried against the kernel's own (issue 19).

    python benchmarks/chain_variants.py [--replicates 10] [--repeats 5] [--json]

CPU nanoseconds per station-replicate, one thread, on the workload of ``benchmarks/compare.py`` (10,101 stations,
8 options), every variant timed in one process, in turn, ``--repeats`` times (best kept), so that their ratios to
the kernel's way share the machine's load. Every variant draws from the same law as the kernel (the same exact
samplers of :mod:`simkit.model.samplers`); they differ in how the draws are ordered and called:

- ``chain``: the chain alone, on ballots and Dirichlet probabilities drawn once with numpy (fixed seed):
  ``kernel`` calls :func:`~simkit.model.samplers.multinomial_sample` station by station, as the kernel does;
  ``interleaved 2`` and ``interleaved 4`` draw 2 or 4 stations at once, each from its own generator,
  option j's binomial for each of them before option j + 1, so that the processor can overlap their chains;
  ``option-major B`` draws option j for a block of B stations before option j + 1, from one generator;
  ``lanes L`` draws option j for L stations at once in vector registers (:mod:`lane_binomials`, each lane its own
  generator, a different stream layout: the same law, not the same numbers); ``compact L`` draws it in L lanes too,
  but only BTRS's first candidate and squeeze in the vector loop, the rest lane by lane with the kernel's scalar
  code (:func:`lane_binomials.compact_binomials`); ``BTRD`` draws the kernel's chain with
  Hörmann's BTRD binomials in place of BTRS (:mod:`btrd`: the same law, other numbers).
- ``fused``: the whole honest draw (turnout, ballots, gammas, chain; the loop of
  :func:`simkit.engine.kernels.honest_stations`, one generator per component): ``kernel`` as the kernel calls the
  samplers, ``interleaved 2`` two stations at once throughout, each with its own three generators, ``lanes L`` and
  ``compact 128`` the chains in lanes after drawing turnout, ballots and gammas station by station.
- the chain's census (:func:`chain_census`): how many of its binomials are inversion and BTRS draws, and what
  becomes of BTRS's first candidates (squeezed, exact test, outside [0, n]).

It also prints the lanes' arithmetic against the reference: the largest relative error of
:func:`lane_binomials.lane_log` against ``math.log`` (x from 2^-60 to 2^60) and of
:func:`lane_binomials.lane_log_factorial` against ``scipy.special.gammaln`` (k < 2^14), and chi-square p-values
of the lanes' binomial draws (first and last lane, 8 and 16 lanes, and 64 and 128 compact lanes) against the
exact law at the workload's typical (n, p); and what LLVM made of the lanes' BTRS round (:func:`round_assembly`:
packed ymm instructions in its vector loop), and chi-square p-values of BTRD's draws at the same (n, p).
"""
from __future__ import annotations

import functools
import json
import math
import re

import numba
import numpy as np

from scipy import special

import btrd
import lane_binomials
from cpu_timing import best_cpu_seconds, profile_parser
from exact_law import binomial_chi_square_pvalue
from kernel_profile import workload_model
from simkit.engine import kernels
from simkit.model.samplers import (INVERSION_MAX_MEAN, binomial_sample, gamma_constants, gamma_sample, inline_jit,
                                   multinomial_sample, normal_sample)

BLOCKS = (16, 64, 256)
LANES = (8, 16)
#: lane counts of the compact lanes (:func:`lane_binomials.compact_binomials`): LLVM's vector loop takes 16 lanes
#: an iteration, so fewer run mostly in its scalar remainder
COMPACT_LANES = (16, 64, 128)
#: (n, p) of the lanes' exact-law check: inversion (n p < 10) and BTRS at the chain's typical sizes
LAW_CHECKS = ((60, 0.1), (400, 0.06), (900, 0.55))


@inline_jit
def _two_binomials(state_a, state_b, n_a, n_b, p_a, p_b):
    """One binomial for each of two stations, from their own generators."""
    drawn_a, state_a = binomial_sample(state_a, n_a, p_a)
    drawn_b, state_b = binomial_sample(state_b, n_b, p_b)
    return drawn_a, drawn_b, state_a, state_b


def _states(words, count):
    """``count`` distinct xoshiro256** states (4-tuples) from the 4 words ``words`` (rotations)."""
    return tuple((words[i % 4], words[(i + 1) % 4], words[(i + 2) % 4], words[(i + 3) % 4]) for i in range(count))


@numba.njit(cache=True, error_model="numpy")
def chain_kernel(cast, weights, state, replicates):
    """:func:`multinomial_sample` per station (the kernel's way); returns a checksum."""
    votes = np.empty(weights.shape[1], np.int64)
    checksum = 0
    for _ in range(replicates):
        for station in range(cast.shape[0]):
            state = multinomial_sample(state, cast[station], weights[station], 1.0, votes)
            checksum += votes[1]
    return checksum


@numba.njit(cache=True, error_model="numpy")
def chain_interleaved(cast, weights, states, replicates):
    """Stations two (``len(states) == 2``) or four at a time, each from its own generator; returns a checksum."""
    state_a, state_b = states[0], states[1]
    state_c, state_d = states[-2], states[-1]
    lanes = len(states)
    checksum = 0
    for _ in range(replicates):
        for a in range(0, cast.shape[0] - lanes + 1, lanes):
            c = a + lanes - 2  # lanes c and d (stations a + 2, a + 3) only when lanes == 4
            n_a, n_b, n_c, n_d = cast[a], cast[a + 1], cast[c], cast[c + 1]
            left_a = left_b = left_c = left_d = 1.0
            for option in range(weights.shape[1] - 1):
                drawn_a, drawn_b, state_a, state_b = _two_binomials(
                    state_a, state_b, n_a, n_b, weights[a, option] / left_a, weights[a + 1, option] / left_b)
                n_a, n_b = n_a - drawn_a, n_b - drawn_b
                left_a, left_b = left_a - weights[a, option], left_b - weights[a + 1, option]
                if lanes == 4:
                    drawn_c, drawn_d, state_c, state_d = _two_binomials(
                        state_c, state_d, n_c, n_d, weights[c, option] / left_c, weights[c + 1, option] / left_d)
                    n_c, n_d = n_c - drawn_c, n_d - drawn_d
                    left_c, left_d = left_c - weights[c, option], left_d - weights[c + 1, option]
            checksum += n_a + n_b + n_c + n_d
    return checksum


@numba.njit(cache=True, error_model="numpy")
def chain_option_major(cast, weights, state, replicates, block):
    """Option j for a block of ``block`` stations before option j + 1, one generator; returns a checksum."""
    remaining = np.empty(block, np.int64)
    left = np.empty(block)
    checksum = 0
    for _ in range(replicates):
        for start in range(0, cast.shape[0], block):
            stop = min(start + block, cast.shape[0])
            remaining[:stop - start] = cast[start:stop]
            left[:] = 1.0
            for option in range(weights.shape[1] - 1):
                for station in range(start, stop):
                    drawn, state = binomial_sample(state, remaining[station - start],
                                                   weights[station, option] / left[station - start])
                    remaining[station - start] -= drawn
                    left[station - start] -= weights[station, option]
            checksum += remaining[0]
    return checksum


@inline_jit
def _turnout_and_ballots(turnout_state, counts_state, registered, location, dispersion):
    """One station's turnout latent and share, then its ballots; returns ``(ballots, turnout_state, counts_state)``."""
    latent, turnout_state = normal_sample(turnout_state)
    cast, counts_state = binomial_sample(counts_state, registered,
                                         1.0 / (1.0 + math.exp(-(location + dispersion * latent))))
    return cast, turnout_state, counts_state


@numba.njit(cache=True, error_model="numpy")
def fused(registered, location, dispersion, concentration, composition, region_index, states, replicates):
    """The honest draw one station at a time (``states`` three generators), the kernel's way; returns ``votes``
    (station, option)."""
    n_regions, n_options = composition.shape
    constants = gamma_constants((concentration * composition).ravel()).reshape(n_regions, n_options, 3)
    turnout_state, preferences_state, counts_state = states
    weights = np.empty(n_options)
    votes = np.empty((registered.shape[0], n_options), np.int64)
    for _ in range(replicates):
        for station in range(registered.shape[0]):
            cast, turnout_state, counts_state = _turnout_and_ballots(
                turnout_state, counts_state, registered[station], location[station], dispersion)
            region = region_index[station]
            total = 0.0
            for option in range(n_options):
                weights[option], preferences_state = gamma_sample(
                    preferences_state, constants[region, option, 0], constants[region, option, 1],
                    constants[region, option, 2])
                total += weights[option]
            counts_state = multinomial_sample(counts_state, cast, weights, total, votes[station])
    return votes


@numba.njit(cache=True, error_model="numpy")
def fused_interleaved(registered, location, dispersion, concentration, composition, region_index, states,
                      replicates):
    """The honest draw two stations at a time, each from its own three generators (``states``, six); returns
    ``votes`` (station, option) (the last station of an odd count not drawn)."""
    n_regions, n_options = composition.shape
    constants = gamma_constants((concentration * composition).ravel()).reshape(n_regions, n_options, 3)
    turnout_a, preferences_a, counts_a, turnout_b, preferences_b, counts_b = states
    weights = np.empty((2, n_options))
    votes = np.empty((registered.shape[0], n_options), np.int64)
    for _ in range(replicates):
        for a in range(0, registered.shape[0] - 1, 2):
            cast_a, turnout_a, counts_a = _turnout_and_ballots(turnout_a, counts_a, registered[a], location[a],
                                                               dispersion)
            cast_b, turnout_b, counts_b = _turnout_and_ballots(turnout_b, counts_b, registered[a + 1],
                                                               location[a + 1], dispersion)
            region_a, region_b = region_index[a], region_index[a + 1]
            total_a = total_b = 0.0
            for option in range(n_options):
                weights[0, option], preferences_a = gamma_sample(
                    preferences_a, constants[region_a, option, 0], constants[region_a, option, 1],
                    constants[region_a, option, 2])
                weights[1, option], preferences_b = gamma_sample(
                    preferences_b, constants[region_b, option, 0], constants[region_b, option, 1],
                    constants[region_b, option, 2])
                total_a += weights[0, option]
                total_b += weights[1, option]
            for option in range(n_options - 1):
                drawn_a, drawn_b, counts_a, counts_b = _two_binomials(
                    counts_a, counts_b, cast_a, cast_b, weights[0, option] / total_a, weights[1, option] / total_b)
                votes[a, option], votes[a + 1, option] = drawn_a, drawn_b
                cast_a -= drawn_a
                cast_b -= drawn_b
                total_a -= weights[0, option]
                total_b -= weights[1, option]
            votes[a, n_options - 1], votes[a + 1, n_options - 1] = cast_a, cast_b
    return votes


@numba.njit(error_model="numpy")
def fused_lanes(registered, location, dispersion, concentration, composition, region_index, states, lane_words,
                replicates, compact=False):
    """The honest draw ``lane`` stations at a time: each station's turnout, ballots and gammas one by one as the
    kernel draws them (``states`` three generators), then the lanes' chains at once by
    :func:`lane_binomials.lane_chain` (``compact`` as there) from the lanes' generators ``lane_words`` (4, lane)
    uint64 (copied); returns ``votes`` (station, option)."""
    n_stations = registered.shape[0]
    n_regions, n_options = composition.shape
    n_lanes = lane_words.shape[1]
    constants = gamma_constants((concentration * composition).ravel()).reshape(n_regions, n_options, 3)
    turnout_state, preferences_state, counts_state = states
    lane_states = lane_words.copy()
    n, p, out, left, scratch, flags = lane_binomials.lane_scratch(n_lanes)
    weights = np.zeros((n_lanes, n_options))
    drawn = np.empty((n_lanes, n_options))
    votes = np.empty((n_stations, n_options), np.int64)
    for _ in range(replicates):
        for start in range(0, n_stations, n_lanes):
            for lane in range(min(n_lanes, n_stations - start)):
                station = start + lane
                cast, turnout_state, counts_state = _turnout_and_ballots(
                    turnout_state, counts_state, registered[station], location[station], dispersion)
                n[lane] = cast
                region = region_index[station]
                total = 0.0
                for option in range(n_options):
                    weights[lane, option], preferences_state = gamma_sample(
                        preferences_state, constants[region, option, 0], constants[region, option, 1],
                        constants[region, option, 2])
                    total += weights[lane, option]
                left[lane] = total
            for lane in range(n_stations - start, n_lanes):  # beyond the last station: nothing to draw
                n[lane] = 0.0
                left[lane] = 1.0
            lane_binomials.lane_chain(lane_states, n, left, weights, 0, drawn, p, out, scratch, flags, n_lanes, compact)
            for lane in range(min(n_lanes, n_stations - start)):
                for option in range(n_options):
                    votes[start + lane, option] = np.int64(drawn[lane, option])
    return votes


@numba.njit(error_model="numpy")
def _lane_logs(values, factorial):
    """:func:`lane_binomials.lane_log` (or, ``factorial``, :func:`lane_binomials.lane_log_factorial`) of each of
    ``values`` (n,) float64."""
    out = np.empty_like(values)
    for index in range(values.shape[0]):
        out[index] = (lane_binomials.lane_log_factorial(values[index]) if factorial
                      else lane_binomials.lane_log(values[index]))
    return out


def lane_accuracy(draws: int = 20_000) -> dict:
    """The lanes' arithmetic against the reference: the largest relative errors of the lane logarithm (against
    ``math.log``, 10^5 x log-uniform on [2^-60, 2^60]) and log-factorial (against ``gammaln``, k = 1 … 2^14 − 1),
    and chi-square p-values (:func:`exact_law.binomial_chi_square_pvalue`) of ``draws`` lane binomials of the
    first and last lane of each of :data:`LANES` (and of the compact lanes, 64 and 128) against the exact law for
    each of :data:`LAW_CHECKS`."""
    x = np.exp2(np.random.default_rng(0).uniform(-60.0, 60.0, 100_000))
    log_error = np.max(np.abs(_lane_logs(x, False) / np.log(x) - 1.0))
    k = np.arange(2.0, 2**14)  # log(1!) = 0: the relative error from k = 2
    factorial_error = np.max(np.abs(_lane_logs(k, True) / special.gammaln(k + 1.0) - 1.0))
    pvalues = {}
    for compact, lane_counts in ((False, LANES), (True, COMPACT_LANES[1:])):
        for lanes in lane_counts:
            words = np.random.SeedSequence(2).generate_state(4 * lanes, np.uint64).reshape(4, lanes)
            for n, p in LAW_CHECKS:
                drawn = lane_binomials.draws(words, n, p, draws, compact).astype(np.int64)
                for lane in (0, lanes - 1):
                    pvalues[f"{'compact ' if compact else ''}n={n} p={p} lane {lane} of {lanes}"] = float(
                        binomial_chi_square_pvalue(drawn[:, lane], n, p))
    return {"lane_log_max_relative_error": float(log_error),
            "lane_log_factorial_max_relative_error": float(factorial_error),
            "lane_binomial_chi_square_pvalues": pvalues}


@numba.njit(error_model="numpy")
def _btrs_round(n, scratch, flags, out):
    """One BTRS round of :func:`lane_binomials.lane_binomials` alone (:func:`lane_binomials.btrs_round`), compiled
    for :func:`round_assembly`."""
    lane_binomials.btrs_round(n, scratch, flags[1], out, n.shape[0])


def round_assembly(lanes: int = 16) -> dict:
    """What LLVM made of the lanes' BTRS round (``inspect_asm``): in the basic block with the most ymm operands
    (the vector loop's body, 4 lanes an iteration), its instruction count and how many of them are packed
    double-precision ymm multiplies, fused multiply-adds, adds, divisions and blends."""
    scratch = np.ones((lane_binomials.SCRATCH_ROWS, lanes))
    _btrs_round(np.full(lanes, 100.0), scratch, np.zeros((4, lanes), np.bool_), np.zeros(lanes))
    assembly = next(iter(_btrs_round.inspect_asm().values()))
    body = max(re.split(r"\n(?=\.LBB\S+:)", assembly), key=lambda block: block.count("%ymm"))
    instructions = re.findall(r"^\s+([a-z]\w*)\s+(.*)$", body, re.M)
    counts = {"instructions": len(instructions)}
    for name in ("vmulpd", "vfmadd", "vaddpd", "vdivpd", "vblendvpd"):
        counts[name] = sum(op.startswith(name) and "%ymm" in operands for op, operands in instructions)
    return counts


def chain_census(cast: np.ndarray, weights: np.ndarray, seed: int = 3) -> dict:
    """What the chain's binomials are on the workload: per station, how many are drawn by inversion (n p < 10 for
    the smaller of p, 1 − p) and how many by BTRS, and of the BTRS draws' first candidates the share the squeeze
    accepts, the share left to the exact test and the share outside [0, n] (drawn again). ``cast`` (station,)
    ballots, ``weights`` (station, option) probabilities; the chain's counts are drawn with numpy (``seed``), the
    first candidates from BTRS's formulas on numpy uniforms."""
    rng = np.random.default_rng(seed)
    n, left = cast.astype(np.float64), np.ones(cast.shape[0])
    inversion = btrs = squeezed = outside = 0
    for option in range(weights.shape[1] - 1):
        p = np.minimum(np.where(left > 0.0, weights[:, option] / np.where(left > 0.0, left, 1.0), 1.0), 1.0)
        small = np.minimum(p, 1.0 - p)
        drawn = (n > 0) & (small > 0.0)
        low = drawn & (n * small < INVERSION_MAX_MEAN)
        inversion += low.sum()
        rows = drawn & ~low
        btrs += rows.sum()
        nn, ps = n[rows], small[rows]
        b = 1.15 + 2.53 * np.sqrt(nn * ps * (1.0 - ps))
        centred, v = rng.random(nn.size) - 0.5, rng.random(nn.size)
        us = 0.5 - np.abs(centred)
        k = np.floor((2.0 * (-0.0873 + 0.0248 * b + 0.01 * ps) / us + b) * centred + nn * ps + 0.5)
        valid = (k >= 0.0) & (k <= nn)
        squeezed += (valid & (us >= 0.07) & (v <= 0.92 - 4.2 / b)).sum()
        outside += (~valid).sum()
        n = n - rng.binomial(n.astype(np.int64), p)
        left = left - weights[:, option]
    return {"inversions_per_station": inversion / cast.shape[0], "btrs_per_station": btrs / cast.shape[0],
            "btrs_first_squeezed": squeezed / btrs, "btrs_first_exact_test": (btrs - squeezed - outside) / btrs,
            "btrs_first_outside": outside / btrs}


def main(argv: list[str] | None = None) -> int:
    args = profile_parser(__doc__.splitlines()[0], replicates=10, repeats=5).parse_args(argv)
    model = workload_model()
    registered, location, dispersion, concentration, composition, region_index = model
    n_stations = registered.shape[0]
    words = kernels.replicate_states(1, 0, 1)[0, 0]
    rng = np.random.default_rng(1)
    cast = rng.binomial(registered, 1.0 / (1.0 + np.exp(-(location + dispersion * rng.standard_normal(n_stations)))))
    gammas = rng.standard_gamma(concentration * composition[region_index])
    weights = gammas / gammas.sum(axis=1, keepdims=True)
    one, two, three, four, six = (_states(words, count) for count in (1, 2, 3, 4, 6))
    cast_float = cast.astype(np.float64)
    lane_words = {lanes: np.random.SeedSequence(1).generate_state(4 * lanes, np.uint64).reshape(4, lanes)
                  for lanes in sorted({*LANES, *COMPACT_LANES})}
    variants = {
        ("chain", "kernel"): lambda r: chain_kernel(cast, weights, one[0], r),
        ("chain", "interleaved 2"): lambda r: chain_interleaved(cast, weights, two, r),
        ("chain", "interleaved 4"): lambda r: chain_interleaved(cast, weights, four, r),
        **{("chain", f"option-major {block}"): (lambda r, block=block: chain_option_major(cast, weights, one[0], r,
                                                                                          block))
           for block in BLOCKS},
        **{("chain", f"lanes {lanes}"): (lambda r, lanes=lanes: lane_binomials.chain_lanes(cast_float, weights,
                                                                                          lane_words[lanes], r))
           for lanes in LANES},
        **{("chain", f"compact {lanes}"): (lambda r, lanes=lanes: lane_binomials.chain_lanes(
            cast_float, weights, lane_words[lanes], r, True)) for lanes in COMPACT_LANES},
        ("chain", "BTRD"): lambda r: btrd.chain(cast, weights, one[0], r),
        ("fused", "kernel"): lambda r: fused(*model, three, r),
        ("fused", "interleaved 2"): lambda r: fused_interleaved(*model, six, r),
        **{("fused", f"lanes {lanes}"): (lambda r, lanes=lanes: fused_lanes(*model, three, lane_words[lanes], r))
           for lanes in LANES},
        ("fused", f"compact {COMPACT_LANES[-1]}"): lambda r: fused_lanes(*model, three, lane_words[COMPACT_LANES[-1]],
                                                                         r, True),
    }
    best = best_cpu_seconds({key: functools.partial(variant, args.replicates) for key, variant in variants.items()},
                            args.repeats)
    per_station = 1e9 / (args.replicates * n_stations)
    report = {"stations": n_stations, "replicates": args.replicates, "repeats": args.repeats,
              "chain_census": chain_census(cast, weights), **lane_accuracy(),
              "lane_btrs_round_assembly": round_assembly(),
              "btrd_binomial_chi_square_pvalues": {f"n={n} p={p}": binomial_chi_square_pvalue(
                  btrd.draws(one[0], n, p, 200_000), n, p) for n, p in LAW_CHECKS},
              "ns_per_station_replicate": {f"{part}: {name}": seconds * per_station
                                           for (part, name), seconds in best.items()},
              "speed_up_over_kernel": {f"{part}: {name}": best[(part, "kernel")] / seconds
                                       for (part, name), seconds in best.items()}}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for label, cost in report["ns_per_station_replicate"].items():
            print(f"{label:>24}: {cost:6.1f} CPU ns per station-replicate, "
                  f"{report['speed_up_over_kernel'][label]:5.3f}x the kernel's way")
        print(f"({n_stations:,} stations x {args.replicates} replicates, best of {args.repeats}, one thread)")
        print("chain census: " + ", ".join(f"{key} {value:.3f}" for key, value in report["chain_census"].items()))
        print(f"lanes: log max relative error {report['lane_log_max_relative_error']:.2e}, log(k!) "
              f"{report['lane_log_factorial_max_relative_error']:.2e}; binomial chi-square p-values "
              + ", ".join(f"{key} {value:.3f}" for key, value in report["lane_binomial_chi_square_pvalues"].items()))
        print("BTRD binomial chi-square p-values: "
              + ", ".join(f"{key} {value:.3f}" for key, value in report["btrd_binomial_chi_square_pvalues"].items()))
        print("lanes' BTRS round, vector loop body (ymm): "
              + ", ".join(f"{key} {value}" for key, value in report["lane_btrs_round_assembly"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
