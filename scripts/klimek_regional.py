"""Klimek fits on real returns: f_i, f_e, alpha with 95% intervals from the histogram-distance fit
(``klimek``) and the likelihood fit (``klimek_ml``), and the time of the likelihood test's statistic (the grid
refit repeated on every null draw).

    python scripts/klimek_regional.py [--preset NAME ...] [--map NAME=MAP.toml:DATA ...] [--skip-distance]

One run each (the histogram fit's intervals use ``REPLICATES`` bootstrap refits, seed 2012).
"""
from __future__ import annotations

import argparse
import time

from simkit.forensics.klimek import histogram as klimek, ml as klimek_ml
from simkit.forensics.core import election
from simkit.forensics.klimek.joint import corner_stations
from simkit.electorate.returns import load_returns


def _row(name: str, x: dict) -> str:
    return (f"  {name:<10} f_i {x['f_incremental']:.3f} [{x['f_incremental_low']:.3f}, {x['f_incremental_high']:.3f}]"
            f"  f_e {x['f_extreme']:.4f} [{x['f_extreme_low']:.4f}, {x['f_extreme_high']:.4f}]"
            f"  alpha {x['alpha']:.2f} [{x['alpha_low']:.2f}, {x['alpha_high']:.2f}]")


def report(label: str, e, skip_distance: bool) -> None:
    groups = int(klimek.honest_groups(e).max()) + 1 if hasattr(klimek, "honest_groups") else 1
    corner = int(corner_stations(e.turnout, e.leader_share).sum())
    print(f"{label}: {e.n:,} stations, {len(set(e.region)):,} regions, {groups} honest groups, "
          f"{corner:,} corner stations (counted as extreme fraud by the likelihood fit)")
    klimek_ml.statistic(e)  # compile
    start = time.perf_counter()
    klimek_ml.statistic(e)
    print(f"  klimek_ml statistic (grid refit per null draw): {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    ml = klimek_ml.election_estimate(e)[0]
    print(_row("likelihood", ml) + f"  theta {ml['theta']:.3f} [{ml['theta_low']:.3f}, {ml['theta_high']:.3f}]"
          f"  ({time.perf_counter() - start:.1f} s)")
    if not skip_distance:
        start = time.perf_counter()
        result = klimek.run(e, draws=1, rng=2012)
        print(_row("distance", result.extra) + f"  ({time.perf_counter() - start:.1f} s)")
        for key in ("fits_disagree", "warnings"):
            if result.extra.get(key):
                print(f"  {key}: {result.extra[key]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", default=[])
    parser.add_argument("--map", action="append", default=[], metavar="NAME=MAP.toml:DATA")
    parser.add_argument("--skip-distance", action="store_true")
    args = parser.parse_args()
    for name in args.preset:
        report(name, election(load_returns(preset=name)), args.skip_distance)
    for spec in args.map:
        name, paths = spec.split("=", 1)
        map_path, data = paths.split(":", 1)
        report(name, election(load_returns(data, map_path=map_path)), args.skip_distance)


if __name__ == "__main__":
    main()
