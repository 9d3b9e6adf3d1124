"""Command line: ``simkit run | validate | summary`` (and the subcommands other modules register).

Bad input prints one line on stderr (``file: dotted.field: problem``) and exits with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from pathlib import Path

from simkit.errors import InputError, one_line

EXIT_BAD_INPUT = 2

#: modules that add subcommands through ``register(subparsers)``
PLUGINS = ("simkit.cli.compare", "simkit.cli.forensics", "simkit.cli_infer", "simkit.cli.report",
           "simkit.cli.timeline")


def _overrides(assignments: list[str]) -> dict:
    from simkit.config.core import parse_value

    overrides = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise InputError(f"--set {assignment}: expected dotted.key=value")
        overrides[key.strip()] = parse_value(value.strip())
    return overrides


def _config_or_result(path: Path, overrides: dict):
    """A config file, or a saved result whose resolved config (in its attrs) is rerun bit for bit."""
    from simkit.config.core import load_config, parse_config
    from simkit.io import FORMATS, open_result

    if path.suffix.lower() not in FORMATS:
        return load_config(path, overrides)
    attrs = open_result(path).attrs
    if "simkit_config" not in attrs:
        raise InputError(f"{path}: not a simkit result (no simkit_config attribute)")
    return parse_config(attrs["simkit_config"], source=f"{path} (stored config)", overrides=overrides)


def _cmd_run(args: argparse.Namespace) -> int:
    from simkit.engine import run as engine
    from simkit import io
    from simkit.progress import progress_bar
    from simkit.engine.summary import format_summary

    from simkit.config.core import data_paths
    from simkit.outputs import SIMULATION, claim_output
    from simkit.engine.resources import check_run

    cfg = _config_or_result(args.config, _overrides(args.set))
    if args.output:
        io.output_format(args.output)
        claim_output(args.output, SIMULATION, overwrite=args.overwrite, inputs=[args.config, *data_paths(cfg)])
    if args.scheduler or args.workers or args.resume:
        return _run_on_cluster(cfg, args)
    run = engine.prepare(cfg, args.replicates, args.seed, args.keep, args.kernel, source=str(args.config))
    check_run(run, args.block_size, args.processes or os.cpu_count() or 1, args.output, str(args.config))
    static = engine.annotate(engine.static_dataset(run), run.config)
    with progress_bar(run.replicates, enabled=not args.quiet) as bar:
        def counted(blocks):
            for block in blocks:
                bar.update(block.sizes["replicate"])
                yield engine.annotate(block, run.config)
        blocks = counted(engine.iter_blocks(run, args.block_size, args.processes))
        if args.output:
            io.write_blocks(static, blocks, args.output)
        else:
            parts = list(blocks)
    if args.output:
        ds = io.open_result(args.output)
    else:
        import xarray as xr
        ds = xr.merge([static, xr.concat(parts, dim="replicate")], combine_attrs="override")
    if not args.quiet or not args.output:
        print(format_summary(ds, run.config))
    if args.output and not args.quiet:
        print(f"written: {args.output}")
    return 0


def _run_on_cluster(cfg, args: argparse.Namespace) -> int:
    from simkit.engine.distributed import run_on_cluster
    from simkit.engine.summary import format_summary

    if args.scheduler and args.workers:
        raise InputError("--scheduler, --workers: give one (a running scheduler, or N local worker processes)")
    workers = args.workers or (None if args.scheduler else args.processes or os.cpu_count() or 1)
    ds = run_on_cluster(cfg, args.output, replicates=args.replicates, seed=args.seed, keep=args.keep,
                        block_size=args.block_size, scheduler=args.scheduler, workers=workers,
                        resume=args.resume, quiet=args.quiet, kernel=args.kernel, source=str(args.config))
    if not args.quiet or not args.output:
        print(format_summary(ds))
    if args.output and not args.quiet:
        print(f"written: {args.output}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from simkit.config.core import ConfigError, load_config

    try:
        cfg = load_config(args.config, _overrides(args.set))
    except ConfigError as error:
        for problem in error.problems:
            print(one_line(problem), file=sys.stderr)
        return EXIT_BAD_INPUT
    from simkit.electorate.build import build_electorate

    electorate = build_electorate(cfg.electorate)
    print(f"{args.config}: ok ({electorate.n_stations:,} stations, {int(electorate.registered.sum()):,} registered, "
          f"{len(cfg.options)} options, {len(cfg.sweep_points())} sweep point(s))")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from simkit.io import open_result
    from simkit.engine.summary import format_summary

    ds = open_result(args.path)
    if "simkit_config" not in ds.attrs or "total_votes" not in ds:
        raise InputError(f"{args.path}: not a simkit simulation result (no simkit_config attrs or totals)")
    print(format_summary(ds))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from simkit.cli.arguments import OneLineParser, positive, workers
    from simkit.outputs import OVERWRITE_HELP

    parser = OneLineParser(prog="simkit", description="Election-integrity statistics.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="simulate elections from a config")
    run.add_argument("config", type=Path, help="a config file, or a saved result to rerun from its stored config")
    run.add_argument("-o", "--output", type=Path, help="result path (.zarr or .nc)")
    run.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    run.add_argument("--replicates", type=int)
    run.add_argument("--seed", type=int)
    run.add_argument("--keep", choices=["full", "summary"], help="station-level arrays or totals only")
    run.add_argument("--set", action="append", default=[], metavar="dotted.key=value", help="override a config field")
    run.add_argument("--block-size", type=positive, default=32, help="replicates per block (does not change results)")
    run.add_argument("--processes", type=workers, help="local workers: processes, or threads with the numba kernel "
                     "(default: all cores; does not change results)")
    run.add_argument("--kernel", choices=["numpy", "numba"], default="numpy",
                     help="random-draw kernel: numpy, or numba (fused, its own exact samplers); recorded in the attrs")
    run.add_argument("--scheduler", metavar="ADDRESS", help="run on a running dask scheduler (tcp://host:port)")
    run.add_argument("--workers", type=workers, metavar="N", help="run on N local dask worker processes")
    run.add_argument("--resume", action="store_true", help="finish an interrupted dask run into the same .zarr output")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no summary when writing a file")
    run.set_defaults(func=_cmd_run)

    validate = sub.add_parser("validate", help="check a config and list every problem")
    validate.add_argument("config", type=Path)
    validate.add_argument("--set", action="append", default=[], metavar="dotted.key=value")
    validate.set_defaults(func=_cmd_validate)

    summary = sub.add_parser("summary", help="summarise a saved result")
    summary.add_argument("path", type=Path)
    summary.set_defaults(func=_cmd_summary)

    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as missing:
            if missing.name != name:
                raise
            continue
        module.register(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like KeyboardInterrupt (staging removed, workers stopped)."""


def _raise_terminated(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return args.func(args)
    except Terminated:
        print("terminated: nothing was written to the target (a dask run keeps its finished blocks for --resume)",
              file=sys.stderr)
        return 128 + signal.SIGTERM
    except InputError as error:
        print(one_line(str(error)) or type(error).__name__, file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted: nothing was written to the target (a dask run keeps its finished blocks for --resume)",
              file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


#: exit codes of a run stopped by a signal (SIGINT, SIGTERM)
INTERRUPTED = (130, 128 + signal.SIGTERM)


def run() -> None:
    """The ``simkit`` command: :func:`main`, then exit. A run stopped by a signal has already removed its staging
    and stopped its worker processes while unwinding; it then exits at once, without joining threads that may
    still be inside compiled code or waiting for draws that will never come (a normal interpreter exit would
    wait for them, so the command would outlive the signal)."""
    code = main()
    if code in INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
