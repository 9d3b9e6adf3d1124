"""``simkit timeline``: tests of a published turnout timeline against the honest null fitted to Spain.

``simkit timeline CONFIG`` reads the config's ``[timeline]`` and ``[observed.timeline]``;
``simkit timeline DATA --map MAP`` sums a station file's timelines by region (:mod:`simkit.timeline.observed`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from simkit import streams
from simkit.cli.arguments import add_json, add_output, add_overrides, add_plot, add_seed
from simkit.cli.io import (check_plot_folder, claim_json, config_from, figure_writers, json_text, json_writer,
                           place_outputs)
from simkit.errors import InputError
from simkit.outputs import TIMELINE
from simkit.plots.timeline import plot_timeline
from simkit.timeline.observed import from_config, from_stations
from simkit.engine.profile import honest_profile
from simkit.timeline.statistics import run_tests, untested
from simkit.timeline.stations import station_rows, untested_regions

CAVEAT = ("A departure from the honest band is a reason to look, not proof: regions differ for reasons that are "
          "not fraud (cities vote later, the working day, weather), and the null holds only the spread of Spain's "
          "provinces around Spain's curve. p-values are per row, not adjusted for the number of rows.")


#: the station-level tests flag more clean Spanish provinces than their nominal rate (docs/timeline.md)
STATION_CALIBRATION = "uncalibrated: above nominal size on clean Spain 2019"


def observed_generator(seed: int, part: int) -> np.random.Generator:
    """The generator of part ``part`` of the draws on the published timeline under ``seed``
    (:func:`simkit.streams.observed_timeline_key`: below ``OBSERVED``, apart from the timeline calibration's null)."""
    return streams.generator(seed, *streams.observed_timeline_key(part))


def analyse(args: argparse.Namespace) -> tuple[dict, object]:
    """The JSON-ready result and the loaded timeline, validated completely before anything is written."""
    if args.map is not None:
        if args.set or args.sweep:
            raise InputError(f"--{'set' if args.set else 'sweep'}: {args.path} is a station file read with --map: "
                             "there is no config to override")
        loaded = from_stations(args.path, args.map)
    else:
        if args.sweep:
            raise InputError(f"--sweep: simkit timeline tests the one published timeline of {args.path}: "
                             "there is nothing to sweep")
        loaded = from_config(config_from(args.path, args), str(args.path))
    timeline = loaded.timeline
    profile = honest_profile(timeline.opening, timeline.reports, timeline.closing, timeline.profile,
                             args.interpolation or timeline.interpolation, timeline.dispersion,
                             timeline.regional_dispersion)
    rows = run_tests(loaded.observed, profile, timeline.opening, timeline.closing,
                     observed_generator(args.seed, streams.TIMELINE_TESTS), args.draws)
    not_run = untested(len(loaded.observed.region_names))
    if loaded.station_counts is not None:
        early = loaded.observed.early_index(timeline.opening, timeline.closing)
        station = station_rows(loaded.station_counts, loaded.station_region, loaded.observed.region_names, early,
                               profile.kappa_station, observed_generator(args.seed, streams.TIMELINE_STATIONS),
                               args.station_draws)
        rows += [dict(row, calibration=STATION_CALIBRATION) for row in station]
        not_run.update(untested_regions(loaded.station_region, loaded.observed.region_names))
    result = {"source": loaded.source, "profile": profile.describe(), "draws": args.draws, "seed": args.seed,
              "early_report": loaded.observed.reports[loaded.observed.early_index(timeline.opening, timeline.closing)],
              "excluded_stations": loaded.excluded, "untested": not_run,
              "caveat": CAVEAT, "rows": rows}
    return result, (loaded, profile)


def format_rows(result: dict) -> str:
    lines = [f"honest profile: {result['profile']['name']} ({result['profile']['interpolation']}); "
             f"early report {result['early_report']}; {result['draws']} null draws",
             f"{'region':<22} {'test':<14} {'statistic':>9} {'null mean':>9} {'null sd':>8} {'p':>7}"]
    for row in result["rows"]:
        lines.append(f"{row['region']:<22} {row['test']:<14} {row['statistic']:9.4f} {row['null_mean']:9.4f} "
                     f"{row['null_sd']:8.4f} {row['p_value']:7.4f}"
                     + ("  top: " + ", ".join(c["region"] for c in row["contributors"]) if "contributors" in row
                        else "") + ("  (uncalibrated)" if "calibration" in row else ""))
    lines += [f"{test}: not tested ({why})" for test, why in result["untested"].items()]
    if result["excluded_stations"]:
        lines.append(f"excluded stations: {result['excluded_stations']}")
    lines.append(CAVEAT)
    return "\n".join(lines)


#: the keys of ``simkit timeline --json``
JSON_KEYS = ("source", "profile", "rows")


def _cmd_timeline(args: argparse.Namespace) -> int:
    if args.draws < 100:
        raise InputError(f"--draws: at least 100, got {args.draws}")
    if args.station_draws < 20:
        raise InputError(f"--station-draws: at least 20, got {args.station_draws}")
    claim_json(args, TIMELINE, JSON_KEYS, [args.path, args.map])
    check_plot_folder(args.plot, ["timeline"], args.output, [args.path, args.map])
    result, (loaded, profile) = analyse(args)
    writers = {} if args.plot is None else figure_writers(args.plot, {"timeline": plot_timeline(
        loaded.observed, profile, observed_generator(args.seed, streams.TIMELINE_FIGURE))}, dpi=120)
    print(json_text(result) if args.json else format_rows(result))
    if args.output:
        writers[args.output] = json_writer(result)
    place_outputs(writers)
    return 0


def register(subparsers) -> None:
    """Add ``timeline`` to the ``simkit`` command line."""
    parser = subparsers.add_parser("timeline", help="test a published turnout timeline against the honest null")
    parser.add_argument("path", type=Path, help="config with [observed.timeline], or a station file with --map")
    parser.add_argument("--map", type=Path, help="map (TOML) of the station file's columns and hours")
    add_json(parser)
    add_output(parser, "the --json output to PATH.json")
    add_plot(parser, "timeline.png: the observed curves inside the honest band")
    parser.add_argument("--draws", type=int, default=10_000, help="draws of the simulated null (default 10,000)")
    parser.add_argument("--station-draws", type=int, default=200,
                        help="draws of the station-level null (station files only; default 200)")
    add_seed(parser, 0, "the simulated null")
    add_overrides(parser)
    parser.add_argument("--interpolation", choices=("linear", "pchip"),
                        help="shape within Spain's bins (default: the config's [timeline])")
    parser.set_defaults(func=_cmd_timeline)
