"""Profiling a run in this process phase by phase (``benchmarks/compare_memory.py``,
``scripts/calibration_phases.py``): functions wrapped so that each call runs inside its phase, and a thread that
samples the process meanwhile.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Callable, ContextManager


def within(function: Callable, phase: Callable[[], ContextManager]) -> Callable:
    """``function`` with each call run inside a fresh ``phase()`` context."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with phase():
            return function(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def sampling(sample: Callable[[], object], seconds: float):
    """Call ``sample()`` every ``seconds`` (wall clock) from a daemon thread while the block runs; the thread is
    stopped and joined when the block ends."""
    stop = threading.Event()

    def loop():
        while not stop.wait(seconds):
            sample()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
