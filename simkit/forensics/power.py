"""What the data could have detected: power of each test against planted manipulation, on honest
elections shaped like the one under study.

When no test rejects, "no anomaly found" must not be read as "no fraud". This module simulates
``replicates`` honest elections matched to the data (the simulated null's model, :mod:`simkit.forensics.nulls`:
registers and regions as observed, turnout and support fitted to the low-anomaly part), plants each
manipulation of :data:`PLANTS` with simkit's own mechanisms (:mod:`simkit.model.manipulation`) for the
leader, runs the tests with the same null, and reports the share of replicates in which each test
rejects at α = 0.05: its power at this election's size and shape against that manipulation. The
``none`` row (nothing planted) is the test's size on the same simulations: a power is worth only what
it exceeds the size by (a textbook null that rejects honest elections "detects" everything).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from simkit.config_manipulation import BallotStuffing, ProtocolFabrication
from simkit.forensics.applicable import ran
from simkit.forensics.core import ALPHA, Election
from simkit.forensics.nulls import as_seed_sequence, fit_honest, simulate_honest
from simkit.model.manipulation import MECHANISMS

#: planted manipulations: id -> (description, mechanism block); strengths are stated, not estimated
PLANTS = {
    "none": ("nothing planted (the size)", None),
    "stuffing": ("incremental stuffing (Klimek model) at 10% of stations, stuffing fraction |N(0, 0.1)|",
                 BallotStuffing(name="stuffing", kind="ballot_stuffing", beneficiary="leader",
                                f_incremental=0.10, f_extreme=0.0, theta=0.1, alpha=2.0)),
    "rounding": ("fabricated protocols at 2% of stations: turnout and leader share rounded to whole percents",
                 ProtocolFabrication(name="rounding", kind="protocol_fabrication", beneficiary="leader",
                                     station_probability=0.02, round_to_percent=True, rounded="both")),
}


def planted(e: Election, plant: str, rng: np.random.Generator) -> Election:
    """``e`` with the manipulation :data:`PLANTS` ``[plant]`` applied for its leader at every eligible station
    (``station_probability`` picks them from ``rng``)."""
    _, block = PLANTS[plant]
    if block is None:
        return e
    selected = rng.random(e.n) < block.station_probability
    ballots, votes, _, _ = MECHANISMS[block.kind](e.registered, e.ballots, e.votes, selected=selected,
                                                  beneficiary=e.leader, invalid=None, params=block, rng=rng)
    return e.with_counts(ballots, votes)


def planted_power(e: Election, tests: Iterable[str], *, null: str = "textbook", draws: int = 99,
                  replicates: int = 5, seed=None) -> dict[str, dict[str, float | None]]:
    """plant -> test -> share of ``replicates`` planted elections shaped like ``e`` in which the test rejects
    at α = 0.05 (None where it cannot run); the tests use ``null`` with ``draws``."""
    from simkit.forensics import run_each

    model = fit_honest(e)
    tests = [t for t in tests if t != "fingerprint"]
    power: dict[str, dict[str, float | None]] = {}
    for plant, plant_seed in zip(PLANTS, as_seed_sequence(seed).spawn(len(PLANTS))):
        rejections: dict[str, list[bool]] = {t: [] for t in tests}
        for child in plant_seed.spawn(replicates):
            honest_seed, plant_rng_seed, test_seed = child.spawn(3)
            election = planted(simulate_honest(e, model, honest_seed), plant,
                               np.random.default_rng(plant_rng_seed))
            for test, result in run_each(election, tests, null, draws, test_seed, tolerate=True).items():
                if ran(result):
                    rejections[test].append(result.p_value < ALPHA)
        power[plant] = {t: float(np.mean(v)) if v else None for t, v in rejections.items()}
    return power
