"""The performance table of docs/performance.md, from one run of ``benchmarks/compare.py --json``.

Usage::

    python benchmarks/compare.py --json > perf.json
    python scripts/performance_table.py perf.json

Prints the markdown table (method, replicates per second, CPU milliseconds per replicate, peak resident memory)
and the ratio line, as docs/performance.md shows them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

LABELS = {"per_voter": "per-voter reference", "numpy": "plain numpy baseline", "simkit": "simkit, summary only",
          "simkit_full": "simkit, full output to zarr"}


def table(report: dict) -> str:
    """Markdown rows of every method measured, then the ratios simkit/numpy and simkit/per-voter."""
    rows = ["| method | replicates/s | CPU ms/replicate | peak RSS |", "|---|---|---|---|"]
    for method, label in LABELS.items():
        result = report["methods"].get(method)
        if result is not None:
            rows.append(f"| {label} | {result['rps']:,.{3 if result['rps'] < 10 else 1}f} | "
                        f"{result['cpu_ms_per_replicate']:,.1f} | {result['peak_rss_mb']:,.0f} MB |")
    ratios = [f"{name} {report[key]:.2f}×" for key, name in (("ratio_simkit_numpy", "simkit/numpy"),
                                                             ("ratio_simkit_per_voter", "simkit/per-voter"),
                                                             ("ratio_simkit_full_numpy", "simkit full/numpy"))
              if key in report]
    workload = report["workload"]
    kernel = report["kernel"] + (" (the default)" if report["kernel"] == report.get("default_kernel") else "")
    return "\n".join(rows) + (f"\n\n{', '.join(ratios)}; {workload['replicates']:,} replicates, kernel {kernel}, "
                              f"{report['workers']} workers on {report['cpu_count']} cores.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the JSON printed by benchmarks/compare.py --json")
    args = parser.parse_args(argv)
    print(table(json.loads(args.report.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
