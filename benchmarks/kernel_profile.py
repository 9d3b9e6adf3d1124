"""Where the fused kernel's time goes: CPU nanoseconds per station-replicate of each part of the honest draw.

    python benchmarks/kernel_profile.py [--replicates 30] [--repeats 3] [--json]

On the workload of ``benchmarks/compare.py`` (10,101 stations, 8 options), one thread, a compiled loop over the
stations with the fused kernel's samplers, one station at a time, stopped after each part in turn: (1) the turnout
latent and share, (2) plus the ballots binomial, (3) plus the eight Dirichlet gammas, (4) plus the multinomial
chain (the whole draw). Each part's cost is the difference between consecutive stages (CPU time of this process,
best of ``--repeats``: other load on the machine inflates every stage alike, the minimum least). The whole draw is
also timed through :func:`simkit.engine.kernels.honest_stations` itself, which draws each station's turnout and
gammas during the split of the station before it, from its three generators (docs/performance.md's runs; the
difference from stage 4 is not broken down here).
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numba
import numpy as np

from cpu_timing import best_cpu_seconds, profile_parser
from simkit.model.samplers import binomial_sample, gamma_constants, gamma_sample, multinomial_sample, normal_sample

WORKLOAD = Path(__file__).resolve().with_name("workload.toml")
STAGES = ("turnout latent and share", "ballots binomial", "Dirichlet gammas", "multinomial chain")


@numba.njit(cache=True, error_model="numpy")
def draw_stages(registered, location, dispersion, concentration, composition, region_index, words, stage, replicates):
    """The honest draw of :func:`simkit.engine.kernels.honest_stations`, station by station on one generator, up to
    part ``stage`` (1 to 4, :data:`STAGES`; the parts not drawn take deterministic stand-ins), ``replicates`` times;
    returns a checksum (so that nothing is optimised away)."""
    n_regions, n_options = composition.shape
    constants = gamma_constants((concentration * composition).ravel()).reshape(n_regions, n_options, 3)
    state = (words[0], words[1], words[2], words[3])
    weights = np.empty(n_options)
    votes = np.zeros(n_options, np.int64)
    checksum = 0.0
    for _ in range(replicates):
        for station in range(registered.shape[0]):
            latent, state = normal_sample(state)
            turnout = 1.0 / (1.0 + math.exp(-(location[station] + dispersion * latent)))
            cast = int(registered[station] * turnout)
            if stage >= 2:
                cast, state = binomial_sample(state, registered[station], turnout)
            region = region_index[station]
            total = 0.0
            for option in range(n_options):
                weight = composition[region, option]
                if stage >= 3:
                    weight, state = gamma_sample(state, constants[region, option, 0], constants[region, option, 1],
                                                 constants[region, option, 2])
                weights[option] = weight
                total += weight
            if stage >= 4:
                state = multinomial_sample(state, cast, weights, total, votes)
            checksum += cast + total + votes[0]
    return checksum


def workload_model() -> tuple:
    """The workload's honest model as :func:`simkit.engine.kernels.honest_stations` takes it: ``registered``
    (station,), ``turnout_location`` (station,), ``turnout_dispersion``, ``concentration``, ``composition``
    (region, option) at no regional shift, ``region_index`` (station,)."""
    import simkit
    from simkit.engine import run as engine

    run = engine.prepare(simkit.load_config(WORKLOAD), replicates=1)
    plan, electorate = run.plans[0], run.electorate
    composition = plan.preferences.regional_composition(np.zeros(len(electorate.region_names)))
    return (electorate.registered, plan.turnout_location, plan.config.turnout.dispersion, plan.preferences.dispersion,
            composition, electorate.region_index)


def main(argv: list[str] | None = None) -> int:
    args = profile_parser(__doc__.splitlines()[0], replicates=30, repeats=3).parse_args(argv)

    from simkit import streams
    from simkit.engine import kernels

    model = workload_model()
    registered = model[0]
    n_stations = registered.shape[0]
    words = kernels.replicate_states(1, 0, 1)[0, 0]
    per_station = 1e9 / (args.replicates * n_stations)

    kernels.warm_up()
    groups = len(streams.station_groups(n_stations))
    calls = {stage: functools.partial(draw_stages, *model, words, stage, args.replicates) for stage in range(1, 5)}
    calls["kernel"] = lambda: [kernels.honest_stations(*model, kernels.replicate_states(1, r, groups))
                               for r in range(args.replicates)]
    best = {key: seconds * per_station for key, seconds in best_cpu_seconds(calls, args.repeats).items()}
    stages, kernel = [best[stage] for stage in range(1, 5)], best["kernel"]
    parts = {name: cost - previous for name, cost, previous in zip(STAGES, stages, [0.0] + stages[:-1])}
    report = {"stations": n_stations, "replicates": args.replicates, "ns_per_station_replicate": parts,
              "stages_total": stages[-1], "honest_stations": kernel}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for name, cost in parts.items():
            print(f"{name:>26}: {cost:6.1f} CPU ns per station-replicate ({cost / stages[-1]:5.1%})")
        print(f"{'all parts':>26}: {stages[-1]:6.1f}; kernels.honest_stations: {kernel:6.1f} "
              f"({n_stations:,} stations x {args.replicates} replicates, best of {args.repeats})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
