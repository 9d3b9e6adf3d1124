"""Where ``simkit calibrate`` spends its CPU on one election: CPU milliseconds of each part of the work the table
does per distinct election (docs/forensics.md's calibration table section quotes them).

    python scripts/calibration_profile.py [configs/kazakhstan-2022-scenarios.toml] [--draws 99] [--repeats 5]

Simulates replicate 0 of the config, takes its honest election as the tests read it (``--aggregate station``),
and times, in this process with one BLAS thread (as each election runs in ``simkit calibrate``): the honest
fits, one null draw of each honest model, each test's statistic on a draw of its model (the draw excluded), the
integer test's exact probabilities and each test's textbook run; then the per-election CPU of each test (its
textbook run and ``--draws`` statistics) and of each model's draws, and the per-election total by part. CPU time
(``time.process_time``), the median of ``--repeats`` runs.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from simkit.config.load import load_config
from simkit.engine.run import simulate
from simkit.forensics import TESTS, calibrate
from simkit.forensics.integer import percent as integer_percent
from simkit.forensics.nulls import hierarchical
from simkit.forensics.nulls.flat import HONEST_MODELS, model_seed, simulate_honest
from simkit.forensics.registry import SIMULATED_MODEL

TABLE_TESTS = ("second_digit", "last_digit", "zero_five", "log_vote_rate", "dip", "correlation", "sobyanin",
               "integer_percent", "spikes", "shpilkin")


def cpu_ms(work, repeats: int, inputs=None) -> float:
    """Median CPU milliseconds of ``work()`` over ``repeats`` calls, or of ``work(x)`` for each of ``inputs``
    (made before the clock starts)."""
    times = []
    for x in inputs if inputs is not None else [None] * repeats:
        start = time.process_time()
        work() if inputs is None else work(x)
        times.append(1e3 * (time.process_time() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="configs/kazakhstan-2022-scenarios.toml")
    parser.add_argument("--draws", type=int, default=99)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cfg = load_config(args.config)
    ds = simulate(cfg, replicates=1, seed=cfg.run.seed, keep="full")
    e = calibrate.election_at(ds, list(cfg.sweep), cfg.run.seed, "station", (0, "honest", 0))
    seed = np.random.SeedSequence(cfg.run.seed)
    rows: dict[str, float] = {}
    with threadpool_limits(limits=1, user_api="blas"):
        models = {name: HONEST_MODELS[name](e) for name in ("hierarchical", "turnout_conditional")}  # compiled
        rows["honest core fit"] = cpu_ms(lambda: hierarchical._fit_core(e), args.repeats)
        for name in models:  # the core fit cached in e, as in a run
            rows[f"fit {name} (core fitted)"] = cpu_ms(lambda: HONEST_MODELS[name](e), args.repeats)
        def draw(name: str):  # a new election each time: statistics cache what they compute on one
            return simulate_honest(e, models[name], model_seed(seed, name))

        for name in models:
            rows[f"one {name} draw"] = cpu_ms(lambda: draw(name), args.repeats)
        for test in TABLE_TESTS:
            name = SIMULATED_MODEL[test]
            rows[f"statistic {test} on one draw"] = cpu_ms(TESTS[test].statistic, args.repeats,
                                                           [draw(name) for _ in range(args.repeats)])

        def fresh():  # e without what its tests cached (the integer test's exact probabilities)
            return e.with_counts(e.ballots, e.votes, e.options, e.leader)

        rows["integer exact probabilities"] = cpu_ms(integer_percent.station_probabilities, args.repeats,
                                                     [fresh() for _ in range(args.repeats)])
        for test in TABLE_TESTS:
            rows[f"textbook run {test}"] = cpu_ms(
                lambda el: TESTS[test].run(el, null="textbook", draws=args.draws, rng=np.random.SeedSequence(1)),
                args.repeats, [fresh() for _ in range(args.repeats)])
    print(f"CPU ms per part, one election of {e.n:,} stations (median of {args.repeats}):")
    for label, value in rows.items():
        print(f"  {label:<48}{value:9.1f}")
    parts = {
        "null draws": args.draws * sum(rows[f"one {name} draw"] for name in models),
        "statistics on the draws": args.draws * sum(rows[f"statistic {t} on one draw"] for t in TABLE_TESTS),
        "textbook runs (exact probabilities included)": sum(rows[f"textbook run {t}"] for t in TABLE_TESTS),
        "honest fits": rows["honest core fit"] + sum(rows[f"fit {name} (core fitted)"] for name in models),
    }
    print(f"CPU s per election at {args.draws} draws, by test (its textbook run and its statistic on the draws; "
          "the draws of each honest model apart, shared by its tests):")
    for test in TABLE_TESTS:
        own = rows[f"textbook run {test}"] + args.draws * rows[f"statistic {test} on one draw"]
        print(f"  {test:<48}{own / 1e3:9.2f}")
    for name in models:
        print(f"  {name + ' draws':<48}{args.draws * rows[f'one {name} draw'] / 1e3:9.2f}")
    print(f"CPU s per election at {args.draws} draws, by part:")
    for label, value in parts.items():
        print(f"  {label:<48}{value / 1e3:9.2f}")
    print(f"  {'total':<48}{sum(parts.values()) / 1e3:9.2f}")


if __name__ == "__main__":
    main()
