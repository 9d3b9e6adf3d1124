"""Station-level summary statistics: what one election's station returns look like, in a few numbers.

The inference (:mod:`simkit.inference`) uses them as evidence beside the national and regional totals, where
station-level returns are published (``[observed.stations]``): the same statistics are computed on the
observed returns and on every simulated election, so a mechanism that leaves a station-level trace
(stuffing piles stations up in the high-turnout, high-share corner; fabrication piles them on whole
percentages) can be told apart from one that only moves the totals.

Every statistic is a function of ``registered``, ``ballots`` and ``leader`` (the leading option's votes),
each (station,) int, over the stations with 0 < ballots <= registered (the rows the forensic loader keeps); turnout = ballots / registered and leader share =
leader / ballots, as in :mod:`simkit.forensics`. Values are fractions or correlations, in [-1, 1]:

- ``turnout_mean``, ``turnout_sd``: mean and SD of station turnout (stations weighted equally);
- ``leader_share_mean``, ``leader_share_sd``: the same for the leader's share;
- ``turnout_share_correlation``: Pearson correlation of turnout and leader share (stuffing makes it
  positive);
- ``high_corner``: share of stations with turnout and leader share both above 0.8 (the corner of Klimek
  et al.'s fingerprint that extreme stuffing fills);
- ``integer_share``: share of stations with at least 100 registered whose turnout or leader share lies
  within 0.05 points of a whole percent (Kobak, Shpilkin & Pshenichnikov's criterion).
"""
from __future__ import annotations

import numpy as np

from simkit.errors import listed
from simkit.schema import STATION_STATISTICS as STATISTICS  # the ids, in the order compute returns them
from simkit.forensics.integer.percent import MIN_REGISTERED, integer_stations
from simkit.forensics.core import election

#: the corner of the fingerprint counted by ``high_corner``
CORNER = 0.8


def compute(names: tuple[str, ...] | list[str], registered: np.ndarray, ballots: np.ndarray,
            leader: np.ndarray) -> np.ndarray:
    """The statistics ``names`` (ids of :data:`STATISTICS`) of one election, shape (len(names),)."""
    unknown = [name for name in names if name not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown station statistic {listed(unknown)} (choose from {', '.join(STATISTICS)})")
    cast = (ballots > 0) & (ballots <= registered)  # the rows simkit.forensics.core.election keeps
    registered, ballots, leader = registered[cast], ballots[cast], leader[cast]
    turnout = ballots / registered
    share = leader / ballots
    values = {}
    for name in names:
        if name == "turnout_mean":
            values[name] = turnout.mean()
        elif name == "turnout_sd":
            values[name] = turnout.std()
        elif name == "leader_share_mean":
            values[name] = share.mean()
        elif name == "leader_share_sd":
            values[name] = share.std()
        elif name == "turnout_share_correlation":
            values[name] = np.corrcoef(turnout, share)[0, 1] if turnout.std() > 0 and share.std() > 0 else 0.0
        elif name == "high_corner":
            values[name] = np.mean((turnout > CORNER) & (share > CORNER))
        else:  # integer_share
            big = registered >= MIN_REGISTERED
            values[name] = integer_stations(registered[big], ballots[big], leader[big]).mean() if big.any() else 0.0
    return np.array([float(values[name]) for name in names])


def from_returns(names: tuple[str, ...] | list[str], ds) -> np.ndarray:
    """The statistics of station-level returns in simkit's schema (a loaded returns file, or one replicate
    and scenario of a simulated result): its ``leader`` attribute names the leading option (else the option
    with the most votes)."""
    e = election(ds)
    return compute(names, e.registered, e.ballots, e.leader_votes)
