"""Where the wall clock of ``simkit calibrate`` goes: the time each phase starts and ends, and how many cores the
process and its workers keep busy in it (the README's calibration table section quotes them).

    python scripts/calibration_phases.py [simkit calibrate arguments]

With no arguments, the README's command (``configs/kazakhstan-2022-scenarios.toml --replicates 5 --draws 99``,
the table's 10 tests, ``--json --quiet``; the JSON rows go to stdout as the command writes them). On stderr: each
phase's wall-clock start and end (count matching, each replicate's elections found, the results gathered), then
the cores busy in each phase, from the CPU ticks of this process and its descendants (``/proc``, Linux) sampled
every 0.25 s.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import time

import simkit.engine.count_match as count_match
import simkit.forensics.calibrate as calibrate
from simkit.cli.main import main as simkit_main

README_COMMAND = ["calibrate", "configs/kazakhstan-2022-scenarios.toml", "--replicates", "5", "--draws", "99",
                  "--tests", "second_digit,last_digit,zero_five,log_vote_rate,dip,correlation,sobyanin,"
                  "integer_percent,spikes,shpilkin", "--json", "--quiet"]
SAMPLE_SECONDS = 0.25
START = time.perf_counter()
#: (seconds since start, phase) at each phase's start
marks: list[tuple[float, str]] = []
#: (seconds since start, CPU seconds of the process tree)
samples: list[tuple[float, float]] = []


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process ``root`` and its live descendants (``/proc/PID/stat``)."""
    children: dict[int, list[tuple[int, int]]] = {}
    own = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        own = ticks if int(name) == root else own
        children.setdefault(int(fields[1]), []).append((int(name), ticks))
    total, stack = own, [root]
    while stack:
        for pid, ticks in children.get(stack.pop(), []):
            total += ticks
            stack.append(pid)
    return total / os.sysconf("SC_CLK_TCK")


def sample(stop: threading.Event) -> None:
    while not stop.wait(SAMPLE_SECONDS):
        samples.append((time.perf_counter() - START, tree_cpu_seconds(os.getpid())))


def marked(function, phase: str):
    """``function`` noting when ``phase`` starts (and ``phase`` done when it returns)."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        marks.append((time.perf_counter() - START, phase))
        result = function(*args, **kwargs)
        marks.append((time.perf_counter() - START, f"after {phase}"))
        return result
    return wrapper


def main() -> None:
    resolve = count_match.resolve
    count_match.resolve = lambda cfg, *a, **k: (marked(resolve, "count matching")(cfg, *a, **k) if any(
        s.match_observed for s in cfg.scenarios()) else resolve(cfg, *a, **k))  # the pilots' own runs: none
    calibrate.replicate_elections = marked(calibrate.replicate_elections, "a replicate's elections found")
    calibrate._rates = marked(calibrate._rates, "the table")
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(stop,), daemon=True)
    sampler.start()
    marks.append((time.perf_counter() - START, "start (imports done)"))
    try:
        code = simkit_main(sys.argv[1:] or README_COMMAND)
    finally:
        marks.append((time.perf_counter() - START, "end"))
        stop.set()
        sampler.join()
    print(f"{'phase':<40}{'from s':>8}{'to s':>8}{'cores busy':>12}", file=sys.stderr)
    for (begin, phase), (end, _) in zip(marks, marks[1:]):
        inside = [(t, cpu) for t, cpu in samples if begin <= t <= end]
        busy = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) if len(inside) > 1 else float("nan")
        print(f"{phase:<40}{begin:8.2f}{end:8.2f}{busy:12.2f}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
