"""``simkit infer CONFIG [--set dotted.key=value ...] [-o PATH] [--json] [--particles N] [--seed S]
[--workers W | --scheduler ADDRESS] [--quiet]``.

Prints the plain-language posterior summary (or, with ``--json``, the object with ``"parameters"``,
``"tolerance"`` and ``"warnings"``); the warnings also go to stderr. ``-o`` writes the ArviZ groups
(``posterior``, ``posterior_predictive``, ``observed_data``, ``sample_stats``) atomically (``.zarr`` or
``.nc``).

``--set`` overrides config fields as in the other commands that run a config (a problem it causes is blamed on the
flag). ``--sweep`` is accepted by the parser like everywhere else but refused by the config's own rule: inferred
fields replace swept ones, so a config with ``[[infer]]`` blocks cannot sweep (one line, exit 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simkit import io
from simkit.cli.arguments import add_overrides, workers
from simkit.cli.io import config_from, json_text
from simkit.config.load import data_paths
from simkit.engine.distributed import check_workers, connect
from simkit.errors import InputError
from simkit.inference import infer
from simkit.outputs import INFERENCE, OVERWRITE_HELP, claim_output


def _cmd_infer(args: argparse.Namespace) -> int:
    if args.scheduler and args.workers:
        raise InputError("--scheduler and --workers: give one (a dask cluster, or local processes)")
    if args.output:
        io.output_format(args.output)
    cfg = config_from(args.config, args)
    blocks, settings = list(cfg.infer), cfg.inference
    if args.output:
        claim_output(args.output, INFERENCE, overwrite=args.overwrite, inputs=[args.config, *data_paths(cfg)])
    progress = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    if args.scheduler:
        with connect(scheduler=args.scheduler) as client:
            check_workers(client)
            result = infer(cfg, blocks, settings, particles=args.particles, seed=args.seed, progress=progress,
                           client=client, source=str(args.config))
    else:
        result = infer(cfg, blocks, settings, particles=args.particles, seed=args.seed, workers=args.workers,
                       progress=progress, bar=not args.quiet, source=str(args.config))
    if args.output:
        io.write_tree(result.to_datatree(), args.output)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json_text(result.to_json()))
    else:
        print(result.format())
    if args.output and not args.quiet:
        print(f"written: {args.output}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add ``infer`` to the ``simkit`` command line."""
    parser = subparsers.add_parser("infer", help="posterior of the [[infer]] fields given [observed] (ABC-SMC)")
    parser.add_argument("config", type=Path, help="config with [[infer]] priors and [observed] evidence")
    add_overrides(parser)
    parser.add_argument("-o", "--output", type=Path, help="result path (.zarr or .nc): the ArviZ groups")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--particles", type=int, help="particles per generation (overrides [inference])")
    parser.add_argument("--seed", type=int, help="seed (overrides [inference])")
    parser.add_argument("--workers", type=workers, help="simulating processes (does not change results)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="simulate on the dask scheduler at ADDRESS (tcp://host:port; does not change results)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    parser.set_defaults(func=_cmd_infer)
