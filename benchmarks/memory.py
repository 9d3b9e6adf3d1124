"""Peak memory of simkit's commands at two numbers of replicates: memory is bounded by the block, not the run.

Runs each command as a child process and samples the memory of its whole process tree (the command and its
worker processes) every :data:`SAMPLE_SECONDS` as the sum of their proportional set sizes (PSS: a page shared
by forked workers counts once in total, not once per process); reports the peak, the CPU seconds of the tree
and the wall time. Commands (the flagship's scenarios config: 3 sweep points × 5 count-matched scenarios):

- ``run``: ``simkit run CONFIG --replicates N -o RESULT.zarr --quiet`` (full station-level output streamed to
  zarr block by block);
- ``run-summary``: ``simkit run CONFIG --replicates N`` (no output: the printed summary; totals only);
- ``compare``: ``simkit compare CONFIG --replicates N --json`` (one world simulated at a time);
- ``report``: ``simkit report CONFIG --replicates N -o REPORT.html`` (totals-only simulation, then the polls as
  ``compare``);
- ``run-netcdf`` (only when named in ``--commands``): ``simkit run CONFIG --replicates N -o RESULT.nc --quiet``
  (every replicate's arrays gathered in memory and written once, :func:`simkit.io.write_blocks`).

Checks, per command (exit code 1 when one fails):

- ``run`` and ``run-summary``: the peak at the larger size is at most the peak at the smaller size times
  (1 + :data:`GROWTH_TOLERANCE`) plus :data:`GROWTH_SLACK_MB` (allocator and interpreter noise);
- ``compare`` and ``report``: hold one world (every replicate's station votes of one sweep point and scenario, int16
  or int32, and its voters' choices where a manipulation acts on voters) and each poll's draws over every replicate, so
  their peak may grow by that much and no more (:func:`_held_mb`) plus the same tolerance;
- ``run-netcdf``: grows with the replicates by design, by what the resource guard reserves for a gathered output
  (:func:`_gathered_mb`: twice the replicates' int64 arrays), plus the same tolerance;
- every command but ``run-netcdf``: the peak at the larger size within :data:`LIMIT_MB` (1.5 GB, the target of
  issue 19).

Usage::

    python benchmarks/memory.py [--sizes 100 1000] [--commands run run-summary compare] [--config PATH]
                                [--smoke] [--json]
    python benchmarks/memory.py --commands run-netcdf --sizes 10 30   # a netCDF output: small sizes
    python benchmarks/memory.py --table REPORT.json [REPORT.json ...]   # docs/performance.md's table of saved reports

``--smoke`` runs a small synthetic election at 20 and 40 replicates (no claims; for CI; ``compare`` and ``report``
need more replicates than the config's polls publish figures, 18 on the flagship's scenarios).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # psutil is in the test extra only: imported where it is used, so that scripts/examples.py
    import psutil  # can use simkit_child and failure without it

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the bounds read this checkout's simkit (the commands run it too: simkit_child)
CONFIG = REPO / "configs" / "kazakhstan-2022-scenarios.toml"
#: seconds between samples of the process tree's memory
SAMPLE_SECONDS = 0.2
#: relative growth of the peak allowed between the two sizes (allocator fragmentation, larger progress state)
GROWTH_TOLERANCE = 0.10
#: absolute growth allowed on top (MB): the interpreter, imports and the allocator's arenas vary by this much
GROWTH_SLACK_MB = 64
#: the peak allowed at the larger size (MB)
LIMIT_MB = 1500
MB = 2**20
COMMANDS = ("run", "run-summary", "compare", "report", "run-netcdf")
#: the commands run when ``--commands`` is not given (a netCDF output of 1,000 replicates of the flagship's
#: scenarios would gather 47 GB: ``run-netcdf`` is measured at sizes chosen for it)
DEFAULT_COMMANDS = ("run", "run-summary", "compare", "report")
#: commands whose memory grows with the replicates by design, beyond :data:`LIMIT_MB` at large sizes
UNLIMITED = ("run-netcdf",)


def tree_memory(process: psutil.Process) -> int:
    """Bytes of memory of ``process`` and all its descendants (sum of PSS; RSS where PSS is not available)."""
    import psutil
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
        except psutil.AccessDenied:
            info = member.memory_info()
        except psutil.NoSuchProcess:
            continue
        total += getattr(info, "pss", info.rss)
    return total


def tree_cpu(process: psutil.Process, seen: dict[int, float]) -> float:
    """CPU seconds (user + system) of ``process`` and its descendants: ``seen`` (pid -> seconds) gets every live
    member's, and their sum over ``seen`` is returned (a member that ended counts with its last sample)."""
    import psutil
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seen[member.pid] = times.user + times.system
    return sum(seen.values())


