"""Speed of ``simkit infer``: this tree against another (an older commit's checkout), the same command in one run.

    python benchmarks/infer_speed.py --old-tree /path/to/old/checkout [--config configs/kazakhstan-2022-inference.toml]
        [--particles 200] [--json]
    python benchmarks/infer_speed.py --parts 100 [--config ...]

``--parts N``: where a simulation's CPU goes, in this tree: N simulations at prior draws (seeded), each step's
process time (the particle's config, its plan, the honest count, the manipulations, the exit polls, the
statistics) in ms per simulation and as a share.

Each tree runs ``simkit infer CONFIG --particles N --quiet --json`` in a child process (its own ``PYTHONPATH``),
alternately, ``--repeats`` times; ``CONFIG`` is read from each tree (its own settings: a newer config may hold
settings the older code does not know). Reported per tree: CPU seconds (the child and its worker processes, from
``getrusage``: what the run costs, little affected by other load on a shared machine), wall seconds, the
simulations, the final tolerance and ESS; and the ratios old / new. The machine's load changes wall time between
runs; the CPU ratio is the one to quote.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))  # --parts measures this tree's simkit, whatever is installed

from simkit.electorate.build import build_electorate  # noqa: E402
from simkit.engine import run as engine  # noqa: E402
from simkit.inference import (Prior, Simulator, compute_statistics, load_inference, simulation_seed,  # noqa: E402
                              statistic_names, with_observation_noise)
#: the command line's entry point in either layout (simkit/cli/main.py, or the older simkit/cli.py)
ENTRY = ("import importlib, sys\ntry:\n    cli = importlib.import_module('simkit.cli.main')\n"
         "except ModuleNotFoundError:\n    cli = importlib.import_module('simkit.cli')\nsys.exit(cli.main())")


def run_once(tree: Path, config: Path, particles: int) -> dict:
    """One ``simkit infer`` in a child process with ``tree`` on its path: CPU and wall seconds, and its summary."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", ENTRY, "infer",
                           str(config), "--particles", str(particles), "--quiet", "--json"],
                          capture_output=True, text=True, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                          check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(done.stdout)
    kept = [g for g in summary["generations"] if g["kept"]]
    return {"cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, "wall_s": wall,
            "simulations": summary["simulations"], "final_tolerance": summary["tolerance"]["final"],
            "final_ess": summary["tolerance"].get("ess", kept[-1]["ess"]), "generations": len(kept)}


def parts(config: Path, n: int) -> dict[str, float]:
    """CPU ms per simulation of each step of the inference's simulator, over ``n`` simulations at prior draws."""
    cfg, blocks, settings = load_inference(config)
    electorate = build_electorate(cfg.electorate)
    statistics = with_observation_noise(statistic_names(cfg, settings.statistics, list(electorate.region_names)),
                                        settings.observation_noise)
    simulator = Simulator(cfg, blocks, statistics, settings.scenario or cfg.scenarios()[-1].name, settings.kernel)
    rng = np.random.default_rng(settings.seed)
    values = np.column_stack([Prior(b).block.distribution().rvs(size=n + 3, random_state=rng) for b in blocks])
    spent: dict[str, float] = {}

    def step(name: str, function, *args):
        start = time.process_time()
        out = function(*args)
        spent[name] = spent.get(name, 0.0) + time.process_time() - start
        return out

    for index, value in enumerate(values):
        if index == 3:  # the first three compile and warm up
            spent.clear()
        seed = simulation_seed(settings.seed, 1, index)
        run_cfg = step("config", simulator.config_at, value)
        plan = step("plan", engine.make_plan, run_cfg, electorate)
        ballots, votes = step("honest count", engine.honest_replicate, plan, electorate, seed, 0, settings.kernel)
        ballots, votes, _, _, voters = step("manipulations", engine.manipulate, plan.scenarios[0], run_cfg,
                                            electorate, seed, 0, ballots, votes)
        polls = step("exit polls", simulator.poll_shares, run_cfg, voters, seed) if statistics.polls else None
        step("statistics", compute_statistics, statistics, ballots, votes, electorate.region_index,
             electorate.registered, simulator.region_registered, polls)
    return {name: 1000 * seconds / n for name, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-tree", type=Path, help="checkout of the code to compare against")
    parser.add_argument("--parts", type=int, metavar="N", help="instead: CPU per step over N simulations, this tree")
    parser.add_argument("--config", type=Path, default=Path("configs/kazakhstan-2022-inference.toml"))
    parser.add_argument("--particles", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.parts:
        split = parts(HERE / args.config, args.parts)
        total = sum(split.values())
        if args.json:
            print(json.dumps({"ms_per_simulation": split, "total_ms": total}, indent=2))
            return
        for name, ms in split.items():
            print(f"{name}: {ms:.2f} ms ({ms / total:.0%})")
        print(f"total: {total:.2f} ms of CPU per simulation")
        return
    if args.old_tree is None:
        parser.error("--old-tree or --parts is needed")
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for _ in range(args.repeats):
        for name, tree in (("old", args.old_tree.resolve()), ("new", HERE)):
            runs[name].append(run_once(tree, (tree / args.config).resolve(), args.particles))
    result = {"config": str(args.config), "particles": args.particles, "runs": runs,
              "cpu_ratio": sum(r["cpu_s"] for r in runs["old"]) / sum(r["cpu_s"] for r in runs["new"]),
              "wall_ratio": sum(r["wall_s"] for r in runs["old"]) / sum(r["wall_s"] for r in runs["new"]),
              "cpu_per_simulation_ratio": (sum(r["cpu_s"] / r["simulations"] for r in runs["old"])
                                           / sum(r["cpu_s"] / r["simulations"] for r in runs["new"]))}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, rows in runs.items():
        for row in rows:
            print(f"{name}: {row['cpu_s']:.1f} CPU s, {row['wall_s']:.1f} s wall, {row['simulations']} simulations, "
                  f"{row['generations']} generations, final tolerance {row['final_tolerance']:.3g}, "
                  f"ESS {row['final_ess']:.0f}")
    print(f"old / new: CPU {result['cpu_ratio']:.2f}x, wall {result['wall_ratio']:.2f}x, "
          f"CPU per simulation {result['cpu_per_simulation_ratio']:.2f}x")


if __name__ == "__main__":
    main()
