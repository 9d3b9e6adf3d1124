"""``simkit compare CONFIG``: published exit polls and quick counts against polls drawn from simulated
elections (see :mod:`simkit.polls.compare`). Registered into the main CLI through :func:`register`."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from simkit.cli.arguments import (add_json, add_output, add_overrides, add_plot, add_quiet, add_replicates,
                                  add_seed, add_selection, non_negative)
from simkit.cli.io import (check_plot_folder, choose, config_from, dataset_writer, describe, figure_writers,
                           json_text, json_writer, place_outputs, text_writer, Writer)
from simkit.config.load import data_paths, load_config
from simkit.errors import InputError
from simkit.io import FORMATS, open_result
from simkit.outputs import COMPARISON, KIND_ATTR, claim_output, is_json_report, starts_with
from simkit.plots.polls import plot_poll_comparison
from simkit.polls.checks import check_comparable
from simkit.polls.compare import compare_config
from simkit.polls.figures import census_reading
from simkit.polls.ledger import ledger_space, ledger_varied, z_span
from simkit.polls.statistics import smallest_monte_carlo_p
from simkit.polls.error import DEFAULT_HISTORY

#: the figures of ``--plot DIR``
FIGURES = ("poll_gaps",)


def register(subparsers) -> None:
    compare = subparsers.add_parser("compare", help="compare published exit polls and quick counts with simulated ones")
    compare.add_argument("config", type=Path,
                         help="a config, or a saved simulation with station-level votes (.zarr/.nc, --keep full) "
                              "whose stored config and elections are compared without simulating again")
    add_overrides(compare)
    add_selection(compare)
    add_json(compare)
    add_output(compare, "the report (.json: JSON, .nc/.zarr: the estimates Dataset, else text)")
    add_plot(compare, "poll_gaps.png: the dot plot of published minus official figures")
    compare.add_argument("--error-table", type=Path, default=DEFAULT_HISTORY,
                         help="history of exit polls against official counts calibrating the total-error baseline")
    compare.add_argument("--ledger-points", type=non_negative, default=None,
                         help="points of the joint assumption ledger's Latin hypercube (default 16; 0: none)")
    compare.add_argument("--history", type=Path, nargs="+", metavar="CONFIG",
                         help="earlier elections' configs: their polls side by side under the same baseline")
    add_replicates(compare)
    add_seed(compare)
    add_quiet(compare)
    compare.set_defaults(func=handler)


#: the first words of the text report (how ``--overwrite`` recognises one)
REPORT_HEADER = "Gaps against the official count"


#: the keys of the JSON report
JSON_KEYS = ("rows", "scenarios", "ledger", "flags")


def _number(value, spec: str = ".2f") -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def _z_cell(value, width: int) -> str:
    """A z column's cell of ``width`` characters, with a space before the number however wide it is: a large z
    (``-1234.5``, where the sampling SD is tiny) never runs into the column before it."""
    return f" {_number(value, '+.1f'):>{width - 1}}"


def _rows_table(comparison, width: int) -> list[str]:
    lines = [REPORT_HEADER + " (shares in percent of valid answers; turnout in percent of the register).",
             "z: sampling error only (SD of poll − its replicate's count); z total: sampling plus the historical "
             "non-sampling error of the option's class (exit polls only: a quick count copies official protocols, "
             "so its station sample's sampling error alone judges it).",
             f"{'pollster':<{width}}{'option':<14}{'published':>9}{'official':>9}{'gap':>7}{'sd':>6}{'z':>8}{'p':>9}  "
             f"{'class':<12}{'ns sd':>6}{'z total':>9}{'p total':>9}  misreport needed [90%]"]
    for row in comparison.rows:
        needed = "—" if row["misreport_needed"] is None else (
            f"{row['misreport_needed']:.1f} [{_number(row['misreport_needed_low'], '.1f')}, "
            f"{_number(row['misreport_needed_high'], '.1f')}]")
        lines.append(f"{row['pollster']:<{width}}{row['option']:<14}{row['published']:>9.2f}{row['official']:>9.2f}"
                     f"{row['gap']:>+7.2f}{row['gap_sd']:>6.2f}{_z_cell(row['z'], 8)}"
                     f"{_p_cell(row):>9}{'*' if row['p_method'] == 'normal_tail' else ' '} "
                     f"{row['option_class']:<12}{_number(row['nonsampling_sd'], '.2f'):>6}"
                     f"{_z_cell(row['z_total'], 9)}{_number(row['p_total'], '.2g'):>9}  {needed}")
    floor = comparison.rows[0]["p_floor"] if comparison.rows else None
    reach = smallest_monte_carlo_p(floor) if floor is not None else None
    lines.append(f"p: two-sided Monte Carlo; * normal tail: too few replicates as extreme, they place it only below "
                 f"{_number(reach, '.2g')}, their smallest Monte Carlo p. misreport needed: % of the option's voters telling the incumbent "
                 "(incumbent row: % of all others); negative = away from the incumbent.")
    census = [row for row in comparison.rows if "rounding" in row]
    if census:
        lines.append("census: every station's count or every voter read, no sampling error and no p; consistent "
                     "when the published value can be the census's own rounded to its last digit, to nearest "
                     "or down (its gap minus the census's at least −1 unit, at most +½ unit):")
        lines += [f"  {row['pollster']}: {row['option']}: census, {census_reading(row['rounding'])}" for row in census]
    return lines


def _p_cell(row: dict) -> str:
    """A row's p column: its p-value, or ``census`` for a figure without one (:func:`census_reading`)."""
    return "census" if row["p_method"] == "census" else _number(row["p_value"], ".2g")


