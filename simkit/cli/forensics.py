"""``simkit forensics DATA [--map MAP.toml | --preset NAME] [--tests ID,...] [--null ...] [--draws N] [--json]
[-o PATH] [--plot DIR] [--power N] [--quiet]``: forensic tests on one election's station returns.

DATA is a returns file (CSV, optionally zipped) read with a mapping, or a simkit result (``.nc``/``.zarr``; its
first replicate, unless ``--replicate`` says otherwise). With a preset, DATA may be omitted: the preset's file in
the shared data folder is used.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from simkit.cli.arguments import (add_draws, add_json, add_null, add_output, add_overrides, add_plot, add_quiet,
                                  add_replicates, add_seed, add_selection, add_tests, chosen_tests,
                                  workers)
from simkit.cli.io import (check_plot_folder, choose, claim_json, config_from, dataset_writer, describe,
                           figure_writers, finite, json_text, place_outputs, write_json)
from simkit.config.load import data_paths
from simkit.electorate.returns import PRESETS, anomaly_report, data_rows, load_returns
from simkit.engine import aggregation
from simkit.errors import InputError
from simkit.forensics.calibration_status import NOT_MEASURED, UNCALIBRATED
from simkit.forensics.core import NULLS as FORENSIC_NULLS, check_draws, check_null
from simkit.forensics import (TESTS, alternative, calibration_label, calibration_state, election, holm_alarms,
                              observed_seed, rejected_tests, run_each)
from simkit.forensics.applicable import is_not_applicable, ran
from simkit.forensics.calibrate import (NULLS as CALIBRATED_NULLS, calibration_table, cannot_reject_warnings,
                                       never_ran, format_table as format_calibration)
from simkit.forensics.core import ALPHA
from simkit.forensics.defaults import CALIBRATION_DRAWS, NULL_DRAWS
from simkit.forensics.fingerprint import histogram
from simkit.forensics.floor import cannot_reject, floor_line, floor_lines, result_floors
from simkit.forensics.power import (PLANTS, QUICK_PLANTS, UNSEEN_LEVEL, above_size, largest_standard_error,
                                   largest_unseen_power, left_out_text, power_applies, power_table, study_seed)
from simkit.io import open_result, output_format
from simkit.outputs import CALIBRATION, FORENSICS, KIND_ATTR, claim_output
from simkit.plots.forensics import election_title, figure
from simkit.schema import rejects

RESULT_SUFFIXES = (".nc", ".zarr")
#: the prefix of an exclusion the loader made (``stations_excluded``): rows never read as stations
LOADER = "loader: "


#: the choices of ``calibrate --null``: a null it calibrates, or both
CALIBRATE_NULLS = (*CALIBRATED_NULLS, "both")
#: the null models of ``forensics`` and ``calibrate`` (calibrate's ``both`` runs the two it calibrates)
NULL_HELP = ("honest model behind the p-values: textbook (each test's published reference law), simulated "
             "(honest elections shaped like the data) or flat (one national turnout and share)")


def register(subparsers) -> None:
    """Add the ``forensics`` and ``calibrate`` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("forensics", help="forensic tests on station-level returns (real or simulated)")
    p.add_argument("data", nargs="?", type=Path,
                   help="returns CSV/ZIP (with --map or --preset), or a simkit result (.nc/.zarr); optional with "
                        "--preset (its file in the shared data folder)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--map", type=Path, help="column mapping (TOML)")
    source.add_argument("--preset", choices=PRESETS, help="a ready mapping for the shared data")
    add_tests(p)
    add_null(p, FORENSIC_NULLS, "textbook", NULL_HELP + " (default textbook)")
    add_draws(p, NULL_DRAWS)
    add_seed(p, 0)
    p.add_argument("--leader", help="option treated as the leader, a candidate (default: from the data)")
    add_selection(p)
    p.add_argument("--replicate", type=int, default=0, help="replicate of a simulated result (default 0)")
    p.add_argument("--allow-inconsistent", action="store_true",
                   help="test the rest even when more than 5%% of the rows are blank or inconsistent (they are "
                        "still excluded or flagged, and reported)")
    add_json(p)
    add_output(p, "the results Dataset (.nc or .zarr)")
    add_plot(p, "TEST.png: each test's own figure")
    p.add_argument("--power", type=int, default=5, metavar="N",
                   help="when no test rejects: size and power of each test in N simulated elections shaped like "
                        "the data, with and without planted manipulation (default 5; 0: skip)")
    add_quiet(p, "no progress bar (over the simulated null's draws and the power study's elections)")
    p.set_defaults(func=handle_forensics)

    c = subparsers.add_parser("calibrate", help="size and power of the forensic tests on simulated elections")
    c.add_argument("config", type=Path, help="a config file (its scenarios give the honest and manipulated elections)")
    add_overrides(c)
    add_replicates(c, "simulated elections per scenario")
    add_tests(c)
    add_null(c, CALIBRATE_NULLS, "both",
             NULL_HELP.replace(" or flat (one national turnout and share)", "") + ", or both (default)")
    add_draws(c, CALIBRATION_DRAWS, "null draws per test and replicate")
    add_seed(c)
    add_json(c)
    add_output(c, "the --json output to PATH.json")
    c.add_argument("--aggregate", default="station", metavar="station|region|sample:N",
                   help="what the tests see: every station (default), regional totals, or N sampled stations")
    c.add_argument("--scheduler", metavar="ADDRESS", help="run on the dask scheduler at ADDRESS (tcp://host:port)")
    c.add_argument("--workers", type=workers, help="run on a local dask cluster of N worker processes")
    add_quiet(c, "no progress bar (over the simulation and the replicates tested)")
    c.set_defaults(func=handle_calibrate)


