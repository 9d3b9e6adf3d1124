"""Shpilkin's excess votes: the leader's votes above the clean turnout–share relation.

The clean turnout is the peak of the register-weighted turnout histogram (1-point bins). Below it, the leader
gets ``r0`` votes per vote for the others (``r0`` = ratio of their totals there). In stations above the peak the
honest leader count is taken as ``r0`` times the others' votes; the excess is the leader's votes beyond that,
summed (ballots). The statistic is the excess as a share of all ballots. Textbook p-value: one-sided station
bootstrap (share of ``draws`` resamples of stations with excess <= 0).
"""
from __future__ import annotations

import numpy as np

from simkit.forensics.core import (BootstrapNull, Election, TestResult, check_null, null_for, top_regions,
                                   top_stations, verdict)
from simkit.forensics.nulls.flat import as_seed_sequence

ID = "shpilkin"
ALTERNATIVE = "greater"  #: the direction in which the statistic is anomalous
BIN_WIDTH = 0.01


def clean_turnout(e: Election) -> float:
    """Upper edge of the modal 1-point bin of the register-weighted turnout histogram (share in [0, 1])."""
    edges = np.arange(0, 1 + BIN_WIDTH, BIN_WIDTH)
    turnout = np.clip(e.turnout, 0, 1)
    # numpy's histogram bins (edges[k] <= t < edges[k + 1], the last one closed), without its sort: the bin of
    # t / width, moved by one where rounding put t on the wrong side of an edge
    last = edges.size - 2
    cell = np.minimum((turnout / BIN_WIDTH).astype(np.int64), last)
    cell -= turnout < edges[cell]
    cell += (turnout >= edges[cell + 1]) & (cell < last)
    weights = np.bincount(cell, weights=e.registered, minlength=last + 1)
    return float(edges[np.argmax(weights) + 1])


def station_excess(e: Election, peak: float | None = None) -> np.ndarray:
    """Leader votes above ``r0`` x others in stations above the clean turnout (0 below); ballots, (station,)."""
    peak = clean_turnout(e) if peak is None else peak
    others = e.ballots - e.leader_votes
    clean = e.turnout <= peak
    ratio = e.leader_votes[clean].sum() / max(others[clean].sum(), 1)
    return np.where(clean, 0.0, e.leader_votes - ratio * others)


def has_clean_others(e: Election) -> bool:
    """Whether the others have votes at or below the clean turnout, where ``r0`` is read (without them it is
    undefined: the leader took every vote there)."""
    return bool((e.ballots - e.leader_votes)[e.turnout <= clean_turnout(e)].sum() > 0)


def statistic(e: Election) -> float:
    """Excess leader votes as a share of all ballots."""
    return float(station_excess(e).sum() / e.ballots.sum())


def run(e: Election, *, null: str = "textbook", draws: int = 1000, rng=None,
        null_statistics: np.ndarray | None = None) -> TestResult:
    check_null(null)
    peak = clean_turnout(e)
    excess = station_excess(e, peak)
    share = statistic(e)

    def textbook() -> BootstrapNull:  # station bootstrap of the excess share, against no excess
        gen = np.random.default_rng(as_seed_sequence(rng))
        picks = (gen.integers(0, e.n, size=e.n) for _ in range(draws))
        return BootstrapNull(np.array([excess[idx].sum() / e.ballots[idx].sum() for idx in picks]), 0.0)

    p_value, reference = null_for(null, textbook, null_statistics).p_value(share, ALTERNATIVE)
    return TestResult(test=ID, statistic=share, reference=reference, p_value=p_value, null=null,
                      verdict=verdict(p_value),
                      extra={"excess_votes": float(excess.sum()), "clean_turnout": peak,
                             "top_stations": top_stations(e, excess, {"turnout": e.turnout,
                                                                      "leader_share": e.leader_share}),
                             "top_regions": top_regions(e, excess)})