def _size_text(test: dict) -> str:
    """A joint test's measured size (:func:`simkit.polls.statistics.held_out_size`) after its floor; "" when not
    measured."""
    if test.get("size_rejected") is None:
        return ""
    return f"; measured size: rejects {test['size_rejected']:,} of {test['size_replicates']:,} replicates held out"


def _joint_lines(name: str, test: dict) -> list[str]:
    lines = [f"  {name:<20} T² = {test['t2']:.1f}, F = {test['f']:.2f} on ({test['df1']}, {test['df2']}), "
             f"p = {test['p_value']:.2g} ({test['p_method']}; Monte Carlo p = {test['p_monte_carlo']:.2g}, "
             f"floor {test['p_floor']:.1g}{_size_text(test)})"]
    lines += [f"      {poll['pollster']:<18} d² = {poll['d2']:.1f}, T² = {poll['t2']:.1f} on {poll['df1']}, "
              f"p = {poll['p_value']:.2g}" for poll in test["per_poll"]]
    return lines


def _mechanism_lines(comparison) -> list[str]:
    if not comparison.mechanisms:
        return []
    lines = ["", "One mechanism at a time (count held at the official figures; d² of the residual on df; "
                 "95% profile interval):"]
    for pollster in dict.fromkeys(entry["pollster"] for entry in comparison.mechanisms):
        entries = [entry for entry in comparison.mechanisms if entry["pollster"] == pollster]
        lines.append(f"  {pollster} (direction judged on {entries[0]['judged_on']}):")
        for entry in entries:
            estimate = "no effect on the gap" if entry["estimate"] is None else (
                f"{entry['estimate']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]")
            way = "can move the gap the observed way" if entry["moves_gap_observed_way"] else "cannot"
            lines.append(f"    {entry['mechanism']:<26}{estimate:<28} d² = {entry['d2']:8.1f} on {entry['df']}, "
                         f"fit p = {_number(entry['fit_p'], '.2g'):>7}  {way}")
    return lines


HISTORY_KEYS = ("pollster", "option", "published", "official", "gap", "gap_sd", "z", "p_value", "p_method",
                "option_class", "nonsampling_sd", "z_total", "p_total")


def history_entry(path: Path, comparison) -> dict:
    """One election of ``--history``: its config, title and the rows' gap columns."""
    return {"config": str(path), "title": comparison.context.get("title", ""),
            "rows": [{key: row[key] for key in HISTORY_KEYS} for row in comparison.rows]}


def format_history(history: list[dict]) -> list[str]:
    """The elections side by side: each poll's gaps under the same baseline."""
    width = max([len(row["pollster"]) for entry in history for row in entry["rows"]] + [len("pollster")]) + 2
    lines = ["", "Side by side, same baseline (gap = published − official, points):",
             f"  {'election':<44}{'pollster':<{width}}{'option':<14}{'gap':>7}{'sd':>6}{'z':>8}{'z total':>9}"]
    for entry in history:
        for row in entry["rows"]:
            lines.append(f"  {entry['title'][:42]:<44}{row['pollster']:<{width}}{row['option']:<14}{row['gap']:>+7.2f}"
                         f"{row['gap_sd']:>6.2f}{_z_cell(row['z'], 8)}{_z_cell(row['z_total'], 9)}")
    return lines


