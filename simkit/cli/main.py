"""Command line: ``simkit run | validate | summary`` (and the subcommands other modules register).

Bad input prints one line on stderr (``file: dotted.field: problem``) and exits with code 2; so does an output that
could not be put in place (:class:`simkit.placement.moves.PlacementError`), the line saying what had been written in
full. """
from __future__ import annotations

import _thread
import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from simkit import io
from simkit.placement import moves, placing
from simkit._version import __version__
from simkit.cli.arguments import (OneLineParser, add_json, add_output, add_overrides, add_quiet, add_replicates,
                                  add_seed, add_selection, positive, shown_as_flags, workers)
from simkit.cli.io import choose, claim_json, config_from, describe, json_text, result_kernel, write_json
from simkit.config.load import data_paths, parse_config
from simkit.config.messages import ConfigError
from simkit.config.inference import InferenceSettings
from simkit.electorate.build import check_station_registers, electorate_of, observed_returns
from simkit.engine import kernels, run as engine
from simkit.engine.distributed import finished, run_on_cluster
from simkit.engine.resources import MMAP_THRESHOLD, REUSED_ARRAYS_THRESHOLD, check_run, release_large_blocks
from simkit.engine.summary import format_summary, summary_rows
from simkit.errors import InputError, counted, one_line
from simkit.outputs import SIMULATION, SUMMARY, claim_output
from simkit.progress import log_to_stderr

EXIT_BAD_INPUT = 2

#: modules that add subcommands through ``register(subparsers)``
PLUGINS = ("simkit.cli.compare", "simkit.cli.forensics", "simkit.cli.infer", "simkit.cli.report",
           "simkit.cli.timeline")


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = config_from(args.config, args)
    args.kernel = args.kernel or result_kernel(args.config)
    if args.output:
        io.output_format(args.output)
        if args.resume and not args.overwrite and finished(cfg, args.output, replicates=args.replicates,
                                                           seed=args.seed, keep=args.keep, kernel=args.kernel,
                                                           source=str(args.config)):
            print(f"{args.output}: the run is complete (no interrupted run to resume); nothing was written")
            return 0
        claim_output(args.output, SIMULATION, overwrite=args.overwrite, inputs=[args.config, *data_paths(cfg)])
    if args.scheduler or args.workers or args.resume:
        return _run_on_cluster(cfg, args)
    # without an output only the printed summary is made: station arrays would be drawn for nothing and held
    # for every replicate, so such a run keeps the totals (the same draws: keep never changes the numbers)
    keep = args.keep if args.output else "summary"
    run = engine.prepare(cfg, args.replicates, args.seed, keep, args.kernel, source=str(args.config),
                         workers=args.processes)
    check_run(run, args.block_size, args.processes or os.cpu_count() or 1, args.output, str(args.config))
    if args.output:
        static = engine.annotate(engine.static_dataset(run), run.config)
        io.write_blocks(static, engine.annotated_blocks(run, args.block_size, args.processes, not args.quiet),
                        args.output, replicates=run.replicates)
        ds = io.open_result(args.output)
    else:
        ds = engine.simulate_run(run, args.block_size, args.processes, not args.quiet)
    _print_outcome(ds, args)
    return 0


def _print_outcome(ds, args: argparse.Namespace) -> None:
    if not args.quiet or not args.output:
        print(format_summary(ds))
    if args.output and not args.quiet:
        print(f"written: {args.output}")