@contextmanager
def simkit_child(arguments: list[str]) -> Iterator[subprocess.Popen]:
    """``python -m simkit.cli.main ARGUMENTS`` started as a child from the repository's root with this checkout's
    simkit (stdout discarded, stderr piped); when the block ends with the child still running (interrupted, or
    this script terminated: :func:`exit_on_terminate`) it is terminated (it stops its own workers) and waited for."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-m", "simkit.cli.main", *arguments], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()


def failure(arguments: list[str], child: subprocess.Popen, stderr: str) -> str | None:
    """What went wrong with the finished ``child`` of :func:`simkit_child` (the command, its exit code and the end
    of its ``stderr``), None when it exited 0."""
    if child.returncode == 0:
        return None
    return f"simkit {' '.join(arguments)}: exit {child.returncode}: {stderr.strip()[-500:]}"


def measure(arguments: list[str]) -> dict:
    """Run ``python -m simkit.cli.main ARGUMENTS``; its peak tree memory (MB), CPU seconds and wall seconds."""
    import psutil
    start = time.perf_counter()
    peak, cpu = 0, {}
    with simkit_child(arguments) as child:
        process = psutil.Process(child.pid)
        while child.poll() is None:
            try:
                peak = max(peak, tree_memory(process))
                tree_cpu(process, cpu)
            except psutil.NoSuchProcess:
                break
            time.sleep(SAMPLE_SECONDS)
        stderr = child.communicate()[1].decode(errors="replace")
    wall = time.perf_counter() - start
    problem = failure(arguments, child, stderr)
    if problem:
        raise SystemExit(problem)
    return {"peak_mb": peak / MB, "cpu_seconds": sum(cpu.values()), "wall_seconds": wall}


def _arguments(command: str, config: Path, replicates: int, folder: str) -> list[str]:
    if command == "run":
        return ["run", str(config), "--replicates", str(replicates), "-o", f"{folder}/r{replicates}.zarr", "--quiet",
                "--overwrite"]
    if command == "run-netcdf":
        return ["run", str(config), "--replicates", str(replicates), "-o", f"{folder}/r{replicates}.nc", "--quiet",
                "--overwrite"]
    if command == "run-summary":
        return ["run", str(config), "--replicates", str(replicates)]
    if command == "report":
        return ["report", str(config), "--replicates", str(replicates), "-o", f"{folder}/r{replicates}.html",
                "--overwrite"]
    return ["compare", str(config), "--replicates", str(replicates), "--json"]


def _held_mb(config: Path, replicates: int) -> float:
    """MB that ``compare`` holds by design for ``replicates``: one world's votes and voters (replicates ×
    stations × options × 2, of :func:`simkit.io.count_dtype`: 2 bytes a value where every register is
    below 32,768, else 4 or 8) and each poll's draws (respondents by true and by reported vote, int64, replicates ×
    the poll's stations at its range midpoint × options × 8 bytes × 2)."""
    import simkit
    from simkit.config.polls import midpoint
    from simkit.electorate.build import build_electorate
    from simkit.io import count_dtype

    cfg = simkit.load_config(config)
    options = len(cfg.options)
    itemsize = count_dtype(build_electorate(cfg.electorate).registered).itemsize
    world = replicates * cfg.electorate.stations * options * itemsize * 2
    polls = sum(round(midpoint(poll.stations)) for poll in cfg.polls)
    draws = replicates * polls * options * 8 * 2
    return (world + draws) / MB


def _gathered_mb(config: Path, sizes: tuple[int, ...]) -> list[float]:
    """MB that the resource guard reserves for a netCDF output of each number of replicates in ``sizes``: its
    estimate with the replicates gathered less the one streamed (:func:`simkit.engine.resources.peak_memory`:
    every replicate's int64 arrays, :func:`simkit.engine.resources.plan`, twice while they are concatenated; the
    blocks in flight, the same in both, cancel whatever their size). Prepares the run once (its count matching
    included) for the bytes per replicate."""
    import simkit
    from simkit.engine.resources import peak_memory, plan
    from simkit.engine.run import prepare

    per_replicate = plan(prepare(simkit.load_config(config), replicates=max(sizes))).per_replicate
    return [(peak_memory(per_replicate, n, n, 1, True) - peak_memory(per_replicate, n, n, 1, False)) / MB
            for n in sizes]


def grows_mb(command: str, config: Path, small_n: int, large_n: int) -> float:
    """MB by which ``command``'s peak may grow by design from ``small_n`` to ``large_n`` replicates."""
    if command in ("compare", "report"):
        return _held_mb(config, large_n) - _held_mb(config, small_n)
    if command == "run-netcdf":
        small, large = _gathered_mb(config, (small_n, large_n))
        return large - small
    return 0.0


def allowed_mb(small: dict, extra_mb: float) -> float:
    """The peak allowed at the larger size, from the ``small`` run's and what grows by design (``extra_mb``)."""
    return small["peak_mb"] * (1 + GROWTH_TOLERANCE) + GROWTH_SLACK_MB + extra_mb