def _load(args: argparse.Namespace) -> xr.Dataset:
    if args.data is None and args.preset is None:
        raise InputError("DATA: missing: give a returns file (CSV/ZIP) with --map MAP.toml or --preset NAME, a "
                         "simkit result (.nc/.zarr), or --preset NAME alone for its shared file")
    if args.data is not None and args.data.suffix.lower() in RESULT_SUFFIXES:
        if args.map or args.preset:
            raise InputError(f"{args.data}: DATA: a simkit result needs no --map or --preset")
        if not args.data.exists():
            raise InputError(f"{args.data}: DATA: file not found")
        return _with_station_counts(open_result(args.data), args.data)
    if not (args.map or args.preset):
        raise InputError(f"{args.data}: DATA: give --map MAP.toml or --preset NAME to read returns")
    return load_returns(args.data, map_path=args.map, preset=args.preset,
                        allow_inconsistent=args.allow_inconsistent)


def _with_station_counts(ds: xr.Dataset, path) -> xr.Dataset:
    """``ds`` when it holds the station-level counts the tests read (``registered``, ``ballots``, ``votes``); else
    one line: a ``--keep summary`` simulation holds totals only, another kind of result none."""
    missing = [name for name in ("registered", "ballots", "votes") if name not in ds]
    if missing:
        raise InputError(f"{path}: DATA: no station-level {', '.join(missing)} (a --keep summary simulation, or not "
                         "a simulation); forensics reads returns or a simulation run with --keep full")
    return ds


def _select(ds: xr.Dataset, args: argparse.Namespace) -> dict | None:
    """The positions ``election`` reads: ``--scenario`` and ``--point`` of a simulated result (required when it
    holds more than one) and ``--replicate``, checked against its size."""
    source = str(args.data) if args.data is not None else ds.attrs.get("source", f"preset {args.preset}")
    chosen = choose(ds, args, source)
    count = ds.sizes.get("replicate")
    if count is None:
        if args.replicate != 0:
            raise InputError(f"--replicate: {args.replicate}: {source} has no replicates (real returns)")
        return chosen or None
    if not 0 <= args.replicate < count:
        raise InputError(f"--replicate: {args.replicate}: outside 0..{count - 1} ({source} holds {count} "
                         "replicates)")
    return {**chosen, "replicate": args.replicate}


