"""Where ``simkit compare``'s memory goes: the peak of each phase of :func:`simkit.polls.compare.compare_config`.

Runs the comparison in this process and samples the memory of the process tree (sum of proportional set sizes,
as ``benchmarks/memory.py``) every :data:`SAMPLE_SECONDS`; each sample counts for every phase running at that
moment (phases nest: a world simulated during the ledger counts for both). With ``--trace`` it also records each
phase's peak of memory allocated through Python and numpy (``tracemalloc``: every thread of this process, no
worker process, no numba-internal buffer), which says what the arrays themselves take. Phases:

- ``prepare``: the run's plans, count matching included (:func:`simkit.engine.run.prepare`);
- ``world``: one world simulated (:func:`simkit.engine.run.world_votes`: its blocks drawn, the votes and
  voters kept);
- ``polls``: every call of :func:`simkit.polls.draws.draw_polls`: the baseline's polls over every replicate;
- ``pooled``: every call of :func:`simkit.polls.draws.draw_pooled`: the ledger's and the scenarios' draws, each
  task's stations reduced to its replicates' sums (their allocations count in the ledger's or the scenarios' phase
  too);
- ``misreport``: the misreporting rates a published figure needs (:func:`simkit.polls.draws.misreport_needed`);
- ``ledger`` and ``scenarios``: the two passes over the other worlds.

Usage::

    python benchmarks/compare_memory.py [--config PATH] [--replicates 20 100 1000] [--trace] [--json]

Prints one table per size: each phase's calls, the tree's memory when the first call started and its peak in any
call (MB), with ``--trace`` the peak allocated through Python and numpy above what was allocated when the call
started (MB).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import simkit  # noqa: E402
from simkit.engine import resources  # noqa: E402
from simkit.polls import compare, elections, figures, ledger  # noqa: E402
from benchmarks.memory import tree_memory  # noqa: E402  (PSS of the tree, as memory.py samples it)
from benchmarks.phases import sampling, within  # noqa: E402

CONFIG = REPO / "configs" / "kazakhstan-2022-scenarios.toml"
SAMPLE_SECONDS = 0.05
MB = 2**20
#: phase -> the (module, function name) places its function is called through, each wrapped to mark it
PHASES = {"prepare": [(compare, "prepare")], "world": [(elections, "world_votes")], "polls": [(compare, "draw_polls")],
          "pooled": [(ledger, "draw_pooled"), (compare, "draw_pooled")], "misreport": [(figures, "misreport_needed")],
          "ledger": [(compare, "ledger_entries")], "scenarios": [(compare, "_scenarios")]}


class Phases:
    """Per phase: calls, the tree's memory at the first call's start, its peak over every call (bytes), and with
    ``trace`` the peak traced allocation above what was allocated when the call started (bytes)."""

    def __init__(self, trace: bool):
        self.trace, self.lock = trace, threading.Lock()
        self.active: list[tuple[str, int]] = []  # running phases, innermost last, with their traced start
        self.calls, self.start, self.peak, self.traced = {}, {}, {}, {}
        self.process = psutil.Process(os.getpid())
        self.overall = 0

    def sample(self) -> int:
        """The tree's memory now (bytes), counted in the overall peak and every running phase's."""
        memory = tree_memory(self.process)
        with self.lock:
            self.overall = max(self.overall, memory)
            for name, _ in self.active:
                self.peak[name] = max(self.peak.get(name, 0), memory)
        return memory

    def _fold_traced(self) -> None:
        """Count the traced peak since the last reset for every running phase (the caller holds the lock)."""
        if self.trace:
            peak = tracemalloc.get_traced_memory()[1]
            for name, base in self.active:
                self.traced[name] = max(self.traced.get(name, 0), peak - base)
            tracemalloc.reset_peak()

    @contextlib.contextmanager
    def phase(self, name: str):
        memory = self.sample()
        with self.lock:
            self._fold_traced()
            self.calls[name] = self.calls.get(name, 0) + 1
            self.start.setdefault(name, memory)
            entry = (name, tracemalloc.get_traced_memory()[0] if self.trace else 0)
            self.active.append(entry)
        try:
            yield
        finally:
            self.sample()
            with self.lock:
                self._fold_traced()
                self.active.remove(entry)

def measure(config: Path, replicates: int, trace: bool) -> dict:
    """The phases of one comparison of ``config`` at ``replicates`` (the ``simkit compare`` path, no progress
    bar)."""
    cfg = simkit.load_config(config)
    phases = Phases(trace)
    originals = {(module, attribute): getattr(module, attribute)
                 for places in PHASES.values() for module, attribute in places}
    for name, places in PHASES.items():
        for module, attribute in places:
            setattr(module, attribute, within(originals[module, attribute], functools.partial(phases.phase, name)))
    if trace:
        tracemalloc.start()
    try:
        with sampling(phases.sample, SAMPLE_SECONDS):
            compare.compare_config(cfg, replicates=replicates, source=str(config))
    finally:
        if trace:
            tracemalloc.stop()
        for (module, attribute), original in originals.items():
            setattr(module, attribute, original)
    return {"replicates": replicates, "peak_mb": phases.overall / MB,
            "phases": {name: {"calls": phases.calls[name], "start_mb": phases.start[name] / MB,
                              "peak_mb": phases.peak.get(name, 0) / MB,
                              "traced_mb": phases.traced.get(name, 0) / MB if trace else None}
                       for name in phases.calls}}


def table(result: dict) -> str:
    lines = [f"{result['replicates']:,} replicates: tree peak {result['peak_mb']:,.0f} MB",
             f"{'phase':<10} {'calls':>5} {'start MB':>9} {'peak MB':>8} {'traced MB':>10}"]
    for name, phase in result["phases"].items():
        traced = "" if phase["traced_mb"] is None else f"{phase['traced_mb']:10,.0f}"
        lines.append(f"{name:<10} {phase['calls']:>5} {phase['start_mb']:9,.0f} {phase['peak_mb']:8,.0f} {traced}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--replicates", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--trace", action="store_true", help="also the peak allocated through Python and numpy")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if len(args.replicates) > 1:  # each size in a fresh process: nothing of one run is left in the next
        results = []
        for replicates in args.replicates:
            command = [sys.executable, __file__, "--config", str(args.config), "--replicates", str(replicates),
                       "--json"] + (["--trace"] if args.trace else [])
            results += json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    else:
        resources.release_large_blocks()  # as the simkit command does
        results = [measure(args.config, args.replicates[0], args.trace)]
    print(json.dumps(results, indent=1) if args.json else "\n\n".join(table(result) for result in results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
