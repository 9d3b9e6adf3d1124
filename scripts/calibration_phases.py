"""Where the wall clock of ``simkit calibrate`` goes: the time each phase starts and ends, and how many cores the
process and its workers keep busy in it (docs/forensics.md's calibration table section quotes them).

    python scripts/calibration_phases.py [simkit calibrate arguments]

With no arguments, docs/forensics.md's calibration table command
(``configs/kazakhstan-2022-scenarios.toml --replicates 5 --draws 99``, the table's 10 tests, ``--json --quiet``;
the JSON rows go to stdout as the command writes them). On stderr: each
phase's wall-clock start and end (count matching, each replicate's elections found, the results gathered), then
the cores busy in each phase, from the CPU seconds of this process and its descendants sampled every 0.25 s
(:func:`benchmarks.memory.tree_cpu`: a worker that ended counts with its last sample).
"""
from __future__ import annotations

import contextlib
import functools
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # benchmarks/ is no installed package: imported from this checkout

import simkit.engine.count_match as count_match  # noqa: E402
import simkit.forensics.calibrate as calibrate  # noqa: E402
from simkit.cli.main import main as simkit_main  # noqa: E402
from benchmarks.memory import tree_cpu  # noqa: E402
from benchmarks.phases import sampling, within  # noqa: E402

TABLE_COMMAND = ["calibrate", "configs/kazakhstan-2022-scenarios.toml", "--replicates", "5", "--draws", "99",
                  "--tests", "second_digit,last_digit,zero_five,log_vote_rate,dip,correlation,sobyanin,"
                  "integer_percent,spikes,shpilkin", "--json", "--quiet"]
SAMPLE_SECONDS = 0.25
START = time.perf_counter()
#: (seconds since start, phase) at each phase's start
marks: list[tuple[float, str]] = []
#: (seconds since start, CPU seconds of the process tree)
samples: list[tuple[float, float]] = []


def sample(process: psutil.Process, seen: dict[int, float]) -> None:
    """Note the time and the CPU seconds of ``process``'s tree (``seen``: pid -> seconds, as :func:`tree_cpu`)."""
    samples.append((time.perf_counter() - START, tree_cpu(process, seen)))


def mark(name: str) -> None:
    """Note that phase ``name`` starts now."""
    marks.append((time.perf_counter() - START, name))


@contextlib.contextmanager
def marking(name: str):
    """Mark phase ``name`` on entry and ``after NAME`` on a normal exit."""
    mark(name)
    yield
    mark(f"after {name}")


def marked(function, name: str):
    """``function`` noting when phase ``name`` starts (and ``after NAME`` when it returns)."""
    return within(function, functools.partial(marking, name))


def main() -> None:
    resolve = count_match.resolve
    count_match.resolve = lambda cfg, *a, **k: (marked(resolve, "count matching")(cfg, *a, **k) if any(
        s.match_observed for s in cfg.scenarios()) else resolve(cfg, *a, **k))  # the pilots' own runs: none
    calibrate.replicate_elections = marked(calibrate.replicate_elections, "a replicate's elections found")
    calibrate._rates = marked(calibrate._rates, "the table")
    mark("start (imports done)")
    with sampling(functools.partial(sample, psutil.Process(), {}), SAMPLE_SECONDS):
        try:
            code = simkit_main(sys.argv[1:] or TABLE_COMMAND)
        finally:
            mark("end")
    print(f"{'phase':<40}{'from s':>8}{'to s':>8}{'cores busy':>12}", file=sys.stderr)
    for (begin, phase), (end, _) in zip(marks, marks[1:]):
        inside = [(t, cpu) for t, cpu in samples if begin <= t <= end]
        busy = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]) if len(inside) > 1 else float("nan")
        print(f"{phase:<40}{begin:8.2f}{end:8.2f}{busy:12.2f}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