def _data_summary(ds: xr.Dataset, e, args: argparse.Namespace, chosen: str) -> dict:
    report = anomaly_report(ds)
    excluded = {f"{LOADER}{rule}": item["count"] for rule, item in report.items()
                if item["rule"] == "excluded" and item["count"]}
    excluded.update(e.excluded)
    source = ds.attrs.get("source", str(args.data)) + (f" ({chosen})" if chosen else "")
    return {"source": source, "ballots_meaning": ds.attrs.get("ballots_meaning"),
            **e.summary(), "stations_excluded": excluded,
            "row_anomalies": {rule: {"count": item["count"], "rule": item["rule"], "rows": item["rows"][:20]}
                              for rule, item in report.items() if item["count"]},
            "null": args.null, "draws": args.draws, "seed": args.seed}


def any_rejects(results) -> bool:
    """Whether some test rejects at the forensic level :data:`simkit.forensics.core.ALPHA`."""
    return any(rejects(r.p_value) for r in results)


def power_note(results, power: dict | None) -> str | None:
    """What the data could have detected when no test rejects (None when some shown p-value rejects, or when only
    descriptive results were asked): the :mod:`simkit.forensics.power` table (:func:`power_lines`) when it was
    computed and the integer test's detectable excess (unless it could not reject). When Holm's correction rejects
    on p-values the table does not show (:func:`holm_only_note`), that instead, followed by the power table if one
    was computed."""
    if any_rejects(results):
        return None
    if not any(ran(r) for r in results):  # n/a (reasons in the table) or descriptive (nothing tested, no Holm alarm)
        return "No test could run on these data (reasons above)." if any(map(is_not_applicable, results)) else None
    floored = list(result_floors(results))
    table = power_lines(power, floored) if power else []
    alarms = holm_alarms(results)
    if alarms:
        return "\n".join([holm_only_note(results, alarms)] + table)
    lines = [f"No test rejects at {ALPHA:g}"
             + (f" ({', '.join(floored)} cannot with these draws: see their verdicts)" if floored else "")
             + ". This is not evidence of a clean count."] + table
    for r in results:
        if r.test == "integer_percent" and ran(r) and r.test not in floored:  # a floored test detects nothing
            detectable = (1.645 + 0.842) * r.extra["null_sd"]
            lines.append(f"integer_percent: an excess of {detectable:.0f} integer stations would be detected with "
                         "80% power at 0.05 (normal approximation of the binomial null).")
    return "\n".join(lines)


def power_lines(power: dict, floored: list[str]) -> list[str]:
    """The :mod:`simkit.forensics.power` table (:func:`~simkit.forensics.power.power_table`) as text lines: per
    plant and test the share of simulated elections rejected at alpha, the rows of the ``floored`` tests (those
    that could not reject with their draws, :func:`~simkit.forensics.floor.result_floors`) marked, a power above
    its size by less than their Monte Carlo error marked (:func:`~simkit.forensics.power.above_size`), the
    rates' Monte Carlo error, and the stations the simulation left out."""
    rates, counts = power["rejection_rates"], power["rejections"]
    plants = list(rates)
    lines = [f"Rejection rates at {ALPHA:g} in simulated elections shaped like these data (same null):"]
    lines += [f"  {plant}: {PLANTS[plant][0]}" for plant in plants]
    lines.append(f"  {'test':<16}" + "".join(f"{plant:>10}" for plant in plants))
    within = False
    for test in rates[plants[0]]:
        cells = []
        for plant in plants:
            mark = "*" if test in floored else ""
            if plant != "none" and above_size(counts[plant][test], counts["none"][test]) == "within error":
                mark, within = mark + "~", True
            cells.append(f"{'n/a' if rates[plant][test] is None else format(rates[plant][test], '.2f') + mark:>10}")
        lines.append(f"  {test:<16}" + "".join(cells))
    if floored:
        lines.append("  * cannot reject with these draws: its rates are 0 whatever the data")
    if within:
        lines.append(f"  ~ above its size by less than their Monte Carlo error (Fisher's exact test, one-sided, "
                     f"{ALPHA:g})")
    replicates = max(n for row in counts.values() for _, n in row.values())
    if replicates:
        lines.append(f"  each rate is of {replicates} elections: standard error up to "
                     f"{largest_standard_error(replicates):.2f}; a rate of 0 allows a power of up to "
                     f"{largest_unseen_power(replicates):.2f} (one-sided {UNSEEN_LEVEL:.0%})")
    left_out = left_out_text(power["stations_left_out"])
    if left_out:
        lines.append(f"  stations left out without ballots, per replicate: {left_out}")
    return lines


