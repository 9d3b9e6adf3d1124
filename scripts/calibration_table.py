"""The README's calibration table (Kazakhstan 2022 at station level) from ``simkit calibrate --json`` rows.

    simkit calibrate configs/kazakhstan-2022-scenarios.toml --replicates 5 --draws 99 \
        --tests second_digit,last_digit,zero_five,log_vote_rate,dip,correlation,sobyanin,integer_percent,spikes,shpilkin \
        --json > calibration.json
    python scripts/calibration_table.py calibration.json [--tree "commit abc1234, simulated null: each test's own
        honest model"]

One column per mechanism, and one per sweep point for a mechanism whose strength the sweep changes (the
others, the honest scenario's size included, are the same election at every point: the first point's rate);
cells ``textbook / simulated`` rejection rates at α = 0.05, ``n/a`` where a test could not run. The heading
line names the replicates, the tree and the null it was measured with (``--tree``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NULLS = ("textbook", "simulated")


def columns(rows: list[dict]) -> list[tuple[str, str]]:
    """``(mechanism, strength)`` of each column, in the order first seen: one per distinct strength."""
    seen: dict[tuple[str, str], None] = {}
    for row in rows:
        seen.setdefault((row["mechanism"], row["strength"]), None)
    return list(seen)


def label(mechanism: str, strength: str, varies: bool) -> str:
    """The column heading: ``size`` for the honest scenario, the mechanism with its strength when swept."""
    if mechanism == "none":
        return "size"
    return f"{mechanism} ({strength})" if varies else mechanism


def markdown(rows: list[dict]) -> str:
    """The table: one line per test, one column per :func:`columns` entry."""
    cols = columns(rows)
    per_mechanism: dict[str, int] = {}
    for mechanism, _ in cols:
        per_mechanism[mechanism] = per_mechanism.get(mechanism, 0) + 1
    cell = {(r["test"], r["null"], r["mechanism"], r["strength"]): r["rejection_rate"] for r in rows}
    tests = list(dict.fromkeys(r["test"] for r in rows))
    head = ["test"] + [label(m, s, per_mechanism[m] > 1) for m, s in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for test in tests:
        values = []
        for mechanism, strength in cols:
            rates = [cell.get((test, null, mechanism, strength)) for null in NULLS]
            values.append(" / ".join("n/a" if r is None else f"{r:.1f}" for r in rates))
        lines.append(f"| `{test}` | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path, help="the JSON output of simkit calibrate --json")
    parser.add_argument("--tree", default="", help="the tree and null the rows were measured with")
    args = parser.parse_args()
    rows = json.loads(args.rows.read_text())["rows"]
    replicates = max(row["n"] for row in rows)
    print(f"Rejection rates at α = 0.05, textbook null / simulated null, over {replicates} replicates"
          + (f" ({args.tree})" if args.tree else "") + ":\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
