"""``simkit report [CONFIG] [-o report.html] [--returns DATA] [--preset NAME | --map MAP] [--replicates N]
[--seed S] [--format html|md]``: a citable report (see :mod:`simkit.report`). Registered into the main CLI
through :func:`register`."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from simkit.errors import InputError
from simkit.outputs import OVERWRITE_HELP, REPORT, claim_output, contains


def register(subparsers) -> None:
    from simkit.electorate.returns import PRESETS
    from simkit.report import DRAWS, FORMATS, NULL, POWER

    p = subparsers.add_parser("report", help="one self-contained report from a config and/or station returns")
    p.add_argument("config", nargs="?", type=Path, help="a simkit config (optional with --returns/--preset)")
    p.add_argument("-o", "--output", type=Path, help="the report file (default report.html, or report.md)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--returns", type=Path, metavar="DATA", help="station returns (CSV/ZIP) for the forensic tests")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=PRESETS, help="a ready mapping (DATA defaults to its shared file)")
    source.add_argument("--map", type=Path, help="column mapping (TOML) of DATA")
    p.add_argument("--replicates", type=int, help="simulated elections (default: the config's)")
    p.add_argument("--seed", type=int, help="seed (default: the config's, else 0)")
    p.add_argument("--format", choices=FORMATS, default="html", help="html (one file) or md (figures beside it)")
    p.add_argument("--tests", help="forensic test ids, comma-separated (default: all)")
    p.add_argument("--null", choices=("textbook", "simulated"), default=NULL, help=f"forensic null (default {NULL})")
    p.add_argument("--draws", type=int, default=DRAWS, help=f"forensic null draws (default {DRAWS})")
    p.add_argument("--power", type=int, default=POWER, metavar="N",
                   help=f"when no test rejects: size and power in N simulated elections (default {POWER}; 0: skip)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from simkit.forensics import parse_tests
    from simkit.report import build, check_output, write
    from simkit.report.document import GENERATOR

    output = check_output(args.output or Path(f"report.{args.format}"))
    claim_output(output, REPORT, overwrite=args.overwrite, inputs=[args.config, args.returns, args.map],
                 recognise=contains(GENERATOR))
    if args.returns is not None and not (args.preset or args.map):
        raise InputError(f"{args.returns}: --returns: give --preset NAME or --map MAP.toml to read it")
    if args.replicates is not None and args.replicates < 2:
        raise InputError(f"--replicates: {args.replicates}: need at least 2")
    if args.draws < 1 or args.power < 0:
        raise InputError("--draws: must be positive; --power: must be 0 or positive")
    try:
        tests = parse_tests(args.tests) if args.tests else None
    except ValueError as error:
        raise InputError(f"--tests: {error}") from None
    doc = build(args.config, returns=args.returns, preset=args.preset, map=args.map, replicates=args.replicates,
                seed=args.seed, tests=tests, null=args.null, draws=args.draws, power=args.power,
                command=shlex.join(["simkit"] + sys.argv[1:]), output=output, format=args.format,
                progress=not args.quiet)
    write(doc, output, args.format)
    if not args.quiet:
        print(f"written: {output}" + (f" ({', '.join(doc.omitted)} left out: see its first section)"
                                      if doc.omitted else ""))
    return 0
