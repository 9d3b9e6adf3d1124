"""``simkit compare CONFIG``: published exit polls and quick counts against polls drawn from simulated
elections (see :mod:`simkit.compare`). Registered into the main CLI through :func:`register`."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .errors import InputError


def register(subparsers) -> None:
    from .outputs import OVERWRITE_HELP

    compare = subparsers.add_parser("compare", help="compare published exit polls and quick counts with simulated ones")
    compare.add_argument("config", type=Path)
    compare.add_argument("--json", action="store_true", help="print the tables as JSON")
    compare.add_argument("-o", "--output", type=Path,
                         help="write the report (.json: JSON, .nc/.zarr: the estimates Dataset, else text)")
    compare.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    compare.add_argument("--plot", type=Path, help="save the plot of the simulated and published figures")
    compare.add_argument("--replicates", type=int)
    compare.add_argument("--seed", type=int)
    compare.set_defaults(func=handler)


#: the first words of the text report (how ``--overwrite`` recognises one)
REPORT_HEADER = "Sampling-only baseline"


def _finite(value):
    """JSON has no NaN or infinity: such values become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return float(value) if isinstance(value, float) else value


#: the keys of the JSON report
JSON_KEYS = ("rows", "scenarios", "ledger", "flags")


def to_json(report: dict) -> str:
    clean = {key: [{k: _finite(v) for k, v in entry.items()} for entry in entries] if key != "flags" else entries
             for key, entries in report.items()}
    return json.dumps(clean, indent=2)


def _number(value, spec: str = ".2f") -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def format_report(comparison) -> str:
    """The comparison as plain-text tables (percent; misreporting in percent of the source voters)."""
    width = max([len(row["pollster"]) for row in comparison.rows] + [12]) + 2
    lines = [REPORT_HEADER + ": official count = truth, unbiased polls. Shares in percent of valid answers.",
             f"{'pollster':<{width}}{'option':<16}{'published':>9}{'sim mean':>9}{'90% interval':>16}{'sd':>6}{'z':>7}"
             f"{'p':>9}  {'deff':>6}{'bias':>7}  misreport needed [90%]"]
    for row in comparison.rows:
        interval = f"{row['simulated_low']:.2f}–{row['simulated_high']:.2f}"
        needed = "—" if row["misreport_needed"] is None else (
            f"{row['misreport_needed']:.1f} [{_number(row['misreport_needed_low'], '.1f')}, "
            f"{_number(row['misreport_needed_high'], '.1f')}]")
        lines.append(f"{row['pollster']:<{width}}{row['option']:<16}{row['published']:>9.2f}{row['simulated_mean']:>9.2f}"
                     f"{interval:>16}{row['simulated_sd']:>6.2f}{_number(row['z'], '.1f'):>7}"
                     f"{_number(row['p_value'], '.2g'):>9}{'*' if row['p_method'] == 'normal' else ' '} "
                     f"{_number(row['design_effect'], '.1f'):>6}{row['bias_needed']:>+7.2f}  {needed}")
    lines.append("p: two-sided Monte Carlo; * from the normal approximation (too few replicates as extreme). "
                 "misreport needed: % of the option's voters telling the incumbent (incumbent row: % of all others); "
                 "negative = away from the incumbent.")
    if comparison.flags:
        lines += ["", "Notes on the pollsters' claims:"] + [f"  {flag}" for flag in comparison.flags]
    if comparison.scenarios:
        lines += ["", "Published polls jointly, polls as configured (Mahalanobis distance, tail probability):"]
        lines += [f"  {s['scenario']:<20} d = {s['mahalanobis']:.2f} (df {s['df']})  p = {s['p_value']:.2g} "
                  f"({s['p_method']})" for s in comparison.scenarios]
    if comparison.ledger:
        lines += ["", "Assumption ledger: z across every stated range (does 'sampling alone explains it' at p ≥ 0.05 "
                      "hold throughout?)"]
        for row in comparison.rows:
            entries = [e for e in comparison.ledger if e["pollster"] == row["pollster"] and e["option"] == row["option"]]
            if not entries:
                continue
            zs = [row["z"]] + [e["z"] for e in entries]
            verdicts = {row["p_value"] >= 0.05} | {e["p_value"] >= 0.05 for e in entries}
            verdict = ("survives the whole range" if len(verdicts) == 1 else "depends on the assumptions")
            lines.append(f"  {row['pollster']:<{width}}{row['option']:<16} z from {min(zs):+.1f} to {max(zs):+.1f}: "
                         f"{verdict} ({', '.join(sorted({e['assumption'] for e in entries}))})")
    return "\n".join(lines)


def handler(args: argparse.Namespace) -> int:
    from .compare import compare_config
    from .config import load_config

    from .config import data_paths
    from .outputs import COMPARISON, KIND_ATTR, claim_output, is_json_report, starts_with

    cfg = load_config(args.config)
    if args.output:
        recognise = is_json_report(JSON_KEYS) if args.output.suffix == ".json" else starts_with(REPORT_HEADER)
        claim_output(args.output, COMPARISON, overwrite=args.overwrite, inputs=[args.config, *data_paths(cfg)],
                     recognise=recognise)
    comparison = compare_config(cfg, replicates=args.replicates, seed=args.seed, source=str(args.config))
    text = to_json(comparison.to_json()) if args.json else format_report(comparison)
    print(text)
    if args.output:
        from .io import write_dataset, write_text
        if args.output.suffix in (".nc", ".zarr"):
            write_dataset(comparison.estimates.assign_attrs({KIND_ATTR: COMPARISON}), args.output)
        else:
            report = to_json(comparison.to_json()) if args.output.suffix == ".json" else format_report(comparison)
            write_text(report + "\n", args.output)
    if args.plot:
        from .plot_polls import plot_poll_comparison
        plot_poll_comparison(comparison.estimates).savefig(args.plot, dpi=120)
    return 0
