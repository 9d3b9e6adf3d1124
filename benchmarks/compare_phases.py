"""Where ``simkit compare`` spends its CPU: the simulated worlds, the poll draws and the rest, in CPU seconds.

Runs :func:`simkit.polls.compare.compare_config` on a config in this process with the worlds and the poll draws
on one worker each (so that this process's CPU time is their CPU time; the command runs them on every core),
and prints, in CPU seconds: importing simkit and loading the config, simulating the worlds
(:func:`simkit.engine.run.world_votes`), drawing the polls (:func:`simkit.polls.compiled_draws.draw_replicates`,
with their number, and per kind of design: CPU ms per replicate and poll) and everything else of the comparison (estimates, rows, misreporting search, mechanism
fits, ledger bookkeeping). The command itself, on ``w`` free cores, needs at least (worlds + draws) / w + the
rest + imports seconds of wall time.

Usage::

    python benchmarks/compare_phases.py [CONFIG] [--replicates N] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

STARTED = time.process_time()

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import simkit  # noqa: E402
from simkit.polls import compare, draws, elections  # noqa: E402


def _timed(function, spent: dict, key: str, one_worker, kind=None):
    """``function`` with its CPU seconds added to ``spent[key]`` and its calls counted; ``one_worker`` rewrites
    its positional and keyword arguments (returns both) so that it runs on one worker; ``kind(args)``, when given, names a sub-key of
    ``spent[f"{key}_by_kind"]`` that gets the seconds and the calls too."""
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            args, kwargs = one_worker(args, kwargs)
            return function(*args, **kwargs)
        finally:
            seconds = time.process_time() - start
            spent[key] += seconds
            spent[f"{key}_calls"] += 1
            if kind is not None:
                mine = spent.setdefault(f"{key}_by_kind", {}).setdefault(kind(args), {"seconds": 0.0, "calls": 0})
                mine["seconds"] += seconds
                mine["calls"] += 1
    return wrapper


def _design_kind(args) -> str:
    """How a poll draw samples (``draw_replicates(votes, replicates, registered, design, ...)``): its selection,
    its approach mode, whether answers are thinned by a response rate below 1 and split by misreporting, and its
    estimator (a raw estimate's answers are drawn on the stations' sums)."""
    design = args[3]
    answered = "every voter answers" if design.response_rate == 1.0 else "thinned"
    honest = "honest" if design.misreport is None else "misreport split"
    return f"{design.selection} {design.respondents}, {answered}, {honest}, {design.estimator}"


def phases(config: Path, replicates: int | None) -> dict:
    """CPU seconds of each phase of ``compare_config(config)`` (see the module docstring)."""
    spent = {"worlds": 0.0, "worlds_calls": 0, "draws": 0.0, "draws_calls": 0}
    # world_votes(run, point, scenario, workers, progress); draw_replicates(votes, ..., region_index, workers, *,
    # pooled)
    elections.world_votes = _timed(elections.world_votes, spent, "worlds", lambda args, kwargs: (
        (*args[:3], 1, args[4] if len(args) > 4 else kwargs.get("progress")), {}))
    draws.draw_replicates = _timed(draws.draw_replicates, spent, "draws", lambda args, kwargs: (
        (*args[:7], 1), {name: value for name, value in kwargs.items() if name != "workers"}), _design_kind)
    cfg = simkit.load_config(config)
    spent["imports_and_config"] = time.process_time() - STARTED
    start = time.process_time()
    compare.compare_config(cfg, replicates=replicates)
    spent["comparison"] = time.process_time() - start
    spent["rest"] = spent["comparison"] - spent["worlds"] - spent["draws"]
    spent["replicates"] = cfg.run.replicates if replicates is None else replicates
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, default=REPO / "configs" / "kazakhstan-2022.toml")
    parser.add_argument("--replicates", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    spent = phases(args.config, args.replicates)
    if args.json:
        print(json.dumps(spent, indent=2))
        return 0
    print(f"simkit compare {args.config.name}, CPU seconds: imports and config {spent['imports_and_config']:.1f}, "
          f"worlds {spent['worlds']:.1f} ({spent['worlds_calls']} simulated), poll draws {spent['draws']:.1f} "
          f"({spent['draws_calls']} draws), the rest {spent['rest']:.1f}; total "
          f"{spent['imports_and_config'] + spent['comparison']:.1f}")
    for kind, mine in sorted(spent["draws_by_kind"].items()):
        print(f"  draws {kind}: {mine['calls']}, {1e3 * mine['seconds'] / (mine['calls'] * spent['replicates']):.2f} "
              f"CPU ms per replicate and poll")
    return 0


if __name__ == "__main__":
    sys.exit(main())