def results_dataset(results, summary: dict, fingerprint_counts: np.ndarray, edges: np.ndarray) -> xr.Dataset:
    """Results as a Dataset: one entry per test along ``test``; the fingerprint on (turnout_bin, share_bin)."""
    def number(value):
        return np.nan if value is None else float(value)

    centres = (edges[:-1] + edges[1:]) / 2
    return xr.Dataset(
        {"statistic": ("test", [number(r.statistic) for r in results]),
         "reference": ("test", [number(r.reference) for r in results]),
         "p_value": ("test", [number(r.p_value) for r in results]),
         "verdict": ("test", [r.verdict for r in results]),
         "fingerprint": (("turnout_bin", "share_bin"), fingerprint_counts,
                         {"units": "stations", "description": "stations per turnout x leader-share cell"})},
        coords={"test": [r.test for r in results], "turnout_bin": centres, "share_bin": centres},
        attrs={KIND_ATTR: FORENSICS, "null": summary["null"], "draws": summary["draws"], "seed": summary["seed"],
               "tests_json": json.dumps([r.to_dict() for r in results]), "data_json": json.dumps(summary)})


def row_lines(summary: dict) -> list[str]:
    """The table's ``excluded:`` line (why stations were left out of the tests, and the data rows of the rules the
    loader excluded rows for) and ``rows:`` line (the loader's other rules: rows kept and reported), each rule
    named once; a line with nothing to say is left out."""
    anomalies = summary.get("row_anomalies") or {}
    excluded = summary["stations_excluded"]
    lines = []
    if excluded:
        lines.append("excluded: " + ", ".join(_exclusion(reason, count, anomalies) for reason, count in excluded.items()))
    kept = {rule: item for rule, item in anomalies.items() if f"{LOADER}{rule}" not in excluded}
    if kept:
        lines.append("rows: " + "; ".join(f"{rule} {item['count']} ({data_rows(item['rows'], item['count'])})"
                                          for rule, item in kept.items()))
    return lines


def _exclusion(reason: str, count: int, anomalies: dict) -> str:
    """``loader: blank 1 (data row 4)``: one reason of the ``excluded:`` line, with its data rows when the loader
    reported them (``anomalies``: rule -> its count and rows)."""
    rule = reason.removeprefix(LOADER)
    item = anomalies.get(rule) if rule != reason else None
    rows = f" ({data_rows(item['rows'], item['count'])})" if item else ""
    return f"{reason} {count}{rows}"


def holm_only_note(results, alarms: list[str]) -> str:
    """Why the Holm line names ``alarms`` (:func:`simkit.forensics.holm_alarms` of ``results``) while no p-value of
    the table rejects at :data:`ALPHA`: each rejects on the p-value the family reads, its empirical or its tail one
    (:func:`simkit.forensics.family_p_value`; the shown p-value is the Monte Carlo one, floored by the draws)."""
    by_test = {r.test: r for r in results}
    reasons = [f"{test} on its {'empirical' if 'empirical_p' in by_test[test].extra else 'tail'} p-value"
               for test in alarms]
    return f"No shown p-value is at or below {ALPHA:g}; Holm rejects {', '.join(reasons)}."


