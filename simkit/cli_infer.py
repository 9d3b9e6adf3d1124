"""``simkit infer CONFIG [-o PATH] [--json] [--particles N] [--seed S] [--workers W | --scheduler ADDRESS]
[--quiet]``.

Prints the plain-language posterior summary (or, with ``--json``, the object with ``"parameters"`` and
``"tolerance"``); ``-o`` writes the posterior, predictive checks and final particles atomically
(``.zarr`` or ``.nc``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import InputError


def _cmd_infer(args: argparse.Namespace) -> int:
    from . import io
    from simkit.config.core import data_paths
    from .infer import infer, load_inference
    from .outputs import INFERENCE, claim_output

    if args.output:
        io.output_format(args.output)
    cfg, blocks, settings = load_inference(args.config)
    if args.output:
        claim_output(args.output, INFERENCE, overwrite=args.overwrite, inputs=[args.config, *data_paths(cfg)])
    progress = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    if args.scheduler:
        from simkit.engine.distributed import check_workers, connect

        if args.workers:
            raise InputError("--scheduler and --workers: give one (a dask cluster, or local processes)")
        with connect(scheduler=args.scheduler) as client:
            check_workers(client)
            result = infer(cfg, blocks, settings, particles=args.particles, seed=args.seed, progress=progress,
                           client=client)
    else:
        result = infer(cfg, blocks, settings, particles=args.particles, seed=args.seed, workers=args.workers,
                       progress=progress)
    if args.output:
        io.write_dataset(result.to_dataset(), args.output)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.format())
    if args.output and not args.quiet:
        print(f"written: {args.output}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add ``infer`` to the ``simkit`` command line."""
    from simkit.cli.arguments import positive, workers
    from .outputs import OVERWRITE_HELP

    parser = subparsers.add_parser("infer", help="posterior of the [[infer]] fields given [observed] (ABC-SMC)")
    parser.add_argument("config", type=Path, help="a config with [[infer]] blocks and [observed] figures")
    parser.add_argument("-o", "--output", type=Path, help="result path (.zarr or .nc)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--particles", type=positive, help="particles per generation (overrides [inference])")
    parser.add_argument("--seed", type=int, help="seed (overrides [inference])")
    parser.add_argument("--workers", type=workers, help="simulating processes (does not change results)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="simulate on the dask scheduler at ADDRESS (tcp://host:port; does not change results)")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    parser.set_defaults(func=_cmd_infer)
