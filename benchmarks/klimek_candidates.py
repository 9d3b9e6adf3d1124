"""Which Klimek statistic, under which honest model, tells Russia from the clean panel: the measurement behind
``klimek_ml``'s simulated-null statistic (:mod:`simkit.forensics.klimek.ml`).

For each election of the false-positive panel and Russia 2011 and 2018 (presets of
``benchmarks/false_positives.py``), each candidate statistic is computed on the data and on ``--draws`` honest
simulations of each honest model (draw ``i`` from the ``i``-th child of ``--seed``), with the honest part
fixed at the first stage (per honest group) as in the test:

- ``lr``: the grid fit's likelihood ratio against f_i = f_e = 0 (:func:`simkit.forensics.klimek.ml.grid_fit`),
  read per station (it grows with the number of stations);
- ``f_i``, ``f_e``: the grid fit's fractions at its best grid point;
- ``lr_extreme``: the extreme fit's likelihood ratio against f_e = 0 (f_i held at 0,
  :func:`simkit.forensics.klimek.ml.extreme_fit`), per station;
- ``f_extreme``: the extreme fit's f_e (the statistic the test uses).

Per candidate and model, each election's error ``d`` (data minus the null mean, per station for the LRs) and
null SD ``s``, the null z, and the empirically calibrated p-value of :mod:`simkit.forensics.empirical` in the
test's direction (greater), held out as the library reads it: a clean election against the clean elections of
other countries, Russia against all five; ``tau`` is fitted on all five.

Usage::

    python benchmarks/klimek_candidates.py [--draws 19] [--seed 1] [--models hierarchical,turnout_conditional,flat]
                                           [--json | --from-json FILE]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from false_positives import CONTRAST, PANEL, held_out_rows, load_election, panel_controls  # the sibling script
from simkit.forensics.empirical import fit_tau
from simkit.forensics.klimek import ml
from simkit.forensics.klimek.first_stage import first_stage, honest_groups
from simkit.forensics.nulls.flat import HONEST_MODELS, model_seed, simulate_honest

#: candidate -> whether it is read per station
CANDIDATES = {"lr": True, "f_i": False, "f_e": False, "lr_extreme": True, "f_extreme": False}


def candidates(e) -> dict[str, float]:
    """Every candidate statistic on one election."""
    group = honest_groups(e)
    stage = first_stage(e.turnout, e.leader_share, group)
    grid = ml.grid_fit(e.turnout, e.leader_share, stage, group)
    extreme = ml.extreme_fit(e.turnout, e.leader_share, stage, group)
    return {"lr": grid["likelihood_ratio"], "f_i": grid["f_incremental"], "f_e": grid["f_extreme"],
            "lr_extreme": extreme["likelihood_ratio"], "f_extreme": extreme["f_extreme"]}


def measure(elections: list[str], models: list[str], draws: int, seed: int) -> dict:
    """election -> {"stations", "data": candidate -> value, "null": model -> candidate -> (draws,) values}."""
    out = {}
    for name in elections:
        e = load_election(name)
        children = np.random.SeedSequence(seed).spawn(draws)
        null = {}
        for model in models:
            fitted = HONEST_MODELS[model](e)
            rows = [candidates(simulate_honest(e, fitted, model_seed(child, model))) for child in children]
            null[model] = {c: [row[c] for row in rows] for c in CANDIDATES}
        out[name] = {"stations": e.n, "data": candidates(e), "null": null}
        print(f"{name} done", file=sys.stderr)
    return out


def candidate_rows(table: dict, candidate: str, model: str) -> dict:
    """The table's elections as rows of the panel's measurement (``benchmarks/false_positives.py``), with one
    test, ``candidate`` under ``model``: its value on the data and its null's mean and SD, per station for the
    candidates read so."""
    rows = {}
    for name, row in table.items():
        values = np.asarray(row["null"][model][candidate])
        scale = row["stations"] if CANDIDATES[candidate] else 1.0
        rows[name] = {"fingerprint": name, "stations": row["stations"], "results": {candidate: {
            "statistic": row["data"][candidate] / scale, "null_mean": float(values.mean()) / scale,
            "null_sd": float(values.std(ddof=1)) / scale, "p_value": None}}}
    return rows


def read(table: dict, candidate: str, model: str) -> tuple[float, dict[str, dict]]:
    """(tau on all clean elections, election -> d, s, z, held-out p) of one candidate under one model."""
    rows = candidate_rows(table, candidate, model)
    controls = panel_controls(rows, [candidate])
    tau = fit_tau(*zip(*(c.errors[candidate] for c in controls.values())))
    read_rows = held_out_rows(rows, frozenset({candidate}), controls, direction=lambda _: "greater")
    errors = {}
    for name, row in read_rows.items():
        r = row["results"][candidate]
        d, s = r["empirical_d"], r["empirical_s"]
        errors[name] = {"d": d, "s": s, "z": d / s if s > 0 else float("nan"), "p": r["p_value"]}
    return tau, errors


def render(table: dict, models: list[str]) -> str:
    names = list(table)
    head = ["candidate", "model", "tau"] + [f"{n}: d, z, p" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for candidate in CANDIDATES:
        for model in models:
            tau, errors = read(table, candidate, model)
            lines.append("| " + " | ".join([candidate, model, f"{tau:.3g}"] + [
                f"{errors[n]['d']:+.2g}, {errors[n]['z']:+.1f}, {errors[n]['p']:.2g}" for n in names]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draws", type=int, default=19)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--models", default="hierarchical,turnout_conditional,flat")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--from-json", type=argparse.FileType(), metavar="FILE")
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",")]
    if unknown := [m for m in models if m not in HONEST_MODELS]:
        p.error(f"--models: unknown {unknown} (choose from {list(HONEST_MODELS)})")
    table = json.load(args.from_json) if args.from_json else measure(list(PANEL + CONTRAST), models, args.draws,
                                                                      args.seed)
    print(json.dumps(table) if args.json else render(table, models))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
