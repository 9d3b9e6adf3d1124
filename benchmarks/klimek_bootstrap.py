"""Where the histogram Klimek fit's bootstrap replicates sit against its point estimate, by source of variation.

    python benchmarks/klimek_bootstrap.py [--preset russia-2011] [--fits 40] [--seed 7]

On one election, ``--fits`` histogram fits (:func:`simkit.forensics.klimek.histogram.fit`) of each kind, with
fresh simulation seeds: ``simulation`` (the data, the joint fit's honest part and theta: the simulation's noise
alone), ``resampled`` (stations resampled with replacement, the same honest part and theta), ``bootstrap``
(resampled, theta drawn as the test's interval draws it, :func:`simkit.forensics.klimek.histogram._with_drawn_theta`)
and ``refitted`` (resampled, the honest part and theta refitted on the resample by the joint EM at the point's
alpha; at most 10 fits, each a joint fit). Prints the point estimate (seed 0, as the test reports it) and each
kind's f_i mean, SD and 2.5-97.5 percentiles, with the CPU seconds.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from simkit.electorate.returns import load_returns
from simkit.forensics.core import election
from simkit.forensics.klimek import histogram as klimek, joint as klimek_joint, ml as klimek_ml
from simkit.forensics.klimek.first_stage import first_stage, honest_groups

REFITS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="russia-2011")
    parser.add_argument("--fits", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.process_time()
    e = election(load_returns(preset=args.preset))
    _, joint, _ = klimek_ml.election_estimate(e)
    turnout, share, group = e.turnout, e.leader_share, honest_groups(e)
    stage, refined = first_stage(turnout, share, group), joint.stage()
    point = klimek.fit(turnout, share, group, np.random.default_rng(0), refined)
    print(f"{args.preset}: {e.n:,} stations; point f_i {point.f_incremental:.3f}, f_e {point.f_extreme:.4f}, "
          f"alpha {point.alpha:.2f}; joint fit theta {refined.theta:.3f}")
    kinds: dict[str, list[float]] = {"simulation": [], "resampled": [], "bootstrap": [], "refitted": []}
    for k, child in enumerate(np.random.SeedSequence(args.seed).spawn(args.fits)):
        resample, simulation, draw = (np.random.default_rng(s) for s in child.spawn(3))
        idx = resample.integers(0, e.n, size=e.n)
        t, v, g = turnout[idx], share[idx], group[idx]
        kinds["simulation"].append(klimek.fit(turnout, share, group, np.random.default_rng(simulation.integers(2**63)),
                                              refined).f_incremental)
        seed = simulation.integers(2**63)
        kinds["resampled"].append(klimek.fit(t, v, g, np.random.default_rng(seed), refined).f_incremental)
        kinds["bootstrap"].append(klimek.fit(t, v, g, np.random.default_rng(seed),
                                             klimek._with_drawn_theta(refined, joint, draw)).f_incremental)
        if k < REFITS:
            refit = klimek_joint.fit(t, v, g, joint.alpha, stage, 0.0, 0.0, 0.0, start=joint.values).stage()
            kinds["refitted"].append(klimek.fit(t, v, g, np.random.default_rng(seed), refit).f_incremental)
    for name, values in kinds.items():
        x = np.array(values)
        low, high = np.percentile(x, [2.5, 97.5])
        print(f"  {name:<11} f_i mean {x.mean():.3f} (point {x.mean() - point.f_incremental:+.3f}), "
              f"SD {x.std(ddof=1):.3f}, [{low:.3f}, {high:.3f}] over {x.size} fits")
    print(f"  {time.process_time() - start:.0f} s of CPU")


if __name__ == "__main__":
    main()
