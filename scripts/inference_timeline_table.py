"""The table of docs/timeline.md of what the turnout timeline adds to the Kazakhstan 2022 posterior.

    simkit infer configs/kazakhstan-2022-inference.toml -o without.nc
    simkit infer configs/kazakhstan-2022-inference-timeline.toml -o with.nc
    python scripts/inference_timeline_table.py without.nc with.nc

Prints, per inferred field, the prior 90% interval and the posterior median [90% interval] without and with the
timeline statistics, the ratio of the two posterior widths (with / without), then each run's final tolerance,
ESS, simulations and which warnings it raised (Markdown).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import xarray as xr

from simkit.inference.result import WARN_ESS, WARN_TOLERANCE


def summary(path: Path) -> dict:
    """The JSON summary stored in an inference result's root attributes."""
    tree = xr.open_datatree(path, engine="zarr" if path.suffix == ".zarr" else "h5netcdf")
    return json.loads(tree.attrs["simkit_inference"])


def interval(row: dict) -> str:
    return f"{row['posterior_median']:.3f} [{row['posterior_low']:.3f}, {row['posterior_high']:.3f}]"


def table(without: dict, with_timeline: dict) -> str:
    lines = ["| field | prior 90% | without timeline | with timeline | width with / without |",
             "|---|---|---|---|---|"]
    others = {row["name"]: row for row in with_timeline["parameters"]}
    for row in without["parameters"]:
        other = others[row["name"]]
        ratio = (other["posterior_high"] - other["posterior_low"]) / (row["posterior_high"] - row["posterior_low"])
        lines.append(f"| `{row['name']}` | [{row['prior_low']:.3f}, {row['prior_high']:.3f}] | {interval(row)}"
                     f"{'' if row['informed'] else ' (prior-like)'} | {interval(other)}"
                     f"{'' if other['informed'] else ' (prior-like)'} | {ratio:.2f} |")
    lines += ["", "| run | final tolerance | ESS | simulations | warnings |", "|---|---|---|---|---|"]
    for name, run in (("without timeline", without), ("with timeline", with_timeline)):
        flags = [text for text, raised in ((f"tolerance above {WARN_TOLERANCE:g}", run["tolerance"]["final"] > WARN_TOLERANCE),
                                           (f"ESS below {WARN_ESS}", run["tolerance"]["ess"] < WARN_ESS)) if raised]
        lines.append(f"| {name} | {run['tolerance']['final']:.3g} | {run['tolerance']['ess']:.0f} | "
                     f"{run['simulations']:,} | {', '.join(flags) or 'none'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("without", type=Path, help="result of configs/kazakhstan-2022-inference.toml")
    parser.add_argument("with_timeline", type=Path, help="result of configs/kazakhstan-2022-inference-timeline.toml")
    args = parser.parse_args()
    print(table(summary(args.without), summary(args.with_timeline)))


if __name__ == "__main__":
    main()