def format_table(results, summary: dict, power: dict | None = None) -> str:
    """The command's table of ``results``: ``summary`` (:func:`_data_summary`) above, the Holm family and
    :func:`power_note` below."""
    def fmt(value):
        return "-" if value is None or not np.isfinite(value) else f"{value:.4g}"

    lines = [f"{summary['source']}: {summary['stations_used']:,} stations used, leader {summary['leader']}, "
             f"null {summary['null']} ({summary['draws']} draws)"]
    lines += row_lines(summary)
    lines.append(f"{'test':<16} {'statistic':>11} {'reference':>11} {'p-value':>9}  verdict")
    rejected = rejected_tests(results)
    for r in results:
        z = r.extra.get("null_z")
        beyond = (f" (z = {z:.1f}, tail p {r.extra['null_tail_p']:.2g} [{r.extra['null_tail']}], normal p "
                  f"{r.extra['null_normal_p']:.2g}, over {r.extra['null_draws']} draws of the "
                  f"{r.extra.get('honest_model')} model)"
                  if z is not None and np.isfinite(z) else "")
        if "monte_carlo_p" in r.extra:
            x = r.extra
            beyond = (f" (empirical: tau {x['empirical_tau']:.3g} over {', '.join(x['empirical_controls'])}; "
                      f"Monte Carlo p {x['monte_carlo_p']:.3g})" + beyond)
        label = calibration_label(r.extra.get("calibration"))
        flag = f" [{label}]" if label else ""
        lines.append(f"{r.test:<16} {fmt(r.statistic):>11} {fmt(r.reference):>11} {fmt(r.p_value):>9}  "
                     f"{r.verdict}{flag}{beyond}")
        if r.test == "integer_percent" and ran(r):
            lines.append(f"{'':<16} excess {r.extra['excess']:.0f} over the binomial null "
                         f"(mean {r.extra['null_mean']:.0f}, sd {r.extra['null_sd']:.0f})")
        if r.test in ("klimek", "klimek_ml") and "f_incremental" in r.extra:  # estimated, whether or not it ran
            x = r.extra
            if "statistic_is" in x:
                lines.append(f"{'':<16} statistic: {x['statistic_is']}; the joint fit's estimates:")
            lines.append(f"{'':<16} f_i {x['f_incremental']:.3f} [{x['f_incremental_low']:.3f}, "
                         f"{x['f_incremental_high']:.3f}], f_e {x['f_extreme']:.4f} [{x['f_extreme_low']:.4f}, "
                         f"{x['f_extreme_high']:.4f}], alpha {x['alpha']:.2f} [{x['alpha_low']:.2f}, "
                         f"{x['alpha_high']:.2f}]")
            for name, pair in x.get("fits_disagree", {}).items():
                lines.append(f"{'':<16} fits disagree on {name}: " + ", ".join(
                    f"{fit} {value:.4g} [{low:.4g}, {high:.4g}]" for fit, (value, low, high) in pair.items()))
        regions = r.extra.get("top_regions")
        if regions and r.test in rejected:
            lines.append(f"{'':<16} look first at: " + "; ".join(x["region"] for x in regions[:3]))

    left_out = {status: [r.test for r in results if r.p_value is not None
                         and calibration_state(r.extra.get("calibration")) == status]
                for status in (UNCALIBRATED, NOT_MEASURED)}
    reasons = [f"{label}, left out: {', '.join(left_out[status])}" for status, label in
               ((UNCALIBRATED, "uncalibrated under this null"),
                (NOT_MEASURED, "size not measured on clean elections under this null")) if left_out[status]]
    lines.append(f"Holm at {ALPHA:g} over the calibrated tests: " + (", ".join(holm_alarms(results)) or "no alarm")
                 + (f" ({'; '.join(reasons)})" if reasons else ""))
    note = power_note(results, power)
    if note:
        lines.append(note)
    return "\n".join(lines)


