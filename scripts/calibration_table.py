"""The calibration table of docs/forensics.md (Kazakhstan 2022 at station level) from ``simkit calibrate --json`` rows.

    simkit calibrate configs/kazakhstan-2022-scenarios.toml --replicates 5 --draws 99 \
        --tests second_digit,last_digit,zero_five,log_vote_rate,dip,correlation,sobyanin,integer_percent,spikes,shpilkin \
        --json > calibration.json
    python scripts/calibration_table.py calibration.json [--tree "commit abc1234, simulated null: each test's own
        honest model"]

One column per mechanism, and one per sweep point for a mechanism whose strength the sweep changes (the
others, the honest scenario's size included, are the same election at every point, tested once: the same rate at every point);
cells ``textbook / simulated`` rejection rates at α = 0.05, ``n/a`` where a test could not run. The heading
line names the replicates, the tree and the null it was measured with (``--tree``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NULLS = ("textbook", "simulated")


#: the fields of a row that are not sweep values
FIELDS = {"test", "null", "mechanism", "strength", "aggregate", "rejection_rate", "n"}


def columns(rows: list[dict]) -> list[tuple[str, str]]:
    """``(mechanism, strength)`` of each column: one per distinct strength, mechanisms in the order first seen."""
    seen: dict[str, dict[str, None]] = {}
    for row in rows:
        seen.setdefault(row["mechanism"], {}).setdefault(row["strength"], None)
    return [(mechanism, strength) for mechanism, strengths in seen.items() for strength in strengths]


def label(mechanism: str, swept: dict[str, float] | None) -> str:
    """The column heading: ``size`` for the honest scenario, the mechanism with the sweep values when its
    strength changes with them."""
    if mechanism == "none":
        return "size"
    if not swept:
        return mechanism
    return f"{mechanism} " + ", ".join(f"{key.rsplit('.', 1)[-1]} {value:g}" for key, value in swept.items())


def markdown(rows: list[dict]) -> str:
    """The table: one line per test, one column per :func:`columns` entry."""
    cols = columns(rows)
    varies = {m for m, _ in cols if sum(1 for other, _ in cols if other == m) > 1}
    swept = {(r["mechanism"], r["strength"]): {k: v for k, v in r.items() if k not in FIELDS} for r in rows}
    cell = {(r["test"], r["null"], r["mechanism"], r["strength"]): r["rejection_rate"] for r in rows}
    tests = list(dict.fromkeys(r["test"] for r in rows))
    head = ["test"] + [label(m, swept[m, s] if m in varies else None) for m, s in cols]
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