def format_report(comparison) -> str:
    """The comparison as plain-text tables."""
    width = max([len(row["pollster"]) for row in comparison.rows] + [12]) + 2
    lines = _rows_table(comparison, width)
    if comparison.flags:
        lines += ["", "Notes on the pollsters' claims:"] + [f"  {flag}" for flag in comparison.flags]
    if comparison.joint:
        lines += ["", "All published gaps jointly, sampling-only baseline (Hotelling T², F reference):"]
        lines += _joint_lines("baseline", comparison.joint)
    if comparison.scenarios:
        lines += ["", "Per scenario, polls as configured (Hotelling T² of the published gaps):"]
        for scenario in comparison.scenarios:
            lines += _joint_lines(f"{scenario['scenario']} ({scenario['count_turnout']:.2f}% turnout)", scenario)
    lines += _mechanism_lines(comparison)
    if comparison.ledger:
        points = len({entry["point"] for entry in comparison.ledger})
        lines += ["", f"Joint assumption ledger: {ledger_varied(comparison.ledger)}, varied together ({points} "
                      "Latin-hypercube points); share of the space (of the points where the poll's design gets "
                      "answers, when not all) where sampling error explains the gap at those assumptions (not "
                      "sampling alone where they include how voters answer; p > 0.05; a census: within rounding):"]
        for row in comparison.rows:
            if row.get("verdict") is None:
                continue
            lines.append(f"  {row['pollster']:<{width}}{row['option']:<14} z from {z_span(row['z_min'], row['z_max'])}, "
                         f"consistent in {row['share_consistent']:.0%} of {ledger_space(row)}: {row['verdict']}")
    return "\n".join(lines)


def _saved_elections(args: argparse.Namespace):
    """The simulated elections of a saved result given as CONFIG, cut to ``--scenario``/``--point`` when given
    (else all of them, as for a config: the baseline is the honest scenario at the middle of each sweep), and
    what was chosen (``""``: nothing); None for a config file."""
    if args.config.suffix.lower() not in FORMATS:
        if args.scenario is not None or args.point is not None:
            raise InputError(f"--scenario, --point: choose within a saved simulation; {args.config} is a config "
                             "(every scenario and sweep point is compared)")
        return None, ""
    if args.set or args.sweep or args.replicates is not None or args.seed is not None:
        raise InputError(f"--set, --sweep, --replicates, --seed: {args.config} holds its elections already; give "
                         "the config to simulate others")
    ds = open_result(args.config)
    if "votes" not in ds:
        raise InputError(f"{args.config}: no station-level votes (a --keep summary result); compare needs "
                         "--keep full")
    chosen = choose(ds, args, str(args.config), every=True)
    return ds.isel({dim: [k] for dim, k in chosen.items()}), describe(ds, chosen)


def handler(args: argparse.Namespace) -> int:
    cfg = config_from(args.config, args)
    inputs = [args.config, *data_paths(cfg)]
    if args.output:
        recognise = is_json_report(JSON_KEYS) if args.output.suffix == ".json" else starts_with(REPORT_HEADER)
        claim_output(args.output, COMPARISON, overwrite=args.overwrite, inputs=inputs, recognise=recognise)
    check_plot_folder(args.plot, list(FIGURES), args.output, inputs)
    ds, chosen = _saved_elections(args)
    earlier_configs = [(path, load_config(path)) for path in args.history or []]
    for path, earlier_cfg in earlier_configs:  # a history config that cannot be compared (or adds no row) fails
        check_comparable(earlier_cfg, replicates=args.replicates, source=str(path))
    comparison = compare_config(cfg, replicates=args.replicates, seed=args.seed, ds=ds, source=str(args.config),
                                history=args.error_table, ledger_points=args.ledger_points,
                                progress=not args.quiet)
    report = comparison.to_json()
    if chosen:
        report["compared"] = chosen
    history = []
    if earlier_configs:
        for path, earlier_cfg in earlier_configs:
            earlier = compare_config(earlier_cfg, replicates=args.replicates, seed=args.seed, source=str(path),
                                     history=args.error_table, ledger_points=0, progress=not args.quiet)
            history.append(history_entry(path, earlier))
        history.append(history_entry(args.config, comparison))
        report["history"] = history
    text = json_text(report) if args.json else "\n".join([format_report(comparison)] + (format_history(history)
                                                                                    if history else [])
                                                        + ([f"Compared: {chosen} of {args.config}."] if chosen else []))
    print(text)
    writers = figure_writers(args.plot, {"poll_gaps": plot_poll_comparison(comparison)}, dpi=150) if args.plot else {}
    if args.output:
        writers[args.output] = _output_writer(args.output, comparison, report, text)
    place_outputs(writers)
    return 0


def _output_writer(path: Path, comparison, report: dict, text: str) -> Writer:
    """What writes ``-o PATH``: the estimates as a result (``.nc``, ``.zarr``), the JSON ``report`` (``.json``), else
    the printed ``text``."""
    if path.suffix in (".nc", ".zarr"):
        return dataset_writer(comparison.estimates.assign_attrs({KIND_ATTR: COMPARISON}))
    if path.suffix == ".json":
        return json_writer(report)
    return text_writer(text + "\n")