def _run_on_cluster(cfg, args: argparse.Namespace) -> int:
    log_to_stderr(logging.WARNING if args.quiet else logging.INFO)  # quiet: the warnings alone
    if args.scheduler and args.workers:
        raise InputError("--scheduler, --workers: give one (a running scheduler, or N local worker processes)")
    cluster_workers = args.workers or (None if args.scheduler else args.processes or os.cpu_count() or 1)
    ds = run_on_cluster(cfg, args.output, replicates=args.replicates, seed=args.seed, keep=args.keep,
                        block_size=args.block_size or engine.DEFAULT_BLOCK_SIZE, scheduler=args.scheduler,
                        workers=cluster_workers,
                        resume=args.resume, quiet=args.quiet, kernel=args.kernel, source=str(args.config))
    _print_outcome(ds, args)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        cfg = config_from(args.config, args)
    except ConfigError as error:
        for problem in error.problems:
            print(one_line(problem), file=sys.stderr)
        return EXIT_BAD_INPUT
    electorate = electorate_of(cfg)
    check_station_registers(electorate, observed_returns(cfg, (cfg.inference or InferenceSettings()).statistics))
    print(f"{args.config}: ok ({counted(electorate.n_stations, 'station')}, "
          f"{int(electorate.registered.sum()):,} registered, {len(cfg.options)} options, "
          f"{len(cfg.sweep_points())} sweep point(s))")
    return 0


#: the keys of ``simkit summary --json``
SUMMARY_KEYS = ("title", "replicates", "seed", "chosen", "rows")


