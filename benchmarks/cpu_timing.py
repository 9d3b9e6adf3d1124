"""Timing helpers of the kernel's profiling scripts (``kernel_profile.py``, ``lanes_profile.py``,
``chain_variants.py``): their common options and the best CPU time of calls timed in turn.

The scripts run from this folder (``python benchmarks/NAME.py``), which puts it on the import path: they import this
module as ``cpu_timing``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Hashable, TypeVar

Key = TypeVar("Key", bound=Hashable)


def profile_parser(description: str, replicates: int, repeats: int) -> argparse.ArgumentParser:
    """The options of a profiling script: ``--replicates``, ``--repeats`` (best kept) and ``--json``, with these
    defaults; a script adds its own before parsing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--replicates", type=int, default=replicates)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--json", action="store_true")
    return parser


def best_cpu_seconds(calls: dict[Key, Callable[[], object]], repeats: int) -> dict[Key, float]:
    """CPU seconds (``time.process_time``: every thread of this process) of each of ``calls``, the best of
    ``repeats``, the calls taking turns within each repeat (so that other load on the machine inflates them alike,
    the minimum least). Each is called once first, untimed: numba compiles a function at its first call."""
    for call in calls.values():
        call()
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for key, call in calls.items():
            started = time.process_time()
            call()
            best[key] = min(best[key], time.process_time() - started)
    return best
