"""``simkit report [CONFIG] [-o report.html] [--returns DATA] [--preset NAME | --map MAP] [--replicates N]
[--seed S] [--format html|md]``: a citable report (see :mod:`simkit.report`). Registered into the main CLI
through :func:`register`."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from simkit.cli.arguments import (add_draws, add_null, add_output, add_overrides, add_quiet, add_replicates, add_tests,
                                  chosen_tests, overrides, positive, shown_as_flags)
from simkit.cli.io import blamed_on_flags, override_values
from simkit.electorate.returns import PRESETS
from simkit.errors import InputError
from simkit.forensics.core import check_null
from simkit.forensics.floor import floor_line
from simkit.outputs import REPORT, claim_output, contains
from simkit.report import (DRAWS, FORMATS, NULL, NULLS, POWER, build, check_output, figures_folder, figures_of,
                           report_format, write)
from simkit.report.document import GENERATOR


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="one self-contained report from a config and/or station returns")
    p.add_argument("config", nargs="?", type=Path, help="a simkit config (optional with --returns/--preset)")
    add_overrides(p)
    add_output(p, "the report file (default report.html, or report.md)")
    p.add_argument("--returns", type=Path, metavar="DATA", help="station returns (CSV/ZIP) for the forensic tests")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=PRESETS, help="a ready mapping (DATA defaults to its shared file)")
    source.add_argument("--map", type=Path, help="column mapping (TOML) of DATA")
    add_replicates(p, kind=positive)  # without a config, nothing else checks it
    p.add_argument("--seed", type=int, help="seed of every random draw (default: the config's run.seed, else 0)")
    p.add_argument("--format", choices=FORMATS,
                   help="html (one file) or md (figures beside it); default: the one -o's extension names, else html")
    add_tests(p)
    add_null(p, NULLS, NULL, f"forensic null (default {NULL})")
    add_draws(p, DRAWS, "forensic null draws per test")
    p.add_argument("--power", type=int, default=POWER, metavar="N",
                   help=f"when no test rejects: size and power in N simulated elections (default {POWER}; 0: skip)")
    add_quiet(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    check_null(args.null, NULLS)
    output = check_output(args.output or Path(f"report.{args.format or 'html'}"))
    args.format = report_format(output, args.format)
    inputs = [args.config, args.returns, args.map]
    if args.format == "md":  # its figures folder, recognised by the report beside it (write() places both)
        claim_output(figures_folder(output), REPORT, overwrite=args.overwrite, inputs=inputs,
                     recognise=figures_of(output))
    claim_output(output, REPORT, overwrite=args.overwrite, inputs=inputs, recognise=contains(GENERATOR))
    tests = chosen_tests(args.tests)
    flags = overrides(args)
    if flags and args.config is None:
        raise InputError(f"{flags[0].flag} {flags[0].text}: overrides a config field, and no CONFIG is given")
    with blamed_on_flags(str(args.config), flags, args.config):
        doc = build(args.config, returns=args.returns, preset=args.preset, map=args.map, replicates=args.replicates,
                    seed=args.seed, tests=tests, null=args.null, draws=args.draws, power=args.power,
                    command=shlex.join(["simkit"] + sys.argv[1:]), output=output, format=args.format,
                    progress=not args.quiet, overrides=override_values(flags),
                    shown=lambda problem: shown_as_flags(problem, args))
    write(doc, output, args.format)
    forensics = doc.analyses["forensics"]
    if forensics is not None and forensics.could_not_reject:
        print(f"warning: {floor_line(forensics.could_not_reject, forensics.null, forensics.draws)}", file=sys.stderr)
    if not args.quiet:
        print(f"written: {output}" + (f" ({', '.join(doc.omitted)} left out: see its first section)"
                                      if doc.omitted else ""))
    return 0
