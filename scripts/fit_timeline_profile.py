"""Fit the honest turnout-through-the-day profile to Spain's general election of 10 Nov 2019.

Reads ``spain-2019-11/timeline_2019_11.csv.gz`` from the shared data folder (simkit.data.data_dir())
and writes ``simkit/electorate/presets/timeline-spain-2019-11.json`` (the default honest profile). Run::

    python scripts/fit_timeline_profile.py [--bootstrap 200]

The model (see simkit/model/timeline.py): province j's bin shares q_j ~ Dirichlet(kappa_region * p),
station s's bin shares ~ Dirichlet(kappa_station * q_j), its ballots split over the bins by a multinomial.
The fit is by moments: p is the national ballot-weighted share of each bin; kappa_station from the
within-province spread of the stations' shares beyond multinomial noise; kappa_region from the spread of
the provinces' shares beyond what their stations' noise explains. Standard errors: bootstrap over provinces.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from simkit.timeline.spain import fit_spain, read_spain

OUTPUT = Path(__file__).resolve().parents[1] / "simkit" / "presets" / "timeline-spain-2019-11.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=200, help="province bootstrap resamples for the SEs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    fit = fit_spain(read_spain(), bootstrap=args.bootstrap)
    args.output.write_text(json.dumps(fit, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(fit, indent=2))


if __name__ == "__main__":
    main()