def handle_forensics(args: argparse.Namespace) -> int:
    """Run the forensics subcommand; returns the exit code."""
    check_null(args.null, FORENSIC_NULLS)
    check_draws(args.draws)
    if args.power < 0:
        raise InputError(f"--power: {args.power}: must be 0 or a positive integer")
    tests = chosen_tests(args.tests) or list(TESTS)
    if args.output is not None:
        output_format(args.output)
        claim_output(args.output, FORENSICS, overwrite=args.overwrite, inputs=[args.data, args.map])
    check_plot_folder(args.plot, tests, args.output, [args.data, args.map])
    ds = _load(args)
    select = _select(ds, args)
    e = election(ds, leader=args.leader, select=select)
    results = list(run_each(e, tests, args.null, args.draws, observed_seed(args.seed), tolerate=True,
                            progress=not args.quiet).values())
    chosen = describe(ds, {dim: k for dim, k in (select or {}).items() if dim != "replicate"})
    summary = _data_summary(ds, e, args, chosen + (f", replicate {args.replicate}" if chosen else ""))
    floored = result_floors(results)
    if floored:
        summary["cannot_reject"] = list(floored)
        print(f"warning: {floor_line(floored, args.null, args.draws)}", file=sys.stderr)
    counts, edges = histogram(e)
    power = None
    if power_applies(e, results, args.power):
        power = power_table(e, tests, null=args.null, draws=args.draws, replicates=args.power,
                            seed=study_seed(args.seed), plants=QUICK_PLANTS, progress=not args.quiet)
    if args.json:
        payload = {"tests": [r.to_dict() for r in results], "data": summary}
        if power is not None:
            payload["power"] = {"replicates": args.power, **power}
        print(json.dumps(finite(payload), ensure_ascii=False))
    else:
        print(format_table(results, summary, power))
    writers = {} if args.plot is None else figure_writers(
        args.plot, {result.test: figure(result.test, e, result, election_title(ds)) for result in results})
    if args.output is not None:
        writers[args.output] = dataset_writer(results_dataset(results, summary, counts, edges))
    place_outputs(writers)
    return 0


def check_some_test_can_reject(tests: list[str] | None, nulls: tuple[str, ...], draws: int) -> None:
    """Refuse a calibration in which no test asked (None: all) can reject under any of ``nulls`` with ``draws``
    null draws (:func:`simkit.forensics.floor.cannot_reject`): every rate of its table would be 0 whatever the
    elections (InputError naming ``--draws``, each null's floors as :func:`~simkit.forensics.floor.floor_lines`
    states them, the draws each test's null rests on counted). A table where some can is run, its other rows
    marked."""
    asked = [t for t in (tests or TESTS) if alternative(t) is not None]
    floors = {null: cannot_reject(asked, null, draws) for null in nulls}
    if asked and all(set(floors[null]) == set(asked) for null in nulls):
        raise InputError(f"--draws: {draws}: no test asked can reject, so every rate would be 0: "
                         + "; ".join(floor_lines(floors, draws)))


#: the keys of ``simkit calibrate --json``
CALIBRATION_KEYS = ("rows",)


def handle_calibrate(args: argparse.Namespace) -> int:
    check_null(args.null, CALIBRATE_NULLS)
    check_draws(args.draws)
    tests = chosen_tests(args.tests)
    nulls = CALIBRATED_NULLS if args.null == "both" else (args.null,)
    check_some_test_can_reject(tests, nulls, args.draws)
    cfg = config_from(args.config, args)
    claim_json(args, CALIBRATION, CALIBRATION_KEYS, [args.config, *data_paths(cfg)])
    if args.scheduler and args.workers:
        raise InputError("--scheduler and --workers: give one (an existing cluster, or a local one to start)")
    cluster = ({"scheduler": args.scheduler, "workers": args.workers, "quiet": args.quiet}
               if args.scheduler or args.workers else None)
    try:
        aggregation.parse(args.aggregate)
    except ValueError as error:
        raise InputError(f"--aggregate: {error}") from None
    rows = calibration_table(cfg, replicates=args.replicates, tests=tests, nulls=nulls, draws=args.draws,
                             seed=args.seed, cluster=cluster, aggregate=args.aggregate, progress=not args.quiet)
    payload = {"rows": rows, "warnings": never_ran(rows) + cannot_reject_warnings(rows, args.draws)}
    for warning in payload["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(json_text(payload) if args.json else format_calibration(rows))
    if args.output:
        write_json(payload, args.output)
    return 0