def _cmd_summary(args: argparse.Namespace) -> int:
    claim_json(args, SUMMARY, SUMMARY_KEYS, [args.path])
    ds = io.open_result(args.path)
    if "simkit_config" not in ds.attrs or "total_votes" not in ds:
        raise InputError(f"{args.path}: not a simkit simulation result (no simkit_config attrs or totals)")
    chosen = choose(ds, args, str(args.path), every=True)  # without a choice: every scenario and sweep point
    described = describe(ds, chosen) or "all"
    ds = ds.isel({dim: [k] for dim, k in chosen.items()})
    payload = {"title": str(ds.attrs.get("title", "")), "replicates": ds.sizes["replicate"],
               "seed": int(ds.attrs["seed"]) if "seed" in ds.attrs else None,
               "chosen": described,
               "rows": summary_rows(ds, parse_config(ds.attrs["simkit_config"], source=f"{args.path} (stored config)"))}
    print(json_text(payload) if args.json else format_summary(ds))
    if args.output:
        write_json(payload, args.output)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="simkit", description="Election-integrity statistics.")
    parser.add_argument("--version", action="version", version=f"simkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="simulate elections from a config")
    run.add_argument("config", type=Path, help="a config file, or a saved result to rerun from its stored config")
    add_output(run, "the result (.zarr or .nc)")
    add_replicates(run)
    add_seed(run)
    run.add_argument("--keep", choices=["full", "summary"],
                     help="station-level arrays or totals only (default: the config's run.keep)")
    add_overrides(run)
    run.add_argument("--block-size", type=positive, help="replicates per block (default: as many as fit in 32 MiB, at "
                     "most 32; does not change results)")
    run.add_argument("--processes", type=workers, help="local workers: processes, or threads with the numba kernel "
                     "(default: all cores; does not change results)")
    run.add_argument("--kernel", choices=kernels.KERNELS,
                     help=f"random-draw kernel: numba (compiled, its own exact samplers) or numpy (the reference "
                          f"path); recorded in the attrs (default {engine.DEFAULT_KERNEL}; a saved result reruns "
                          f"with its own)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="run on a running dask scheduler (tcp://host:port)")
    run.add_argument("--workers", type=workers, metavar="N", help="run on N local dask worker processes")
    run.add_argument("--resume", action="store_true", help="finish an interrupted dask run into the same .zarr output")
    add_quiet(run, "no progress bar, no summary when writing a file")
    run.set_defaults(func=_cmd_run)

    validate = sub.add_parser("validate", help="check a config and list every problem")
    validate.add_argument("config", type=Path, help="a config file")
    add_overrides(validate)
    validate.set_defaults(func=_cmd_validate)

    summary = sub.add_parser("summary", help="summarise a saved result (every scenario and sweep point, unless "
                                             "--scenario or --point chooses one)")
    summary.add_argument("path", type=Path, help="a simulated result (.zarr or .nc)")
    add_selection(summary)
    add_json(summary)
    add_output(summary, "the --json output to PATH.json")
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


#: seconds after a stop was dropped in a finaliser that :func:`_stops_not_swallowed` sends it again
RESENT_AFTER = 0.01


@contextlib.contextmanager
def _stops_not_swallowed():
    """Keep a stop from being lost in a finaliser. A signal whose handler raises (KeyboardInterrupt for SIGINT,
    :class:`Terminated` for SIGTERM) while a ``__del__`` or a weakref callback runs (an event loop's, a store's,
    collected at that moment) raises inside it, and Python prints the exception as "Exception ignored in ..." and
    goes on: the run carried on to its end as if no signal had come. While this is active, such a stop is sent to
    the main thread again (``_thread.interrupt_main`` with its signal) from a thread of its own a moment later
    (:data:`RESENT_AFTER`: sent from here, the handler would raise inside this hook, which Python ignores too),
    so the handler raises it once the finaliser has returned (in a finaliser still, it comes back here and is sent
    again); any other exception ignored there is shown as before. A stop not yet sent again when this ends is not
    sent (the command had finished); one sent just before is raised as this ends (:func:`main` tells it)."""
    previous, lock, active = sys.unraisablehook, threading.Lock(), [True]

    def send(signum):
        with lock:
            if active[0]:
                _thread.interrupt_main(signum)

    def hook(unraisable):
        stop = unraisable.exc_type
        if stop is not None and issubclass(stop, (KeyboardInterrupt, Terminated)):
            resend = threading.Timer(RESENT_AFTER, send,
                                     args=(signal.SIGTERM if issubclass(stop, Terminated) else signal.SIGINT,))
            resend.daemon = True
            resend.start()
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
        with lock:
            active[0] = False


#: what a command stopped by a signal says when it had put nothing in place
NOTHING_STOPPED = "nothing was written to the target (a dask run keeps its finished blocks for --resume)"
#: what a command whose outputs could not be put in place (:class:`simkit.placement.moves.PlacementError`) says when
#: it had put nothing in place: those it had placed were put back
NOTHING_PLACED = placing.NOTHING_CHANGED


def _outcome(placed: list[Path], ended: str, nothing: str) -> str:
    """What a command that ``ended`` ("stopped", "failed") leaves: the outputs it had already put in place, complete
    (``placed``: :func:`simkit.placement.moves.recording_placed`; a signal that arrives while a dask cluster closes or
    the summary prints, a figure replaced before the placement failed), else ``nothing``."""
    if placed:
        return f"{', '.join(map(str, placed))} had been written in full before it {ended}"
    return nothing


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # a command's memory stays bounded by its blocks, however many it draws; forensics' null draws reuse theirs
    release_large_blocks(REUSED_ARRAYS_THRESHOLD if args.command == "forensics" else MMAP_THRESHOLD)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    log_to_stderr(logging.WARNING)  # the library's warnings, --quiet or not (a cluster run not quiet: its notes too)
    placed: list[Path] = []
    try:
        stops = _stops_not_swallowed() if in_main_thread else contextlib.nullcontext()
        with moves.recording_placed() as placed, stops:
            return _command(args, placed)
    except (Terminated, KeyboardInterrupt) as stop:  # sent again as the command ended (_stops_not_swallowed)
        return _stopped(stop, placed)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _command(args: argparse.Namespace, placed: list[Path]) -> int:
    """Run the parsed command; its exit code, with a failure or a stop (``placed``: what it had written in full)
    told in one line on stderr."""
    try:
        return args.func(args)
    except (Terminated, KeyboardInterrupt) as stop:
        return _stopped(stop, placed)
    except InputError as error:
        print(one_line(shown_as_flags(error, args)) or type(error).__name__, file=sys.stderr)
        return EXIT_BAD_INPUT
    except moves.PlacementError as error:
        print(f"{error}; {_outcome(placed, 'failed', NOTHING_PLACED)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0


def _stopped(stop: BaseException, placed: list[Path]) -> int:
    """A command stopped by ``stop`` (:class:`Terminated`: SIGTERM, else Ctrl-C): one line saying what it had
    written in full (``placed``), and its exit code (143, 130)."""
    terminated = isinstance(stop, Terminated)
    print(f"{'terminated' if terminated else 'interrupted'}: {_outcome(placed, 'stopped', NOTHING_STOPPED)}",
          file=sys.stderr)
    return 128 + signal.SIGTERM if terminated else 130


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