def check(command: str, small: dict, large: dict, extra_mb: float) -> list[str]:
    """Failures of ``command``'s bound (empty when it holds)."""
    allowed = allowed_mb(small, extra_mb)
    problems = []
    if large["peak_mb"] > allowed:
        problems.append(f"{command}: peak {large['peak_mb']:.0f} MB at {large['replicates']} replicates exceeds "
                        f"{allowed:.0f} MB allowed from {small['peak_mb']:.0f} MB at {small['replicates']}")
    if large["peak_mb"] > LIMIT_MB and command not in UNLIMITED:
        problems.append(f"{command}: peak {large['peak_mb']:.0f} MB above {LIMIT_MB} MB")
    return problems


#: ``--smoke``: the electorate shrunk to this many stations (register in proportion)
SMOKE_STATIONS = 1_200  # the flagship's largest poll samples 1,000 stations


def _smoke_config(config: Path, folder: str) -> Path:
    """``config`` on a small electorate (:data:`SMOKE_STATIONS` stations), for ``--smoke``."""
    path = Path(folder) / "smoke.toml"
    path.write_text(f'extends = "{config.resolve().as_posix()}"\n[electorate]\nstations = {SMOKE_STATIONS}\n'
                    f'registered = {SMOKE_STATIONS * 1_200}\n')
    return path


def table(reports: list[dict]) -> str:
    """Markdown rows of the commands measured in ``reports`` (the ``--json`` output of one or more runs of this
    script): per command its two sizes' peak, CPU and wall seconds, the peak allowed at the larger size and
    whether the bound holds; then the problems, if any."""
    rows = ["| command | replicates | peak memory (PSS, tree) | CPU s | wall s | allowed at the larger size | bound |",
            "|---|---|---|---|---|---|---|"]
    problems = []
    for report in reports:
        for command, results in report["commands"].items():
            allowed = report["allowed_mb"][command]
            holds = not any(problem.startswith(f"{command}:") for problem in report["problems"])
            for result in results:
                verdict = (f"{allowed:,.0f} MB", "holds" if holds else "FAILS") if result is results[-1] else ("", "")
                rows.append(f"| {command} | {result['replicates']:,} | {result['peak_mb']:,.0f} MB | "
                            f"{result['cpu_seconds']:,.0f} | {result['wall_seconds']:,.0f} | "
                            f"{verdict[0]} | {verdict[1]} |")
        problems += report["problems"]
    return "\n".join(rows + ([""] + problems if problems else []))


def exit_on_terminate(signum, frame):
    """A SIGTERM handler: exit as from an interrupt, so that ``finally`` blocks stop children and remove folders."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, exit_on_terminate)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=None, metavar=("SMALL", "LARGE"),
                        help="replicates of the two runs (default 100 1000; smoke 20 40)")
    parser.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(DEFAULT_COMMANDS),
                        help=f"default: {' '.join(DEFAULT_COMMANDS)}")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--smoke", action="store_true", help="a small electorate, tiny sizes (no claims)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--table", type=Path, nargs="+", metavar="JSON",
                        help="print the markdown table of saved --json reports (measures nothing)")
    args = parser.parse_args(argv)
    if args.table:
        print(table([json.loads(path.read_text()) for path in args.table]))
        return 0
    small_n, large_n = args.sizes or ((20, 40) if args.smoke else (100, 1000))
    report = {"config": str(args.config), "sizes": [small_n, large_n], "smoke": args.smoke,
              "tolerance": {"relative": GROWTH_TOLERANCE, "slack_mb": GROWTH_SLACK_MB, "limit_mb": LIMIT_MB},
              "commands": {}, "allowed_mb": {}, "problems": []}
    with tempfile.TemporaryDirectory(prefix="simkit-memory-") as folder:
        config = _smoke_config(args.config, folder) if args.smoke else args.config
        for command in args.commands:
            results = []
            for replicates in (small_n, large_n):
                results.append({"replicates": replicates, **measure(_arguments(command, config, replicates, folder))})
                print(f"{command} {json.dumps(results[-1])}", file=sys.stderr, flush=True)
            extra = grows_mb(command, config, small_n, large_n)
            report["commands"][command] = results
            report["allowed_mb"][command] = allowed_mb(results[0], extra)
            report["problems"] += check(command, results[0], results[1], extra)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"peak memory of the process tree (PSS, MB), {args.config.name}; bound: larger ≤ smaller × "
              f"{1 + GROWTH_TOLERANCE:.2f} + {GROWTH_SLACK_MB} MB (compare, report: + one world; run-netcdf: + the "
              f"guard's reservation for the gathered replicates), and ≤ {LIMIT_MB} MB (run-netcdf: no limit)")
        for command, results in report["commands"].items():
            cells = "   ".join(f"{r['replicates']:>5} replicates: {r['peak_mb']:7.0f} MB, "
                               f"{r['cpu_seconds']:7.1f} CPU s, {r['wall_seconds']:7.1f} s" for r in results)
            print(f"  {command:<12} {cells}")
        print("bound holds" if not report["problems"] else "\n".join(report["problems"]))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
