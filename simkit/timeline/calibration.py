"""Size and power of the timeline tests on simulated elections (the engine with ``[timeline]``).

A synthetic country on Kazakhstan's hours (07:00-20:00, reports 10:05 ... 18:05): ``regions`` regions of
``stations`` stations of 1,000 voters, turnout 60%. Scenarios: ``honest``; ``coercion``: a share of the
register in the first ``affected`` regions coerced to vote (compliance 1) between 07:00 and 12:00;
``late_stuffing``: ballot stuffing (Klimek incremental, every station of those regions, stuffing fraction
|N(0, theta)| of the non-voters) between 18:00 and 20:00. Size: the share of honest region rows with
p ≤ alpha; power: the share of affected region rows with p ≤ alpha (:func:`simkit.schema.rejects`).
"""
from __future__ import annotations

import numpy as np
import tomli_w

from simkit.engine import run as engine
from simkit import streams
from simkit.config.load import parse_config
from simkit.engine.profile import honest_profile
from simkit.schema import ALPHA, REGION_NAME, SCENARIO, rejects
from .statistics import TESTS, RegionalTimeline, run_tests

HOURS = {"opening": "07:00", "closing": "20:00", "reports": ["10:05", "12:05", "14:05", "16:05", "18:05"]}


def calibration_config(regions: int, stations: int, replicates: int, coerced_share: float, stuffing_theta: float,
                       affected: int, seed: int = 17):
    names = [f"r{i}" for i in range(regions)]
    targets = names[:affected]
    raw = {
        "title": "timeline calibration",
        "electorate": {"source": "synthetic", "registered": 1000 * regions * stations, "stations": regions * stations,
                       "station_size_sd": 0.0, "seed": 3,
                       "regions": [{"name": n, "register_share": 1.0 / regions} for n in names]},
        "options": [{"name": "a"}, {"name": "b"}],
        "turnout": {"model": "logit_normal", "mean": 0.6, "dispersion": 0.3},
        "preferences": {"model": "dirichlet", "shares": {"a": 0.6, "b": 0.4}, "dispersion": 50.0},
        "run": {"replicates": replicates, "seed": seed, "keep": "summary"},
        "timeline": dict(HOURS, arrival={"coercion": {"start": "07:00", "end": "12:00"},
                                         "stuffing": {"start": "18:00", "end": "20:00"}}),
        "manipulation": [
            {"name": "coercion", "kind": "coerced_turnout", "beneficiary": "a", "regions": targets,
             "share": coerced_share, "compliance": 1.0, "loyalty": 1.0},
            {"name": "stuffing", "kind": "ballot_stuffing", "beneficiary": "a", "regions": targets,
             "f_incremental": 1.0, "f_extreme": 0.0, "theta": stuffing_theta, "alpha": 1.0}],
        "scenario": [{"name": "honest"}, {"name": "coercion", "manipulations": ["coercion"]},
                     {"name": "late_stuffing", "manipulations": ["stuffing"]}],
    }
    return parse_config(tomli_w.dumps(raw), source="timeline calibration")


def rejection_rates(regions: int = 10, stations: int = 60, replicates: int = 40, coerced_share: float = 0.1,
                    stuffing_theta: float = 0.1, affected: int = 3, alpha: float = ALPHA, draws: int = 2000,
                    seed: int = 17) -> dict:
    """{"size": {test: rate}, "power": {scenario: {test: rate}}, "n_size": rows, "n_power": rows}."""
    cfg = calibration_config(regions, stations, replicates, coerced_share, stuffing_theta, affected, seed)
    ds = engine.simulate(cfg, workers=1)
    profile = honest_profile(HOURS["opening"], HOURS["reports"], HOURS["closing"])
    registered = ds["region_registered"].values.astype(float)
    names = [str(n) for n in ds[REGION_NAME].values]
    rejected = {}
    for scenario in ("honest", "coercion", "late_stuffing"):
        counts = ds["timeline_ballots"].sel({SCENARIO: scenario}).values  # (replicate, region, report)
        flags = {test: [] for test in TESTS}
        for r in range(counts.shape[0]):
            observed = RegionalTimeline(names, HOURS["reports"], counts[r] / registered[:, None], registered)
            rows = run_tests(observed, profile, HOURS["opening"], HOURS["closing"],
                             streams.generator(seed, streams.TIMELINE_NULL, r), draws)
            for row in rows:
                if row["region"] in names:
                    flags[row["test"]].append(rejects(row["p_value"], alpha))
        rejected[scenario] = {test: np.array(v).reshape(counts.shape[0], regions) for test, v in flags.items()}
    size = {test: float(rejected["honest"][test].mean()) for test in TESTS}
    power = {scenario: {test: float(rejected[scenario][test][:, :affected].mean()) for test in TESTS}
             for scenario in ("coercion", "late_stuffing")}
    return {"size": size, "power": power, "n_size": replicates * regions, "n_power": replicates * affected,
            "alpha": alpha, "coerced_share": coerced_share, "stuffing_theta": stuffing_theta}
